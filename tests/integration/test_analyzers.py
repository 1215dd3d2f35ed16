# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# test_analyzers.py: analyzer commands run for settled changes: no shell, owner's uid, retries.
import json
import os
import tempfile
import time

from harness import PLAIN_VFSWATCH, RUN_DIR, DaemonCase, Tree, ask, write

HERE = os.path.dirname(os.path.abspath(__file__))
RECORD = os.path.join(os.path.dirname(os.path.dirname(HERE)), "scripts", "analyzers",
                      "record-file.sh")


class Analyzers(DaemonCase):
    backend = "tracepoint"

    def setUp(self):
        super().setUp()
        self.logdir = tempfile.mkdtemp(prefix="vw-an-")
        os.chmod(self.logdir, 0o777)
        self.log = os.path.join(self.logdir, "calls.log")

    def start_with(self, analyzers, extra_projects=(), extra=(), **kw):
        cfg = os.path.join(self.logdir, "c.json")
        if os.stat(self.root).st_uid == 0:
            # a root-owned tree runs analyzers as root only when the config says so
            analyzers = [dict(a, user=a.get("user", "root")) for a in analyzers]
        projects = [{"root": self.root, "analyzers": analyzers}] + list(extra_projects)
        write(cfg, json.dumps({"projects": projects}).encode())
        self.start(roots=[], raw=False, extra=["--config", cfg] + list(extra), **kw)
        self.marker()

    def calls(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log, "rb") as f:
            return [tuple(l.split(b"\t")) for l in f.read().splitlines()]

    def results(self, name):
        return [e for e in self.d.seen if e.get("event") == "analyzer" and e["analyzer"] == name]

    def wait_results(self, name, n, timeout=20):
        self.d.wait(lambda e: len(self.results(name)) >= n, timeout)
        return self.results(name)

    def test_per_event_analyzer_gets_the_matching_settled_changes(self):
        self.start_with([{"name": "py", "match": ["*.py"],
                          "on_change": [RECORD, self.log, "{event}", "{path}"],
                          "on_delete": [RECORD, self.log, "{event}", "{relpath}"]}])
        write(os.path.join(self.root, "a.py"), b"1")
        write(os.path.join(self.root, "notes.txt"), b"1")
        self.wait_results("py", 1)
        write(os.path.join(self.root, "a.py"), b"2", "ab")
        self.wait_results("py", 2)
        os.unlink(os.path.join(self.root, "a.py"))
        res = self.wait_results("py", 3)
        self.assertEqual([r["status"] for r in res], ["ok", "ok", "ok"])
        self.assertEqual([r["change"] for r in res], ["create", "modify", "delete"])
        abs_a = os.path.join(self.root, "a.py").encode()
        self.assertEqual([c[:2] for c in self.calls()],
                         [(b"create", abs_a), (b"modify", abs_a), (b"delete", b"a.py")])

    def test_hostile_name_is_one_literal_argument_and_owner_uid_is_used(self):
        os.chown(self.root, 65534, 65534)
        self.start_with([{"name": "rec", "match": ["*rm -rf*"],
                          "on_change": [RECORD, self.log, "{event}", "{path}"]}])
        name = "; rm -rf ~ $(touch pwned) 'x' \"y\" *"
        write(os.path.join(self.root, name), b"z")
        res = self.wait_results("rec", 1)
        self.assertEqual(res[0]["status"], "ok")
        (event, path, uid, _), = self.calls()
        self.assertEqual(path.decode(), os.path.join(self.root, name))
        self.assertEqual(uid, b"65534")
        self.assertFalse(os.path.exists(os.path.join(self.root, "pwned")))

    def test_a_query_during_a_checkout_answers_now_and_analyzers_wait_for_its_end(self):
        """A query settles a batch a VCS lock holds, for its answer; the analyzers of those
        changes still run once, after the lock is gone, as they would have without the query."""
        os.mkdir(os.path.join(self.root, ".git"))
        lock = os.path.join(self.root, ".git", "index.lock")
        self.start_with([{"name": "py", "match": ["*.py"],
                          "on_change": [RECORD, self.log, "{event}", "{relpath}"]},
                         {"name": "all", "match": ["*.py"],
                          "batch": [RECORD, self.log, "batch", "-"]}],
                        extra=["--settle", "100"])
        cursor = ask({"cmd": "changes", "project": self.root})[-1]["cursor"]
        write(lock, b"")
        write(os.path.join(self.root, "a.py"), b"1")
        lines = ask({"cmd": "changes", "project": self.root, "since": cursor})
        self.assertEqual([(e["event"], e["path"]) for e in lines if "event" in e],
                         [("create", "a.py")], lines)
        time.sleep(1.5)         # many settle periods and ticks: nothing runs during the checkout
        self.assertEqual(self.calls(), [])
        self.assertEqual(self.results("py") + self.results("all"), [])
        os.unlink(lock)
        self.wait_results("py", 1)
        self.wait_results("all", 1)
        self.assertEqual(sorted(c[:2] for c in self.calls()),
                         [(b"batch", b"-"), (b"create", b"a.py")])

    def test_failing_analyzer_is_retried_then_dead_lettered(self):
        self.start_with([{"name": "bad", "retries": 2, "match": ["f"],
                          "on_change": [RECORD, self.log, "{event}", "{path}", "fail"]}])
        write(os.path.join(self.root, "f"), b"x")
        res = self.wait_results("bad", 3)
        self.assertEqual([(r["status"], r["exit_code"], r["attempt"]) for r in res],
                         [("failed", 3, 1), ("failed", 3, 2), ("dead", 3, 3)])
        self.assertEqual(len(self.calls()), 3)
        with open(os.path.join(RUN_DIR, "state", "dead-letters.jsonl")) as f:
            dead = [json.loads(l) for l in f]
        self.assertIn(("bad", os.path.join("f")), [(d["analyzer"], d["paths"][0]["path"])
                                                  for d in dead])

    def test_hanging_analyzer_times_out_while_others_keep_flowing(self):
        other = Tree()
        self.trees.append(other)
        self.start_with([{"name": "slow", "timeout_ms": 500, "retries": 0, "match": ["h"],
                          "on_change": [RECORD, self.log, "{event}", "{path}", "hang"]},
                         {"name": "quick", "match": ["q"],
                          "on_change": [RECORD, self.log, "{event}", "{path}"]}],
                        extra_projects=[{"root": other.path}])
        write(os.path.join(self.root, "h"), b"x")
        write(os.path.join(self.root, "q"), b"x")
        write(os.path.join(other.path, "meanwhile"), b"y")
        self.expect("create", "meanwhile", root=other.path)
        quick = self.wait_results("quick", 1, timeout=0.4)     # while "slow" still hangs
        self.assertEqual([r["status"] for r in quick], ["ok"])
        res = self.wait_results("slow", 1)
        self.assertEqual(res[0]["status"], "dead")
        self.assertEqual(res[0]["signal"], 15)
        self.assertLess(res[0]["duration_ms"], 5000)

    def test_flooding_analyzer_does_not_disturb_the_stream(self):
        self.start_with([{"name": "loud", "match": ["f1"],
                          "on_change": [RECORD, self.log, "{event}", "{path}", "flood"]}])
        write(os.path.join(self.root, "f1"), b"x")
        res = self.wait_results("loud", 1)
        self.assertEqual(res[0]["status"], "ok")
        write(os.path.join(self.root, "f2"), b"x")
        self.expect("create", "f2")

    def test_an_analyzer_rewriting_its_file_is_not_fed_back(self):
        stamp = os.path.join(os.path.dirname(RECORD), "append-stamp.sh")
        self.start_with([{"name": "fmt", "match": ["*.go"], "on_change": [stamp, "{path}"]}])
        write(os.path.join(self.root, "main.go"), b"package main\n")
        self.wait_results("fmt", 1)
        by = self.d.wait(lambda e: e.get("by") == "fmt", 10)
        self.assertIsNotNone(by, "the analyzer's own change is not tagged on the stream")
        self.assertEqual(by["path"], "main.go")
        self.marker()
        import time
        time.sleep(1)
        self.marker()
        self.assertEqual(len(self.results("fmt")), 1, "the formatter ran on its own write")
        with open(os.path.join(self.root, "main.go")) as f:
            self.assertEqual(f.read().count("stamped"), 1)

    def batches(self):
        if not os.path.exists(self.log):
            return []
        out, cur = [], []
        with open(self.log) as f:
            for line in f:
                if line.startswith("--- end of batch"):
                    out.append(cur)
                    cur = []
                else:
                    cur.append(json.loads(line))
        return out

    def test_batch_analyzer_gets_whole_batches_and_what_came_meanwhile(self):
        batch = os.path.join(os.path.dirname(RECORD), "batch-log.sh")
        self.start_with([{"name": "lint", "match": ["*.c"], "batch": [batch, self.log, "1"]}])
        write(os.path.join(self.root, "a.c"), b"1")
        write(os.path.join(self.root, "readme.md"), b"1")
        import time
        deadline = time.monotonic() + 10
        while len(self.batches()) < 1 and time.monotonic() < deadline:
            time.sleep(0.01)    # the log is written as the run starts
        # the first run is still busy for a second: these wait, then go together
        time.sleep(0.2)
        write(os.path.join(self.root, "b.c"), b"2")
        time.sleep(0.2)
        write(os.path.join(self.root, "c.c"), b"3")
        res = self.wait_results("lint", 2)
        self.assertEqual([(r["status"], r["changes"]) for r in res], [("ok", 1), ("ok", 2)])
        got = [[(e["event"], e["path"]) for e in b] for b in self.batches()]
        self.assertEqual(got, [[("create", "a.c")], [("create", "b.c"), ("create", "c.c")]])
        self.assertTrue(all("batch" in e for b in self.batches() for e in b))

    def test_analyzer_output_reaches_the_log_bounded(self):
        self.start_with([{"name": "loud", "match": ["f1"],
                          "on_change": [RECORD, self.log, "{event}", "{path}", "flood"]}])
        write(os.path.join(self.root, "f1"), b"x")
        self.wait_results("loud", 1)
        self.d.wait_err("the rest is dropped")
        err = "".join(self.d.err)
        self.assertTrue("analyzer loud: analyzer output that nobody asked for" in err,
                        "no output in the log")
        self.assertTrue("the rest is dropped" in err, "no note of the cut: %s" % err[-300:])
        self.assertLess(len(err), 200 * 1024)

    def test_crashing_analyzer_is_retried_then_dead(self):
        self.start_with([{"name": "boom", "retries": 1, "match": ["f"],
                          "on_change": [RECORD, self.log, "{event}", "{path}", "crash"]}])
        write(os.path.join(self.root, "f"), b"x")
        res = self.wait_results("boom", 2)
        self.assertEqual([(r["status"], r.get("signal")) for r in res],
                         [("failed", 11), ("dead", 11)])

    def test_dead_letters_can_be_retried(self):
        from test_control import ctl
        flag = os.path.join(self.logdir, "broken")
        write(flag, b"")
        self.start_with([{"name": "flaky", "retries": 0, "match": ["doc*"],
                          "on_change": [RECORD, self.log, "{event}", "{path}", "fail-if",
                                        flag]}])
        write(os.path.join(self.root, "doc1"), b"x")
        self.assertEqual(self.wait_results("flaky", 1)[0]["status"], "dead")
        os.unlink(flag)                     # fixed
        r = ctl("retry-dead", os.path.basename(self.root))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["queued"], 1)
        res = self.wait_results("flaky", 2)
        self.assertEqual(res[1]["status"], "ok")
        with open(os.path.join(RUN_DIR, "state", "dead-letters.jsonl")) as f:
            left = [json.loads(l) for l in f]
        self.assertFalse([d for d in left if d["analyzer"] == "flaky"
                          and d["project"] == os.path.basename(self.root)],
                         "a retried job stayed in the dead-letter file")

    def test_resource_limits_apply_to_the_analyzer(self):
        self.start_with([{"name": "lim", "match": ["f"], "limits": {"nofile": 17},
                          "on_change": [RECORD, self.log, "{event}", "{path}"]}])
        write(os.path.join(self.root, "f"), b"x")
        self.wait_results("lim", 1)
        self.assertEqual(self.calls()[0][3], b"17")

    def test_queue_stays_bounded_under_a_flood_and_rss_flat(self):
        from test_control import status
        self.start_with([{"name": "slow", "match": ["flood/*"], "concurrency": 2,
                          "on_change": [RECORD, self.log, "{event}", "{path}", "slow"]}],
                        binary=PLAIN_VFSWATCH)     # memory is what it measures
        before = status()["rss_anon_kib"]
        d = os.path.join(self.root, "flood")
        os.mkdir(d)
        import subprocess
        subprocess.run("cd %s && seq -f 'f%%g' 100000 | xargs touch" % d, shell=True,
                       check=True)
        self.d.wait(lambda e: e.get("event") == "analyzer" and e["status"] == "dropped", 60)
        self.d.wait(lambda e: False, 3)
        st = status()
        self.assertLessEqual(st["analyzer_jobs_queued"], 10000)
        dropped = len([e for e in self.d.seen if e.get("event") == "analyzer"
                       and e["status"] == "dropped"])
        self.assertGreater(dropped, 0, "no job was ever refused: the queue is not bounded")
        self.assertLess(st["rss_anon_kib"] - before, 64 * 1024,
                        "RSS grew by %d KiB" % (st["rss_anon_kib"] - before))

    def test_named_user_and_retry_delay(self):
        self.start_with([{"name": "who", "match": ["f"], "user": "nobody", "retries": 1,
                          "retry_delay_ms": 300,
                          "on_change": [RECORD, self.log, "{event}", "{path}", "fail"]}])
        write(os.path.join(self.root, "f"), b"x")
        res = self.wait_results("who", 2)
        self.assertEqual([r["status"] for r in res], ["failed", "dead"])
        self.assertEqual({c[2] for c in self.calls()}, {b"65534"})
        t = [json.loads(json.dumps(r))["time"] for r in res]
        import datetime
        gap = (datetime.datetime.fromisoformat(t[1][:-1]) -
               datetime.datetime.fromisoformat(t[0][:-1])).total_seconds()
        self.assertGreaterEqual(gap, 0.3)

    def test_a_grandchild_of_the_analyzer_is_not_fed_back_either(self):
        stamp = os.path.join(os.path.dirname(RECORD), "stamp-via-child.sh")
        self.start_with([{"name": "fmt2", "match": ["*.rs"], "on_change": [stamp, "{path}"]}])
        write(os.path.join(self.root, "lib.rs"), b"fn main() {}\n")
        self.wait_results("fmt2", 1)
        by = self.d.wait(lambda e: e.get("by") == "fmt2", 10)
        self.assertIsNotNone(by, "the grandchild's change is not tagged")
        self.marker()
        import time
        time.sleep(1)
        self.marker()
        self.assertEqual(len(self.results("fmt2")), 1, "the formatter ran on its own write")
