#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""vmguest.py: what scripts/vmtest.sh runs inside the VM, once per kernel.

Asks `vfswatch probe` which backends this kernel can run, then for each backend asked for
(VMTEST_BACKENDS; "all": every usable one) runs that backend's end-to-end classes (E2E,
Settled, Exactness; with VMTEST_SHORT=1 the E2E scenarios only) and VMTEST_SEEDS model seeds,
and prints one line per backend (after a line naming the build of its programs the kernel gets,
    vmtest-build: <name> full|compat: <the feature that decided>; and where fanotify cannot
    mark this kernel's tmpfs but can the ext2 disk the VM's init mounted, which it runs on,
    vmtest-where: fanotify ext2 (<why not /tmp>)); a BPF set whose suite is not asked for, and
    outside make vmtest-all (VMTEST_ALL=1) the compat build, are still loaded and attached by
    the probe:
    vmtest-loads: <name>[-compat] yes | no: <the probe's reason>
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
               "test_exactness.FentryExactness.", "test_liveness.FentryLiveness.",
               "test_e2e.FentryCompatE2E.", "test_query.FentryReadYourWrites."],
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


def run(cmd, env=None):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    sys.stdout.write(p.stdout)
    sys.stdout.flush()
    return p.stdout


def probe(where):
    return json.loads(subprocess.run(["vfswatch", "probe", where], stdout=subprocess.PIPE,
                                     text=True).stdout)


DISK = "/mnt/disk"  # ext2 on a loop device, made where fanotify cannot mark tmpfs


def make_disk():
    """An ext2 file system on a loop device at DISK, with the modules scripts/vmtest.sh put in
    /lib/modules/<release>/ (in load order). True when mounted."""
    mods = "/lib/modules/%s" % os.uname().release
    if not os.path.exists(os.path.join(mods, "order")):
        return False
    with open(os.path.join(mods, "order")) as f:
        for m in f.read().split():
            subprocess.run(["insmod", os.path.join(mods, m)])
    os.makedirs(DISK, exist_ok=True)
    with open("/tmp/disk.img", "wb") as f:
        f.truncate(384 << 20)
    for cmd in (["losetup", "/dev/loop0", "/tmp/disk.img"],
                ["mke2fs", "-q", "-N", "131072", "/dev/loop0"],
                ["mount", "-t", "ext4", "/dev/loop0", DISK]):
        if subprocess.run(cmd, stdout=subprocess.DEVNULL).returncode:
            return False
    return True


def main():
    j = probe("/tmp")
    print(json.dumps(j, indent=1), flush=True)
    usable = {b["name"]: b.get("reason") for b in j["backends"]}
    builds = {b["name"]: b["build"] for b in j["backends"] if "build" in b}
    for b in j["backends"]:
        if "build" in b:
            print("vmtest-build: %s %s: %s" % (b["name"], b["build"], b["decided_by"]),
                  flush=True)
    where = {}
    if usable.get("fanotify") and make_disk():
        # this kernel's tmpfs reports no file handles fanotify can use: test on a disk
        fan = [b for b in probe(DISK)["backends"] if b["name"] == "fanotify"][0]
        if fan["usable"]:
            print("vmtest-where: fanotify ext2 (%s: %s)" % ("/tmp", usable["fanotify"]),
                  flush=True)
            usable["fanotify"] = None
            where["fanotify"] = DISK
    want = os.environ.get("VMTEST_BACKENDS", "fentry").split()
    if want == ["all"]:
        want = list(CLASSES)
    seeds = int(os.environ.get("VMTEST_SEEDS", "0"))
    for b in builds:    # a BPF set whose suite is not run here must still load and attach
        if b not in want:
            print("vmtest-loads: %s %s" % (b, "yes" if usable[b] is None else
                                            "no: " + usable[b].replace("\n", " | ")), flush=True)
    all_classes = os.environ.get("VMTEST_ALL") == "1"
    if not all_classes and "full" in builds.values():
        # make check runs no compat class here: its build must load and attach all the same
        c = subprocess.run(["vfswatch", "probe", "/tmp"], stdout=subprocess.PIPE, text=True,
                           env=dict(os.environ, VFSWATCH_BPF_COMPAT="1")).stdout
        for b in json.loads(c)["backends"]:
            if "build" in b:
                print("vmtest-loads: %s-compat %s" % (
                    b["name"], "yes" if b["usable"] else
                    "no: " + b.get("reason", "").replace("\n", " | ")), flush=True)
    for b in want:
        reason = usable.get(b, "not probed")
        if reason is not None:
            print("vmtest-backend: %s unusable: %s" % (b, reason.replace("\n", " | ")),
                  flush=True)
            continue
        classes = CLASSES[b][:1] if os.environ.get("VMTEST_SHORT") == "1" else CLASSES[b]
        if os.environ.get("VMTEST_CLASSES"):   # make burst: these classes only
            classes = os.environ["VMTEST_CLASSES"].split()
        if builds.get(b) == "compat" or not all_classes:
            # the kernel's own build is the compat one already, or make check (not
            # vmtest-all), which loads the compat build above instead
            classes = [c for c in classes if "Compat" not in c]
        env = dict(os.environ, TMPDIR=where[b]) if b in where else None
        out = run([sys.executable, os.path.join(TESTS, "run.py"), "test_*.py"] + classes, env)
        p, f, s = counts(out, "integration")
        if seeds:
            out = run([sys.executable, os.path.join(TESTS, "model", "model.py"), "--backend", b,
                       "--seeds", str(seeds)], env)
            mp, mf, ms = counts(out, "model")
            p, f, s = p + mp, f + mf, s + ms
        print("vmtest-backend: %s %d passed, %d failed, %d skipped" % (b, p, f, s), flush=True)


if __name__ == "__main__":
    main()
