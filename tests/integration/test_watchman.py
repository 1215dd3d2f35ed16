# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# test_watchman.py: Watchman's own Python client (Debian's python3-pywatchman, unchanged) against
# the daemon's watchman.sock, over BSER and JSON; and the `watchman` command line clients spawn.
import json
import os
import shutil
import subprocess
import tempfile
import time

from harness import RUN_DIR, VFSWATCH, DaemonCase, write

NODE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "node")
# Debian's client lives in the system Python's packages
SYSTEM_PYTHON = "/usr/bin/python3"
NOBODY = 65534

# What both client scripts start with: pywatchman's answers (bytes and all) as plain JSON.
PRELUDE = r"""
import json, os, sys, time
import pywatchman

def plain(v):
    if isinstance(v, bytes):
        return v.decode("utf-8", "surrogateescape")
    if isinstance(v, dict):
        return {plain(k): plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    return v

"""

# Run a list of commands through pywatchman.client on one connection; print each answer (or the
# error's text) as one JSON line. argv: socket, encoding ("bser" or "json"), commands (JSON).
CLIENT = PRELUDE + r"""
sock, enc, cmds = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
c = pywatchman.client(sockpath=sock, timeout=30, sendEncoding=enc, recvEncoding=enc)
for cmd in cmds:
    try:
        print(json.dumps(plain(c.query(*cmd))))
    except pywatchman.CommandError as e:
        print(json.dumps({"client_error": str(e)}))
c.close()
"""


# A subscription, as jest's watcher and Mercurial hold one: argv: socket, root, a list of steps
# (JSON): ["subscribe", name, spec] | ["write", path] | ["enter", state] | ["leave", state] |
# ["expect", name, seconds] (print the next PDU of that subscription, or null after seconds).
SUBSCRIBER = PRELUDE + r"""
sock, root, steps = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
c = pywatchman.client(sockpath=sock, timeout=30)
other = pywatchman.client(sockpath=sock, timeout=30)    # states from another connection
for step in steps:
    if step[0] == "subscribe":
        print(json.dumps(plain(c.query("subscribe", root, step[1], step[2]))))
    elif step[0] == "write":
        with open(os.path.join(root, step[1]), "ab") as f:
            f.write(b"x")
    elif step[0] in ("enter", "leave"):
        print(json.dumps(plain(other.query("state-" + step[0], root, step[1]))))
    elif step[0] == "expect":
        end = time.monotonic() + step[2]
        got = None
        while got is None and time.monotonic() < end:
            c.setTimeout(max(0.05, end - time.monotonic()))
            try:
                c.receive()
            except pywatchman.SocketTimeout:
                break
            pdus = c.getSubscription(step[1])
            if pdus:
                got = pdus[0]
        print(json.dumps(plain(got)))
c.close()
other.close()
"""


def have_pywatchman():
    return os.path.exists(SYSTEM_PYTHON) and subprocess.run(
        [SYSTEM_PYTHON, "-c", "import pywatchman"], capture_output=True).returncode == 0


class Watchman(DaemonCase):
    backend = "tracepoint"

    def setUp(self):
        super().setUp()
        if not have_pywatchman():
            self.skipTest("python3-pywatchman is not installed (scripts/deps.sh installs it)")
        self.sock = os.path.join(RUN_DIR, "watchman.sock")
        self.repo = tempfile.mkdtemp(prefix="vw-wm-")
        self.addCleanup(shutil.rmtree, self.repo, True)
        os.chmod(self.repo, 0o755)

    def wm(self, *cmds, enc="bser", user=None):
        """Each command's answer through pywatchman, on one connection."""
        cmd = [SYSTEM_PYTHON, "-c", CLIENT, self.sock, enc, json.dumps(list(cmds))]
        if user is not None:
            cmd = ["setpriv", "--reuid", str(user), "--regid", str(user), "--clear-groups"] + cmd
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        return [json.loads(line) for line in p.stdout.splitlines()]

    def start_settled(self):
        self.start(raw=False)
        self.marker()

    def test_capabilities_and_version_as_clients_check_them(self):
        self.start_settled()
        for enc in ("bser", "json"):
            v, caps, bad = self.wm(["version", {"optional": ["relative_root", "no-such"],
                                                "required": ["bser-v2"]}],
                                   ["list-capabilities"],
                                   ["version", {"required": ["no-such-thing"]}], enc=enc)
            self.assertEqual(v["capabilities"], {"relative_root": True, "no-such": False,
                                                 "bser-v2": True})
            self.assertTrue(all(int(x) >= 0 for x in v["version"].split(".")), v)
            self.assertIn("cmd-watch-project", caps["capabilities"])
            self.assertIn("no-such-thing", bad["client_error"])

    def test_watch_project_finds_the_repository_root(self):
        self.start_settled()
        os.makedirs(os.path.join(self.repo, ".git"))
        os.makedirs(os.path.join(self.repo, "src", "deep"))
        r, = self.wm(["watch-project", os.path.join(self.repo, "src", "deep")])
        self.assertEqual(r["watch"], os.path.realpath(self.repo))
        self.assertEqual(r["relative_path"], "src/deep")
        r, = self.wm(["watch-project", self.repo])
        self.assertNotIn("relative_path", r, "empty: left out")
        roots, = self.wm(["watch-list"])
        self.assertIn(os.path.realpath(self.repo), roots["roots"])

    def test_query_since_a_clock_tells_creates_modifies_deletes_and_renames(self):
        self.start_settled()
        root = os.path.realpath(self.repo)
        for n in ("keep.js", "gone.js", "old.js", "same.txt"):
            write(os.path.join(root, n), b"1")
        self.wm(["watch", root])
        clock = self.wm(["clock", root])[0]["clock"]
        write(os.path.join(root, "new.js"), b"x")
        write(os.path.join(root, "keep.js"), b"2", "ab")
        os.unlink(os.path.join(root, "gone.js"))
        os.rename(os.path.join(root, "old.js"), os.path.join(root, "moved.js"))
        for enc in ("bser", "json"):
            r, = self.wm(["query", root, {"since": clock, "fields": ["name", "exists", "new",
                                                                     "type", "size"],
                                          "expression": ["allof", ["type", "f"],
                                                         ["suffix", ["js"]]]}], enc=enc)
            self.assertFalse(r["is_fresh_instance"])
            got = {f["name"]: (f["exists"], f["new"]) for f in r["files"]}
            # (a name renamed onto may have been there at the clock: not said to be new)
            self.assertEqual(got.pop("moved.js")[0], True, r)
            self.assertEqual(got, {"new.js": (True, True), "keep.js": (True, False),
                                   "gone.js": (False, False), "old.js": (False, False)}, r)
            sizes = {f["name"]: f.get("size") for f in r["files"] if f["exists"]}
            self.assertEqual(sizes, {"new.js": 1, "keep.js": 2, "moved.js": 1})
            self.assertTrue(r["clock"].startswith("c:"))
        # the answer's clock: nothing since it
        r, = self.wm(["query", root, {"since": r["clock"], "fields": ["name"]}])
        self.assertEqual(r["files"], [])

    def test_a_foreign_or_stale_clock_gets_the_whole_tree_fresh(self):
        self.start_settled()
        root = os.path.realpath(self.repo)
        os.makedirs(os.path.join(root, "d"))
        write(os.path.join(root, "d", "a.c"), b"1")
        write(os.path.join(root, "b.c"), b"1")
        self.wm(["watch", root])
        for since in ("c:0:0", "c:1700000000:1234:1:42", "n:mine", None):
            spec = {"fields": ["name"], "expression": ["type", "f"]}
            if since:
                spec["since"] = since
            r, = self.wm(["query", root, spec])
            self.assertTrue(r["is_fresh_instance"], since)
            self.assertEqual(sorted(r["files"]), ["b.c", "d/a.c"], since)
        r, = self.wm(["query", root, {"since": "c:0:0", "fields": ["name"],
                                      "empty_on_fresh_instance": True}])
        self.assertEqual(r["files"], [])

    def test_generators_relative_root_and_terms(self):
        self.start_settled()
        root = os.path.realpath(self.repo)
        for n in ("a/x.js", "a/b/y.JS", "a/.hidden.js", "c/z.ts", "top.md"):
            os.makedirs(os.path.dirname(os.path.join(root, n)), exist_ok=True)
            write(os.path.join(root, n), b"12345")
        self.wm(["watch", root])
        q = lambda spec: sorted(self.wm(["query", root, dict(spec, fields=["name"])])[0]
                                ["files"])
        self.assertEqual(q({"suffix": ["js"]}), ["a/.hidden.js", "a/b/y.JS", "a/x.js"])
        self.assertEqual(q({"glob": ["a/**/*.js"]}), ["a/x.js"])
        self.assertEqual(q({"glob": ["a/**/*.js"], "glob_includedotfiles": True}),
                         ["a/.hidden.js", "a/x.js"])
        self.assertEqual(q({"path": [{"path": "a", "depth": 0}], "expression": ["type", "f"]}),
                         ["a/.hidden.js", "a/x.js"])
        self.assertEqual(q({"relative_root": "a", "expression": ["type", "f"]}),
                         [".hidden.js", "b/y.JS", "x.js"])
        self.assertEqual(q({"expression": ["allof", ["type", "f"],
                                           ["dirname", "a", ["depth", "ge", 1]]]}),
                         ["a/b/y.JS"])
        self.assertEqual(q({"expression": ["match", "*.js", "basename"]}), ["a/x.js"])
        self.assertEqual(q({"expression": ["imatch", "*.js", "basename"]}),
                         ["a/b/y.JS", "a/x.js"])
        self.assertEqual(q({"expression": ["anyof", ["name", "top.md"],
                                           ["iname", ["Z.TS"]]]}), ["c/z.ts", "top.md"])
        self.assertEqual(q({"expression": ["allof", ["type", "f"], ["size", "eq", 5],
                                           ["not", ["suffix", "js"]]]}),
                         ["c/z.ts", "top.md"])
        self.assertEqual(q({"expression": ["type", "d"]}), ["a", "a/b", "c"])

    def subscriber(self, root, steps):
        cmd = [SYSTEM_PYTHON, "-c", SUBSCRIBER, self.sock, root, json.dumps(steps)]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        return [json.loads(line) for line in p.stdout.splitlines()]

    def test_a_subscription_receives_live_changes_and_waits_for_a_deferring_state(self):
        self.start_settled()
        root = os.path.realpath(self.repo)
        write(os.path.join(root, "before.txt"), b"1")
        self.wm(["watch", root])
        spec = {"fields": ["name", "exists", "new"], "expression": ["type", "f"],
                "defer": ["hg.update"]}
        out = self.subscriber(root, [
            ["subscribe", "s1", spec],
            ["expect", "s1", 10],            # the first answer: fresh, everything
            ["write", "a.txt"],
            ["expect", "s1", 10],
            ["enter", "hg.update"],
            ["expect", "s1", 10],            # the state's entry is said to subscribers
            ["write", "b.txt"],
            ["expect", "s1", 1.5],           # deferred: nothing while it holds
            ["leave", "hg.update"],
            ["expect", "s1", 10],            # its leaving,
            ["expect", "s1", 10],            # then what waited
        ])
        sub, first, live, entered_reply, entered, held, left_reply, left, waited = out
        self.assertEqual(sub["subscribe"], "s1")
        self.assertTrue(first["is_fresh_instance"])
        self.assertEqual([f["name"] for f in first["files"]], ["before.txt"])
        self.assertFalse(live["is_fresh_instance"])
        self.assertEqual(live["files"], [{"name": "a.txt", "exists": True, "new": True}])
        self.assertEqual(entered_reply["state-enter"], "hg.update")
        self.assertEqual((entered["subscription"], entered["state-enter"]), ("s1", "hg.update"))
        self.assertIsNone(held, "told while a state it defers to was asserted")
        self.assertEqual(left_reply["state-leave"], "hg.update")
        self.assertEqual(left["state-leave"], "hg.update")
        self.assertEqual([f["name"] for f in waited["files"]], ["b.txt"])

    def test_errors_are_watchmans(self):
        self.start_settled()
        root = os.path.realpath(self.repo)
        r = self.wm(["query", root, {"fields": ["name"]}], ["watch", root],
                    ["query", root, {"expression": ["no-such-term"]}],
                    ["query", root, {"fields": ["no-such-field"]}],
                    ["no-such-command"], ["shutdown-server"])
        self.assertIn("unable to resolve root %s" % root, r[0]["client_error"])
        self.assertIn("unknown expression term 'no-such-term'", r[2]["client_error"])
        self.assertIn("unknown field name 'no-such-field'", r[3]["client_error"])
        self.assertIn("unknown command no-such-command", r[4]["client_error"])
        self.assertIn("shutdown-server", r[5]["client_error"])
        self.assertTrue(self.d.proc.poll() is None, "the daemon still runs")

    def test_an_ordinary_user_watches_only_their_own(self):
        self.start_settled()
        os.chmod(RUN_DIR, 0o755)
        mine = os.path.join(self.repo, "mine")
        os.mkdir(mine)
        os.chown(mine, NOBODY, NOBODY)
        theirs = os.path.join(self.repo, "theirs")
        os.mkdir(theirs)
        self.wm(["watch", theirs])     # root's
        r = self.wm(["watch", mine], ["watch", theirs], ["watch-list"],
                    ["query", theirs, {"fields": ["name"]}], user=NOBODY)
        self.assertEqual(r[0]["watch"], mine)
        self.assertIn("client_error", r[1])
        self.assertEqual(r[2]["roots"], [mine], "another user's watch is not listed")
        self.assertIn("unable to resolve root", r[3]["client_error"])

    def test_the_command_line_clients_spawn(self):
        self.start_settled()
        r = subprocess.run([VFSWATCH, "watchman", "--run-dir", RUN_DIR, "--no-pretty",
                            "get-sockname"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["sockname"], self.sock)
        # as pywatchman reads it: exactly one BSER PDU, byte strings
        link = os.path.join(tempfile.mkdtemp(prefix="vw-bin-"), "watchman")
        self.addCleanup(shutil.rmtree, os.path.dirname(link), True)
        os.symlink(VFSWATCH, link)
        r = subprocess.run([link, "--output-encoding=bser", "get-sockname"],
                           capture_output=True, env=dict(os.environ, VFSWATCH_RUN_DIR=RUN_DIR))
        self.assertEqual(r.returncode, 0, r.stderr)
        decoded = subprocess.run(
            [SYSTEM_PYTHON, "-c", "import sys; from pywatchman import bser; "
             "print(bser.loads(sys.stdin.buffer.read())['sockname'].decode())"],
            input=r.stdout, capture_output=True)
        self.assertEqual(decoded.stdout.decode().strip(), self.sock, decoded.stderr)
        r = subprocess.run([link, "--version"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0)
        # a command relayed to the daemon, and one read from stdin (-j)
        r = subprocess.run([link, "--no-pretty", "watch-list"], capture_output=True, text=True,
                           env=dict(os.environ, WATCHMAN_SOCK=self.sock))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("roots", json.loads(r.stdout))
        r = subprocess.run([link, "-j", "--no-pretty"], input='["watch", "%s"]' % self.repo,
                           capture_output=True, text=True,
                           env=dict(os.environ, WATCHMAN_SOCK=self.sock))
        self.assertEqual(json.loads(r.stdout)["watch"], os.path.realpath(self.repo), r.stderr)
        # no daemon there: exit 1
        r = subprocess.run([link, "--sockname=/nonexistent/sock", "watch-list"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)


    def test_mercurial_fsmonitor_status_equals_its_own_walk(self):
        """Mercurial's fsmonitor extension, unchanged (its own vendored pywatchman, spawning
        `watchman --output-encoding=bser get-sockname`): `hg status` through vfswatch equals
        `hg status` without it, round after round of edits."""
        if not shutil.which("hg"):
            self.skipTest("mercurial is not installed (scripts/deps.sh installs it)")
        self.start_settled()
        import random
        rng = random.Random(7)
        repo = os.path.join(self.repo, "hg")
        bindir = tempfile.mkdtemp(prefix="vw-bin-")
        self.addCleanup(shutil.rmtree, bindir, True)
        os.symlink(VFSWATCH, os.path.join(bindir, "watchman"))
        env = dict(os.environ, VFSWATCH_RUN_DIR=RUN_DIR, HGUSER="t", HGRCPATH="/dev/null")
        on = ["--config", "extensions.fsmonitor=", "--config",
              "fsmonitor.watchman_exe=" + os.path.join(bindir, "watchman")]

        def hg(*args, fsmonitor=False):
            p = subprocess.run(["hg"] + (on if fsmonitor else []) + list(args), cwd=repo,
                               env=env, capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 0, p.stderr)
            if fsmonitor:
                self.assertEqual(p.stderr, "", "fsmonitor fell back to a walk")
            return p.stdout
        subprocess.run(["hg", "init", repo], check=True, env=env)
        files = []
        for i in range(200):
            d = os.path.join(repo, "d%d" % (i % 10))
            os.makedirs(d, exist_ok=True)
            files.append(os.path.join(d, "f%d" % i))
            write(files[-1], b"%d\n" % i)
        hg("add", "-q")
        hg("commit", "-qm", "init")
        self.assertEqual(hg("status", fsmonitor=True), hg("status"))
        for r in range(30):
            for _ in range(rng.randint(1, 5)):
                op = rng.random()
                f = rng.choice(files)
                if op < 0.4 and os.path.exists(f):
                    write(f, b"r%d\n" % r, "ab")
                elif op < 0.6 and os.path.exists(f):
                    os.unlink(f)
                elif op < 0.8:
                    write(f + ".new%d" % r, b"n")
                elif os.path.exists(f):
                    os.rename(f, f + ".moved%d" % r)
            if r % 10 == 9:
                hg("addremove", "-q")
                hg("commit", "-qm", "r%d" % r)
            self.assertEqual(hg("status", fsmonitor=True), hg("status"), "round %d" % r)
        self.assertTrue(os.path.exists(os.path.join(repo, ".hg", "fsmonitor.state")))
        listed = subprocess.run([VFSWATCH, "ctl", "--run-dir", RUN_DIR, "list"],
                                capture_output=True, text=True).stdout
        self.assertIn('"root":\t"%s"' % os.path.realpath(repo), listed, "hg watched it")


    def test_jest_haste_map_builds_the_same_map_as_its_node_crawler(self):
        """npm's jest-haste-map (with fb-watchman), unchanged, useWatchman on: the file map of a
        tree of thousands of files equals its node crawler's, first and then incrementally
        (its "since" clocks) after rounds of edits, sha1s included."""
        nm = os.path.join(NODE_DIR, "node_modules", "jest-haste-map")
        if not shutil.which("node") or not os.path.isdir(nm):
            self.skipTest("node or tests/node/node_modules missing (scripts/deps.sh installs "
                          "them)")
        self.start_settled()
        import random
        rng = random.Random(11)
        tree = os.path.join(self.repo, "app")
        for d in range(60):
            os.makedirs(os.path.join(tree, "src", "d%02d" % d))
            for f in range(50):
                write(os.path.join(tree, "src", "d%02d" % d, "m%02d.%s" % (f, ("js", "ts",
                                                                            "json")[f % 3])),
                      b"module.exports = %d;\n" % f)
        bindir = tempfile.mkdtemp(prefix="vw-bin-")
        caches = tempfile.mkdtemp(prefix="vw-jest-")
        for d in (bindir, caches):
            self.addCleanup(shutil.rmtree, d, True)
        os.symlink(VFSWATCH, os.path.join(bindir, "watchman"))
        env = dict(os.environ, PATH=bindir + ":" + os.environ["PATH"], VFSWATCH_RUN_DIR=RUN_DIR)
        env.pop("WATCHMAN_SOCK", None)

        def build(mode):
            p = subprocess.run(["node", os.path.join(NODE_DIR, "haste.js"), tree,
                                os.path.join(caches, mode), mode, "1"], env=env,
                               capture_output=True, text=True, timeout=300)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertNotIn("atchman", p.stderr, "jest fell back from Watchman")
            return json.loads(p.stdout)
        for d in ("watchman", "node"):
            os.mkdir(os.path.join(caches, d))
        first = build("watchman")
        self.assertEqual(len(first), 3000)
        self.assertEqual(first, build("node"))
        for r in range(6):
            files = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(tree) for f in fs)
            for _ in range(20):
                f = rng.choice(files)
                op = rng.random()
                if not os.path.exists(f):
                    continue
                if op < 0.4:
                    write(f, b"// r%d\n" % r, "ab")
                elif op < 0.55:
                    os.unlink(f)
                elif op < 0.7:
                    os.rename(f, f + ".js")
                else:
                    write(os.path.join(os.path.dirname(f), "new%d.ts" % r), b"x")
            if r % 2:   # a directory renamed, and a new one
                src = os.path.join(tree, "src")
                d = rng.choice(sorted(os.listdir(src)))
                os.rename(os.path.join(src, d), os.path.join(src, d + "r%d" % r))
                os.makedirs(os.path.join(src, "n%d" % r, "deep"))
                write(os.path.join(src, "n%d" % r, "deep", "x.js"), b"1")
            self.assertEqual(build("watchman"), build("node"), "round %d" % r)
        listed = subprocess.run([VFSWATCH, "ctl", "--run-dir", RUN_DIR, "list"],
                                capture_output=True, text=True).stdout
        self.assertIn('"root":\t"%s"' % os.path.realpath(tree), listed, "jest watched it")


def raw_pdus(sock, data, n, timeout=30):
    """Send @data as it is, read @n JSON reply lines (or what comes before the daemon closes)."""
    import socket
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(sock)
    s.sendall(data)
    buf = b""
    while buf.count(b"\n") < n:
        b = s.recv(1 << 20)
        if not b:
            break
        buf += b
    s.close()
    return [json.loads(line) for line in buf.splitlines()]


class WatchmanHostile(DaemonCase):
    """watchman.sock as a hostile local user tries it: answered, bounded, never a crash, a hang
    or another user's data."""
    backend = "tracepoint"

    def setUp(self):
        super().setUp()
        self.sock = os.path.join(RUN_DIR, "watchman.sock")
        self.tree = tempfile.mkdtemp(prefix="vw-wm-h-")
        self.addCleanup(shutil.rmtree, self.tree, True)
        os.chmod(self.tree, 0o755)

    def alive(self):
        self.assertIsNone(self.d.proc.poll(), "the daemon died")
        r = raw_pdus(self.sock, b'["version"]\n', 1)
        self.assertIn("version", r[0])

    def test_a_bser_memory_bomb_is_refused(self):
        self.start(raw=False)
        # an array of 100 000 templates without keys: each would make 127 objects of no bytes
        body = b"\x00\x05" + (100000).to_bytes(4, "little") + \
            b"\x0b\x00\x03\x00\x03\x7f" * 100000
        pdu = b"\x00\x01\x05" + len(body).to_bytes(4, "little") + body
        import socket
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(30)
        s.connect(self.sock)
        s.sendall(pdu)
        reply = s.recv(65536)
        s.close()
        self.assertIn(b"non-empty key set", reply)
        self.alive()

    def test_patterns_fields_and_requests_sent_at_once_are_bounded(self):
        self.start(raw=False)
        write(os.path.join(self.tree, "a.js"), b"1")
        root = os.path.realpath(self.tree)
        reqs = [["watch", root],
                ["query", root, {"glob": ["*" * 100000]}],
                ["query", root, {"expression": ["match", "*" * 5000 + "x", "wholename"]}],
                ["query", root, {"fields": ["name"] * 1000}]]
        reqs += [["clock", root]] * 300     # pipelined: answered one a loop turn, in order
        data = b"".join(json.dumps(r).encode() + b"\n" for r in reqs)
        out = raw_pdus(self.sock, data, len(reqs), timeout=120)
        self.assertEqual(len(out), len(reqs))
        self.assertEqual(out[0]["watch"], root)
        self.assertIn("a pattern may be at most", out[1]["error"])
        self.assertIn("a pattern may be at most", out[2]["error"])
        self.assertIn("named twice", out[3]["error"])
        self.assertTrue(all(r["clock"].startswith("c:") for r in out[4:]))
        self.alive()

    def test_a_half_request_trickled_byte_by_byte_times_out(self):
        self.start(raw=False)
        import select
        import socket
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.sock)
        t0 = time.monotonic()
        closed_at = None
        for c in b'["version", "' + b"x" * 300:
            try:
                s.send(bytes([c]))
            except OSError:
                closed_at = time.monotonic()
                break
            if select.select([s], [], [], 0.1)[0]:     # the daemon said something: it ends
                closed_at = time.monotonic()
                break
        s.close()
        self.assertIsNotNone(closed_at, "a trickle kept a half request open for 30 s")
        self.assertLess(closed_at - t0, 20)
        self.alive()

    def test_an_owner_who_swaps_a_directory_for_a_link_learns_nothing_beyond_it(self):
        if not have_pywatchman():
            self.skipTest("python3-pywatchman is not installed")
        self.start(raw=False)
        os.chmod(RUN_DIR, 0o755)
        mine = os.path.join(self.tree, "mine")
        os.makedirs(os.path.join(mine, "a"))
        write(os.path.join(mine, "a", "f"), b"1")
        subprocess.run(["chown", "-R", "%d:%d" % (NOBODY, NOBODY), mine], check=True)
        secret = tempfile.mkdtemp(prefix="vw-secret-")      # root's, mode 0700
        self.addCleanup(shutil.rmtree, secret, True)
        write(os.path.join(secret, "f"), b"root only")
        cmd = [SYSTEM_PYTHON, "-c", CLIENT, self.sock, "bser"]
        as_nobody = ["setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY), "--clear-groups"]
        p = subprocess.run(as_nobody + cmd + [json.dumps([["watch", mine], ["query", mine, {
            "fields": ["name"]}]])], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        # the directory goes, a link to root's takes its name; asked at once (no sync)
        shutil.rmtree(os.path.join(mine, "a"))
        os.symlink(secret, os.path.join(mine, "a"))
        p = subprocess.run(as_nobody + cmd + [json.dumps([["query", mine, {
            "fields": ["name", "uid", "nlink", "dev", "exists"], "sync_timeout": 0,
            "expression": ["name", "a/f", "wholename"]}]])], capture_output=True, text=True,
            timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        for line in p.stdout.splitlines():
            for f in json.loads(line).get("files", []):
                self.assertNotIn("uid", f, "stat data of root's file, through the link")

    def test_content_sha1_is_computed_as_the_user_who_asks(self):
        """content.sha1hex: the files' SHA-1s, cached; a file the asking user cannot read (a
        root-only file in their own tree) gets an error, never its hash; a fifo never
        blocks anybody."""
        if not have_pywatchman():
            self.skipTest("python3-pywatchman is not installed")
        import hashlib
        self.start(raw=False)
        os.chmod(RUN_DIR, 0o755)
        mine = os.path.join(self.tree, "mine")
        os.mkdir(mine)
        write(os.path.join(mine, "open.txt"), b"anyone may read this")
        write(os.path.join(mine, "big.bin"), os.urandom(300000))
        os.mkfifo(os.path.join(mine, "fifo"))
        subprocess.run(["chown", "-R", "%d:%d" % (NOBODY, NOBODY), mine], check=True)
        write(os.path.join(mine, "secret"), b"root only")     # root's, 0600
        os.chmod(os.path.join(mine, "secret"), 0o600)
        spec = {"fields": ["name", "content.sha1hex"], "expression": ["not", ["type", "d"]]}
        cmd = [SYSTEM_PYTHON, "-c", CLIENT, self.sock, "bser",
               json.dumps([["watch", mine], ["query", mine, spec], ["query", mine, spec]])]
        p = subprocess.run(["setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY),
                            "--clear-groups"] + cmd, capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        _, first, again = (json.loads(x) for x in p.stdout.splitlines())
        for r in (first, again):    # the second from the cache
            got = {f["name"]: f["content.sha1hex"] for f in r["files"]}
            for n in ("open.txt", "big.bin"):
                with open(os.path.join(mine, n), "rb") as fh:
                    self.assertEqual(got[n], hashlib.sha1(fh.read()).hexdigest(), n)
            self.assertIsNone(got["fifo"], "no regular file: null")
            self.assertIn("error", got["secret"], "root's file, hashed for a user")
        self.alive()

    def test_states_are_the_owners_and_their_config_too(self):
        if not have_pywatchman():
            self.skipTest("python3-pywatchman is not installed")
        self.start(raw=False)
        os.chmod(RUN_DIR, 0o755)
        mine = os.path.join(self.tree, "mine")
        os.mkdir(mine)
        with open(os.path.join(mine, ".watchmanconfig"), "w") as f:
            f.write('{"private": true}')
        os.chmod(os.path.join(mine, ".watchmanconfig"), 0o600)
        subprocess.run(["chown", "-R", "%d:%d" % (NOBODY, NOBODY), mine], check=True)
        cfg = os.path.join(self.tree, "c.json")
        write(cfg, json.dumps({"projects": [{"root": mine, "readers": ["daemon"]}]}).encode())
        self.d.stop()
        self.start(roots=[], raw=False, extra=["--config", cfg])
        os.chmod(RUN_DIR, 0o755)
        daemon_uid = 1      # Debian's "daemon" user: a reader of the project
        cmd = [SYSTEM_PYTHON, "-c", CLIENT, self.sock, "bser",
               json.dumps([["get-config", mine], ["state-enter", mine, "hg.update"]])]
        p = subprocess.run(["setpriv", "--reuid", str(daemon_uid), "--regid", str(daemon_uid),
                            "--clear-groups"] + cmd, capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        cfg_reply, state_reply = (json.loads(x) for x in p.stdout.splitlines())
        self.assertEqual(cfg_reply["config"], {}, "the owner's private config, to a reader")
        self.assertIn("only the owner", state_reply["client_error"])
        p = subprocess.run(["setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY),
                            "--clear-groups"] + cmd, capture_output=True, text=True, timeout=60)
        cfg_reply, state_reply = (json.loads(x) for x in p.stdout.splitlines())
        self.assertEqual(cfg_reply["config"], {"private": True}, "to its owner")
        self.assertEqual(state_reply["state-enter"], "hg.update")


class AgainstWatchman(DaemonCase):
    """The same pywatchman script against Debian's real Watchman and against vfswatch: the
    answers equal where Watchman's semantics are subtle (generators, terms, relative_root,
    fresh listings, since a clock)."""
    backend = "tracepoint"

    def setUp(self):
        super().setUp()
        if not have_pywatchman() or not shutil.which("watchman") or \
                os.path.realpath(shutil.which("watchman")) == os.path.realpath(VFSWATCH):
            self.skipTest("Debian's watchman or python3-pywatchman is not installed "
                          "(scripts/deps.sh installs them)")
        self.tmp = tempfile.mkdtemp(prefix="vw-vs-wm-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.wm_sock = os.path.join(self.tmp, "wm.sock")
        self.real = subprocess.Popen(
            ["watchman", "--foreground", "--no-save-state", "--sockname=" + self.wm_sock,
             "--statefile=" + os.path.join(self.tmp, "state"),
             "--logfile=" + os.path.join(self.tmp, "log"),
             "--pidfile=" + os.path.join(self.tmp, "pid")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.addCleanup(self.stop_real)
        for _ in range(500):
            if os.path.exists(self.wm_sock):
                break
            time.sleep(0.02)
        self.tree = os.path.join(self.tmp, "tree")

    def stop_real(self):
        self.real.terminate()
        self.real.wait()

    def one(self, sock, cmds):
        p = subprocess.run([SYSTEM_PYTHON, "-c", CLIENT, sock, "bser", json.dumps(cmds)],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        return [json.loads(line) for line in p.stdout.splitlines()]

    def both(self, *cmds):
        """Each command's answers from (Watchman, vfswatch)."""
        return [self.one(sock, list(cmds)) for sock in
                (self.wm_sock, os.path.join(RUN_DIR, "watchman.sock"))]

    def files(self, answer):
        f = answer.get("files", answer)
        return sorted(f, key=lambda x: x if isinstance(x, str) else x["name"])

    def test_queries_answer_as_watchman_does(self):
        self.start(raw=False)
        self.marker()
        for n in ("a/x.js", "a/b/y.JS", "a/.hidden.js", "a/b/c/deep.ts", "c/z.ts", "top.md",
                  "empty.txt", ".dot/inside.js", "sp ace/n\u00e9.js"):
            os.makedirs(os.path.dirname(os.path.join(self.tree, n)) or self.tree, exist_ok=True)
            write(os.path.join(self.tree, n), b"" if n == "empty.txt" else b"12345")
        os.symlink("top.md", os.path.join(self.tree, "link"))
        root = os.path.realpath(self.tree)
        w, v = self.both(["watch-project", root])
        self.assertEqual(w[0]["watch"], v[0]["watch"])
        specs = [
            {"fields": ["name", "type", "exists"]},
            {"fields": ["name"], "expression": ["type", "f"]},
            {"fields": ["name"], "suffix": ["js"]},
            {"fields": ["name"], "expression": ["suffix", ["js", "ts"]]},
            {"fields": ["name"], "glob": ["a/**/*.js"]},
            {"fields": ["name"], "glob": ["**/*.js"], "glob_includedotfiles": True},
            {"fields": ["name"], "expression": ["match", "*.js"]},
            {"fields": ["name"], "expression": ["match", "a/**/*.ts", "wholename"]},
            {"fields": ["name"], "expression": ["match", "*.js", "basename",
                                                {"includedotfiles": True}]},
            {"fields": ["name"], "expression": ["imatch", "*.js"]},
            {"fields": ["name"], "expression": ["dirname", "a"]},
            {"fields": ["name"], "expression": ["dirname", "a", ["depth", "eq", 1]]},
            {"fields": ["name"], "expression": ["idirname", "A"]},
            {"fields": ["name"], "expression": ["name", ["top.md", "x.js"]]},
            {"fields": ["name"], "expression": ["name", "a/x.js", "wholename"]},
            {"fields": ["name"], "expression": ["iname", "Y.js"]},
            {"fields": ["name"], "expression": ["allof", ["type", "f"], ["empty"]]},
            {"fields": ["name"], "expression": ["allof", ["type", "f"],
                                                ["size", "gt", 0], ["not", ["suffix", "js"]]]},
            {"fields": ["name"], "expression": ["anyof", ["type", "l"], ["type", "d"]]},
            {"fields": ["name", "type"], "relative_root": "a"},
            {"fields": ["name"], "path": ["a"]},
            {"fields": ["name"], "path": [{"path": "a", "depth": 0}]},
            {"fields": ["name", "size", "exists", "type", "symlink_target"],
             "expression": ["not", ["type", "d"]]},
        ]
        w, v = self.both(*[["query", root, s] for s in specs])
        differ = []
        for spec, a, b in zip(specs, w, v):
            if "client_error" in a:     # newer than Debian's 4.9 (suffix sets): ours only
                self.assertNotIn("client_error", b, spec)
                continue
            if (a.get("is_fresh_instance"), self.files(a)) != \
                    (b.get("is_fresh_instance"), self.files(b)):
                differ.append((spec, self.files(a), self.files(b)))
        self.maxDiff = None
        self.assertEqual(differ, [], "(spec, Watchman's files, vfswatch's)")
        # since a clock: the files' changes, as each tells them
        w_clock, v_clock = (x[0]["clock"] for x in self.both(["clock", root]))
        write(os.path.join(self.tree, "new.js"), b"n")
        write(os.path.join(self.tree, "a", "x.js"), b"more", "ab")
        os.unlink(os.path.join(self.tree, "c", "z.ts"))
        os.rename(os.path.join(self.tree, "top.md"), os.path.join(self.tree, "top2.md"))
        time.sleep(0.5)     # Watchman's settle (20 ms) and its cookie round trip
        spec = {"fields": ["name", "exists", "type"], "expression": ["type", "f"]}
        a, = self.one(self.wm_sock, [["query", root, dict(spec, since=w_clock)]])
        b, = self.one(os.path.join(RUN_DIR, "watchman.sock"),
                      [["query", root, dict(spec, since=v_clock)]])
        self.assertFalse(a["is_fresh_instance"])
        self.assertFalse(b["is_fresh_instance"])
        self.assertEqual(self.files(a), self.files(b))


class FanotifyWatchman(Watchman):
    backend = "fanotify"
