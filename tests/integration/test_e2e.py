# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# test_e2e.py: the change scenarios every BPF backend must report, asserted on the JSON lines.
import base64
import os
import shutil
import subprocess
import json
import time

from harness import RUN_DIR, VFSWATCH, DaemonCase, Tree, write


class Scenarios:
    """Mixed into a DaemonCase subclass that names the backend.

    The class attributes below are the differences between backends that the
    README's backend table lists; the scenarios assert them rather than skip.
    """

    truncate_event = "truncate"     # fanotify reports a truncate as FAN_MODIFY
    loses_gone_dirs = False         # fanotify cannot name a directory deleted before it reads
    has_tid_cgroup = True           # fanotify reports the process only

    def test_ready_line_names_backend_and_projects(self):
        d = self.start()
        self.assertEqual(d.ready["backend"], self.backend)
        self.assertEqual(d.ready["v"], 1)
        self.assertEqual([p["root"] for p in d.ready["projects"]], [self.root])

    def test_create_write_append(self):
        self.start()
        p = os.path.join(self.root, "a.txt")
        write(p, b"hello")
        self.expect("create", "a.txt", type="file")
        self.expect("modify", "a.txt", type="file")
        n = len(self.d.changes(self.root))
        write(p, b" more", "ab")
        e = self.d.wait(lambda e: e.get("path") == "a.txt" and e["event"] == "modify"
                        and self.d.seen.index(e) >= n)
        self.assertIsNotNone(e, "append not reported")

    def test_truncate_paths(self):
        p = os.path.join(self.root, "t.txt")
        write(p, b"0123456789")
        self.start()
        ev = self.truncate_event
        os.truncate(p, 3)                       # truncate(2)
        self.expect_count(ev, "t.txt", 1)
        with open(p, "r+b") as f:               # ftruncate(2)
            f.truncate(1)
        self.expect_count(ev, "t.txt", 2)
        fd = os.open(p, os.O_WRONLY | os.O_TRUNC)  # open(O_TRUNC) of an existing file
        os.close(fd)
        self.expect_count(ev, "t.txt", 3)
        self.expect(ev, "t.txt", pid=os.getpid(), type="file")

    def test_unlink(self):
        p = os.path.join(self.root, "gone.txt")
        write(p)
        self.start()
        os.unlink(p)
        self.expect("delete", "gone.txt")

    def test_failed_unlink_reports_nothing(self):
        self.start()
        try:
            os.unlink(os.path.join(self.root, "never-existed"))
        except FileNotFoundError:
            pass
        self.marker()
        self.assertFalse([e for e in self.d.changes(self.root) if e["path"] == "never-existed"])

    def test_mkdir_rmdir(self):
        self.start()
        d = os.path.join(self.root, "sub")
        os.mkdir(d)
        self.expect("create", "sub", type="dir")
        os.rmdir(d)
        self.expect("delete", "sub", type="dir")

    def test_rm_recursive_uses_dirfd(self):
        os.makedirs(os.path.join(self.root, "x", "y"))
        write(os.path.join(self.root, "x", "y", "f"))
        self.start()
        subprocess.run(["rm", "-r", os.path.join(self.root, "x")], check=True)
        self.expect("delete", "x", type="dir")
        if self.loses_gone_dirs:
            # each deletion is reported, or counted in an "unresolved" overflow line
            self.marker()
            named = len([e for e in self.d.changes(self.root) if e["event"] == "delete"])
            lost = sum(e["lost"] for e in self.d.seen
                       if e.get("event") == "overflow" and e["reason"] == "unresolved")
            self.assertEqual(named + lost, 3)
            return
        self.expect("delete", "x/y/f")
        self.expect("delete", "x/y", type="dir")

    def test_rename_inside(self):
        write(os.path.join(self.root, "old.txt"))
        os.mkdir(os.path.join(self.root, "dir"))
        self.start()
        os.rename(os.path.join(self.root, "old.txt"), os.path.join(self.root, "dir", "new.txt"))
        e = self.expect("rename", "dir/new.txt")
        self.assertEqual(e["old_path"], "old.txt")

    def test_rename_into_and_out_of_root(self):
        outside = Tree()
        try:
            src = os.path.join(outside.path, "in.txt")
            write(src)
            self.start()
            os.rename(src, os.path.join(self.root, "in.txt"))
            self.expect("create", "in.txt")
            os.rename(os.path.join(self.root, "in.txt"), os.path.join(outside.path, "out.txt"))
            self.expect("delete", "in.txt")
        finally:
            outside.cleanup()

    def test_nested_dirs_created_and_written_at_once(self):
        self.start()
        subprocess.run(["sh", "-c", "mkdir -p a/b/c/d && echo hi > a/b/c/d/deep.txt"],
                       cwd=self.root, check=True)
        for p in ("a", "a/b", "a/b/c", "a/b/c/d"):
            self.expect("create", p, type="dir")
        self.expect("create", "a/b/c/d/deep.txt")
        self.expect("modify", "a/b/c/d/deep.txt")

    def test_outside_writes_produce_nothing(self):
        outside = Tree()
        try:
            self.start()
            for i in range(50):
                write(os.path.join(outside.path, "f%d" % i), b"data")
            os.mkdir(os.path.join(outside.path, "dir"))
            self.marker()
            leaked = [e for e in self.d.seen if "path" in e and e.get("root") != self.root]
            self.assertEqual(leaked, [])
            self.assertFalse([e for e in self.d.changes(self.root)
                              if e["path"].startswith("f") or e["path"] == "dir"])
        finally:
            outside.cleanup()

    def test_open_file_moved_into_root_is_then_watched(self):
        # a write outside every root is remembered as "not watched" for that open file;
        # moving its directory into the root must make the next write through the same
        # descriptor visible (renames invalidate those verdicts)
        outside = Tree()
        try:
            sub = os.path.join(outside.path, "sub")
            os.mkdir(sub)
            self.start()
            with open(os.path.join(sub, "f"), "wb", buffering=0) as f:
                for _ in range(3):
                    f.write(b"outside")
                self.marker()
                self.assertFalse([e for e in self.d.changes(self.root) if "f" in e["path"]])
                os.rename(sub, os.path.join(self.root, "sub"))
                self.expect("create", "sub", type="dir")   # moved in from outside
                f.write(b"inside now")
                self.expect("modify", "sub/f")
        finally:
            outside.cleanup()

    def test_recycled_open_files_are_judged_afresh(self):
        # a file outside every root is written, closed and unlinked; the next file
        # opened often gets the same struct file and struct inode memory back: the
        # cached "not watched" verdict must not apply to it
        outside = Tree()
        try:
            self.start()
            for i in range(30):
                p = os.path.join(outside.path, "scratch")
                write(p, b"out")
                time.sleep(0.02)    # let the closed file be freed (RCU) before its inode
                os.unlink(p)
                time.sleep(0.02)
                write(os.path.join(self.root, "in%02d" % i), b"in")
            for i in range(30):
                self.expect("modify", "in%02d" % i)
        finally:
            outside.cleanup()

    def test_relative_and_dotdot_paths(self):
        os.mkdir(os.path.join(self.root, "sub"))
        self.start()
        # base (cwd) outside the root, path string descending into it with "." and ".."
        parent, name = os.path.split(self.root)
        subprocess.run(["sh", "-c", "mkdir ./%s/sub/../sub2 && touch %s//sub2/./f"
                        % (name, name)], cwd=parent, check=True)
        self.expect("create", "sub2", type="dir")
        self.expect("create", "sub2/f")

    def test_copy_file_range_writes_seen(self):
        src = os.path.join(self.root, "src.bin")
        write(src, os.urandom(1 << 16))
        self.start()
        subprocess.run(["cp", src, os.path.join(self.root, "dst.bin")], check=True)
        self.expect("create", "dst.bin")
        self.expect("modify", "dst.bin")

    def test_symlink_and_hardlink(self):
        write(os.path.join(self.root, "target"))
        self.start()
        os.symlink("target", os.path.join(self.root, "sl"))
        self.expect("create", "sl", type="symlink")
        os.link(os.path.join(self.root, "target"), os.path.join(self.root, "hl"))
        self.expect("create", "hl")

    def test_two_roots_one_daemon(self):
        other = Tree()
        try:
            self.start(roots=[self.root, other.path])
            write(os.path.join(self.root, "one"))
            write(os.path.join(other.path, "two"))
            e1 = self.expect("create", "one")
            e2 = self.expect("create", "two", root=other.path)
            self.assertNotEqual(e1["project"], e2["project"])
            self.marker()
            self.marker(root=other.path)
            self.assertFalse([e for e in self.d.changes(self.root) if e["path"] == "two"])
            self.assertFalse([e for e in self.d.changes(other.path) if e["path"] == "one"])
        finally:
            other.cleanup()

    def refused_where_unmarkable(self, fs_path, roots):
        """fanotify on a kernel whose tmpfs has no fsid (Debian's 5.10): it cannot mark one, and
        must say so at start, naming the directory and the backends that can. True when so."""
        if self.backend != "fanotify":
            return False
        j = json.loads(subprocess.run([VFSWATCH, "probe", fs_path], stdout=subprocess.PIPE,
                                      check=True).stdout)
        if [b for b in j["backends"] if b["name"] == "fanotify"][0]["usable"]:
            return False
        args = [VFSWATCH, "run", "--backend", "fanotify", "--run-dir", RUN_DIR + "-x", "--no-pin",
                "--no-state"]
        for r in roots:
            args += ["--watch", r]
        r = subprocess.run(args, capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("fanotify_mark %s: " % fs_path, r.stderr)
        self.assertIn("use --backend tracepoint or fentry", r.stderr)
        return True

    def test_root_on_tmpfs(self):
        t = Tree()
        try:
            root = t.mount_tmpfs("mnt")
            if self.refused_where_unmarkable(root, [root]):
                return
            self.start(roots=[root])
            write(os.path.join(root, "on-tmpfs"))
            self.expect("create", "on-tmpfs", root=root)
        finally:
            if self.d:
                self.d.stop()
                self.d = None
            t.cleanup()

    def test_tmpfs_mounted_below_root(self):
        sub = self.trees[0].mount_tmpfs("cache")
        if self.refused_where_unmarkable(sub, [self.root]):
            return
        self.start()
        write(os.path.join(sub, "inner"))
        self.expect("create", "cache/inner")

    def test_strange_names_stay_valid_json_and_recoverable(self):
        self.start()
        names = [b"with space.txt", b"new\nline.txt", b"bad-\xff\xfe-utf8", b"quote\"back\\slash",
                 "ünïcödé-✓".encode()]
        for n in names:
            write(os.path.join(self.root.encode(), n))
        for n in names:
            def match(e, n=n):
                if e.get("event") != "create" or e.get("root") != self.root:
                    return False
                raw = base64.b64decode(e["path_b64"]) if "path_b64" in e else e["path"].encode()
                return raw == n
            self.assertIsNotNone(self.d.wait(match), "no create for %r" % n)
        bad = [e for e in self.d.changes(self.root) if "path_b64" in e]
        self.assertTrue(bad and all("\ufffd" in e["path"] for e in bad))

    def test_writer_attribution(self):
        tool = os.path.join(self.trees[0].mkdir("..bin"), "vw-test-writer")
        shutil.copy("/bin/dd", tool)
        self.start()
        p = subprocess.run([tool, "if=/dev/zero", "of=%s" % os.path.join(self.root, "by-dd"),
                            "bs=1k", "count=4", "status=none"], check=True)
        self.assertEqual(p.returncode, 0)
        if self.has_tid_cgroup:
            e = self.expect("modify", "by-dd", comm="vw-test-writer")
            self.assertEqual(e["uid"], os.geteuid())
            self.assertIsInstance(e["tid"], int)
            self.assertIsInstance(e["cgroup"], int)
        else:
            # comm and uid are read from /proc when the line is made: a writer that has
            # already exited (dd here) leaves them out; pid is always there
            e = self.expect("modify", "by-dd")
            self.assertIn(e.get("comm"), ("vw-test-writer", None))
            self.assertNotIn("tid", e)
            self.assertNotIn("cgroup", e)
        # the pid is the writer's: a python write here carries this process's pid
        write(os.path.join(self.root, "by-me"))
        e = self.expect("modify", "by-me", pid=os.getpid())
        self.assertEqual(e["uid"], os.geteuid())
        self.assertEqual(e["comm"], open("/proc/self/comm").read().strip())

    def test_daemon_own_writes_are_not_reported(self):
        out = os.path.join(self.root, "stream.jsonl")
        self.start(stdout_path=out)
        for i in range(5):
            write(os.path.join(self.root, "f%d" % i))
            self.expect("modify", "f%d" % i)
        self.assertFalse([e for e in self.d.seen if e.get("path") == "stream.jsonl"])

    def test_deep_path_is_reported_in_full_not_cut(self):
        self.start()
        deep = os.path.join(self.root, *["d%02d" % i for i in range(70)])
        os.makedirs(deep)
        write(os.path.join(deep, "leaf"))
        e = self.d.wait(lambda e: e.get("event") == "modify" and e.get("path", "").endswith("leaf"))
        self.assertIsNotNone(e)
        # the kernel keeps 64 names; the daemon finds the rest from the anchor's identity
        self.assertEqual(e["path"], os.path.relpath(os.path.join(deep, "leaf"), self.root))
        self.assertNotIn("truncated", e)
        shallow = os.path.join(self.root, *["s%02d" % i for i in range(10)])
        os.makedirs(shallow)
        write(os.path.join(shallow, "leaf"))
        e = self.expect("modify", "/".join(["s%02d" % i for i in range(10)] + ["leaf"]))
        self.assertNotIn("truncated", e)

    def test_sigterm_drains_and_exits_zero(self):
        self.start()
        for i in range(200):
            write(os.path.join(self.root, "burst%03d" % i))
        rc = self.d.stop(sig=15)
        self.d = None
        self.assertEqual(rc, 0)

    def test_idle_daemon_does_not_wake_up(self):
        if self.backend == "fanotify":
            self.skipTest("fanotify hears every write on the file system: its idle time "
                          "depends on the host, and it looks at its roots every 2 s")
        for raw in (True, False):
            d = self.start(raw=raw)
            write(os.path.join(self.root, "once"))
            self.marker()
            time.sleep(1.5)     # the journal synced, the last tick after the events done

            def switches():     # every thread's context switches: each is a wake-up
                n = 0
                for t in os.listdir("/proc/%d/task" % d.proc.pid):
                    with open("/proc/%d/task/%s/status" % (d.proc.pid, t)) as f:
                        n += sum(int(l.split()[1]) for l in f
                                 if l.split(":")[0].endswith("ctxt_switches"))
                return n
            before = switches()
            time.sleep(3)
            woke = switches() - before
            self.assertLessEqual(woke, 2, "an idle daemon woke up %d times in 3 s" % woke)
            self.assertEqual(d.stop(), 0)
            self.d = None

    def test_overflow_is_reported_never_silent(self):
        d = self.start(extra=["--ringbuf-mb", "1"] if self.backend != "fanotify" else [])
        os.kill(d.proc.pid, 19)  # SIGSTOP: nobody drains the ring buffer / event queue
        try:
            # distinct names: fanotify merges repeated events on one name in its queue
            for i in range(20000):
                write(os.path.join(self.root, "flood%05d" % i), b"x")
        finally:
            os.kill(d.proc.pid, 18)  # SIGCONT
        e = d.wait(lambda e: e.get("event") == "overflow", timeout=30)
        self.assertIsNotNone(e, "lost records were not reported")
        self.assertGreater(e["lost"], 0)
        self.assertEqual(e["reason"],
                         "fanotify_queue" if self.backend == "fanotify" else "ringbuf_full")


class TracepointE2E(Scenarios, DaemonCase):
    backend = "tracepoint"


class FentryE2E(Scenarios, DaemonCase):
    backend = "fentry"


class CompatBuild:
    """The compat build of the BPF programs (VFSWATCH_BPF_COMPAT=1): bounded loops instead of
    bpf_loop(), probe reads instead of trusted task pointers, fexit return values read by the
    argument counts in the kernel's BTF. What kernels before 5.17 load; run here so that a new
    kernel checks it too."""

    def start(self, roots=None, **kw):
        env = dict(kw.pop("env", None) or os.environ)
        env["VFSWATCH_BPF_COMPAT"] = "1"
        return super().start(roots, env=env, **kw)

    def test_status_names_the_compat_build_and_why(self):
        self.start()
        write(os.path.join(self.root, "f"))
        self.expect("create", "f")
        st = json.loads(subprocess.run([VFSWATCH, "status", "--run-dir", RUN_DIR],
                                       stdout=subprocess.PIPE, check=True).stdout)
        self.assertEqual((st["backend"], st["build"]), (self.backend, "compat"))
        self.assertIn("VFSWATCH_BPF_COMPAT", st["build_decided_by"])
        self.assertGreater(st["kernel"]["emitted"], 0, "kernel counters read back")


class TracepointCompatE2E(CompatBuild, Scenarios, DaemonCase):
    backend = "tracepoint"


class FentryCompatE2E(CompatBuild, Scenarios, DaemonCase):
    backend = "fentry"


class FanotifyE2E(Scenarios, DaemonCase):
    backend = "fanotify"
    truncate_event = "modify"
    loses_gone_dirs = True
    has_tid_cgroup = False
