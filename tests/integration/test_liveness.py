# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# test_liveness.py: the daemon never falls behind the kernel without noticing; bursts, then a probe.
import os
import threading
import time

from harness import SANITIZED, DaemonCase, RUN_DIR, write
from test_lost import status

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
