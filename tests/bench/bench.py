#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# bench.py: vfswatch and its peers (inotifywait, fswatch, fatrace, Watchman) measured side by side
# in one run. Write overhead is a ratio against a baseline with no watcher taken in the same run,
# interleaved with each watcher's runs, each the median of repeated runs. Prints a table, writes
# build/bench/bench.csv and draws build/bench/bench.png (gnuplot). It asserts nothing.
import csv
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from watchers import (VFSWATCH, Inotifywait, Vfswatch, cpu_s, peers_available,  # noqa: E402
                      wakeups)
from git_status import git_status  # noqa: E402
from watchman_clients import watchman_clients  # noqa: E402

OUT = os.environ.get("VW_BENCH_OUT", os.path.join(HERE, "..", "..", "build", "bench"))
WRITES = int(os.environ.get("VW_BENCH_WRITES", "200000"))
REPS = int(os.environ.get("VW_BENCH_REPS", "3"))
LAT_N = int(os.environ.get("VW_BENCH_LATENCY_SAMPLES", "20"))
BIG_DIRS, BIG_PER_DIR = int(os.environ.get("VW_BENCH_DIRS", "10000")), 10
STORM = int(os.environ.get("VW_BENCH_STORM", "20000"))
# VW_BENCH_BASELINE=path/to/vfswatch: that binary too, side by side ("-base" labels), in the
# write overhead, latency, idle and throughput sections (make bench-compare BASE=...)
BASELINE = os.environ.get("VW_BENCH_BASELINE")
RUN_DIR = tempfile.mkdtemp(prefix="vw-bench-run-")   # apart from any daemon the host runs
rows = []       # (section, metric, watcher, value, unit)


def record(section, metric, who, value, unit):
    rows.append((section, metric, who, value, unit))


def say(msg):
    print(msg, flush=True)


# --- load generators -----------------------------------------------------------------------

def dd(path, count=WRITES):
    """Seconds for `count` 64-byte writes by dd (one write syscall each)."""
    t0 = time.perf_counter()
    subprocess.run(["dd", "if=/dev/zero", "of=" + path, "bs=64", "count=%d" % count,
                    "status=none"], check=True)
    return time.perf_counter() - t0


def dd_pipe(count=WRITES):
    t0 = time.perf_counter()
    subprocess.run("dd if=/dev/zero bs=64 count=%d status=none | cat >/dev/null" % count,
                   shell=True, check=True)
    return time.perf_counter() - t0


def make_tree(top, ndirs, per_dir, data=b"v1"):
    for i in range(ndirs):
        d = os.path.join(top, "d%05d" % i)
        os.makedirs(d, exist_ok=True)
        for j in range(per_dir):
            with open(os.path.join(d, "f%d" % j), "wb") as f:
                f.write(data)


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(q / 100 * (len(v) - 1))))] if v else float("nan")


# --- the watchers --------------------------------------------------------------------------

def usable_backends():
    p = subprocess.run([VFSWATCH, "probe"], capture_output=True, text=True)
    return [b["name"] for b in json.loads(p.stdout)["backends"] if b["usable"]]


def subjects():
    """(label, factory) for every vfswatch backend usable here and every peer installed."""
    out = []
    for b in usable_backends():
        for raw in (True, False):
            out.append(("vw-%s-%s" % (b, "raw" if raw else "settled"),
                        lambda b=b, raw=raw: Vfswatch(b, raw, RUN_DIR)))
            if BASELINE:
                out.append(("vw-%s-%s-base" % (b, "raw" if raw else "settled"),
                            lambda b=b, raw=raw: Vfswatch(b, raw, RUN_DIR, binary=BASELINE)))
    for n, c in peers_available():
        out.append((n, c))
    return out


def running(factory, roots):
    w = factory()
    ready = w.start(roots)
    return w, ready


# --- the measurements ----------------------------------------------------------------------

def overhead(subs, inside, outside):
    """dd's time with each watcher running, over dd's time with none, interleaved."""
    base = {"outside": [], "inside": [], "pipe": []}
    got = {label: {"outside": [], "inside": [], "pipe": []} for label, _ in subs}

    def three(into, w=None):
        into["outside"].append(dd(os.path.join(outside, "f")))
        into["pipe"].append(dd_pipe())
        into["inside"].append(dd(os.path.join(inside, "f")))
        if w:       # what the writes caused is read before the next measurement
            n = -1
            while w.counted != n:
                n = w.counted
                time.sleep(0.3)

    dd(os.path.join(outside, "f"))      # warm
    for rep in range(REPS):
        for label, factory in subs:
            three(base)
            w, _ = running(factory, [inside])
            w.counting = True
            three(got[label], w)
            w.stop()
        three(base)
    b = {k: statistics.median(v) for k, v in base.items()}
    say("write overhead: %d x 64-byte writes by dd, median of %d, ratio to no watcher "
        "(%.0f ns/write outside, %.0f inside, %.0f to a pipe)" % (
            WRITES, REPS, b["outside"] / WRITES * 1e9, b["inside"] / WRITES * 1e9,
            b["pipe"] / WRITES * 1e9))
    for label, _ in subs:
        m = {k: statistics.median(v) / b[k] for k, v in got[label].items()}
        say("  %-22s outside %5.2fx  inside %5.2fx  pipe %5.2fx" % (
            label, m["outside"], m["inside"], m["pipe"]))
        for k in ("outside", "inside", "pipe"):
            record("overhead", "write " + k, label, round(m[k], 3), "x")


def latency(subs, root):
    """Write -> line, one write every 200 ms to a file changed once; then the same while
    another file in the project is appended to every 20 ms (a steady trickle)."""
    names = [os.path.join(root, "lat%03d" % i) for i in range(LAT_N)]
    for n in names:
        with open(n, "wb") as f:
            f.write(b"0")
    busy = os.path.join(root, "busy.log")
    say("latency write -> line, %d spaced writes (200 ms apart), p50/p99 ms; trickle: the same "
        "while busy.log gets a line every 20 ms" % LAT_N)
    for label, factory in subs:
        res = {}
        for trickle in (False, True):
            w, _ = running(factory, [root])
            stop = threading.Event()
            t = None
            if trickle:
                def appender():
                    with open(busy, "ab", buffering=0) as f:
                        while not stop.wait(0.02):
                            f.write(b"line\n")
                t = threading.Thread(target=appender)
                t.start()
                time.sleep(0.3)
            lat, missed = [], 0
            for i, n in enumerate(names):
                since = w.count()
                t0 = time.perf_counter()
                with open(n, "wb") as f:
                    f.write(b"%d" % (i + 1))
                seen = w.wait_path(n, 8.0, since=since)
                if seen is None:
                    missed += 1
                else:
                    lat.append((seen - t0) * 1000)
                time.sleep(max(0.0, 0.2 - (time.perf_counter() - t0)))
            stop.set()
            if t:
                t.join()
            w.stop()
            res[trickle] = (pct(lat, 50), pct(lat, 99), missed)
            kind = "trickle" if trickle else "spaced"
            record("latency", "p50 " + kind, label, round(pct(lat, 50), 2), "ms")
            record("latency", "p99 " + kind, label, round(pct(lat, 99), 2), "ms")
            if missed:
                record("latency", "not seen within 8 s " + kind, label, missed, "writes")
        say("  %-22s spaced p50 %7.1f p99 %7.1f | trickle p50 %7.1f p99 %7.1f%s" % (
            label, res[False][0], res[False][1], res[True][0], res[True][1],
            "" if not (res[False][2] or res[True][2]) else
            "  (%d/%d not seen within 8 s)" % (res[False][2], res[True][2])))


def ready_and_memory(subs, big, many):
    """Ready time; memory 1 s after: VmRSS (for vfswatch it counts the ring buffer's pages,
    mapped twice: 2 x 16 MiB by default) and RssAnon (the process's own memory)."""
    say("ready time (median of 3 starts) and memory: %d files in %d directories; then %d "
        "projects of %d files (%d in all); vfswatch with its default 16 MiB ring buffer" % (
            BIG_DIRS * BIG_PER_DIR, BIG_DIRS, len(many), len(os.listdir(many[0])) * BIG_PER_DIR,
            len(many) * len(os.listdir(many[0])) * BIG_PER_DIR))
    for label, factory in subs:
        if label == "fatrace":
            continue            # one system-wide mark: nothing depends on the tree
        out = []
        for roots, tag in (([big], "big tree"), (many, "50 projects")):
            starts = []
            for k in range(3):      # the median of 3 starts; memory after the last
                w = factory()
                if isinstance(w, Vfswatch):
                    w.ring_mb = None
                try:
                    starts.append(w.start(roots, timeout=60))
                except RuntimeError as e:
                    w.stop()
                    starts = None
                    out.append("%s: not ready within 60 s (%s)" % (tag, e))
                    record("ready", "not ready within 60 s " + tag, label, 1, "")
                    break
                if k < 2:
                    w.stop()
            if starts is None:
                continue
            ready = statistics.median(starts)
            time.sleep(1.0)
            rss, anon, watches = w.rss_kib(), w.anon_kib(), w.watches()
            died = w.p.poll()
            w.stop()
            if died is not None:
                out.append("%s: ready %6.0f ms, then exited (status %s)" % (tag, ready * 1000,
                                                                          died))
                record("ready", "ready " + tag, label, round(ready * 1000, 1), "ms")
                record("ready", "exited after ready " + tag, label, died, "status")
                continue
            record("ready", "ready " + tag, label, round(ready * 1000, 1), "ms")
            record("ready", "VmRSS " + tag, label, rss, "KiB")
            record("ready", "RssAnon " + tag, label, anon, "KiB")
            record("ready", "inotify watches " + tag, label, watches, "")
            out.append("%s: ready %6.0f ms RSS %6d KiB (anon %6d) watches %6d" % (
                tag, ready * 1000, rss, anon, watches))
        say("  %-22s %s | %s" % (label, out[0], out[1]))


def idle(subs, root, secs=6):
    say("idle: %d s with nothing changing in the project (CPU and wake-ups)" % secs)
    for label, factory in subs:
        w, _ = running(factory, [root])
        time.sleep(1.5)
        c0, k0 = w.cpu(), w.wakeups()
        time.sleep(secs)
        cpu, woke = w.cpu() - c0, w.wakeups() - k0
        w.stop()
        record("idle", "wake-ups per s", label, round(woke / secs, 2), "/s")
        record("idle", "CPU", label, round(cpu * 1000 / secs, 2), "ms/s")
        say("  %-22s %6.1f wake-ups/s  %6.2f ms CPU/s" % (label, woke / secs, cpu * 1000 / secs))


def storm(subs, root):
    files = [os.path.join(root, "s%03d" % (i // 100), "f%03d" % (i % 100)) for i in range(STORM)]
    for f in files:
        os.makedirs(os.path.dirname(f), exist_ok=True)
        with open(f, "wb") as fh:
            fh.write(b"v0")
    say("storm: %d files rewritten at once; files reported (of %d), lines, watcher CPU"
        % (STORM, STORM))
    for k, (label, factory) in enumerate(subs):
        w, _ = running(factory, [root])
        c0, n0 = w.cpu(), w.count()
        t0 = time.perf_counter()
        for f in files:
            with open(f, "wb") as fh:
                fh.write(b"v%d" % (k + 1))
        w.quiet(2.5, limit=30)      # a watcher still reporting after 30 s has its count so far
        cpu = w.cpu() - c0
        with w.cv:
            got = w.lines[n0:]
        told = len({p for _, p in got} & set(files))
        span = (got[-1][0] - t0) if got else float("nan")
        w.stop()
        record("storm", "files told", label, told, "of %d" % STORM)
        record("storm", "lines", label, len(got), "")
        record("storm", "CPU", label, round(cpu * 1000, 1), "ms")
        record("storm", "last line after", label, round(span * 1000, 1), "ms")
        say("  %-22s %5d files %6d lines  CPU %7.0f ms  last line after %6.0f ms%s" % (
            label, told, len(got), cpu * 1000, span * 1000,
            "  (lost %d)" % w.lost if w.lost else ""))


class Counted:
    """vfswatch with its stdout read in large chunks and only counted (a Python JSON reader
    would be the bottleneck): lines, the time of the last one, losses reported."""

    def __init__(self, backend, raw, root, binary=None):
        self.p = subprocess.Popen(Vfswatch(backend, raw, RUN_DIR, binary=binary).command([root]),
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.lines, self.last, self.lost = 0, 0.0, 0
        self.ready = threading.Event()
        threading.Thread(target=self.read, daemon=True).start()
        if not self.ready.wait(60):
            raise RuntimeError("vfswatch not ready")

    def read(self):
        fd, tail = self.p.stdout.fileno(), b""
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return
            now = time.perf_counter()
            data = tail + chunk
            cut = data.rfind(b"\n") + 1
            whole, tail = data[:cut], data[cut:]
            if not self.ready.is_set() and b'"event":"ready"' in whole:
                self.ready.set()
                whole = whole[whole.index(b"\n", whole.index(b'"event":"ready"')) + 1:]
            for m in re.finditer(rb'"event":"overflow".*?"lost":(\d+)', whole):
                self.lost += int(m.group(1))
            self.lines += whole.count(b"\n")
            self.last = now

    def quiet(self, idle):
        n, t = self.lines, time.time()
        while time.time() - t < idle:
            time.sleep(0.05)
            if self.lines != n:
                n, t = self.lines, time.time()

    def stop(self):
        self.p.send_signal(2)
        self.p.wait(timeout=60)


def throughput(root, backends):
    """End to end: lines per second out of the daemon, and its CPU per event."""
    say("throughput (vfswatch, stdout to a pipe read in bulk): raw, 1 000 000 writes by dd "
        "to one file; settled, 100 000 new files on a tmpfs by xargs touch")
    def run(b, raw, load, binary=None):
        """(lines, seconds from the load's start to the last line, daemon CPU s, lost, load s)"""
        w = Counted(b, raw, root, binary)
        c0, n0 = cpu_s(w.p.pid), w.lines
        t0 = time.perf_counter()
        load()
        gen = time.perf_counter() - t0
        w.quiet(1.0)
        cpu, n = cpu_s(w.p.pid) - c0, w.lines - n0
        w.stop()
        label = "vw-%s-%s%s" % (b, "raw" if raw else "settled", "-base" if binary else "")
        record("throughput", "events/s", label, round(n / (w.last - t0)), "/s")
        record("throughput", "CPU per event", label, round(cpu / max(n, 1) * 1e6, 2), "us")
        record("throughput", "events per CPU second", label, round(n / max(cpu, 1e-9)), "/s")
        return label, n, w.last - t0, cpu, w.lost, gen

    for b, binary in [(b, x) for b in backends for x in [None] + ([BASELINE] if BASELINE else [])]:
        label, n, span, cpu, lost, _ = run(b, True,
                                           lambda: dd(os.path.join(root, "tput"), 1000000),
                                           binary)
        record("throughput", "lost", label, lost, "")
        say("  %-22s %8d of 1000001 lines (%d reported lost) in %.2f s: %7.0f events/s, "
            "%.2f us CPU per event" % (label, n, lost, span, n / span, cpu / max(n, 1) * 1e6))
        sub = os.path.join(root, "tput-%s" % b)
        os.makedirs(sub)
        # tmpfs: on a long-used ext4 its inode allocator, not the watcher, would set the pace
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1g", "vw-bench", sub], check=True)
        label, n, span, cpu, _, gen = run(b, False, lambda: subprocess.run(
            "cd %s && seq -f 'f%%g' 100000 | xargs touch" % sub, shell=True, check=True), binary)
        say("  %-22s %8d of 100000 lines in %.2f s (making the files took %.2f s): %7.0f "
            "events/s, %.2f us CPU per event (%.0f events per CPU second)" % (
                label, n, span, gen, n / span, cpu / max(n, 1) * 1e6, n / max(cpu, 1e-9)))
        subprocess.run(["umount", sub], check=True)
        shutil.rmtree(sub)


# --- clients: 100 subscribers on one project -----------------------------------------------

SUBSCRIBERS = int(os.environ.get("VW_BENCH_SUBSCRIBERS", "100"))


def subscribers(root, backend="tracepoint", files=20000):
    """The stdout stream's latency (write -> line, p50/p99) and the daemon's CPU per event,
    with no subscriber and with SUBSCRIBERS `vfswatch subscribe` clients on the same project
    (each reading everything; output to /dev/null), in one run."""
    say("clients: %d subscribers of one project (vfswatch %s settled): stdout latency p50/p99 "
        "over %d spaced writes, and daemon CPU per event for %d new files" % (
            SUBSCRIBERS, backend, LAT_N, files))
    res = {}
    for n in (0, SUBSCRIBERS):
        w, _ = running(lambda: Vfswatch(backend, False, RUN_DIR), [root])
        subs = [subprocess.Popen([VFSWATCH, "subscribe", os.path.basename(root), "--run-dir",
                                  RUN_DIR], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL) for _ in range(n)]
        time.sleep(1.0)
        lat = []
        for i in range(LAT_N):
            name = os.path.join(root, "sublat%03d" % i)
            since = w.count()
            t0 = time.perf_counter()
            with open(name, "wb") as f:
                f.write(b"%d" % i)
            seen = w.wait_path(name, 8.0, since=since)
            if seen is not None:
                lat.append((seen - t0) * 1000)
            time.sleep(max(0.0, 0.1 - (time.perf_counter() - t0)))
        sub = os.path.join(root, "subload%d" % n)
        os.makedirs(sub)
        c0, since = cpu_s(w.p.pid), w.count()
        subprocess.run("cd %s && seq -f 'f%%g' %d | xargs touch" % (sub, files), shell=True,
                       check=True)
        w.wait_path(os.path.join(sub, "f%d" % files), 30.0, since=since)
        time.sleep(1.0)
        cpu = cpu_s(w.p.pid) - c0
        alive = sum(p.poll() is None for p in subs)
        for p in subs:
            p.kill()
            p.wait()
        w.stop()
        shutil.rmtree(sub, ignore_errors=True)
        label = "%d subscribers" % n
        res[n] = (pct(lat, 50), pct(lat, 99), cpu / files * 1e6, alive)
        record("clients", "stdout p50", label, round(res[n][0], 2), "ms")
        record("clients", "stdout p99", label, round(res[n][1], 2), "ms")
        record("clients", "daemon CPU per event", label, round(res[n][2], 2), "us")
        say("  %-16s stdout p50 %6.1f ms p99 %6.1f ms | daemon CPU %6.2f us per event%s" % (
            label, res[n][0], res[n][1], res[n][2],
            "" if n == 0 else " | %d of %d subscribers still connected" % (alive, n)))
    a, b = res[0], res[SUBSCRIBERS]
    record("clients", "CPU per event ratio", "%d subscribers" % SUBSCRIBERS,
           round(b[2] / max(a[2], 1e-9), 2), "x")
    say("  with %d subscribers: stdout p50 %+.1f ms, p99 %+.1f ms; daemon CPU per event %.2fx" % (
        SUBSCRIBERS, b[0] - a[0], b[1] - a[1], b[2] / max(a[2], 1e-9)))


# --- vfswatch only: kernel coalescing and catch-up rescan -----------------------------------

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
    args = [VFSWATCH, "run", "--backend", "tracepoint", "--run-dir", RUN_DIR, "--no-state",
            "--pin-dir", pin, "--watch", inside] + ([] if coalesce else ["--no-kernel-coalesce"])
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    for line in p.stdout:
        if json.loads(line).get("event") == "ready":
            break
    threading.Thread(target=lambda: p.stdout.read(), daemon=True).start()
    e0 = stat_slot(pin, EMITTED)
    t = dd(os.path.join(inside, "hot"), 100000)
    time.sleep(0.5)
    rec, folded = stat_slot(pin, EMITTED) - e0, stat_slot(pin, COALESCED)
    p.send_signal(2)
    p.wait(timeout=30)
    return rec, folded, t / 100000 * 1e9


def rescan(top, ndirs=BIG_DIRS, per_dir=BIG_PER_DIR, changed=1000):
    """Catch-up rescan at start: `changed` files rewritten while the daemon was down. Returns
    (ms to "done", ms to the last changed line, lines, peak RSS KiB)."""
    root, state = os.path.join(top, "rescan"), os.path.join(top, "rescan-state")
    make_tree(root, ndirs, per_dir)
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


def vfswatch_only(top, inside, base_ns):
    if "tracepoint" in usable_backends():
        with_c, folded, t_with = hot_file(inside, True)
        without_c, _, t_without = hot_file(inside, False)
        say("kernel coalescing (settled mode): 100000 writes to one file -> %d ring-buffer "
            "records with (%d writes folded), %d without; %.0f vs %.0f ns/write (%.2fx vs "
            "%.2fx no watcher)" % (with_c, folded, without_c, t_with, t_without,
                                   t_with / base_ns, t_without / base_ns))
        record("vfswatch", "hot file records, coalesced", "vw-tracepoint-settled", with_c, "")
        record("vfswatch", "hot file records, not coalesced", "vw-tracepoint-settled",
               without_c, "")
    done_ms, last_ms, n, hwm = rescan(top)
    say("catch-up rescan at start, %d files, 1000 rewritten while down: done in %.0f ms, all "
        "%d rewrites told after %.0f ms, peak RSS %d KiB" % (BIG_DIRS * BIG_PER_DIR,
                                                            done_ms or -1, n, last_ms or -1, hwm))
    record("vfswatch", "rescan done", "vw-auto-settled", round(done_ms or -1), "ms")
    record("vfswatch", "rescan peak RSS", "vw-auto-settled", hwm, "KiB")


def vm_overhead():
    """The fentry backend cannot load on this host: its write overhead measured inside the VM
    scripts/vmtest.sh boots (Debian's 6.1 under qemu, emulated: indicative only)."""
    if not shutil.which("qemu-system-x86_64"):
        say("vm: qemu not installed: no fentry figure")
        return []
    env = dict(os.environ, VMTEST_BENCH="1", VMTEST_CMD="true", VMTEST_SEEDS="0",
               VMTEST_TIMEOUT="900")
    r = subprocess.run(["sh", os.path.join(HERE, "..", "..", "scripts", "vmtest.sh")],
                       capture_output=True, text=True, env=env)
    labels = []
    for line in r.stdout.splitlines():
        m = re.match(r"\s*\| vmbench: (.*) outside ([\d.]+) inside ([\d.]+)$", line)
        if m:
            labels.append(m.group(1))
            record("overhead", "write outside", m.group(1), float(m.group(2)), "x")
            record("overhead", "write inside", m.group(1), float(m.group(3)), "x")
        elif "vmbench: done" in line:
            say("vm: " + line.split("vmbench: ", 1)[1])
    if not labels:
        say("vm: no figures (%s)" % (r.stdout + r.stderr).strip().splitlines()[-1:])
    for l in labels:
        vals = {m: v for _, m, w, v, _ in rows if w == l}
        say("  %-26s outside %5.2fx  inside %5.2fx (emulated VM: indicative only)" % (
            l, vals["write outside"], vals["write inside"]))
    return labels


# --- report --------------------------------------------------------------------------------

def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return "%s, kernel %s, %d CPUs (%s)" % (datetime.date.today().isoformat(), platform.release(),
                                            os.cpu_count(), cpu)


def write_csv(path):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["section", "metric", "watcher", "value", "unit"])
        w.writerows(rows)


def table(labels):
    say("\n== summary (%s)" % machine())
    metrics = []
    for s, m, _, _, u in rows:
        if (s, m, u) not in metrics:
            metrics.append((s, m, u))
    short = {l: l.replace("vw-", "").replace("tracepoint", "tp").replace("fanotify", "fan")
             .replace("-settled", "-set").replace(" (VM)", "@vm") for l in labels}
    say("%-34s" % "metric" + "".join("%14s" % short[l] for l in labels))
    for s, m, u in metrics:
        vals = {w: v for s2, m2, w, v, u2 in rows if (s2, m2, u2) == (s, m, u)}
        if not any(l in vals for l in labels):
            continue
        say("%-34s" % ("%s %s" % (m, "(%s)" % u if u else ""))[:34] +
            "".join("%14s" % (vals[l] if l in vals else "-") for l in labels))


def write_md(path, labels):
    """The summary as a Markdown table (what the README shows)."""
    metrics = []
    for sec, m, _, _, u in rows:
        if (sec, m, u) not in metrics:
            metrics.append((sec, m, u))
    with open(path, "w") as f:
        f.write("Measured %s.\n\n" % machine())
        f.write("| metric | " + " | ".join(l.replace("vw-", "vfswatch ") for l in labels) + " |\n")
        f.write("|---|" + "---|" * len(labels) + "\n")
        for sec, m, u in metrics:
            vals = {w: v for s2, m2, w, v, u2 in rows if (s2, m2, u2) == (sec, m, u)}
            if not any(l in vals for l in labels):
                continue
            f.write("| %s%s | " % (m, " (%s)" % u if u else "") +
                    " | ".join(str(vals[l]) if l in vals else "" for l in labels) + " |\n")


def chart(path, labels):
    """Four panels: write overhead, latency p99, ready time, idle wake-ups."""
    if not shutil.which("gnuplot"):
        say("bench: gnuplot not installed: no chart")
        return
    d = tempfile.mkdtemp(prefix="vw-bench-plot-")

    def dat(name, metrics):
        with open(os.path.join(d, name), "w") as f:
            for l in labels:
                vals = [next((v for s, m, w, v, u in rows if m == mm and w == l), 0)
                        for mm in metrics]
                f.write('"%s" %s\n' % (l.replace("vw-", "vfswatch\\n"),
                                       " ".join(str(v) for v in vals)))
    dat("ovh", ["write outside", "write inside", "write pipe"])
    dat("lat", ["p99 spaced", "p99 trickle"])
    dat("ready", ["ready big tree", "ready 50 projects"])
    dat("idle", ["wake-ups per s"])
    script = """
set terminal pngcairo size 1400,1000 font ",9"
set output '%(out)s'
set multiplot layout 2,2 title "vfswatch and peers, measured side by side in one run\\n%(mach)s"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set xtics rotate by -30 nomirror
set grid ytics
set key top left
set offsets graph 0, graph 0, graph 0.25, graph 0
set title "write overhead (dd, 64-byte writes), ratio to no watcher"
set yrange [0:*]
plot '%(d)s/ovh' using 2:xtic(1) title "outside the root", '' using 3 title "inside", '' using 4 title "to a pipe"
set title "latency write -> line, p99 (ms, log scale)"
set offsets graph 0, graph 0, graph 0, graph 0
set logscale y
set yrange [0.05:*]
plot '%(d)s/lat' using 2:xtic(1) title "one write every 200 ms", '' using 3 title "same, another file appended every 20 ms"
set title "ready (ms, log scale)"
plot '%(d)s/ready' using 2:xtic(1) title "100 000 files, 10 000 dirs", '' using 3 title "50 projects"
unset logscale y
set yrange [0:*]
set offsets graph 0, graph 0, graph 0.25, graph 0
set title "idle: wake-ups per second"
plot '%(d)s/idle' using 2:xtic(1) title "nothing changing"
unset multiplot
""" % {"out": path, "mach": machine(), "d": d}
    r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    if r.returncode:
        say("bench: gnuplot failed: %s" % r.stderr.strip())
    shutil.rmtree(d, ignore_errors=True)


def main():
    if os.geteuid() != 0:
        print("bench: needs root")
        return 1
    os.makedirs(OUT, exist_ok=True)
    top = tempfile.mkdtemp(prefix="vw-bench-")
    inside, outside = os.path.join(top, "proj"), os.path.join(top, "other")
    big, many = os.path.join(top, "big"), [os.path.join(top, "many", "p%02d" % i)
                                          for i in range(50)]
    os.makedirs(inside)
    os.makedirs(outside)
    t_start = time.time()
    subs = subjects()
    labels = [l for l, _ in subs]
    say("bench: %s\nbench: watchers: %s" % (machine(), ", ".join(labels)))
    missing = [n for n in ("inotifywait", "fswatch", "fatrace", "watchman")
               if n not in labels]
    if missing:
        say("bench: peers not installed (scripts/deps.sh bench installs them): %s"
            % " ".join(missing))
    compare = bool(BASELINE)
    if compare:     # make bench-compare: vfswatch against a baseline binary, peers left out
        subs = [(l, f) for l, f in subs if l.startswith("vw-")]
        labels = [l for l, _ in subs]
    try:
        overhead(subs, inside, outside)
        latency(subs, inside)
        if compare:
            idle(subs, inside)
            throughput(inside, [b for b in usable_backends()])
            return finish(labels, [], t_start)
        make_tree(big, BIG_DIRS, BIG_PER_DIR)
        for m in many:
            make_tree(m, BIG_DIRS // 50, BIG_PER_DIR)
        os.sync()           # no writeback of the new trees competes with the start-ups
        time.sleep(1)
        ready_and_memory(subs, big, many)
        idle(subs, inside)
        storm(subs, os.path.join(top, "storm"))
        throughput(inside, [b for b in usable_backends()])
        subscribers(inside)
        if os.environ.get("VW_BENCH_GIT", "1") != "0":
            git_status(record, say, run_dir=RUN_DIR)
        if os.environ.get("VW_BENCH_WATCHMAN", "1") != "0":
            watchman_clients(record, say, run_dir=RUN_DIR)
        base_ns = dd(os.path.join(outside, "f")) / WRITES * 1e9
        vfswatch_only(top, inside, base_ns)
    finally:
        shutil.rmtree(top, ignore_errors=True)
        shutil.rmtree(RUN_DIR, ignore_errors=True)
    vm = vm_overhead() if os.environ.get("VW_BENCH_VM", "1") != "0" else []
    return finish(labels, vm, t_start)


def finish(labels, vm, t_start):
    table(labels + vm)
    write_csv(os.path.join(OUT, "bench.csv"))
    write_md(os.path.join(OUT, "bench.md"), labels + vm)
    if not BASELINE:    # the chart's panels need the sections a comparison leaves out
        chart(os.path.join(OUT, "bench.png"), labels)
    say("bench: %s, %s (%.0f s)" % (os.path.join(OUT, "bench.csv"),
                                     os.path.join(OUT, "bench.png"), time.time() - t_start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
