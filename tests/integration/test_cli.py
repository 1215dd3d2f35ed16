# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# test_cli.py: usage errors, probe output, pinning and bpftool inspection, exit codes.
import json
import os
import subprocess
import unittest

from harness import (PLAIN_VFSWATCH, VFSWATCH, Daemon, DaemonCase, Tree, backend_reason,
                     need_root_btf, write)


def run(*args, **kw):
    return subprocess.run([VFSWATCH] + list(args), capture_output=True, text=True, timeout=60, **kw)


class Usage(unittest.TestCase):
    def setUp(self):
        self.t = Tree()

    def tearDown(self):
        self.t.cleanup()

    def test_missing_directory_is_a_usage_error(self):
        p = run("run", "--watch", self.t.sub("nope"))
        self.assertEqual(p.returncode, 2)
        self.assertIn("nope: No such file or directory", p.stderr)
        self.assertEqual(p.stdout, "")

    def test_file_instead_of_directory(self):
        f = self.t.sub("file")
        write(f)
        p = run("run", "--watch", f)
        self.assertEqual(p.returncode, 2)
        self.assertIn("not a directory", p.stderr)

    def test_same_root_twice(self):
        p = run("run", "--watch", self.t.path, "--watch", self.t.path + "/.")
        self.assertEqual(p.returncode, 2)
        self.assertIn("already watched", p.stderr)

    def test_unknown_backend_and_option(self):
        p = run("run", "--backend", "kprobe", "--watch", self.t.path)
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown backend 'kprobe'", p.stderr)
        p = run("run", "--frobnicate")
        self.assertEqual(p.returncode, 2)
        p = run("run", self.t.path)
        self.assertEqual(p.returncode, 2)
        self.assertIn("directories go after --watch", p.stderr)

    def test_bad_ringbuf_size(self):
        for bad in ("3", "0", "-1", "x", "4096"):
            p = run("run", "--ringbuf-mb", bad, "--watch", self.t.path)
            self.assertEqual(p.returncode, 2, bad)
            self.assertIn("--ringbuf-mb", p.stderr)

    def test_unknown_command_and_help(self):
        p = run("frob")
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown command 'frob'", p.stderr)
        p = run("help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("vfswatch run", p.stdout)
        p = run("version")
        self.assertEqual(p.returncode, 0)
        self.assertRegex(p.stdout, r"^vfswatch \d+\.\d+\.\d+")

    def test_not_root_is_refused_clearly(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to drop to another user")
        os.chmod(self.t.path, 0o755)
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            VFSWATCH, "run", "--watch", self.t.path],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertIn("must run as root", p.stderr)

    def test_kernel_without_btf_is_refused_clearly(self):
        if os.geteuid() != 0:
            self.skipTest("needs root")
        env = dict(os.environ, VFSWATCH_BTF_PATH=self.t.sub("no-btf-here"))
        p = run("run", "--backend", "tracepoint", "--watch", self.t.path, env=env)
        self.assertEqual(p.returncode, 1)
        self.assertIn("has no BTF", p.stderr)


class Probe(unittest.TestCase):
    def test_probe_reports_each_backend(self):
        r = need_root_btf()
        if r:
            self.skipTest(r)
        p = run("probe")
        j = json.loads(p.stdout)
        names = [b["name"] for b in j["backends"]]
        self.assertEqual(names, ["fentry", "tracepoint", "fanotify"])
        for b in j["backends"]:
            self.assertIsInstance(b["usable"], bool)
            if not b["usable"]:
                self.assertTrue(b["reason"])
        usable = [b["name"] for b in j["backends"] if b["usable"]]
        self.assertEqual(j["auto"], usable[0] if usable else None)
        self.assertEqual(p.returncode, 0 if usable else 1)
        self.assertEqual(j["dir"], "/")

    def test_probe_names_the_build_and_the_feature_that_decided(self):
        r = need_root_btf()
        if r:
            self.skipTest(r)
        for env, build in ((None, None), ({"VFSWATCH_BPF_COMPAT": "1"}, "compat")):
            j = json.loads(run("probe", env=dict(os.environ, **(env or {}))).stdout)
            for b in j["backends"][:2]:     # the BPF sets
                self.assertIn(b["build"], ("full", "compat"))
                self.assertTrue(b["decided_by"])
                if build:
                    self.assertEqual(b["build"], build)
                    self.assertIn("VFSWATCH_BPF_COMPAT=1", b["decided_by"])
                elif b["build"] == "full":
                    self.assertIn("bpf_loop() ", b["decided_by"])
                else:   # an older kernel: the helper it lacks is named
                    self.assertRegex(b["decided_by"], r"^no bpf_\w+\(\) helper")
            self.assertNotIn("build", j["backends"][2])     # fanotify has no build

    def test_fentry_is_refused_where_a_target_is_called_through_a_split_copy(self):
        r = need_root_btf()
        if r:
            self.skipTest(r)
        t = Tree()
        self.addCleanup(t.cleanup)
        ks = t.sub("kallsyms")
        with open(ks, "w") as f:    # Debian's 5.10: do_rmdir calls vfs_rmdir.part.0
            f.write("ffffffffadcea7b0 t vfs_unlink.part.0\nffffffffadcec410 T vfs_unlink\n"
                    "ffffffffadcec510 T vfs_unlinkat_other\n")
        j = json.loads(run("probe", env=dict(os.environ, VFSWATCH_KALLSYMS=ks)).stdout)
        fentry = j["backends"][0]
        self.assertFalse(fentry["usable"])
        self.assertIn("kernel function vfs_unlink is partly called through a compiler-made copy "
                      "(vfs_unlink.part.0) that fx_vfs_unlink would not see", fentry["reason"])
        with open(ks, "w") as f:    # a copy of a function no program uses changes nothing
            f.write("ffffffffadcea7b0 t vfs_unlinkat_other.part.0\n")
        j = json.loads(run("probe", env=dict(os.environ, VFSWATCH_KALLSYMS=ks)).stdout)
        self.assertNotIn("compiler-made copy", j["backends"][0].get("reason", ""))

    def test_probe_tries_fanotify_where_told(self):
        r = need_root_btf()
        if r:
            self.skipTest(r)
        t = Tree()
        self.addCleanup(t.cleanup)
        j = json.loads(run("probe", t.path).stdout)
        self.assertEqual(j["dir"], t.path)
        for bad, why in (("relative/dir", "not an absolute path"),
                         (t.sub("missing"), "not an absolute path to a directory"),
                         ("/etc/hostname", "not an absolute path to a directory")):
            p = run("probe", bad)
            self.assertEqual(p.returncode, 2, bad)
            self.assertIn(why, p.stderr)
            self.assertEqual(p.stdout, "")
        p = run("probe", "/", "/tmp")
        self.assertEqual((p.returncode, p.stdout), (2, ""))
        self.assertIn("unexpected argument '/tmp'", p.stderr)


class AutoBackend(DaemonCase):
    backend = "auto"

    def setUp(self):
        r = need_root_btf()
        if r:
            self.skipTest(r)
        self.trees = [Tree()]
        self.root = self.trees[0].path
        self.d = None

    def test_auto_picks_what_probe_says(self):
        want = json.loads(run("probe").stdout)["auto"]
        self.start()
        self.assertEqual(self.d.ready["backend"], want)
        write(os.path.join(self.root, "auto"))
        self.expect("create", "auto")

    def test_auto_without_btf_falls_back_to_fanotify(self):
        os.environ["VFSWATCH_BTF_PATH"] = "/nonexistent/btf"
        try:
            self.start()
        finally:
            del os.environ["VFSWATCH_BTF_PATH"]
        self.assertEqual(self.d.ready["backend"], "fanotify")
        self.assertTrue(self.d.wait_err("has no BTF"), "".join(self.d.err)[-500:])
        write(os.path.join(self.root, "nobtf"))
        self.expect("create", "nobtf")


class Pins(DaemonCase):
    backend = "tracepoint"

    def test_pinned_and_inspectable_then_removed(self):
        if subprocess.run(["which", "bpftool"], capture_output=True).returncode:
            self.skipTest("bpftool not installed")
        pin = "/sys/fs/bpf/vfswatch-test-%d" % os.getpid()
        self.start(pin_dir=pin)
        names = sorted(os.listdir(pin))
        for want in ("roots", "watched_devs", "stats", "events", "chains", "tp_sys_exit"):
            self.assertIn(want, names)
        p = subprocess.run(["bpftool", "-j", "map", "dump", "pinned", pin + "/roots"],
                           capture_output=True, text=True, check=True)
        entries = json.loads(p.stdout)
        st = os.stat(self.root)
        keys = [e["formatted"]["key"] for e in entries]
        self.assertIn(st.st_ino, [k["ino"] for k in keys])
        self.assertEqual([e["formatted"]["value"]["project"] for e in entries], [1])
        p = subprocess.run(["bpftool", "-j", "prog", "show", "pinned", pin + "/tp_sys_exit"],
                           capture_output=True, text=True, check=True)
        self.assertEqual(json.loads(p.stdout)["name"], "tp_sys_exit")
        rc = self.d.stop()
        self.d = None
        self.assertEqual(rc, 0)
        self.assertFalse(os.path.exists(pin), "pins left behind")

    def test_stale_pins_do_not_block_a_start(self):
        pin = "/sys/fs/bpf/vfswatch-stale-%d" % os.getpid()
        d = Daemon([self.root], self.backend, pin_dir=pin)
        d.proc.kill()  # no cleanup: pins stay
        d.proc.wait()
        self.assertTrue(os.path.exists(pin))
        self.start(pin_dir=pin)
        write(os.path.join(self.root, "after-restart"))
        self.expect("create", "after-restart")
        self.d.stop()
        self.d = None
        self.assertFalse(os.path.exists(pin))


class Valgrind(DaemonCase):
    backend = "tracepoint"

    def test_daemon_runs_clean_under_valgrind(self):
        if subprocess.run(["which", "valgrind"], capture_output=True).returncode:
            self.skipTest("valgrind not installed")
        supp = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "valgrind.supp")
        self.start(binary=PLAIN_VFSWATCH, wrapper=["valgrind", "--suppressions=" + supp, "--leak-check=full",
                            "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=9"])
        write(os.path.join(self.root, "x"))
        os.mkdir(os.path.join(self.root, "d"))
        os.rename(os.path.join(self.root, "x"), os.path.join(self.root, "d", b"\xff".decode(
            "utf-8", "surrogateescape")))
        subprocess.run(["rm", "-r", os.path.join(self.root, "d")], check=True)
        self.expect("delete", "d", type="dir")
        d, self.d = self.d, None
        rc = d.stop()
        err = "".join(d.err)
        self.assertEqual(rc, 0, "valgrind reported errors:\n" + err[-4000:])
        self.assertIn("ERROR SUMMARY: 0 errors", err)


if __name__ == "__main__":
    unittest.main()
