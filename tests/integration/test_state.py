# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# test_state.py: what changed while the daemon was down, or while records were lost, is reported.
import os

from harness import DaemonCase, write


class State(DaemonCase):
    backend = "tracepoint"

    def rescans(self):
        return {(e["event"], e["path"]) for e in self.d.seen if e.get("source") == "rescan"}

    def test_changes_made_while_down_are_reported_on_start(self):
        write(os.path.join(self.root, "edit"), b"v1")
        write(os.path.join(self.root, "gone"), b"x")
        os.mkdir(os.path.join(self.root, "olddir"))
        self.start(raw=False)
        self.marker()
        self.assertEqual(self.rescans(), set(), "a first start has nothing to compare with")
        d, self.d = self.d, None
        self.assertEqual(d.stop(), 0)
        # while it is down
        write(os.path.join(self.root, "edit"), b"version 2")
        os.unlink(os.path.join(self.root, "gone"))
        write(os.path.join(self.root, "new"), b"n")
        os.mkdir(os.path.join(self.root, "newdir"))
        os.rmdir(os.path.join(self.root, "olddir"))
        self.start(raw=False)
        want = {("modify", "edit"), ("delete", "gone"), ("create", "new"),
                ("create", "newdir"), ("delete", "olddir")}
        self.d.wait(lambda e: self.rescans() >= want, 30)    # the rescan runs after ready
        self.marker()
        self.assertEqual({r for r in self.rescans() if not r[1].startswith(".marker")}, want)
        line = next(e for e in self.d.seen if e.get("source") == "rescan" and e["path"] == "newdir")
        self.assertEqual(line["type"], "dir")
        self.assertNotIn("pid", line)

    def test_lost_records_are_repaired_by_a_rescan(self):
        self.start(raw=False, extra=["--ringbuf-mb", "1", "--no-kernel-coalesce"])
        self.marker()
        os.kill(self.d.proc.pid, 19)    # SIGSTOP: the ring buffer fills up
        try:
            for i in range(20000):
                write(os.path.join(self.root, "lost%05d" % i), b"x")
        finally:
            os.kill(self.d.proc.pid, 18)
        want = {"lost%05d" % i for i in range(20000)}

        def creates():
            return [e["path"] for e in self.d.seen if e.get("event") == "create"
                    and e["path"] in want]
        self.assertIsNotNone(self.d.wait(lambda e: e.get("event") == "overflow", 30))
        self.assertIsNotNone(self.d.wait(lambda e: e.get("event") == "rescan" and
                                         e.get("phase") == "done", 60))
        self.d.wait(lambda e: len(creates()) >= len(want), 30)  # the batch read before it
        self.marker()
        got = creates()
        self.assertEqual(want - set(got), set(), "creates never reported")
        self.assertEqual(len(got), len(want), "some reported twice")
        self.assertTrue(any(e.get("source") == "rescan" for e in self.d.seen))
