# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# test_config.py: the config file, its errors, one daemon per host, systemd readiness.
import json
import os
import socket
import subprocess
import tempfile
import unittest

from harness import VFSWATCH, Daemon, DaemonCase, Tree, write


def check(path):
    return subprocess.run([VFSWATCH, "config", "check", path], capture_output=True, text=True,
                          timeout=30)


class ConfigCheck(unittest.TestCase):
    def setUp(self):
        self.t = Tree()

    def tearDown(self):
        self.t.cleanup()

    def cfg(self, text):
        p = self.t.sub("c.json")
        write(p, text.encode())
        return p

    def test_good_config_passes(self):
        os.mkdir(self.t.sub("a"))
        p = self.cfg(json.dumps({"settle_ms": 20, "max_delay_ms": 500, "backend": "auto",
                                 "projects": [{"name": "a", "root": self.t.sub("a"),
                                               "ignore": ["*.o"], "gitignore": True}]}))
        r = check(p)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("ok, 1 project", r.stdout)

    def test_each_bad_config_names_file_key_and_reason(self):
        cases = [
            ('{"settle_ms": "fast"}', "settle_ms: must be a whole number"),
            ('{"settle_ms": 0}', "settle_ms: must be from 1 to 60000"),
            ('{"backend": "kprobe"}', "backend: must be auto, fentry, tracepoint or fanotify"),
            ('{"colour": "blue"}', "colour: unknown key"),
            ('{"projects": [{"root": "rel/dir"}]}', "projects[0].root: must be an absolute path"),
            ('{"projects": [{"name": "x"}]}', 'projects[0]: needs a "root"'),
            ('{"projects": [{"root": "/tmp", "ignore": [1]}]}', "projects[0].ignore: must hold"),
            ('{"projects": [{"root": "/tmp", "colour": 1}]}', "projects[0].colour: unknown key"),
            ('{"settle_ms": 500, "max_delay_ms": 100}', "max_delay_ms: must not be shorter"),
            ('{\n"settle_ms": 5,\n}', "line 3: not valid JSON"),
            ('[1, 2]', "the top level must be an object"),
        ]
        for text, want in cases:
            p = self.cfg(text)
            r = check(p)
            self.assertEqual(r.returncode, 2, text)
            self.assertIn(p, r.stderr, text)
            self.assertIn(want, r.stderr, text)
        r = check(self.t.sub("missing.json"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("No such file", r.stderr)

    def test_daemon_refuses_to_start_on_a_bad_config(self):
        p = self.cfg('{"settle_ms": -5}')
        r = subprocess.run([VFSWATCH, "run", "--config", p], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn("settle_ms", r.stderr)
        self.assertEqual(r.stdout, "")


class ConfigRun(DaemonCase):
    backend = "tracepoint"
    roots = 2

    def test_projects_and_their_ignores_come_from_the_config(self):
        a, b = self.trees[0].path, self.trees[1].path
        p = os.path.join(tempfile.mkdtemp(prefix="vw-cfg-"), "c.json")
        write(p, json.dumps({"projects": [{"name": "alpha", "root": a, "ignore": ["*.log"]},
                                          {"root": b, "default_ignores": False}]}).encode())
        self.start(roots=[], extra=["--config", p])
        self.assertEqual([(x["name"], x["root"]) for x in self.d.ready["projects"]],
                         [("alpha", a), (os.path.basename(b), b)])
        write(os.path.join(a, "x.log"))
        write(os.path.join(a, "x.txt"))
        write(os.path.join(b, "y.swp"))     # default ignores are off for b
        self.expect("create", "x.txt", root=a, project="alpha")
        self.expect("create", "y.swp", root=b)
        self.marker(root=a)
        self.assertFalse([e for e in self.d.changes(a) if e["path"] == "x.log"])


class SingleInstance(DaemonCase):
    backend = "tracepoint"

    def test_second_instance_is_refused_and_a_killed_one_does_not_block(self):
        self.start()
        r = subprocess.run([VFSWATCH, "run", "--watch", self.root, "--run-dir",
                            self.d.proc.args[self.d.proc.args.index("--run-dir") + 1]],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("already running (pid %d" % self.d.proc.pid, r.stderr)
        self.d.proc.kill()                  # a crash: the kernel drops the flock
        self.d.proc.wait()
        self.d = None
        self.start()                        # starts at once
        write(os.path.join(self.root, "again"))
        self.expect("create", "again")

    def test_ready_is_notified_to_systemd(self):
        sock_dir = tempfile.mkdtemp(prefix="vw-notify-")
        path = os.path.join(sock_dir, "notify")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(path)
        s.settimeout(30)
        try:
            self.start(env=dict(os.environ, NOTIFY_SOCKET=path))
            self.assertEqual(s.recv(256), b"READY=1")
            d, self.d = self.d, None
            self.assertEqual(d.stop(), 0)
            self.assertEqual(s.recv(256), b"STOPPING=1")
        finally:
            s.close()


class Install(unittest.TestCase):
    def test_make_install_lays_out_binary_unit_and_example_config(self):
        top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        dest = tempfile.mkdtemp(prefix="vw-install-")
        r = subprocess.run(["make", "-s", "-C", top, "install", "DESTDIR=" + dest,
                            "prefix=/usr/local"], capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.access(dest + "/usr/local/sbin/vfswatch", os.X_OK))
        unit = open(dest + "/lib/systemd/system/vfswatch.service").read()
        self.assertIn("Type=notify", unit)
        self.assertIn("ExecStart=/usr/local/sbin/vfswatch run --config /etc/vfswatch/config.json",
                      unit)
        ex = dest + "/etc/vfswatch/config.example.json"
        r = check(ex)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("ok, 2 projects", r.stdout)
        self.assertTrue(os.path.exists(dest + "/usr/local/share/doc/vfswatch/README.md"))
