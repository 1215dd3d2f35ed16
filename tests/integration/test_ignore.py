# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# test_ignore.py: ignore rules in the output, and ignored directories kept inside the kernel.
import json
import os
import subprocess
import time

from harness import RUN_DIR, VFSWATCH, DaemonCase, write


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


class UserGitignore(DaemonCase):
    """A .gitignore is a user's file read by root: no fifo, device, symlink or huge file."""

    backend = "tracepoint"
    roots = 2

    def bad_files(self, where):
        """(what, make) for each .gitignore that must be refused at @where."""
        gi = os.path.join(where, ".gitignore")

        def fifo():
            os.mkfifo(gi)

        def zero():
            os.symlink("/dev/zero", gi)

        def secret():
            os.symlink("/etc/shadow", gi)

        def directory():
            os.mkdir(gi)

        def huge():
            with open(gi, "wb") as f:
                f.write(b"*.o\n" * 300000)
        return [("not a regular file", fifo), ("a symlink (not followed)", zero),
                ("a symlink (not followed)", secret), ("not a regular file", directory),
                ("larger than 1 MiB", huge)]

    def clear(self, where):
        gi = os.path.join(where, ".gitignore")
        if os.path.isdir(gi) and not os.path.islink(gi):
            os.rmdir(gi)
        elif os.path.lexists(gi):
            os.unlink(gi)

    def test_a_bad_gitignore_at_start_is_refused_with_a_reason(self):
        for why, make in self.bad_files(self.root):
            make()
            p = subprocess.run([VFSWATCH, "run", "--backend", self.backend, "--no-pin",
                                "--no-state", "--run-dir", RUN_DIR, "--gitignore", "--watch",
                                self.root], capture_output=True, text=True, timeout=20)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn(".gitignore: " + why, p.stderr)
            self.clear(self.root)

    def test_a_bad_gitignore_added_at_run_time_is_that_projects_error(self):
        self.start(roots=[self.root])
        other = self.trees[1].path
        for why, make in self.bad_files(other):
            make()
            t0 = time.time()
            r = subprocess.run([VFSWATCH, "ctl", "--run-dir", RUN_DIR, "add", other,
                                "--gitignore"], capture_output=True, text=True, timeout=20)
            self.assertNotEqual(r.returncode, 0, r.stdout)
            self.assertLess(time.time() - t0, 5)
            self.assertTrue(self.d.wait_err(".gitignore: " + why), "".join(self.d.err))
            self.clear(other)
        # the daemon still answers and still watches its own project
        s = subprocess.run([VFSWATCH, "status", "--run-dir", RUN_DIR], capture_output=True,
                           text=True, timeout=10)
        self.assertEqual(s.returncode, 0, s.stderr)
        self.marker()
        write(os.path.join(other, ".gitignore"), b"*.tmp\n")
        r = subprocess.run([VFSWATCH, "ctl", "--run-dir", RUN_DIR, "add", other, "--gitignore"],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
