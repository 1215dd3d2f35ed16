# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# harness.py: start the real daemon on temporary trees and read its JSON lines.
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VFSWATCH = os.environ.get("VFSWATCH", os.path.join(ROOT, "build", "vfswatch"))
# The plain build, for what a sanitizer build cannot show: memory use, and runs under valgrind
# (make check runs this suite with VFSWATCH set to the ASan + UBSan build).
PLAIN_VFSWATCH = os.environ.get("VFSWATCH_PLAIN", VFSWATCH)
# The daemon is a sanitizer build (about four times slower): floods are made smaller.
SANITIZED = os.environ.get("VW_SANITIZED") == "1"
READY_TIMEOUT = 60
# one single-instance lock for the whole test run, apart from any daemon the host runs
RUN_DIR = os.environ.get("VW_TEST_RUN_DIR") or tempfile.mkdtemp(prefix="vw-run-")
EVENT_TIMEOUT = 10


def need_root_btf():
    """Reason to skip, or None."""
    if os.geteuid() != 0:
        return "needs root (BPF programs)"
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        return "kernel has no BTF at /sys/kernel/btf/vmlinux"
    return None


_probe_cache = {}


def backend_reason(backend):
    """Why this backend cannot run here (from `vfswatch probe`), or None."""
    r = need_root_btf()
    if r:
        return r
    if "probe" not in _probe_cache:
        # on the filesystem the test trees are made on (fanotify cannot mark every one)
        p = subprocess.run([VFSWATCH, "probe", os.path.realpath(tempfile.gettempdir())],
                           capture_output=True, text=True, timeout=120)
        try:
            _probe_cache["probe"] = json.loads(p.stdout)
        except ValueError:
            _probe_cache["probe"] = {"backends": []}
    for b in _probe_cache["probe"]["backends"]:
        if b["name"] == backend:
            return None if b["usable"] else "%s backend unusable here: %s" % (
                backend, b.get("reason", "").splitlines()[0])
    return "%s backend not reported by probe" % backend


class Daemon:
    """One `vfswatch run` process; lines are parsed as they arrive."""

    def __init__(self, roots, backend, extra=(), stdout_path=None, pin_dir=None, wrapper=(),
                 raw=True, env=None, run_dir=RUN_DIR, cwd=None, preexec_fn=None, binary=VFSWATCH,
                 on_ready=None):
        args = list(wrapper) + [binary, "run", "--backend", backend, "--run-dir", run_dir,
                                "--state-dir", os.path.join(RUN_DIR, "state")]
        args += ["--raw"] if raw else []
        for r in roots:
            args += ["--watch", r]
        if pin_dir:
            args += ["--pin-dir", pin_dir]
        else:
            args += ["--no-pin"]
        args += list(extra)
        self.lines = queue.Queue()
        self.seen = []
        self.on_ready = on_ready     # called by the reader the moment the ready line is read
        self.stdout_path = stdout_path
        out = open(stdout_path, "wb") if stdout_path else subprocess.PIPE
        self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.PIPE, env=env, cwd=cwd,
                                     preexec_fn=preexec_fn)
        if stdout_path:
            out.close()
            self.reader = threading.Thread(target=self._tail_file, daemon=True)
        else:
            self.reader = threading.Thread(target=self._read, daemon=True)
        self.err = []
        threading.Thread(target=self._read_err, daemon=True).start()
        self.reader.start()
        self.ready = self.wait(lambda e: e.get("event") == "ready", READY_TIMEOUT)
        if self.ready is None:
            self.stop()
            raise AssertionError("daemon not ready: %s" % "".join(self.err)[-3000:])

    def _parse(self, raw):
        text = raw.decode("utf-8")  # must be valid UTF-8: raises otherwise
        e = json.loads(text)
        if self.on_ready and e.get("event") == "ready":
            self.on_ready()
        self.lines.put(e)

    def _read(self):
        for raw in self.proc.stdout:
            self._parse(raw)
        self.lines.put(None)

    def _tail_file(self):
        with open(self.stdout_path, "rb") as f:
            buf = b""
            while True:
                chunk = f.read()
                if chunk:
                    buf += chunk
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        self._parse(line)
                elif self.proc.poll() is not None:
                    break
                else:
                    time.sleep(0.02)
        self.lines.put(None)

    def _read_err(self):
        for raw in self.proc.stderr:
            self.err.append(raw.decode("utf-8", "replace"))

    def wait(self, pred, timeout=EVENT_TIMEOUT):
        """First line (old or new) matching pred, or None after timeout."""
        for e in self.seen:
            if pred(e):
                return e
        end = time.time() + timeout
        while time.time() < end:
            try:
                e = self.lines.get(timeout=max(0.01, end - time.time()))
            except queue.Empty:
                break
            if e is None:
                break
            self.seen.append(e)
            if pred(e):
                return e
        return None

    def wait_err(self, text, timeout=EVENT_TIMEOUT):
        """True once the daemon's stderr (read by its own thread) holds text."""
        end = time.time() + timeout
        while time.time() < end:
            if text in "".join(self.err):
                return True
            time.sleep(0.02)
        return text in "".join(self.err)

    def changes(self, root):
        return [e for e in self.seen if e.get("root") == root]

    def stop(self, sig=signal.SIGINT):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.reader.join(timeout=10)
        self.wait(lambda e: False, timeout=0.2)
        return rc


class Tree:
    """A temporary directory that cleans up after itself (and any tmpfs on it)."""

    def __init__(self, prefix="vw-"):
        self.path = os.path.realpath(tempfile.mkdtemp(prefix=prefix))
        self.mounts = []

    def sub(self, *parts):
        p = os.path.join(self.path, *parts)
        return p

    def mkdir(self, *parts):
        p = self.sub(*parts)
        os.makedirs(p, exist_ok=True)
        return p

    def mount_tmpfs(self, *parts):
        p = self.mkdir(*parts)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", p], check=True)
        self.mounts.append(p)
        return p

    def cleanup(self):
        for m in reversed(self.mounts):
            subprocess.run(["umount", "-l", m], check=False)
        shutil.rmtree(self.path, ignore_errors=True)


def ask(req, timeout=60):
    """One request to the daemon's client.sock: the reply's lines, decoded."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(os.path.join(RUN_DIR, "client.sock"))
    s.sendall(json.dumps(req).encode() + b"\n")
    buf = b""
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        buf += b
    s.close()
    return [json.loads(line) for line in buf.decode("utf-8", "surrogateescape").splitlines()
            if line]


def write(path, data=b"x", mode="wb"):
    with open(path, mode) as f:
        f.write(data)


class DaemonCase(unittest.TestCase):
    """A test with one project tree and a daemon watching it on self.backend."""

    backend = "tracepoint"
    roots = 1

    def setUp(self):
        reason = backend_reason(self.backend)
        if reason:
            self.skipTest(reason)
        self.trees = [Tree() for _ in range(self.roots)]
        self.root = self.trees[0].path
        self.d = None

    def start(self, roots=None, **kw):
        self.d = Daemon(roots if roots is not None else [t.path for t in self.trees], self.backend,
                        **kw)
        return self.d

    def tearDown(self):
        if getattr(self, "d", None):
            rc = self.d.stop()
            self.assertEqual(rc, 0, "daemon exit code; stderr: %s" % "".join(self.d.err)[-2000:])
        for t in getattr(self, "trees", []):
            t.cleanup()

    def expect(self, event, path, root=None, timeout=EVENT_TIMEOUT, **fields):
        root = root or self.root

        def match(e):
            if e.get("event") != event or e.get("root") != root or e.get("path") != path:
                return False
            return all(e.get(k) == v for k, v in fields.items())

        e = self.d.wait(match, timeout)
        if e is None:
            got = "\n".join(json.dumps(x) for x in self.d.seen[-20:])
            self.fail("no %s of %r in %s %r; last lines:\n%s" % (event, path, root, fields, got))
        return e

    def expect_count(self, event, path, n, root=None, timeout=EVENT_TIMEOUT):
        """Wait until n lines of this event and path have been seen."""
        root = root or self.root

        def count():
            return len([e for e in self.d.seen if e.get("event") == event
                        and e.get("root") == root and e.get("path") == path])
        self.d.wait(lambda e: count() >= n, timeout)
        self.assertEqual(count(), n, "%s of %r: %d lines, want %d" % (event, path, count(), n))

    def marker(self, root=None):
        """Write a marker file and wait for it: everything before it has been read."""
        root = root or self.root
        name = ".marker-%d" % time.monotonic_ns()
        write(os.path.join(root, name))
        self.expect("create", name, root=root)
        return name
