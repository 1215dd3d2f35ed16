# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# test_clients.py: cursors, `vfswatch changes/subscribe/wait` over client.sock, who may read what.
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from harness import RUN_DIR, VFSWATCH, DaemonCase, Tree, write

NOBODY = 65534


def client(*args, user=None, timeout=30, input_text=None):
    """Run a vfswatch client command; returns (exit code, parsed stdout lines, stderr)."""
    cmd = [VFSWATCH] + list(args) + ["--run-dir", RUN_DIR]
    if user is not None:
        cmd = ["setpriv", "--reuid", str(user), "--regid", str(user), "--clear-groups"] + cmd
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return p.returncode, [json.loads(l) for l in p.stdout.splitlines()], p.stderr


def net(lines):
    return sorted((e["event"], e["path"]) for e in lines if "event" in e)


class Clients(DaemonCase):
    backend = "tracepoint"

    def setUp(self):
        super().setUp()
        os.chmod(RUN_DIR, 0o755)    # as the daemon makes its run dir: users reach client.sock

    def start_settled(self, extra=()):
        self.start(raw=False, extra=list(extra))
        self.marker()

    def cursor(self, user=None):
        rc, lines, err = client("changes", self.project(), user=user)
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(lines), 1, lines)
        return lines[0]["cursor"]

    def project(self):
        return os.path.basename(self.root)

    def settle(self):
        time.sleep(0.2)
        return self.marker()

    def test_every_settled_line_has_a_cursor_and_changes_since_is_the_net_change(self):
        write(os.path.join(self.root, "kept"), b"1")
        write(os.path.join(self.root, "gone"), b"1")
        os.mkdir(os.path.join(self.root, "src"))
        write(os.path.join(self.root, "src", "old.c"), b"1")
        moved = tempfile.mkdtemp(prefix="vw-in-")
        self.addCleanup(shutil.rmtree, moved, True)
        write(os.path.join(moved, "inside"), b"1")
        self.start_settled()
        cur = self.cursor()
        write(os.path.join(self.root, "kept"), b"2", "ab")
        write(os.path.join(self.root, "new"), b"1")
        write(os.path.join(self.root, "tmp"), b"1")
        self.settle()
        os.unlink(os.path.join(self.root, "gone"))
        os.unlink(os.path.join(self.root, "tmp"))
        os.chmod(os.path.join(self.root, "src", "old.c"), 0o600)
        os.rename(moved, os.path.join(self.root, "in"))
        self.settle()
        lines = [e for e in self.d.seen if "path" in e]
        self.assertTrue(all("cursor" in e for e in lines), lines)
        rc, got, err = client("changes", self.project(), "--since", cur)
        self.assertEqual(rc, 0, err)
        self.assertEqual(got[-1]["cursor"], lines[-1]["cursor"])
        want = [("attrib", "src/old.c"), ("create", "in"), ("create", "in/inside"),
                ("create", "new"), ("delete", "gone"), ("modify", "kept")]
        self.assertEqual([c for c in net(got) if not c[1].startswith(".marker")], want)
        # from the cursor of a line: what came after it only
        rc, got, err = client("changes", self.project(), "--since", got[-1]["cursor"])
        self.assertEqual((rc, got[:-1]), (0, []), err)
        # --match narrows the answer
        rc, got, _ = client("changes", self.project(), "--since", cur, "--match", "*.c")
        self.assertEqual(net(got), [("attrib", "src/old.c")])

    def test_changes_made_while_down_are_in_the_answer_after_a_restart(self):
        write(os.path.join(self.root, "a"), b"1")
        self.start_settled()
        cur = self.cursor()
        write(os.path.join(self.root, "before-stop"), b"1")
        self.settle()
        self.assertEqual(self.d.stop(), 0)
        write(os.path.join(self.root, "while-down"), b"1")
        os.unlink(os.path.join(self.root, "a"))
        self.start_settled()
        rc, got, err = client("changes", self.project(), "--since", cur)
        self.assertEqual(rc, 0, err)
        self.assertNotIn("fresh", got[-1])
        self.assertEqual([c for c in net(got) if not c[1].startswith(".marker")],
                         [("create", "before-stop"), ("create", "while-down"), ("delete", "a")])

    def test_a_cursor_the_journal_no_longer_covers_gives_a_fresh_listing(self):
        cfg = os.path.join(self.trees[0].path, "..", "vw-cfg-%d.json" % os.getpid())
        cfg = os.path.abspath(cfg)
        self.addCleanup(lambda: os.path.exists(cfg) and os.unlink(cfg))
        write(cfg, json.dumps({"journal_mb": 1}).encode())
        write(os.path.join(self.root, "first"), b"1")
        self.start_settled(["--config", cfg])
        cur = self.cursor()
        d = os.path.join(self.root, "many")
        os.mkdir(d)
        for i in range(6000):   # ~1.8 MB of lines: the oldest half goes
            write(os.path.join(d, "f%05d-%s" % (i, "x" * 40)), b"1")
        self.settle()
        rc, got, err = client("changes", self.project(), "--since", cur)
        self.assertEqual(rc, 0, err)
        self.assertTrue(got[-1].get("fresh"), got[-1])
        paths = {e["path"] for e in got if "event" in e}
        self.assertIn("first", paths)
        self.assertEqual(len([p for p in paths if p.startswith("many/")]), 6000)
        self.assertTrue(all(e.get("fresh") for e in got if "event" in e))
        # a malformed cursor or one from another log: fresh as well, never a partial answer
        for bad in ("nonsense", "0000000000000000.1", cur + "x"):
            rc, got, _ = client("changes", self.project(), "--since", bad, "--match", "first")
            self.assertEqual((rc, got[-1].get("fresh"), net(got)), (0, True, [("create", "first")]))

    def test_a_user_reads_their_own_project_and_not_another_users(self):
        os.chown(self.root, NOBODY, NOBODY)
        other = Tree()
        self.addCleanup(other.cleanup)
        self.start_settled(["--watch", other.path])
        rc, got, err = client("changes", self.project(), user=NOBODY)
        self.assertEqual(rc, 0, err)
        # another user's project: the same words as one that does not exist
        rc1, _, err1 = client("changes", os.path.basename(other.path), user=NOBODY)
        rc2, _, err2 = client("changes", "no-such-project", user=NOBODY)
        self.assertEqual((rc1, rc2), (1, 1))
        self.assertEqual(err1.replace(os.path.basename(other.path), "P"),
                         err2.replace("no-such-project", "P"))
        rc, _, _ = client("changes", other.path, user=NOBODY)    # by root path: the same
        self.assertEqual(rc, 1)
        # a subscription of their own project sees its changes
        sub = subprocess.Popen(["setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY),
                                "--clear-groups", VFSWATCH, "subscribe", self.project(),
                                "--run-dir", RUN_DIR], stdout=subprocess.PIPE, text=True)
        try:
            first = json.loads(sub.stdout.readline())
            self.assertEqual(first["event"], "subscribed")
            write(os.path.join(self.root, "mine"), b"1")
            line = json.loads(sub.stdout.readline())
            self.assertEqual((line["event"], line["path"]), ("create", "mine"))
            self.assertEqual(line["cursor"].split(".")[0], first["cursor"].split(".")[0])
        finally:
            sub.kill()
            sub.wait()

    def test_config_readers_may_read(self):
        cfg = os.path.abspath(os.path.join(self.root, "..", "vw-cfg-r-%d.json" % os.getpid()))
        self.addCleanup(lambda: os.path.exists(cfg) and os.unlink(cfg))
        write(cfg, json.dumps({"projects": [{"root": self.root, "readers": ["nobody"]}]})
              .encode())
        self.start(roots=[], raw=False, extra=["--config", cfg])
        self.marker()
        rc, got, err = client("changes", self.project(), user=NOBODY)
        self.assertEqual(rc, 0, err)
        rc, _, err = client("changes", self.project(), user=NOBODY + 1)
        self.assertEqual(rc, 1, err)

    def test_a_stalled_subscriber_overflows_and_holds_back_nobody(self):
        self.start_settled()
        stalled = subprocess.Popen([VFSWATCH, "subscribe", self.project(), "--run-dir", RUN_DIR],
                                   stdout=subprocess.PIPE)
        live = subprocess.Popen([VFSWATCH, "subscribe", self.project(), "--run-dir", RUN_DIR,
                                 "--match", "probe*"], stdout=subprocess.PIPE, text=True)
        try:
            self.assertIn(b"subscribed", stalled.stdout.readline())
            self.assertIn("subscribed", live.stdout.readline())
            os.kill(stalled.pid, signal.SIGSTOP)
            d = os.path.join(self.root, "flood")
            os.mkdir(d)
            for i in range(12000):     # several MiB of lines: more than a queue holds
                write(os.path.join(d, "f%05d-%s" % (i, "y" * 60)), b"1")
            self.settle()
            # the stdout stream and the other subscriber go on at once
            t0 = time.monotonic()
            write(os.path.join(self.root, "probe1"), b"1")
            self.expect("create", "probe1")
            line = json.loads(live.stdout.readline())
            self.assertEqual(line["path"], "probe1")
            self.assertLess(time.monotonic() - t0, 5)
            os.kill(stalled.pid, signal.SIGCONT)
            out, _ = stalled.communicate(timeout=60)
            lines = [json.loads(l) for l in out.splitlines()]
            self.assertEqual(stalled.returncode, 1)
            over = lines[-1]
            self.assertEqual((over["event"], over["reason"]), ("overflow", "subscriber_queue"))
            told = [e for e in lines if e.get("event") == "create"]
            self.assertGreater(len(told), 0)
            self.assertEqual(over["cursor"], told[-1]["cursor"])   # where to resume
            rc, got, err = client("changes", self.project(), "--since", over["cursor"])
            self.assertEqual(rc, 0, err)
            rest = {e["path"] for e in got if "event" in e}

            def seq(e):
                return int(e["cursor"].split(".")[1])
            # exactly what the stream said after that cursor (a file may be named again,
            # its create and its write in two batches)
            after = {e["path"] for e in self.d.seen if "cursor" in e and seq(e) > seq(over)}
            self.assertEqual(rest, after)
            self.assertEqual(len([p for p in rest | {e["path"] for e in told}
                                  if p.startswith("flood/")]), 12000)
        finally:
            for p in (stalled, live):
                if p.poll() is None:
                    os.kill(p.pid, signal.SIGCONT)
                    p.kill()
                p.wait()

    def test_wait_returns_on_a_matching_change_and_times_out_otherwise(self):
        self.start_settled()
        w = subprocess.Popen([VFSWATCH, "wait", self.project(), "--match", "*.go",
                              "--timeout", "20", "--run-dir", RUN_DIR],
                             stdout=subprocess.PIPE, text=True)
        time.sleep(0.5)
        write(os.path.join(self.root, "notes.txt"), b"1")
        self.settle()
        self.assertIsNone(w.poll(), "returned on a change that does not match")
        write(os.path.join(self.root, "main.go"), b"1")
        out, _ = w.communicate(timeout=20)
        self.assertEqual(w.returncode, 0)
        self.assertEqual(json.loads(out)["path"], "main.go")
        t0 = time.monotonic()
        rc, got, err = client("wait", self.project(), "--timeout", "0.5")
        self.assertEqual((rc, got), (1, []))
        self.assertIn("no change", err)
        self.assertLess(time.monotonic() - t0, 5)

    def test_bad_requests_get_an_error_line_and_the_daemon_goes_on(self):
        self.start_settled()
        for req in (b"not json\n", b"[1,2]\n", b'{"cmd":"nope","project":"x"}\n',
                    b'{"cmd":"changes"}\n', b'{"cmd":"changes","project":"x","since":5}\n',
                    b'{"cmd":"subscribe","project":"x","match":"*.c"}\n',
                    b"\xff\xfe{\n", b"x" * 9000):
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(10)
            s.connect(os.path.join(RUN_DIR, "client.sock"))
            s.sendall(req)
            data = b""
            while True:
                got = s.recv(65536)
                if not got:
                    break
                data += got
            s.close()
            reply = json.loads(data.decode().splitlines()[0])
            self.assertIn("error", reply, (req, data))
        rc, _, err = client("changes", self.project(), "--since")
        self.assertEqual(rc, 2, err)     # usage
        self.assertEqual(self.cursor()[:16], self.cursor()[:16])
        write(os.path.join(self.root, "still"), b"1")
        self.expect("create", "still")

    def test_a_user_cannot_hold_every_connection_and_silent_ones_are_timed_out(self):
        self.start_settled()
        hog = r"""
import json, socket, sys, time
socks = []
for i in range(40):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    socks.append(s)
said, t0 = {}, time.monotonic()
while len(said) < len(socks) and time.monotonic() - t0 < 30:
    for i, s in enumerate(socks):
        if i in said:
            continue
        s.settimeout(0.05)
        try:
            data = s.recv(4096)
        except socket.timeout:
            continue
        said[i] = (json.loads(data.decode().splitlines()[0])["error"] if data else "closed",
                   round(time.monotonic() - t0, 1))
print(json.dumps(list(said.values())))
"""
        p = subprocess.Popen(["setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY),
                              "--clear-groups", "python3", "-c", hog,
                              os.path.join(RUN_DIR, "client.sock")],
                             stdout=subprocess.PIPE, text=True)
        time.sleep(1)
        # meanwhile everybody else is served
        rc, lines, err = client("changes", self.project())
        self.assertEqual(rc, 0, err)
        out, _ = p.communicate(timeout=60)
        said = json.loads(out)
        refused = [t for e, t in said if "too many connections" in e]
        timed_out = [t for e, t in said if "no request within" in e]
        self.assertEqual((len(refused), len(timed_out)), (8, 32), said)
        self.assertLess(max(refused), min(timed_out), said)     # refused at once
        self.assertTrue(all(4 <= t <= 20 for t in timed_out), said)


class FanotifyClients(Clients):
    backend = "fanotify"


def prometheus_parser():
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:     # a python3 of its own (pyenv): Debian's package is still there
        import sys
        sys.path.append("/usr/lib/python3/dist-packages")
        from prometheus_client.parser import text_string_to_metric_families
    return text_string_to_metric_families


class Metrics(DaemonCase):
    backend = "tracepoint"

    def test_metrics_file_parses_and_its_counters_match_status(self):
        from test_control import status
        parse = prometheus_parser()
        out = tempfile.mkdtemp(prefix="vw-metrics-")
        self.addCleanup(shutil.rmtree, out, True)
        prom = os.path.join(out, "vfswatch.prom")
        cfg = os.path.join(out, "c.json")
        write(cfg, json.dumps({"metrics_file": prom, "projects": [
            {"root": self.root, "name": 'we"ird\\name'}]}).encode())
        self.start(roots=[], raw=False, extra=["--config", cfg])
        self.assertTrue(os.path.exists(prom), "no metrics file at start")
        first = os.stat(prom).st_mtime_ns
        write(os.path.join(self.root, "a"), b"1")
        write(os.path.join(self.root, "b"), b"1")
        self.expect("create", "b")
        write(os.path.join(self.root, "a"), b"2", "ab")
        os.unlink(os.path.join(self.root, "b"))
        self.expect("delete", "b")
        deadline = time.monotonic() + 15
        while os.stat(prom).st_mtime_ns == first and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertNotEqual(os.stat(prom).st_mtime_ns, first, "not rewritten within 15 s")
        with open(prom) as f:
            text = f.read()
        st = status()
        fams = {f.name: f for f in parse(text)}     # raises on anything malformed
        changes = {s.labels["event"]: s.value for s in fams["vfswatch_changes"].samples
                   if s.labels["project"] == 'we"ird\\name'}
        proj = [p for p in st["projects"] if p["name"] == 'we"ird\\name'][0]
        self.assertEqual(changes, {k: float(v) for k, v in proj["events"].items()})
        self.assertEqual((changes["create"], changes["modify"], changes["delete"]), (2, 1, 1))
        self.assertEqual(fams["vfswatch_changes"].type, "counter")
        self.assertEqual(fams["vfswatch_lost_records"].samples[0].value, st["lost"])
        jobs = {s.labels["status"]: s.value for s in fams["vfswatch_analyzer_jobs"].samples}
        self.assertEqual(jobs, {k: float(v) for k, v in st["analyzer_jobs"].items()})
        kernel = {s.labels["counter"]: s.value for s in fams["vfswatch_kernel"].samples}
        self.assertEqual(set(kernel), set(st["kernel"]))
        self.assertEqual(fams["vfswatch_subscribers"].samples[0].value, st["subscribers"])


class UserProjects(DaemonCase):
    backend = "tracepoint"

    def setUp(self):
        super().setUp()
        os.chmod(RUN_DIR, 0o755)

    def ctl(self, *args, user=NOBODY):
        cmd = ["setpriv", "--reuid", str(user), "--regid", str(user), "--clear-groups",
               VFSWATCH, "ctl", "--run-dir", RUN_DIR] + list(args)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return p.returncode, p.stdout, p.stderr

    def test_a_user_adds_a_directory_they_own_and_only_that_and_removes_it(self):
        cfg = os.path.abspath(os.path.join(self.root, "..", "vw-cfg-u-%d.json" % os.getpid()))
        self.addCleanup(lambda: os.path.exists(cfg) and os.unlink(cfg))
        write(cfg, json.dumps({"user_projects": 1, "projects": [{"root": self.root}]}).encode())
        self.start(roots=[], raw=False, extra=["--config", cfg])
        self.marker()
        mine, second = Tree(), Tree()
        self.addCleanup(mine.cleanup)
        self.addCleanup(second.cleanup)
        os.chown(mine.path, NOBODY, NOBODY)
        os.chown(second.path, NOBODY, NOBODY)
        rc, out, err = self.ctl("add", mine.path, "--name", "mine")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["name"], "mine")
        self.assertEqual(self.d.wait(lambda e: e.get("event") == "project_added")["project"],
                         "mine")
        # its changes: subscribed to, and in the stream
        rc, lines, err = client("changes", "mine", user=NOBODY)
        self.assertEqual(rc, 0, err)
        write(os.path.join(mine.path, "f"), b"1")
        self.expect("create", "f", root=mine.path)
        # not a directory of somebody else, not over the limit, not what another added
        rc, _, err = self.ctl("add", self.root)
        self.assertEqual(rc, 1)
        self.assertIn("not yours", err)
        rc, _, err = self.ctl("add", second.path)
        self.assertEqual(rc, 1)
        self.assertIn("limit", err)
        rc, _, err = self.ctl("remove", os.path.basename(self.root))
        self.assertEqual(rc, 1)
        self.assertIn("that you added", err)
        rc, _, err = self.ctl("remove", "mine")
        self.assertEqual(rc, 0, err)
        self.assertIsNotNone(self.d.wait(lambda e: e.get("event") == "project_removed"))
        # the status socket stays root's
        rc, _, _ = self.ctl("list")
        self.assertEqual(rc, 1)

    def test_events_filter_the_kinds_of_change(self):
        self.start(raw=False)
        self.marker()
        os.chmod(RUN_DIR, 0o755)
        rc, lines, err = client("changes", os.path.basename(self.root))
        cur = lines[-1]["cursor"]
        write(os.path.join(self.root, "a"), b"1")
        write(os.path.join(self.root, "b"), b"1")
        self.expect("create", "b")
        os.unlink(os.path.join(self.root, "a"))
        self.expect("delete", "a")
        rc, got, err = client("changes", os.path.basename(self.root), "--since", cur,
                              "--events", "create")
        self.assertEqual(rc, 0, err)
        self.assertEqual(net(got), [("create", "b")])
        rc, _, err = client("changes", os.path.basename(self.root), "--events", "bogus")
        self.assertEqual(rc, 1)
        self.assertIn("not a kind of change", err)
