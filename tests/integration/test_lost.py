# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# test_lost.py: nothing lost: overflows repaired at scale, crashes, damaged and degraded state dirs,
# write storms; each compared with ground truth read from the file system.
import collections
import glob
import json
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import time

from harness import PLAIN_VFSWATCH, SANITIZED, Daemon, DaemonCase, RUN_DIR, VFSWATCH, write
from test_exactness import replay, tree_types

CHANGES = ("create", "modify", "truncate", "attrib", "delete", "rename")


def status(run_dir):
    out = subprocess.run([VFSWATCH, "status", "--run-dir", run_dir], capture_output=True,
                         text=True, timeout=30)
    return json.loads(out.stdout) if out.stdout.strip() else {"error": out.stderr}


def drain(d, timeout):
    """Take in the lines that arrive within timeout (without looking at the old ones again)."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            e = d.lines.get(timeout=max(0.01, end - time.time()))
        except queue.Empty:
            return
        if e is None:
            return
        d.seen.append(e)


def touch_many(paths):
    """Create empty files, fast."""
    for p in paths:
        os.close(os.open(p, os.O_WRONLY | os.O_CREAT, 0o644))


class Faults(DaemonCase):
    """A daemon with its own state dir, and what the fault tests share."""
    backend = "tracepoint"

    def setUp(self):
        super().setUp()
        self.state = tempfile.mkdtemp(prefix="vw-state-")   # this test's own state dir

    def tearDown(self):
        super().tearDown()
        shutil.rmtree(self.state, ignore_errors=True)

    def start(self, raw=False, extra=(), **kw):
        return super().start(raw=raw, extra=["--state-dir", self.state, "--no-default-ignores"] +
                             list(extra), **kw)

    def stopped(self, fn):
        """Run fn while the daemon is stopped (SIGSTOP): the ring buffer fills up."""
        os.kill(self.d.proc.pid, signal.SIGSTOP)
        try:
            fn()
        finally:
            os.kill(self.d.proc.pid, signal.SIGCONT)

    def changes(self, d=None):
        return [e for e in (d or self.d).seen if e.get("event") in CHANGES and
                not e["path"].startswith(".marker")]

    def named(self, d=None):
        return {e["path"] for e in self.changes(d)} | \
            {e["old_path"] for e in self.changes(d) if e.get("old_path")}

    def wait_named(self, paths, timeout=180, d=None):
        """Wait until every path is named by a line (or a directory above it, for deletes)."""
        d = d or self.d
        left = set(paths)
        end = time.time() + timeout
        seen = 0
        while True:
            drain(d, 0.3)   # take in what arrived
            for e in d.seen[seen:]:
                if e.get("event") in CHANGES:
                    for p in (e["path"], e.get("old_path")):
                        left.discard(p)
                        if p and e["event"] in ("delete", "rename"):   # and all below
                            left -= {q for q in left if q.startswith(p + "/")}
            seen = len(d.seen)
            if not left or time.time() > end:
                return not left

    def assert_exact(self, before, lines, after):
        self.assertEqual(replay(before, lines), after,
                         "replaying the settled lines does not give the tree")
        counts = collections.Counter((e["event"], e["path"]) for e in lines)
        twice = [k for k, n in counts.items() if n > 1]
        self.assertEqual(twice, [], "changes reported more than once")

    def new_dirs(self, ndirs=128, nfiles=1024):
        for i in range(ndirs):
            d = os.path.join(self.root, "d%03d" % i)
            os.mkdir(d)
            touch_many([os.path.join(d, "f%04d" % j) for j in range(nfiles)])

    def check_new_dirs_settled(self, extra=(), reason="ringbuf_full", ndirs=128):
        if SANITIZED:   # a quarter of the flood, into a smaller ring: records are still lost
            ndirs, extra = 32, list(extra) + ["--ringbuf-mb", "1"]
        self.start(extra=extra)
        self.marker()
        before = tree_types(self.root)
        self.stopped(lambda: self.new_dirs(ndirs))
        after = tree_types(self.root)
        self.assertIsNotNone(self.d.wait(lambda e: e.get("event") == "overflow", 30))
        self.assertTrue(self.wait_named(set(after) - set(before)),
                        "%d paths never named" % len(set(after) - self.named()))
        self.marker()
        self.assert_exact(before, self.changes(), after)
        rescans = [e for e in self.d.seen if e.get("event") == "rescan"]
        self.assertEqual([(e["phase"], e["reason"]) for e in rescans],
                         [("start", reason), ("done", reason)])
        self.assertTrue(any(e.get("source") == "rescan" for e in self.changes()))


class Lost(Faults):
    # --- (a) a burst of new directories while the daemon cannot read --------------------

    def test_new_directories_while_stopped_are_all_reported_settled(self):
        self.check_new_dirs_settled()

    def test_new_directories_while_stopped_are_all_reported_without_a_state_dir(self):
        self.check_new_dirs_settled(extra=["--no-state"])
        self.assertEqual(os.listdir(self.state), [], "--no-state wrote a state file")

    def test_new_directories_while_stopped_are_all_reported_raw(self):
        self.start(raw=True)
        self.marker()
        self.stopped(self.new_dirs)
        after = tree_types(self.root)
        self.assertIsNotNone(self.d.wait(lambda e: e.get("event") == "overflow", 30))
        self.assertTrue(self.wait_named(after), "paths never named")
        self.marker()
        seen = self.d.seen
        first_overflow = next(i for i, e in enumerate(seen) if e.get("event") == "overflow")
        rescan_lines = [i for i, e in enumerate(seen) if e.get("source") == "rescan"]
        self.assertTrue(rescan_lines, "no rescan lines")
        self.assertGreater(min(rescan_lines), first_overflow)
        gone = [e["path"] for e in self.changes() if e["event"] != "delete" and
                not os.path.lexists(os.path.join(self.root, e["path"]))]
        self.assertEqual(gone, [], "lines name paths that do not exist")

    # --- (b) whole directories deleted and renamed while it cannot read -----------------

    def tree(self, ndirs=40, nfiles=40):
        for i in range(ndirs):
            for sub in ("", "/deep", "/deep/er"):
                d = os.path.join(self.root, "t%02d%s" % (i, sub))
                os.makedirs(d, exist_ok=True)
                for j in range(nfiles // 4 if sub else nfiles):
                    write(os.path.join(d, "f%03d" % j), b"v1")

    def reshape(self):
        for i in range(0, 10):
            shutil.rmtree(os.path.join(self.root, "t%02d" % i))
        for i in range(10, 20):
            os.rename(os.path.join(self.root, "t%02d" % i), os.path.join(self.root, "r%02d" % i))
        for i in range(20, 25):   # into another directory
            os.rename(os.path.join(self.root, "t%02d" % i),
                      os.path.join(self.root, "t39", "in%02d" % i))
        for i in range(25, 30):
            write(os.path.join(self.root, "t%02d" % i, "deep", "f000"), b"v2, longer")
        os.mkdir(os.path.join(self.root, "flood"))
        touch_many([os.path.join(self.root, "flood", "n%05d" % j)    # more than the ring holds
                    for j in range(20000)])

    def check_reshaped(self, raw):
        self.tree()
        self.start(raw=raw, extra=["--ringbuf-mb", "1"])
        self.marker()
        before = tree_types(self.root)
        self.stopped(self.reshape)
        after = tree_types(self.root)
        self.assertIsNotNone(self.d.wait(lambda e: e.get("event") == "overflow", 30))
        changed = (set(after) - set(before)) | (set(before) - set(after))
        changed |= {"t%02d/deep/f000" % i for i in range(25, 30)}
        self.assertTrue(self.wait_named(changed), "changes never named: %s" %
                        sorted(changed - self.named())[:10])
        self.d.wait(lambda e: e.get("event") == "rescan" and e.get("phase") == "done", 60)
        self.marker()
        return before, after

    def test_directories_deleted_and_renamed_while_stopped_settled(self):
        before, after = self.check_reshaped(raw=False)
        lines = self.changes()
        self.assert_exact(before, lines, after)
        deletes = [e["path"] for e in lines if e["event"] == "delete"]
        for i in range(10):   # one line for each removed tree, none for what was in it
            self.assertIn("t%02d" % i, deletes)
            self.assertFalse([p for p in deletes if p.startswith("t%02d/" % i)])

    def test_directories_deleted_and_renamed_while_stopped_raw(self):
        self.check_reshaped(raw=True)

    # --- (c) kill -9 during a burst, changes while down, restart ------------------------

    def test_kill_9_during_a_burst_then_changes_while_down_are_each_reported_once(self):
        for i in range(200):
            write(os.path.join(self.root, "old%03d" % i), b"v1")
        self.start()
        self.marker()
        before = tree_types(self.root)
        first = self.d
        for i in range(600):    # a burst; the daemon is killed in the middle of it
            write(os.path.join(self.root, "new%03d" % i), b"n")
            if i % 3 == 0:
                write(os.path.join(self.root, "old%03d" % (i // 3)), b"v2, longer")
            if i == 300:
                first.proc.kill()
            time.sleep(0.001)
        first.proc.wait()
        first.reader.join(timeout=10)
        first.wait(lambda e: False, 0.5)
        for i in range(100, 150):   # while it is down
            os.unlink(os.path.join(self.root, "old%03d" % i))
        os.mkdir(os.path.join(self.root, "downdir"))
        write(os.path.join(self.root, "downdir", "f"), b"f")
        after = tree_types(self.root)
        self.d = Daemon([self.root], self.backend, raw=False,
                        extra=["--state-dir", self.state, "--no-default-ignores"])
        self.d.wait(lambda e: e.get("event") == "rescan" and e.get("phase") == "done", 60)
        changed = (set(after) - set(before)) | (set(before) - set(after))
        self.assertTrue(self.wait_named(changed, 60, d=self.d) or True)
        self.marker()
        lines = self.changes(first) + self.changes(self.d)
        self.assert_exact(before, lines, after)
        named = {e["path"] for e in lines}
        self.assertEqual(changed - named, set(), "changes never reported")
        rewritten = {"old%03d" % (i // 3) for i in range(0, 600, 3)} - \
            {"old%03d" % i for i in range(100, 150)}
        self.assertEqual(rewritten - named, set(), "rewrites never reported")

    # --- (d) damaged snapshots ----------------------------------------------------------

    def snapshot_file(self):
        snaps = glob.glob(os.path.join(self.state, "*.snap"))
        self.assertEqual(len(snaps), 1, os.listdir(self.state))
        return snaps[0]

    def run_once(self):
        self.start()
        self.marker()
        d, self.d = self.d, None
        self.assertEqual(d.stop(), 0)

    def check_damaged(self, damage):
        for i in range(50):
            write(os.path.join(self.root, "f%02d" % i), b"v1")
        self.run_once()
        snap = self.snapshot_file()
        damage(snap)
        write(os.path.join(self.root, "f00"), b"changed while down")
        self.start()
        line = self.d.wait(lambda e: e.get("event") == "rescan", 30)
        self.assertIsNotNone(line)
        self.assertEqual((line["phase"], line["reason"], line.get("fresh")),
                         ("start", "state_damaged", True))
        self.assertTrue(self.d.wait_err("damaged"), "no word of it on stderr")
        self.assertTrue(os.path.exists(snap + ".damaged"), "the damaged file was not set aside")
        self.d.wait(lambda e: e.get("event") == "rescan" and e.get("phase") == "done", 30)
        write(os.path.join(self.root, "live"), b"still watching")
        self.expect("create", "live")
        d, self.d = self.d, None
        self.assertEqual(d.stop(), 0)
        # rebuilt: the next start catches up again
        write(os.path.join(self.root, "f01"), b"changed while down again")
        self.start()
        self.expect("modify", "f01", source="rescan")
        self.marker()
        self.assertNotIn("f00", {e["path"] for e in self.changes()})

    def test_corrupted_snapshot_is_detected_and_rebuilt(self):
        def flip(path):
            with open(path, "r+b") as f:
                f.seek(os.path.getsize(path) // 2)
                b = f.read(1)
                f.seek(-1, 1)
                f.write(bytes([b[0] ^ 0x55]))
        self.check_damaged(flip)

    def test_truncated_snapshot_is_detected_and_rebuilt(self):
        self.check_damaged(lambda p: os.truncate(p, os.path.getsize(p) // 2))

    def test_torn_journal_tail_is_not_damage(self):
        for i in range(20):
            write(os.path.join(self.root, "f%02d" % i), b"v1")
        self.start()
        self.marker()
        write(os.path.join(self.root, "f00"), b"told before the crash")
        self.expect("modify", "f00")
        time.sleep(0.3)
        self.d.proc.kill()      # no snapshot at exit: the journal holds what was told
        self.d.proc.wait()
        self.d = None
        journal = glob.glob(os.path.join(self.state, "*.journal"))[0]
        with open(journal, "ab") as f:
            f.write(b"\x30\x00\x00\x00torn")  # a record cut short by the crash
        write(os.path.join(self.root, "f01"), b"changed while down")
        self.start()
        self.expect("modify", "f01", source="rescan")
        self.marker()
        rescans = [e for e in self.d.seen if e.get("event") == "rescan"]
        self.assertEqual(rescans[0]["reason"], "start")
        self.assertNotIn("fresh", rescans[0])
        self.assertNotIn("f00", {e["path"] for e in self.changes()}, "told twice")

    # --- (e) a read-only, full or missing state dir -------------------------------------

    def mount(self, opts):
        subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", self.state], check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", self.state], check=False)

    def check_degraded(self, why):
        write(os.path.join(self.root, "a"), b"a")
        self.d.wait_err(why, 10)
        write(os.path.join(self.root, "after"), b"x")
        self.expect("create", "after")
        st = status(RUN_DIR)
        self.assertIs(st.get("catch_up"), False, st)
        self.assertIn(why, st.get("state_error", ""))

    def test_read_only_state_dir_is_said_and_watching_goes_on(self):
        self.mount("ro,size=1m")
        for i in range(10):
            write(os.path.join(self.root, "f%d" % i), b"x")
        self.start()
        self.check_degraded("Read-only file system")
        # writable again: within the retry period the snapshot is written, catch-up is back on
        subprocess.run(["mount", "-o", "remount,rw", self.state], check=True)
        end = time.time() + 30
        while status(RUN_DIR).get("catch_up") is not True and time.time() < end:
            time.sleep(0.5)
        self.assertIs(status(RUN_DIR).get("catch_up"), True, "".join(self.d.err)[-500:])
        self.assertTrue(self.snapshot_file())
        # the change log kept in memory meanwhile goes to its file too
        while not [f for f in os.listdir(self.state) if f.endswith(".changes")] and \
                time.time() < end + 15:
            time.sleep(0.5)
        self.assertTrue([f for f in os.listdir(self.state) if f.endswith(".changes")],
                        os.listdir(self.state))
        said = [l for l in "".join(self.d.err).splitlines() if "Read-only file system" in l]
        # once for the snapshots, at most once for the change log (cursors) beside them
        self.assertEqual(len([l for l in said if l.startswith("vfswatch: state:")]), 1, said)
        self.assertLessEqual(len([l for l in said if l.startswith("vfswatch: changes:")]), 1,
                             said)

    def test_full_state_dir_is_said_and_watching_goes_on(self):
        self.mount("size=64k")
        with open(os.path.join(self.state, "filler"), "wb") as f:
            try:
                f.write(b"\0" * (1 << 20))
            except OSError:
                pass
        for i in range(3000):   # a snapshot bigger than what is left
            write(os.path.join(self.root, "file-with-a-long-name-%05d" % i), b"x")
        self.start()
        self.check_degraded("No space left on device")

    def test_missing_state_dir_is_made(self):
        shutil.rmtree(self.state)
        self.state = os.path.join(self.state, "nested", "state")
        self.run_once()
        self.assertTrue(self.snapshot_file())
        self.assertEqual(os.stat(self.state).st_mode & 0o777, 0o700)

    # --- (f) storms ---------------------------------------------------------------------

    def storm(self, files, rounds):
        for _ in range(rounds):
            for f in files:
                fd = os.open(f, os.O_WRONLY)
                os.write(fd, b"storm")
                os.close(fd)

    def check_storm(self, extra, stop=False, nfiles=20000, quiet=20000, rounds=10, **kw):
        os.mkdir(os.path.join(self.root, "hot"))
        os.mkdir(os.path.join(self.root, "cold"))
        files = [os.path.join(self.root, "hot", "h%05d" % i) for i in range(nfiles)]
        for f in files:
            write(f, b"v1")
        for i in range(quiet):
            write(os.path.join(self.root, "cold", "c%05d" % i), b"v1")
        # one batch for the whole storm: each file once
        self.start(extra=["--settle", "1000", "--max-delay", "600000", "--batch-max", "1000000"] +
                   list(extra), **kw)
        self.marker()
        if stop:    # the reader cannot keep up at all: records are lost
            self.stopped(lambda: self.storm(files, rounds))
        else:
            self.storm(files, rounds)
        want = {os.path.relpath(f, self.root) for f in files}
        self.assertTrue(self.wait_named(want, 180), "%d files never named" %
                        len(want - self.named()))
        self.marker()
        lines = self.changes()
        counts = collections.Counter(e["path"] for e in lines)
        self.assertEqual(set(counts), want, "named: files not written")
        twice = [p for p, n in counts.items() if n > 1]
        self.assertFalse(len(twice), "named more than once: %d, e.g. %s" % (
            len(twice), [e for e in lines if twice and e["path"] == twice[0]]))
        return [e for e in self.d.seen if e.get("event") == "overflow"]

    def test_storm_of_rewrites_default_ring_each_file_once_no_overflow(self):
        # how fast the reader drains the default ring is what it measures: the plain build
        self.assertEqual(self.check_storm([], binary=PLAIN_VFSWATCH), [])

    def test_storm_of_rewrites_tiny_ring_rescan_names_only_what_changed(self):
        overflows = self.check_storm(["--ringbuf-mb", "1", "--no-kernel-coalesce"], stop=True)
        self.assertTrue(overflows, "a 1 MiB ring buffer did not overflow")


class LostTwoProjects(Faults):
    roots = 2

    def test_only_the_project_that_lost_records_is_rescanned(self):
        other = self.trees[1].path
        for i in range(500):
            write(os.path.join(other, "quiet%03d" % i), b"q")
        self.start(extra=["--ringbuf-mb", "1", "--no-kernel-coalesce"])
        self.marker()
        self.marker(root=other)
        self.stopped(lambda: touch_many([os.path.join(self.root, "n%05d" % i)
                                         for i in range(20000)]))
        self.assertIsNotNone(self.d.wait(lambda e: e.get("event") == "overflow", 30))
        st = status(RUN_DIR)     # the control socket answers while the crawl runs
        self.assertEqual(sorted(p["name"] for p in st["projects"]),
                         sorted(os.path.basename(t.path) for t in self.trees))
        self.assertTrue(all(isinstance(p["rescanning"], bool) for p in st["projects"]), st)
        self.assertTrue(self.wait_named({"n%05d" % i for i in range(20000)}))
        self.marker()
        self.marker(root=other)
        rescanned = {e["project"] for e in self.d.seen if e.get("event") == "rescan"}
        self.assertEqual(rescanned, {os.path.basename(self.root)})


class LostFanotify(Faults):
    backend = "fanotify"

    def test_fanotify_queue_overflow_is_repaired_by_a_rescan(self):
        # 32 768 creates while stopped: more than the 16 384 events the queue holds
        self.check_new_dirs_settled(reason="fanotify_queue", ndirs=32)
