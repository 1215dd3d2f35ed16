#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# vm_overhead.py: run inside the VM by `VMTEST_BENCH=1 scripts/vmtest.sh` (make bench does): the
# write overhead of each BPF backend the guest kernel runs (fentry among them), as ratios to no
# watcher measured interleaved in the same run. The VM is emulated (TCG): indicative only.
import json
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from watchers import VFSWATCH, Vfswatch  # noqa: E402

WRITES = int(os.environ.get("VW_VM_WRITES", "20000"))
REPS = int(os.environ.get("VW_VM_REPS", "3"))


def dd(path):
    t = os.times().elapsed
    subprocess.run(["dd", "if=/dev/zero", "of=" + path, "bs=64", "count=%d" % WRITES],
                   check=True, stderr=subprocess.DEVNULL)
    return os.times().elapsed - t


def main():
    top = tempfile.mkdtemp(prefix="vw-vmbench-")
    inside, outside = os.path.join(top, "proj"), os.path.join(top, "other")
    os.makedirs(inside)
    os.makedirs(outside)
    probe = json.loads(subprocess.run([VFSWATCH, "probe"], capture_output=True,
                                      text=True).stdout)
    backends = [b["name"] for b in probe["backends"] if b["usable"] and b["name"] != "fanotify"]
    base = {"outside": [], "inside": []}
    got = {}
    for rep in range(REPS):
        for b in backends:
            for raw in (True, False):
                label = "vw-%s-%s (VM)" % (b, "raw" if raw else "settled")
                base["outside"].append(dd(os.path.join(outside, "f")))
                base["inside"].append(dd(os.path.join(inside, "f")))
                w = Vfswatch(b, raw, os.path.join(top, "run"), ring_mb=None)
                w.start([inside])
                g = got.setdefault(label, {"outside": [], "inside": []})
                g["outside"].append(dd(os.path.join(outside, "f")))
                g["inside"].append(dd(os.path.join(inside, "f")))
                w.stop()
    b = {k: statistics.median(v) for k, v in base.items()}
    for label, g in got.items():
        print("vmbench: %s outside %.3f inside %.3f" % (
            label, statistics.median(g["outside"]) / b["outside"],
            statistics.median(g["inside"]) / b["inside"]), flush=True)
    print("vmbench: done %d writes x %d runs, kernel %s" % (WRITES, REPS, os.uname().release))


if __name__ == "__main__":
    main()
