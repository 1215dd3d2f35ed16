# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# test_control.py: one daemon, many projects: live add/remove, status, reload, socket security.
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time

from harness import RUN_DIR, VFSWATCH, DaemonCase, Tree, write


def ctl(*args):
    return subprocess.run([VFSWATCH, "ctl", "--run-dir", RUN_DIR] + list(args),
                          capture_output=True, text=True, timeout=30)


def status():
    r = subprocess.run([VFSWATCH, "status", "--run-dir", RUN_DIR], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def raw_request(data):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(os.path.join(RUN_DIR, "ctl.sock"))
    s.sendall(data)
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    s.close()
    return out


class Control(DaemonCase):
    backend = "tracepoint"

    def test_fifty_projects_each_get_exactly_their_own_events(self):
        trees = [Tree() for _ in range(50)]
        self.trees += trees
        self.start(roots=[t.path for t in trees])
        for i, t in enumerate(trees):
            write(os.path.join(t.path, "only-%d" % i))
        for i, t in enumerate(trees):
            self.expect("create", "only-%d" % i, root=t.path)
        for i, t in enumerate(trees):
            self.assertEqual({e["path"] for e in self.d.changes(t.path)}, {"only-%d" % i})

    def test_live_add_and_remove_lose_nothing_elsewhere(self):
        other = Tree()
        self.trees.append(other)
        self.start(roots=[self.root])
        stop = threading.Event()
        written = []

        def writer():
            i = 0
            while not stop.is_set():
                name = "w%05d" % i
                write(os.path.join(self.root, name))
                written.append(name)
                i += 1
                time.sleep(0.002)
        t = threading.Thread(target=writer)
        t.start()
        try:
            for _ in range(3):
                r = ctl("add", other.path, "--name", "other", "--ignore", "*.log")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(json.loads(r.stdout)["name"], "other")
                write(os.path.join(other.path, "seen"))
                write(os.path.join(other.path, "hidden.log"))
                self.expect("create", "seen", root=other.path)
                r = ctl("remove", "other")
                self.assertEqual(r.returncode, 0, r.stderr)
                os.unlink(os.path.join(other.path, "seen"))
        finally:
            stop.set()
            t.join()
        self.marker()
        got = {e["path"] for e in self.d.changes(self.root) if e["event"] == "create"}
        self.assertEqual(set(written) - got, set(), "changes lost during add/remove")
        self.assertFalse([e for e in self.d.changes(other.path) if e.get("path") == "hidden.log"])
        # after the last remove nothing of it is reported
        n = len(self.d.seen)
        write(os.path.join(other.path, "after"))
        self.marker()
        self.assertFalse([e for e in self.d.seen[n:] if e.get("root") == other.path
                          and "path" in e])
        self.assertEqual([e["event"] for e in self.d.seen if e.get("project") == "other"
                          and e["event"].startswith("project_")],
                         ["project_added", "project_removed"] * 3)

    def test_bad_requests_get_an_error_and_the_daemon_carries_on(self):
        self.start()
        r = ctl("add", self.root)
        self.assertEqual(r.returncode, 1)
        self.assertIn("already watched", r.stderr)
        self.assertEqual(ctl("remove", "nope").returncode, 1)
        for bad, want in [(b"not json\n", b"not a JSON object"),
                          (b'{"cmd": 5}\n', b'no \\"cmd\\" string'),
                          (b'{"cmd": "frobnicate"}\n', b"unknown cmd"),
                          (b'{"cmd": "add", "root": "relative"}\n', b"absolute path"),
                          (b'{"cmd": "add", "root": "/tmp", "ignore": [1]}\n', b"array of"),
                          (b"x" * 65536, b"request too large")]:   # the limit, no newline
            out = raw_request(bad)
            reply = json.loads(out)
            self.assertFalse(reply["ok"])
            self.assertIn(want, out)
        write(os.path.join(self.root, "still-alive"))
        self.expect("create", "still-alive")

    def test_idle_connections_are_timed_out_and_never_starve_a_working_one(self):
        self.start()
        idle = []
        for _ in range(200):    # far more than the daemon serves at once, none saying anything
            s = socket.socket(socket.AF_UNIX)
            s.connect(os.path.join(RUN_DIR, "ctl.sock"))
            idle.append(s)
        time.sleep(0.5)
        # a working client is served at once, in the place of the longest idle one
        for _ in range(3):
            r = subprocess.run([VFSWATCH, "status", "--run-dir", RUN_DIR], capture_output=True,
                               text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("backend", json.loads(r.stdout))
        # each silent one is told why it goes: made room for another, or timed out
        said = {}
        for s in idle:
            s.settimeout(20)
            data = s.recv(4096)
            err = json.loads(data.decode())["error"] if data else "(closed, nothing said)"
            key = "timeout" if "no request within" in err else "room" if "closed before" in \
                err else err
            said[key] = said.get(key, 0) + 1
            s.close()
        self.assertEqual(set(said), {"timeout", "room"}, said)
        # the first status took the place of one; the later ones found its slot free again
        self.assertEqual((said["room"], said["timeout"]), (200 - 63, 63), said)
        self.assertIn("backend", status())

    def test_status_reports_the_documented_fields(self):
        self.start()
        write(os.path.join(self.root, "s"))
        self.expect("create", "s")
        st = status()
        for key in ("version", "pid", "uptime_s", "backend", "mode", "projects",
                    "pending_paths", "indexed_paths", "lost", "unresolved", "rss_kib",
                    "rss_anon_kib", "kernel", "ok"):
            self.assertIn(key, st)
        self.assertEqual(st["pid"], self.d.proc.pid)
        self.assertEqual(st["backend"], "tracepoint")
        self.assertEqual(st["projects"][0]["root"], self.root)
        self.assertGreaterEqual(st["projects"][0]["changes"], 1)
        self.assertGreater(st["kernel"]["emitted"], 0)

    def test_non_root_client_is_refused(self):
        self.start()
        os.chmod(RUN_DIR, 0o755)
        code = ("import socket,sys; s=socket.socket(socket.AF_UNIX); "
                "s.connect(sys.argv[1]); s.sendall(b'{\"cmd\":\"list\"}\\n'); "
                "print(s.recv(4096).decode())")
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            "python3", "-c", code, os.path.join(RUN_DIR, "ctl.sock")],
                           capture_output=True, text=True, timeout=30)
        # the socket is 0600 root: connect itself is refused; were it not, the peer check is
        self.assertTrue("Permission denied" in r.stderr or "root only" in r.stdout,
                        r.stdout + r.stderr)
        self.assertEqual(oct(os.stat(os.path.join(RUN_DIR, "ctl.sock")).st_mode & 0o777), "0o600")

    def test_sighup_reload_adds_and_drops_projects(self):
        a, b = Tree(), Tree()
        self.trees += [a, b]
        cfg = os.path.join(tempfile.mkdtemp(prefix="vw-cfg-"), "c.json")
        write(cfg, json.dumps({"projects": [{"name": "a", "root": a.path}]}).encode())
        self.start(roots=[], extra=["--config", cfg])
        write(cfg, json.dumps({"projects": [{"name": "b", "root": b.path}]}).encode())
        self.d.proc.send_signal(signal.SIGHUP)
        self.d.wait(lambda e: e.get("event") == "project_added" and e["project"] == "b")
        self.assertIsNotNone(self.d.wait(lambda e: e.get("event") == "project_removed"
                                         and e["project"] == "a"))
        write(os.path.join(b.path, "in-b"))
        self.expect("create", "in-b", root=b.path)
        write(os.path.join(a.path, "in-a"))
        self.marker(root=b.path)
        self.assertFalse([e for e in self.d.changes(a.path) if "path" in e])
        # a broken config on reload changes nothing
        write(cfg, b"{broken")
        self.d.proc.send_signal(signal.SIGHUP)
        write(os.path.join(b.path, "still"))
        self.expect("create", "still", root=b.path)
        self.assertTrue(self.d.wait_err("keeping the running configuration"))

    def test_sighup_that_stops_ignoring_a_directory_shows_what_is_in_it(self):
        """A reload whose rules no longer ignore gen/: what gen/ holds is told (a crawl), and
        a write in it from then on is told too (the kernel no longer keeps it out)."""
        a = Tree()
        self.trees.append(a)
        os.mkdir(os.path.join(a.path, "gen"))
        write(os.path.join(a.path, "gen", "old"))
        cfg = os.path.join(tempfile.mkdtemp(prefix="vw-cfg-"), "c.json")
        write(cfg, json.dumps({"projects": [{"name": "a", "root": a.path,
                                             "ignore": ["gen/"]}]}).encode())
        self.start(roots=[], raw=False, extra=["--config", cfg])
        write(os.path.join(a.path, "gen", "hidden"))
        self.marker(root=a.path)
        self.assertFalse([e for e in self.d.seen if e.get("path", "").startswith("gen/")])
        write(cfg, json.dumps({"projects": [{"name": "a", "root": a.path}]}).encode())
        self.d.proc.send_signal(signal.SIGHUP)
        self.expect("create", "gen/old", root=a.path)
        self.expect("create", "gen/hidden", root=a.path)
        write(os.path.join(a.path, "gen", "new"))
        self.expect("create", "gen/new", root=a.path)

    def test_sigterm_during_a_burst_emits_every_settled_change(self):
        self.start(raw=False)
        self.marker()
        for i in range(300):
            write(os.path.join(self.root, "b%03d" % i))
        d, self.d = self.d, None
        self.assertEqual(d.stop(sig=signal.SIGTERM), 0)
        got = {e["path"] for e in d.seen if e.get("event") == "create"}
        self.assertEqual({"b%03d" % i for i in range(300)} - got, set())
        self.assertEqual(d.seen[-1]["event"], "stop")

    def test_deleted_root_is_reported_and_watched_again_when_back(self):
        self.start()
        os.rmdir(self.root)
        self.assertIsNotNone(self.d.wait(lambda e: e.get("event") == "root_gone"))
        # something else takes the old inode number first, so the new root gets another one
        hold = Tree()
        self.trees.append(hold)
        os.mkdir(os.path.join(hold.path, "squat"))
        os.mkdir(self.root)
        self.assertIsNotNone(self.d.wait(lambda e: e.get("event") == "root_back"))
        write(os.path.join(self.root, "after"))
        self.expect("create", "after")
        self.assertEqual(status()["projects"][0]["root"], self.root)

    def test_configured_group_may_use_the_socket(self):
        grp_name = "vwctl-test"
        if subprocess.run(["getent", "group", grp_name], capture_output=True).returncode:
            if subprocess.run(["groupadd", "-r", grp_name], capture_output=True).returncode:
                self.skipTest("cannot create a group here (groupadd)")
        gid = int(subprocess.run(["getent", "group", grp_name], capture_output=True,
                                 text=True).stdout.split(":")[2])
        cfg = os.path.join(tempfile.mkdtemp(prefix="vw-cfg-"), "c.json")
        write(cfg, json.dumps({"socket_group": grp_name,
                               "projects": [{"root": self.root}]}).encode())
        self.start(roots=[], extra=["--config", cfg])
        os.chmod(RUN_DIR, 0o755)
        sock = os.path.join(RUN_DIR, "ctl.sock")
        st = os.stat(sock)
        self.assertEqual((oct(st.st_mode & 0o777), st.st_gid), ("0o660", gid))
        code = ("import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); "
                "s.sendall(b'{\"cmd\":\"list\"}\\n'); print(s.recv(4096).decode())")
        ok = subprocess.run(["setpriv", "--reuid=65534", "--regid=%d" % gid, "--clear-groups",
                             "python3", "-c", code, sock], capture_output=True, text=True,
                            timeout=30)
        self.assertTrue(json.loads(ok.stdout)["ok"], ok.stdout + ok.stderr)
        other = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                "python3", "-c", code, sock], capture_output=True, text=True,
                               timeout=30)
        self.assertIn("Permission denied", other.stderr)

    def test_nested_roots_each_get_the_change(self):
        inner = os.path.join(self.root, "sub", "inner")
        os.makedirs(inner)
        self.start(roots=[self.root, inner])
        write(os.path.join(inner, "deep.txt"))
        self.expect("create", "sub/inner/deep.txt", root=self.root)
        self.expect("create", "deep.txt", root=inner)
        write(os.path.join(self.root, "top.txt"))
        self.expect("create", "top.txt")
        self.marker(root=inner)
        self.assertFalse([e for e in self.d.changes(inner) if e.get("path") == "top.txt"])
