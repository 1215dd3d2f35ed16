#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""vmguest.py: what scripts/vmtest.sh runs inside the VM, once per kernel.

Asks `vfswatch probe` which backends this kernel can run, then for each backend asked for
(VMTEST_BACKENDS; "all": every usable one) runs that backend's end-to-end classes (E2E,
Settled, Exactness; with VMTEST_SHORT=1 the E2E scenarios only) and VMTEST_SEEDS model seeds,
and prints one line per backend (after a line naming the build of its programs the kernel gets,
    vmtest-build: <name> full|compat: <the feature that decided>):
    vmtest-backend: <name> <N> passed, <N> failed, <N> skipped
    vmtest-backend: <name> unusable: <the probe's reason>
"""
import json
import os
import re
import subprocess
import sys

TESTS = os.path.dirname(os.path.abspath(__file__))
CLASSES = {
    "fentry": ["test_e2e.FentryE2E.", "test_settled.FentrySettled.",
               "test_exactness.FentryExactness.", "test_e2e.FentryCompatE2E."],
    "tracepoint": ["test_e2e.TracepointE2E.", "test_settled.Settled.",
                   "test_exactness.Exactness.", "test_e2e.TracepointCompatE2E."],
    "fanotify": ["test_e2e.FanotifyE2E.", "test_settled.FanotifySettled.",
                 "test_exactness.FanotifyExactness."],
}


def counts(text, prefix):
    m = None
    for m in re.finditer(r"^%s: (\d+) passed, (\d+) failed, (\d+) skipped" % prefix, text, re.M):
        pass
    return tuple(int(x) for x in m.groups()) if m else (0, 1, 0)


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sys.stdout.write(p.stdout)
    sys.stdout.flush()
    return p.stdout


def main():
    probe = json.loads(subprocess.run(["vfswatch", "probe", "/tmp"], stdout=subprocess.PIPE,
                                      text=True).stdout)
    usable = {b["name"]: b.get("reason") for b in probe["backends"]}
    for b in probe["backends"]:
        if "build" in b:
            print("vmtest-build: %s %s: %s" % (b["name"], b["build"], b["decided_by"]),
                  flush=True)
    want = os.environ.get("VMTEST_BACKENDS", "fentry").split()
    if want == ["all"]:
        want = list(CLASSES)
    seeds = int(os.environ.get("VMTEST_SEEDS", "0"))
    for b in want:
        reason = usable.get(b, "not probed")
        if reason is not None:
            print("vmtest-backend: %s unusable: %s" % (b, reason.replace("\n", " | ")),
                  flush=True)
            continue
        classes = CLASSES[b][:1] if os.environ.get("VMTEST_SHORT") == "1" else CLASSES[b]
        out = run([sys.executable, os.path.join(TESTS, "run.py"), "test_*.py"] + classes)
        p, f, s = counts(out, "integration")
        if seeds:
            out = run([sys.executable, os.path.join(TESTS, "model", "model.py"), "--backend", b,
                       "--seeds", str(seeds)])
            mp, mf, ms = counts(out, "model")
            p, f, s = p + mp, f + mf, s + ms
        print("vmtest-backend: %s %d passed, %d failed, %d skipped" % (b, p, f, s), flush=True)


if __name__ == "__main__":
    main()
