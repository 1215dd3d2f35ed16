# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# test_settled.py: settled output equals the true net change of the tree, for real tools.
import hashlib
import os
import shutil
import subprocess
import tarfile
import threading
import time

from harness import DaemonCase, Tree, write

SKIP_DIRS = (".git",)


def snapshot(root):
    """path -> (kind, inode, digest) for everything below root but .git."""
    snap = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        for name in dirnames + filenames:
            if name.startswith(".marker-"):
                continue    # the test's own sync points
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            if os.path.isdir(p) and not os.path.islink(p):
                snap[rel] = ("d", st.st_ino, None)
            elif os.path.islink(p):
                snap[rel] = ("l", st.st_ino, os.readlink(p))
            else:
                with open(p, "rb") as f:
                    snap[rel] = ("f", st.st_ino, hashlib.sha256(f.read()).hexdigest())
    return snap


def net_change(before, after):
    """The true net change: (event, path, old_path) from two snapshots."""
    out = set()
    gone = set(before) - set(after)
    new = set(after) - set(before)
    by_ino = {v[1]: p for p, v in before.items() if p in gone}
    moved = {}
    for p in sorted(new):
        q = by_ino.get(after[p][1])
        if q and before[q][0] == after[p][0] and before[q][2] == after[p][2]:
            moved[p] = q
    # a moved directory carries its children: report the directory alone
    dirs = [(p, q) for p, q in moved.items() if after[p][0] == "d"]
    for p, q in list(moved.items()):
        if any(p.startswith(dp + "/") and q == dq + p[len(dp):] for dp, dq in dirs):
            del moved[p]
            new.discard(p)
            gone.discard(q)
    for p, q in moved.items():
        out.add(("rename", p, q))
        new.discard(p)
        gone.discard(q)
    out |= {("create", p, None) for p in new}
    out |= {("delete", p, None) for p in gone}
    for p in set(before) & set(after):
        b, a = before[p], after[p]
        if b[0] != "d" and (b[1] != a[1] or b[2] != a[2]):
            out.add(("modify", p, None))
    return out


class Settled(DaemonCase):
    backend = "tracepoint"

    def start_settled(self, extra=()):
        self.start(raw=False, extra=list(extra))
        self.marker()   # the crawl of the tree has run by now

    def settled_since(self, n):
        """Settled change lines after the first n seen, up to a fresh marker."""
        time.sleep(0.3)    # longer than --settle, so the operation's batches have flushed
        m = self.marker()
        return [e for e in self.d.seen[n:] if "path" in e and not e["path"].startswith(".marker")
                and not e["path"].startswith(".git/") and e["path"] != ".git"]

    def check(self, op):
        """Run op(root) and compare the settled lines with the snapshots' difference."""
        before = snapshot(self.root)
        n = len(self.d.seen)
        op(self.root)
        lines = self.settled_since(n)
        after = snapshot(self.root)
        got = {(e["event"], e["path"], e.get("old_path")) for e in lines}
        want = net_change(before, after)
        self.assertEqual(got, want, "settled output differs from the tree's net change")
        self.assertEqual(len(got), len(lines), "a path was reported twice: %s" % lines)
        for e in lines:
            self.assertIn("batch", e)
        return lines

    def test_sed_in_place_is_one_modify(self):
        write(os.path.join(self.root, "conf.txt"), b"hello\nworld\n")
        self.start_settled()
        lines = self.check(lambda r: subprocess.run(
            ["sed", "-i", "s/hello/bye/", os.path.join(r, "conf.txt")], check=True))
        self.assertEqual([(e["event"], e["path"]) for e in lines], [("modify", "conf.txt")])

    def test_vim_save_is_one_modify(self):
        if not shutil.which("vim.tiny") and not shutil.which("vim"):
            self.skipTest("vim not installed")
        vim = shutil.which("vim.tiny") or shutil.which("vim")
        write(os.path.join(self.root, "main.c"), b"int a;\n")
        self.start_settled()
        lines = self.check(lambda r: subprocess.run(
            [vim, "-u", "NONE", "-N", "-es", "-c", "s/a/b/", "-c", "wq", "main.c"],
            cwd=r, check=True, stdin=subprocess.DEVNULL))
        self.assertEqual([(e["event"], e["path"]) for e in lines], [("modify", "main.c")])

    def test_rsync_updates_and_adds(self):
        if not shutil.which("rsync"):
            self.skipTest("rsync not installed")
        src = Tree()
        try:
            write(os.path.join(self.root, "same"), b"same")
            write(os.path.join(self.root, "changed"), b"old")
            write(os.path.join(src.path, "same"), b"same")
            write(os.path.join(src.path, "changed"), b"new content")
            os.mkdir(os.path.join(src.path, "dir"))
            write(os.path.join(src.path, "dir", "added"), b"added")
            self.start_settled()
            self.check(lambda r: subprocess.run(
                ["rsync", "-r", "--checksum", src.path + "/", r + "/"], check=True))
        finally:
            src.cleanup()

    def test_cp_recursive_and_tar_extract(self):
        src = Tree()
        try:
            for i in range(20):
                d = os.path.join(src.path, "pkg", "sub%d" % (i % 3))
                os.makedirs(d, exist_ok=True)
                write(os.path.join(d, "f%d.txt" % i), b"x" * (i * 100))
            arch = os.path.join(src.path, "a.tar")
            with tarfile.open(arch, "w") as t:
                t.add(os.path.join(src.path, "pkg"), arcname="untarred")
            self.start_settled()
            lines = self.check(lambda r: subprocess.run(
                ["cp", "-r", os.path.join(src.path, "pkg"), r], check=True))
            self.assertEqual(len({e["batch"] for e in lines}), 1, "cp -r split over batches")
            self.check(lambda r: subprocess.run(["tar", "xf", arch, "-C", r], check=True))
        finally:
            src.cleanup()

    def test_directory_rename_is_reported_once(self):
        os.makedirs(os.path.join(self.root, "old", "deep"))
        write(os.path.join(self.root, "old", "deep", "f"))
        self.start_settled()
        lines = self.check(lambda r: os.rename(os.path.join(r, "old"), os.path.join(r, "new")))
        self.assertEqual([(e["event"], e["path"], e["old_path"]) for e in lines],
                         [("rename", "new", "old")])

    def test_rename_chain_is_one_rename(self):
        write(os.path.join(self.root, "a"), b"content")
        self.start_settled()
        lines = self.check(lambda r: subprocess.run(["sh", "-c", "mv a b && mv b c"], cwd=r,
                                                    check=True))
        self.assertEqual([(e["event"], e["path"], e["old_path"]) for e in lines],
                         [("rename", "c", "a")])

    def test_temp_file_written_and_removed_is_nothing(self):
        self.start_settled()
        lines = self.check(lambda r: subprocess.run(
            ["sh", "-c", "echo x > tmp.$$ && echo y >> tmp.$$ && rm tmp.$$"], cwd=r, check=True))
        self.assertEqual(lines, [])

    def test_git_checkout_settles_as_one_batch(self):
        if not shutil.which("git"):
            self.skipTest("git not installed")
        r = self.root
        env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
                   GIT_COMMITTER_EMAIL="t@t", HOME=r)

        def git(*a):
            subprocess.run(["git", "-c", "init.defaultBranch=main"] + list(a), cwd=r, env=env,
                           check=True, capture_output=True)
        git("init", "-q")
        for i in range(60):
            write(os.path.join(r, "src", "m%02d.py" % i) if os.path.isdir(os.path.join(r, "src"))
                  else (os.makedirs(os.path.join(r, "src")) or os.path.join(r, "src", "m%02d.py" % i)),
                  b"v1 %d\n" % i)
        git("add", "-A")
        git("commit", "-qm", "one")
        git("checkout", "-qb", "other")
        for i in range(0, 60, 2):
            write(os.path.join(r, "src", "m%02d.py" % i), b"v2 %d\n" % i)
        os.unlink(os.path.join(r, "src", "m59.py"))
        write(os.path.join(r, "added.py"), b"new")
        git("add", "-A")
        git("commit", "-qm", "two")
        git("checkout", "-q", "main")
        self.start_settled()
        lines = self.check(lambda r: git("checkout", "-q", "other"))
        self.assertGreaterEqual(len(lines), 32)
        self.assertEqual(len({e["batch"] for e in lines}), 1, "checkout split over batches")

    def test_vcs_lock_holds_the_batch_until_released(self):
        os.makedirs(os.path.join(self.root, ".git"))
        lock = os.path.join(self.root, ".git", "index.lock")
        self.start_settled()
        n = len(self.d.seen)
        write(lock)
        write(os.path.join(self.root, "one"))
        time.sleep(0.3)                     # several settle periods
        write(os.path.join(self.root, "two"))
        time.sleep(0.3)
        self.assertFalse([e for e in self.d.seen[n:] if e.get("path") in ("one", "two")],
                         "flushed while the lock was held")
        os.unlink(lock)
        lines = self.settled_since(n)
        self.assertEqual(sorted(e["path"] for e in lines), ["one", "two"])
        self.assertEqual(len({e["batch"] for e in lines}), 1)
        # without the lock, the same pauses give separate batches
        n = len(self.d.seen)
        write(os.path.join(self.root, "three"))
        time.sleep(0.3)
        write(os.path.join(self.root, "four"))
        lines = self.settled_since(n)
        self.assertEqual(len({e["batch"] for e in lines}), 2)


    def test_busy_file_does_not_hold_back_quiet_ones(self):
        """A log appended every 20 ms delays nobody else: a file changed once is told its own
        settle time later, an atomic save stays one modify, the log itself is told when quiet."""
        log, one, saved = (os.path.join(self.root, n) for n in ("app.log", "one.txt", "saved"))
        write(log, b"start\n")
        write(saved, b"v1\n")
        self.start_settled(extra=["--settle", "200", "--max-delay", "20000"])
        n = len(self.d.seen)
        stop = threading.Event()

        def trickle():
            with open(log, "ab", buffering=0) as f:
                while not stop.wait(0.02):
                    f.write(b"line\n")
        t = threading.Thread(target=trickle)
        t.start()
        try:
            time.sleep(0.5)
            write(one, b"once\n")
            write(saved + ".tmp", b"v2\n")
            os.rename(saved + ".tmp", saved)
            got = self.d.wait(lambda e: e.get("path") == "saved", timeout=4)
            self.assertIsNotNone(got, "a quiet file waited for the busy one")
            self.assertTrue(t.is_alive() and not stop.is_set())
            early = [(e["event"], e["path"]) for e in self.d.seen[n:] if "path" in e]
        finally:
            stop.set()
            t.join()
        self.assertEqual(sorted(early), [("create", "one.txt"), ("modify", "saved")])
        lines = self.settled_since(n)
        self.assertEqual(sorted((e["event"], e["path"]) for e in lines),
                         [("create", "one.txt"), ("modify", "app.log"), ("modify", "saved")])

    def test_skip_identical_drops_rewrites_that_change_nothing(self):
        p = os.path.join(self.root, "gen.txt")
        write(p, b"generated v1\n")
        self.start_settled(extra=["--skip-identical"])
        n = len(self.d.seen)
        write(p, b"generated v1\n")            # same bytes: nothing
        self.assertEqual(self.settled_since(n), [])
        n = len(self.d.seen)
        write(p, b"generated v2\n")            # different: reported
        self.assertEqual([(e["event"], e["path"]) for e in self.settled_since(n)],
                         [("modify", "gen.txt")])
        n = len(self.d.seen)
        write(p, b"generated v2\n")            # same as the last reported content
        self.assertEqual(self.settled_since(n), [])
        n = len(self.d.seen)
        write(os.path.join(self.root, "fresh"), b"x")   # creates are always reported
        self.assertEqual([(e["event"], e["path"]) for e in self.settled_since(n)],
                         [("create", "fresh")])


class FanotifySettled(Settled):
    backend = "fanotify"


class FentrySettled(Settled):
    backend = "fentry"     # runs in the VM (scripts/vmtest.sh); renames know "replaced" exactly
