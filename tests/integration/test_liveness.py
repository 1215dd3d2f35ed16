# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# test_liveness.py: the daemon never falls behind the kernel without noticing; bursts, then a probe.
import os
import shutil
import subprocess
import sys
import threading
import time

from harness import SANITIZED, DaemonCase, RUN_DIR, write
from test_exactness import replay, tree_types
from test_lost import drain, status

BURST = 20000                   # mkdirs in a tight loop, as a user's script would
BURSTS = int(os.environ.get("VW_BURSTS", "5"))  # make burst: 50
PROBE_S = 1.0                   # a write after the burst is told within this


def hooks_env(hooks):
    env = dict(os.environ)
    env["VFSWATCH_TEST_HOOKS"] = hooks
    return env


def mkdirs(root, n, prefix="d"):
    for i in range(n):
        os.mkdir(os.path.join(root, "%s%05d" % (prefix, i)))


class RingLiveness:
    """The ring buffer's wake-up protocol, provoked through the daemon's test hooks."""

    def test_a_wake_up_whose_records_a_reread_took_strands_nothing(self):
        # The race of the old protocol, made certain: every wake-up's records are taken by a
        # re-read first, so the read the wake-up causes finds nothing; a record sent in the same
        # wake-up window (200 ms here) carries no wake-up. The old rule cancelled the re-read
        # when a read found nothing: that record stayed in front of every later one, and the
        # kernel's adaptive wake-up never woke the daemon again.
        self.start(raw=True, env=hooks_env("reread_first,wakeup_us=200000"))
        write(os.path.join(self.root, "a"))
        self.expect("create", "a", timeout=5)
        write(os.path.join(self.root, "b"))     # within a's window: sent without a wake-up
        time.sleep(0.4)
        write(os.path.join(self.root, "c"))     # the next window's first record
        self.expect("create", "b", timeout=2)
        self.expect("create", "c", timeout=2)
        self.assertFalse([e for e in self.d.seen if e.get("event") == "overflow"])
        self.assertEqual(status(RUN_DIR).get("reader_stalls"), 0)

    def test_a_reader_that_falls_behind_is_told_and_repaired(self):
        # A reader bug stood in for by a hook (no re-read is ever planned): the record sent
        # without a wake-up is stranded. The liveness check at the next ticks finds a record
        # the kernel sent before the last tick unread with no read owed: an overflow line
        # (reader_stalled), the record read, a rescan, and the stall counted in status. When
        # a tick came between a's read and b, the next one is the idle tick (10 s).
        self.start(raw=True, env=hooks_env("no_reread,wakeup_us=200000"))
        write(os.path.join(self.root, "a"))
        self.expect("create", "a", timeout=5)
        write(os.path.join(self.root, "b"))     # stranded: nothing will read it
        e = self.d.wait(lambda e: e.get("event") == "overflow", 15)
        self.assertIsNotNone(e, "a stranded record was never told")
        self.assertEqual(e["reason"], "reader_stalled")
        self.assertGreaterEqual(e["lost"], 1)
        self.expect("create", "b", timeout=2)
        self.d.wait(lambda e: e.get("event") == "rescan" and e.get("phase") == "done", 10)
        st = status(RUN_DIR)
        self.assertGreaterEqual(st["reader_stalls"], 1)
        self.assertEqual(st["records_read"], st["records_sent"])

    def test_a_random_consumer_delay_loses_nothing(self):
        # every read of the ring waits up to 2 ms first: writes race with reads at every point
        self.start(raw=True, env=hooks_env("read_delay_us=2000"))
        names = ["f%03d" % i for i in range(300)]
        for i, n in enumerate(names):
            write(os.path.join(self.root, n))
            if i % 7 == 0:
                time.sleep(0.0003)
        for n in names:
            self.expect("create", n, timeout=5)
        self.assertFalse([e for e in self.d.seen if e.get("event") == "overflow"])


class Bursts:
    """A burst of 20 000 mkdirs, then a probe write that must be told within a second."""

    def check_burst(self, roots, run):
        prefix = "b%02d-" % run
        threads = [threading.Thread(target=mkdirs, args=(r, BURST, prefix)) for r in roots]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # every directory is told (from the kernel's records, or by a rescan after an
        # announced loss); a reader gone deaf tells none of the rest
        for r in roots:
            told = set()

            def all_told(e):
                if e.get("root") == r and e.get("event") == "create" and \
                        e.get("path", "").startswith(prefix):
                    told.add(e["path"])
                return len(told) >= BURST
            self.d.wait(all_told, 120)
            self.assertEqual(len(told), BURST,
                             "burst %d in %s: %d of %d told" % (run, r, len(told), BURST))
        for r in roots:
            probe = "probe-%02d" % run
            t0 = time.time()
            write(os.path.join(r, probe))
            self.expect("create", probe, root=r, timeout=PROBE_S * (4 if SANITIZED else 1))
            self.assertLess(time.time() - t0, PROBE_S * (4 if SANITIZED else 1))

    def test_bursts_of_mkdirs_then_a_probe_is_told_within_a_second(self):
        self.start(raw=False)
        for run in range(BURSTS):
            self.check_burst([self.root], run)
        st = status(RUN_DIR)
        self.assertEqual(st["reader_stalls"], 0)
        if "records_sent" in st:
            self.assertEqual(st["records_read"], st["records_sent"])

    def test_bursts_on_two_projects_at_once(self):
        self.start(raw=False)
        for run in range(max(1, BURSTS // 2)):
            self.check_burst([self.root, self.trees[1].path], run)
        self.assertEqual(status(RUN_DIR)["reader_stalls"], 0)


class TracepointLiveness(RingLiveness, DaemonCase):
    backend = "tracepoint"


class FentryLiveness(RingLiveness, DaemonCase):
    backend = "fentry"


class TracepointBursts(Bursts, DaemonCase):
    backend = "tracepoint"
    roots = 2


class FentryBursts(Bursts, DaemonCase):
    backend = "fentry"
    roots = 2


class FanotifyBursts(Bursts, DaemonCase):
    backend = "fanotify"
    roots = 2


class ReadyMeansReady:
    """From the ready line on, every change to a path that existed then is told (settled)."""

    RUNS = int(os.environ.get("VW_READY_RUNS", "100"))
    FILES = 3000        # a tree the start-up crawl takes a while over

    def make_tree(self, root):
        for i in range(self.FILES // 100):
            d = os.path.join(root, "d%02d" % i)
            os.mkdir(d)
            for j in range(100):
                with open(os.path.join(d, "f%03d" % j), "wb") as f:
                    f.write(b"%d" % j)
        os.mkdir(os.path.join(root, "sub"))
        for n in ("gone", "away", "moved", "rewritten", "chmodded"):
            for p in (os.path.join(root, n), os.path.join(root, "sub", n)):
                with open(p, "wb") as f:
                    f.write(b"before")
        os.mkdir(os.path.join(root, "deldir"))
        write(os.path.join(root, "deldir", "inner"))

    def changes(self, root, outside):
        """Right after ready: delete, rename away, rename within, rewrite, chmod."""
        for base in (root, os.path.join(root, "sub")):
            os.unlink(os.path.join(base, "gone"))
            os.rename(os.path.join(base, "away"), os.path.join(outside, "away-%d" % len(base)))
            os.rename(os.path.join(base, "moved"), os.path.join(base, "moved-to"))
            with open(os.path.join(base, "rewritten"), "wb") as f:
                f.write(b"after!")
            os.chmod(os.path.join(base, "chmodded"), 0o600)
        os.unlink(os.path.join(root, "deldir", "inner"))
        os.rmdir(os.path.join(root, "deldir"))

    def run_once(self, state):
        root = self.trees[0].mkdir("r%d" % self.n)
        outside = self.trees[1].mkdir("o%d" % self.n)
        self.n += 1
        self.make_tree(root)
        extra = ["--no-default-ignores", "--settle", "20"]
        if state == "none":
            extra += ["--no-state"]
        else:
            sd = self.trees[1].mkdir("state%d" % self.n)
            extra += ["--state-dir", sd]
            if state == "stale":    # a snapshot of a tree that differed
                write(os.path.join(root, "old"))
                d = self.start([root], raw=False, extra=extra)
                self.marker(root)
                self.assertEqual(d.stop(), 0)
                self.d = None
                os.unlink(os.path.join(root, "old"))
                write(os.path.join(root, "new-while-down"))
        before = tree_types(root)
        self.start([root], raw=False, extra=extra, on_ready=lambda: self.changes(root, outside))
        self.marker(root)
        drain(self.d, 0.2)      # the rest of the marker's batch
        lines = [e for e in self.d.seen if e.get("root") == root and "path" in e
                 and not e["path"].startswith(".marker-")]
        after = tree_types(root)
        got = replay(before, lines)
        self.assertEqual(got, after, "%s: the stream replayed from the tree at ready differs "
                         "from the tree; lines: %s" % (state, lines))
        for base in ("", "sub/"):
            for name, ev in (("rewritten", "modify"), ("chmodded", "attrib")):
                self.assertTrue([e for e in lines if e["path"] == base + name and
                                 e["event"] == ev],
                                "%s: no %s of %s%s in %s" % (state, ev, base, name, lines))
        self.assertEqual(self.d.stop(), 0)
        self.d = None
        shutil.rmtree(root)

    def test_changes_right_after_ready_are_told_under_load(self):
        self.n = 0
        hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(1)]
        try:
            for i in range(self.RUNS):
                self.run_once(("none", "fresh", "stale")[i % 3])
        finally:
            for h in hogs:
                h.kill()
                h.wait()


class TracepointReady(ReadyMeansReady, DaemonCase):
    backend = "tracepoint"
    roots = 2


class FentryReady(ReadyMeansReady, DaemonCase):
    backend = "fentry"
    roots = 2


class FanotifyReady(ReadyMeansReady, DaemonCase):
    backend = "fanotify"
    roots = 2
