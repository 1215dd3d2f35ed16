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


def dd_time(path, count):
    """Seconds for `count` 64-byte writes by dd (one write syscall each)."""
    t0 = time.perf_counter()
    subprocess.run(["dd", "if=/dev/zero", "of=" + path, "bs=64", "count=%d" % count,
                    "status=none"], check=True)
    return time.perf_counter() - t0


def best(path, count, n=3):
    return min(dd_time(path, count) for _ in range(n))


class Daemon:
    def __init__(self, roots, backend="tracepoint"):
        args = [VFSWATCH, "run", "--raw", "--no-pin", "--backend", backend, "--ringbuf-mb", "64"]
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

    def rss_kib(self):
        with open("/proc/%d/status" % self.p.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        self.p.send_signal(2)
        self.p.wait(timeout=30)


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
        d = Daemon([inside])
        rss0 = d.rss_kib()
        out = best(os.path.join(outside, "f"), WRITES)
        before = d.count
        t0 = time.perf_counter()
        ins = dd_time(os.path.join(inside, "f"), WRITES)
        # wait for the stream to settle
        while time.perf_counter() - d.last < 1.0:
            time.sleep(0.1)
        got = d.count - before
        span = d.last - t0
        rss1 = d.rss_kib()
        d.stop()
        ns = lambda t: t / WRITES * 1e9
        print("bench: %d x 64-byte writes by dd, tracepoint backend, raw mode" % WRITES)
        print("  no daemon                 %7.0f ns/write  1.00x" % ns(base))
        print("  daemon, outside the root  %7.0f ns/write  %.2fx" % (ns(out), out / base))
        print("  daemon, inside the root   %7.0f ns/write  %.2fx" % (ns(ins), ins / base))
        print("  events delivered %d of %d (+%d reported lost), %.0f events/s end to end"
              % (got, WRITES + 1, d.lost, got / span if span > 0 else 0))
        print("  daemon RSS %d KiB at ready, %d KiB after the burst" % (rss0, rss1))
    finally:
        shutil.rmtree(top, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
