#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# bench.py: write overhead and raw pipeline throughput, measured side by side in one run.
# Prints ratios against a baseline taken in the same run; it asserts nothing.
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
VFSWATCH = os.environ.get("VFSWATCH", os.path.join(HERE, "..", "..", "build", "vfswatch"))
WRITES = int(os.environ.get("VW_BENCH_WRITES", "200000"))
RUN_DIR = tempfile.mkdtemp(prefix="vw-bench-run-")   # apart from any daemon the host runs


def dd_time(path, count):
    """Seconds for `count` 64-byte writes by dd (one write syscall each)."""
    t0 = time.perf_counter()
    subprocess.run(["dd", "if=/dev/zero", "of=" + path, "bs=64", "count=%d" % count,
                    "status=none"], check=True)
    return time.perf_counter() - t0


def best(path, count, n=3):
    return min(dd_time(path, count) for _ in range(n))


class Daemon:
    def __init__(self, roots, backend="tracepoint", raw=True, extra=()):
        args = [VFSWATCH, "run", "--backend", backend, "--run-dir", RUN_DIR, "--no-state"]
        args += ["--raw"] if raw else []
        args += list(extra) or ["--no-pin"]
        if backend != "fanotify":
            args += ["--ringbuf-mb", "64"]
        for r in roots:
            args += ["--watch", r]
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.count = 0
        self.lost = 0
        self.last = time.perf_counter()
        self.ready = threading.Event()
        threading.Thread(target=self.read, daemon=True).start()
        if not self.ready.wait(60):
            raise SystemExit("bench: daemon not ready")

    def read(self):
        for line in self.p.stdout:
            e = json.loads(line)
            ev = e.get("event")
            if ev == "ready":
                self.ready.set()
            elif ev == "overflow":
                self.lost += e["lost"]
            elif "path" in e:
                self.count += 1
                self.last = time.perf_counter()

    def mem_kib(self, key):
        """VmRSS counts the ring buffer's kernel pages mapped into the daemon (twice the
        ring size); RssAnon is the daemon's own memory."""
        with open("/proc/%d/status" % self.p.pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return 0

    def cpu_s(self):
        with open("/proc/%d/stat" % self.p.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.p.send_signal(2)
        self.p.wait(timeout=30)


def usable_backends():
    p = subprocess.run([VFSWATCH, "probe"], capture_output=True, text=True)
    return [b["name"] for b in json.loads(p.stdout)["backends"] if b["usable"]]


def run_backend(backend, inside, outside, base):
    d = Daemon([inside], backend)
    out = best(os.path.join(outside, "f"), WRITES)
    before = d.count
    t0 = time.perf_counter()
    ins = dd_time(os.path.join(inside, "f"), WRITES)
    while time.perf_counter() - d.last < 1.0:   # let the stream settle
        time.sleep(0.1)
    got = d.count - before
    span = d.last - t0
    anon, rss = d.mem_kib("RssAnon"), d.mem_kib("VmRSS")
    d.stop()
    ns = lambda t: t / WRITES * 1e9
    print("%-10s outside the root %6.0f ns/write %5.2fx | inside %6.0f ns/write %5.2fx | "
          "%d of %d events (+%d reported lost), %.0f events/s | RssAnon %d KiB (VmRSS %d KiB)"
          % (backend, ns(out), out / base, ns(ins), ins / base, got, WRITES + 1, d.lost,
             got / span if span > 0 else 0, anon, rss))


def stat_slot(pin, slot):
    out = subprocess.run(["bpftool", "-j", "map", "dump", "pinned", pin + "/stats"],
                         capture_output=True, text=True, check=True).stdout
    for e in json.loads(out):
        k = e.get("formatted", {}).get("key", e.get("key"))
        if k == slot:
            vals = e.get("formatted", {}).get("values") or e["values"]
            return sum(v["value"] for v in vals)
    return 0


EMITTED, COALESCED = 3, 10


def hot_file(inside, coalesce):
    """Ring-buffer records for 100 000 writes to one file (settled mode)."""
    pin = "/sys/fs/bpf/vfswatch-bench-%d" % os.getpid()
    extra = ["--pin-dir", pin] + ([] if coalesce else ["--no-kernel-coalesce"])
    d = Daemon([inside], raw=False, extra=extra)
    e0 = stat_slot(pin, EMITTED)
    t = dd_time(os.path.join(inside, "hot"), 100000)
    time.sleep(0.5)
    rec, folded = stat_slot(pin, EMITTED) - e0, stat_slot(pin, COALESCED)
    d.stop()
    return rec, folded, t / 100000 * 1e9


def settled_cpu(inside, n=20000):
    """Daemon CPU time per settled event: n files created in one directory."""
    d = Daemon([inside], raw=False)
    c0, n0 = d.cpu_s(), d.count
    sub = os.path.join(inside, "many")
    subprocess.run("mkdir -p %s && cd %s && seq -f 'f%%g' %d | xargs touch" % (sub, sub, n),
                   shell=True, check=True)
    while time.perf_counter() - d.last < 1.0:
        time.sleep(0.1)
    cpu, got = d.cpu_s() - c0, d.count - n0
    d.stop()
    return cpu, got


def rescan(top, ndirs=10000, per_dir=10, changed=1000):
    """Catch-up rescan at start: ndirs x per_dir files, `changed` of them rewritten while the
    daemon was down. Returns (ms to "done", ms to the last changed line, lines, peak RSS KiB)."""
    root, state = os.path.join(top, "rescan"), os.path.join(top, "rescan-state")
    for i in range(ndirs):
        d = os.path.join(root, "d%05d" % i)
        os.makedirs(d)
        for j in range(per_dir):
            with open(os.path.join(d, "f%d" % j), "wb") as f:
                f.write(b"v1")
    args = [VFSWATCH, "run", "--backend", "auto", "--run-dir", RUN_DIR, "--state-dir", state,
            "--no-pin", "--watch", root]

    def run(until):
        p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        watchdog = threading.Timer(120, p.kill)     # never a hang: the figures say -1
        watchdog.start()
        t0, done_ms, last_ms, n, hwm = time.perf_counter(), None, None, 0, 0
        for line in p.stdout:
            e = json.loads(line)
            if e.get("event") == "rescan" and e.get("phase") == "done":
                done_ms = (time.perf_counter() - t0) * 1000
            elif e.get("source") == "rescan":
                n += 1
                last_ms = (time.perf_counter() - t0) * 1000
            if until(e, n):
                break
        try:
            with open("/proc/%d/status" % p.pid) as f:
                hwm = next(int(x.split()[1]) for x in f if x.startswith("VmHWM:"))
        except (OSError, StopIteration):
            pass
        watchdog.cancel()
        p.send_signal(2)
        p.wait(timeout=60)
        return done_ms, last_ms, n, hwm

    # the first start builds the snapshot (its crawl ends with it written)
    run(lambda e, n: e.get("event") == "ready" and (time.sleep(3) or True))
    for i in range(changed):
        with open(os.path.join(root, "d%05d" % (i * (ndirs // changed)), "f0"), "wb") as f:
            f.write(b"changed while down")
    return run(lambda e, n: n >= changed)


def main():
    if os.geteuid() != 0:
        print("bench: needs root")
        return 1
    top = tempfile.mkdtemp(prefix="vw-bench-")
    inside, outside = os.path.join(top, "proj"), os.path.join(top, "other")
    os.makedirs(inside)
    os.makedirs(outside)
    try:
        base = best(os.path.join(outside, "f"), WRITES)
        print("bench: %d x 64-byte writes by dd (one read + one write syscall each), raw mode"
              % WRITES)
        print("%-10s %6.0f ns/write  1.00x (baseline, measured first)" % ("no daemon",
                                                                         base / WRITES * 1e9))
        for b in usable_backends():
            run_backend(b, inside, outside, base)
        if "tracepoint" in usable_backends() or "fentry" in usable_backends():
            with_c, folded, t_with = hot_file(inside, True)
            without_c, _, t_without = hot_file(inside, False)
            print("kernel coalescing (settled mode): 100000 writes to one file -> %d ring-buffer "
                  "records with (%d writes folded), %d without: %.0fx fewer; %.0f vs %.0f "
                  "ns/write (%.2fx vs %.2fx the baseline)" %
                  (with_c, folded, without_c, without_c / max(with_c, 1), t_with, t_without,
                   t_with / (base / WRITES * 1e9), t_without / (base / WRITES * 1e9)))
        cpu, got = settled_cpu(inside)
        print("settled mode: %d settled events, daemon CPU %.3f s = %.1f us per settled event"
              % (got, cpu, cpu / max(got, 1) * 1e6))
        done_ms, last_ms, n, hwm = rescan(top)
        print("rescan at start, 100000 files in 10000 directories, 1000 rewritten while down: "
              "crawl done in %.0f ms, all %d rewrites told after %.0f ms, peak RSS %d KiB"
              % (done_ms or -1, n, last_ms or -1, hwm))
        again = best(os.path.join(outside, "f"), WRITES)
        print("%-10s %6.0f ns/write  %.2fx (baseline again, after)" % (
            "no daemon", again / WRITES * 1e9, again / base))
    finally:
        shutil.rmtree(top, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
