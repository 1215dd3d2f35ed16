# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# test_ignore.py: ignore rules in the output, and ignored directories kept inside the kernel.
import json
import os
import subprocess

from harness import DaemonCase, write


def emitted(pin):
    """Sum of the per-CPU 'emitted' slot of the pinned stats map."""
    out = subprocess.run(["bpftool", "-j", "map", "dump", "pinned", pin + "/stats"],
                         capture_output=True, text=True, check=True).stdout
    for e in json.loads(out):
        if e["key"] == 3 or e.get("formatted", {}).get("key") == 3:
            vals = e.get("formatted", {}).get("values") or e["values"]
            return sum(v["value"] for v in vals)
    raise AssertionError("no emitted slot in " + out[:300])


class Ignore(DaemonCase):
    backend = "tracepoint"

    def test_default_and_given_patterns_are_left_out(self):
        write(os.path.join(self.root, ".gitignore"), b"*.tmp\n/out/\n")
        self.start(extra=["--ignore", "*.log", "--gitignore"])
        self.marker()
        for name in ("a.log", "b.tmp", "x.swp", "keep.txt"):
            write(os.path.join(self.root, name))
        os.makedirs(os.path.join(self.root, "out", "deep"))
        write(os.path.join(self.root, "out", "deep", "f"))
        os.makedirs(os.path.join(self.root, "src", "out"))   # not anchored here: kept
        write(os.path.join(self.root, "src", "out", "g"))
        self.expect("create", "src/out/g")
        paths = {e["path"] for e in self.d.changes(self.root)}
        self.assertIn("keep.txt", paths)
        for gone in ("a.log", "b.tmp", "x.swp", "out", "out/deep", "out/deep/f"):
            self.assertNotIn(gone, paths)

    def test_node_modules_writes_never_leave_the_kernel(self):
        if subprocess.run(["which", "bpftool"], capture_output=True).returncode:
            self.skipTest("bpftool not installed")
        nm = os.path.join(self.root, "node_modules")
        os.makedirs(os.path.join(nm, "dep"))
        pin = "/sys/fs/bpf/vfswatch-ignore-%d" % os.getpid()
        self.start(pin_dir=pin)
        self.marker()                       # the crawl has excluded node_modules by now
        before = emitted(pin)
        subprocess.run("cd %s && seq -f 'f%%g' 100000 | xargs touch && echo x > dep/y" % nm,
                       shell=True, check=True)
        # a node_modules made after start is excluded as it appears
        late = os.path.join(self.root, "web", "node_modules")
        os.makedirs(late)
        self.marker()
        subprocess.run("cd %s && seq -f 'g%%g' 1000 | xargs touch" % late, shell=True, check=True)
        self.marker()
        # two markers (a create and a write each) and the two mkdirs: not one record for
        # the 101 001 files under node_modules
        self.assertEqual(emitted(pin) - before, 6)
        self.assertFalse([e for e in self.d.changes(self.root) if "node_modules" in e["path"]])
