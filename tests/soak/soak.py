#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""soak.py: one daemon under mixed load for DURATION seconds (make soak DURATION=600).

Load, all at once: random writes, renames (within and across projects), deletes and mkdirs in
20 projects that each have analyzers; a project added and removed every 10 s; a SIGHUP reload
every 15 s; a burst of 20 000 new files every 60 s into a 1 MiB ring buffer (records are lost,
a rescan repairs); a storm of 100 client requests, 20 subscribers and 5 that never read, every
20 s. Every second it samples the daemon's RSS, open descriptors and queue depths.

It fails when a sample series trends upward (its last fifth is above its first fifth by more
than the slack, once the load has stopped and the queues drained), or when anything is lost or
made up: at the end each project's tree, as a reader of the stream would rebuild it from the
lines, must be the tree on disk (paths and types).
"""
import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "model"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
from model import Replay, kind  # noqa: E402

VFSWATCH = os.environ.get("VFSWATCH", os.path.join(ROOT, "build", "vfswatch"))
PROJECTS = 20
NAMES = ["a", "b", "c", "src", "lib", "doc"]
FILES = ["x.c", "y.h", "notes.txt", "z.py", "data.bin", "README"]


class Soak:
    def __init__(self, args):
        self.args = args
        self.top = tempfile.mkdtemp(prefix="vw-soak-")
        self.run = os.path.join(self.top, "run")
        self.state = os.path.join(self.top, "state")
        self.roots = [os.path.join(self.top, "p%02d" % i) for i in range(PROJECTS)]
        for r in self.roots:
            os.makedirs(r)
        self.extra = os.path.join(self.top, "extra")
        os.makedirs(self.extra)
        self.cfg = os.path.join(self.top, "config.json")
        self.write_config()
        self.replays = {r: Replay(track_named=False) for r in self.roots}
        self.lines = 0
        self.kinds = {}
        self.stop = threading.Event()
        self.samples = []
        self.problems = []
        self.ops = 0
        self.last_line = time.monotonic()
        self.rng = random.Random(args.seed)

    def write_config(self):
        projects = []
        for i, r in enumerate(self.roots):
            # the trees are root's: analyzers run as root only when the config says so
            an = [{"name": "check", "match": ["*.c", "*.h", "*.py"], "concurrency": 2,
                   "retries": 0, "user": "root", "on_change": ["/bin/true", "{path}"]}]
            if i % 4 == 0:
                an.append({"name": "batch", "user": "root", "batch": ["/bin/cat"]})
            projects.append({"name": "p%02d" % i, "root": r, "analyzers": an})
        with open(self.cfg, "w") as f:
            json.dump({"projects": projects, "state_dir": self.state, "settle_ms": 50,
                       "journal_mb": 1}, f)

    # --- the daemon and its stream ------------------------------------------------------

    def start(self):
        self.d = subprocess.Popen([VFSWATCH, "run", "--backend", self.args.backend, "--config",
                                   self.cfg, "--run-dir", self.run, "--no-pin", "--ringbuf-mb",
                                   "1"], stdout=subprocess.PIPE, stderr=open(
                                       os.path.join(self.top, "daemon.log"), "wb"))
        ready = json.loads(self.d.stdout.readline())
        assert ready["event"] == "ready", ready
        self.reader = threading.Thread(target=self.read, daemon=True)
        self.reader.start()

    def read(self):
        for raw in self.d.stdout:
            e = json.loads(raw)
            self.lines += 1
            self.kinds[e["event"]] = self.kinds.get(e["event"], 0) + 1
            self.last_line = time.monotonic()
            rp = self.replays.get(e.get("root"))
            if rp is not None and "path" in e and e["event"] in (
                    "create", "delete", "modify", "truncate", "attrib", "rename"):
                rp.apply(e, True)

    def status(self):
        r = subprocess.run([VFSWATCH, "status", "--run-dir", self.run], capture_output=True,
                           text=True, timeout=30)
        return json.loads(r.stdout) if r.returncode == 0 else None

    # --- load ----------------------------------------------------------------------------

    def pick(self, root, want_dir=None):
        """A random existing path below root (or None)."""
        best = None
        for i, (dirpath, dirs, files) in enumerate(os.walk(root)):
            cands = (dirs if want_dir else []) + (files if want_dir is not True else [])
            if want_dir is None:
                cands = dirs + files
            for c in cands:
                if self.rng.random() < 0.3 or best is None:
                    best = os.path.join(dirpath, c)
            if i > 30:
                break
        return best

    def one_op(self):
        root = self.rng.choice(self.roots)
        op = self.rng.random()
        try:
            if op < 0.30:
                d = os.path.join(root, *self.rng.sample(NAMES, self.rng.randint(0, 2)))
                os.makedirs(d, exist_ok=True)
                with open(os.path.join(d, self.rng.choice(FILES)), "ab") as f:
                    f.write(os.urandom(self.rng.randint(1, 300)))
            elif op < 0.45:
                p = self.pick(root, False)
                if p:
                    with open(p, "r+b") as f:
                        f.truncate(self.rng.randint(0, 10))
            elif op < 0.60:
                p = self.pick(root)
                if p:
                    dest_root = self.rng.choice(self.roots) if self.rng.random() < 0.2 else root
                    dest = os.path.join(dest_root, self.rng.choice(NAMES + FILES) +
                                        str(self.rng.randint(0, 9)))
                    if not os.path.exists(dest) and not dest.startswith(p + "/"):
                        os.rename(p, dest)
            elif op < 0.72:
                p = self.pick(root, False)
                if p:
                    os.unlink(p)
            elif op < 0.80:
                p = self.pick(root, True)
                if p:
                    shutil.rmtree(p)
            elif op < 0.90:
                p = self.pick(root)
                if p:
                    os.chmod(p, 0o700 if os.path.isdir(p) else self.rng.choice([0o600, 0o644]))
            else:
                os.makedirs(os.path.join(root, self.rng.choice(NAMES),
                                         self.rng.choice(NAMES)), exist_ok=True)
            self.ops += 1
        except (FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError,
                OSError):
            pass

    def writer(self):
        while not self.stop.is_set():
            self.one_op()
            time.sleep(0.002)

    def every(self, period, fn):
        def loop():
            while not self.stop.wait(period):
                try:
                    fn()
                except Exception as ex:   # a load step failing is reported, not fatal
                    self.problems.append("%s: %r" % (fn.__name__, ex))
        t = threading.Thread(target=loop, daemon=True)
        t.start()
        return t

    def add_remove(self):
        r = subprocess.run([VFSWATCH, "ctl", "--run-dir", self.run, "add", self.extra,
                            "--name", "extra"], capture_output=True, text=True, timeout=30)
        if r.returncode:
            self.problems.append("ctl add: " + r.stderr.strip())
            return
        for i in range(50):
            with open(os.path.join(self.extra, "e%d" % i), "ab") as f:
                f.write(b"x")
        time.sleep(5)
        r = subprocess.run([VFSWATCH, "ctl", "--run-dir", self.run, "remove", "extra"],
                           capture_output=True, text=True, timeout=30)
        if r.returncode:
            self.problems.append("ctl remove: " + r.stderr.strip())

    def reload(self):
        self.d.send_signal(signal.SIGHUP)

    def burst(self):
        d = os.path.join(self.rng.choice(self.roots), "burst%d" % self.rng.randint(0, 3))
        os.makedirs(d, exist_ok=True)
        # the writer may move or delete it meanwhile: that is load too
        subprocess.run("cd %s && seq -f 'f%%g' 20000 | xargs touch" % d, shell=True,
                       stderr=subprocess.DEVNULL)
        time.sleep(2)
        shutil.rmtree(d, ignore_errors=True)

    def client_storm(self):
        path = os.path.join(self.run, "client.sock")

        def ask(req, read_for):
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(10)
            try:
                s.connect(path)
                s.sendall((json.dumps(req) + "\n").encode())
                end = time.monotonic() + read_for
                while read_for >= 0 and time.monotonic() < end:
                    if not s.recv(65536):
                        break
            except OSError:
                pass
            finally:
                s.close()

        threads = []
        for i in range(100):
            req = {"cmd": "changes", "project": "p%02d" % (i % PROJECTS)}
            if i % 3:
                req["since"] = "0000000000000000.%d" % i
            threads.append(threading.Thread(target=ask, args=(req, 5)))
        for i in range(20):
            threads.append(threading.Thread(target=ask, args=(
                {"cmd": "subscribe", "project": "p%02d" % i}, 5)))
        for i in range(5):     # subscribers that never read: they overflow and are dropped
            threads.append(threading.Thread(target=ask, args=(
                {"cmd": "subscribe", "project": "p%02d" % i}, -1)))
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def sampler(self):
        pid = self.d.pid
        while not self.stop.is_set():
            st = self.status()
            try:
                fds = len(os.listdir("/proc/%d/fd" % pid))
            except OSError:
                break
            if st:
                self.samples.append({"t": time.monotonic() - self.t0, "rss_kib": st["rss_kib"],
                                     "fds": fds, "pending_paths": st["pending_paths"],
                                     "analyzer_queue": st["analyzer_jobs_queued"],
                                     "client_queue_bytes": st["client_queue_bytes"],
                                     "lines": self.lines})
            time.sleep(1)

    # --- the run -------------------------------------------------------------------------

    def go(self):
        self.start()
        self.t0 = time.monotonic()
        sampler = threading.Thread(target=self.sampler, daemon=True)
        sampler.start()
        load = [threading.Thread(target=self.writer, daemon=True)]
        load[0].start()
        load += [self.every(10, self.add_remove), self.every(15, self.reload),
                 self.every(60, self.burst), self.every(20, self.client_storm)]
        deadline = self.t0 + self.args.duration
        while time.monotonic() < deadline and self.d.poll() is None:
            time.sleep(1)
            if self.args.verbose and self.samples:
                print("soak: %(t).0fs rss %(rss_kib)d KiB, fds %(fds)d, pending %(pending_paths)d,"
                      " analyzer queue %(analyzer_queue)d, lines %(lines)d" % self.samples[-1],
                      flush=True)
        self.stop.set()
        for t in load:
            t.join(120)
        if self.d.poll() is not None:
            self.problems.append("the daemon died: exit %s" % self.d.returncode)
            return
        self.quiet()
        # the queues drained: a last minute of samples at rest
        self.stop.clear()
        sampler = threading.Thread(target=self.sampler, daemon=True)
        sampler.start()
        time.sleep(min(30, max(5, self.args.duration / 10)))
        self.stop.set()
        sampler.join(10)
        self.check_truth()
        self.check_trends()
        self.d.send_signal(signal.SIGTERM)
        rc = self.d.wait(60)
        if rc != 0:
            self.problems.append("the daemon exited %d on SIGTERM" % rc)

    def quiet(self):
        """Wait until nothing is pending and no line came for 3 s."""
        end = time.monotonic() + 180
        while time.monotonic() < end:
            st = self.status()
            if st and not st["pending_paths"] and not st["analyzer_jobs_queued"] and \
                    not st["crawling"] and time.monotonic() - self.last_line > 3:
                return
            time.sleep(0.5)
        self.problems.append("the daemon did not settle within 180 s after the load stopped")

    def check_truth(self):
        for r in self.roots:
            rp = self.replays[r]
            rel = r + "/"
            disk = {}
            for dirpath, dirs, files in os.walk(r):
                for n in dirs + files:
                    full = os.path.join(dirpath, n)
                    disk[full[len(rel):]] = kind(os.lstat(full))
            told = dict(rp.paths)
            missing = sorted(set(disk) - set(told))
            phantom = sorted(set(told) - set(disk))
            wrong = sorted(p for p in set(disk) & set(told) if told[p] and told[p] != disk[p])
            for what, ps in (("on disk, never told (lost)", missing),
                             ("told, not on disk (made up)", phantom),
                             ("told as another type", wrong)):
                if ps:
                    self.problems.append("%s: %d %s, e.g. %s" % (os.path.basename(r), len(ps),
                                                                 what, ps[:5]))
            for v in rp.violations[:5]:
                self.problems.append("%s: %s" % (os.path.basename(r), v))

    def check_trends(self):
        s = [x for x in self.samples if x["t"] > 30]    # after the start-up crawl
        if len(s) < 10:
            self.problems.append("only %d samples" % len(s))
            return
        fifth = max(2, len(s) // 5)
        first, last = s[:fifth], s[-fifth:]
        slack = {"rss_kib": 48 * 1024, "fds": 8, "pending_paths": 100, "analyzer_queue": 100,
                 "client_queue_bytes": 1 << 20}
        print("soak: %d samples over %.0f s; %d operations, %d lines %s" % (
            len(self.samples), self.samples[-1]["t"], self.ops, self.lines,
            json.dumps(self.kinds, sort_keys=True)))
        print("soak: %-20s %12s %12s %12s %12s" % ("sample", "first", "peak", "last",
                                                   "median first/last fifth"))
        for k in slack:
            a = statistics.median(x[k] for x in first)
            b = statistics.median(x[k] for x in last)
            print("soak: %-20s %12d %12d %12d %12s" % (k, s[0][k], max(x[k] for x in s), s[-1][k],
                                                      "%d / %d" % (a, b)))
            if b > a + slack[k]:
                self.problems.append("%s trends upward: median %d in the first fifth, %d in the "
                                     "last (slack %d)" % (k, a, b, slack[k]))
        with open(os.path.join(self.args.out, "samples.json"), "w") as f:
            json.dump(self.samples, f)

    def cleanup(self):
        if self.d.poll() is None:
            self.d.kill()
        shutil.rmtree(self.top, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=600)
    ap.add_argument("--backend", default="tracepoint")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "soak"))
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    s = Soak(args)
    try:
        s.go()
    finally:
        shutil.copy(os.path.join(s.top, "daemon.log"), os.path.join(args.out, "daemon.log"))
        s.cleanup()
    for p in s.problems:
        print("soak: FAIL: " + p)
    print("soak: %s" % ("clean" if not s.problems else "%d problems" % len(s.problems)))
    return 1 if s.problems else 0


if __name__ == "__main__":
    sys.exit(main())
