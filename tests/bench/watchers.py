# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# watchers.py: vfswatch and its peers behind one interface, for bench.py.
# Each watcher starts on a list of roots, says when it is ready, and hands every path it reports
# (absolute) with the time the line was read. Peers are run with their defaults unless said.
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
VFSWATCH = os.environ.get("VFSWATCH", os.path.join(HERE, "..", "..", "build", "vfswatch"))
PROBE = ".vw-bench-probe"


def tree_pids(pid):
    """pid and its descendants (a peer may fork its worker)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            with open("/proc/%d/task/%d/children" % (p, p)) as f:
                todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def proc_status(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_s(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wakeups(pid):
    """Context switches of every thread: each is the process going to sleep and waking up."""
    n = 0
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return 0
    for t in tasks:
        try:
            with open("/proc/%d/task/%s/status" % (pid, t)) as f:
                n += sum(int(l.split()[1]) for l in f if l.split(":")[0].endswith("ctxt_switches"))
        except OSError:
            pass
    return n


def inotify_watches(pid):
    """Kernel inotify watches the process holds (one per watched directory)."""
    n = 0
    try:
        fds = os.listdir("/proc/%d/fdinfo" % pid)
    except OSError:
        return 0
    for fd in fds:
        try:
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                n += sum(1 for l in f if l.startswith("inotify wd:"))
        except OSError:
            pass
    return n


class Watcher:
    name = "?"
    probe_ready = False      # no ready signal of its own: ready when a probe write is reported

    def __init__(self):
        self.lines = []         # (time, absolute path)
        self.cv = threading.Condition()
        self.ready_at = None
        self.lost = 0
        self.p = None
        self.counting = False   # only count lines (the write-overhead runs): no parsing cost
        self.counted = 0

    # --- to be provided ---
    def command(self, roots):
        raise NotImplementedError

    def parse(self, line):
        """Absolute paths a stdout line names; may set self.ready_at."""
        raise NotImplementedError

    # --- common ---
    def start(self, roots, timeout=300):
        self.roots = roots
        self.t0 = time.perf_counter()
        self.p = subprocess.Popen(self.command(roots), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, cwd=roots[0], start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()
        end = time.time() + timeout
        if self.probe_ready:
            probe, k = os.path.join(roots[-1], PROBE), 0
            while time.time() < end and self.p.poll() is None:
                with open(probe, "w") as f:
                    f.write(str(k))
                k += 1
                if self.wait_path(probe, 0.05, since=0):
                    break
            os.unlink(probe)
        else:
            with self.cv:
                self.cv.wait_for(lambda: self.ready_at is not None or self.p.poll() is not None,
                                 timeout=timeout)
        if self.ready_at is None and self.probe_ready and self.lines:
            self.ready_at = self.lines[0][0]
        if self.ready_at is None:
            raise RuntimeError("%s: not ready (exit status %s)" % (self.name, self.p.poll()))
        return self.ready_at - self.t0

    def _read(self):
        for raw in self.p.stdout:
            if self.counting:
                self.counted += 1
                continue
            now = time.perf_counter()
            try:
                paths = self.parse(raw.decode("utf-8", "replace").rstrip("\n"))
            except (ValueError, KeyError):
                continue
            if paths:
                with self.cv:
                    self.lines += [(now, p) for p in paths]
                    self.cv.notify_all()
            elif self.ready_at is not None:
                with self.cv:
                    self.cv.notify_all()

    def _read_err(self):
        for raw in self.p.stderr:
            self.on_stderr(raw.decode("utf-8", "replace"), time.perf_counter())

    def on_stderr(self, line, now):
        pass

    def mark_ready(self, now):
        with self.cv:
            self.ready_at = now
            self.cv.notify_all()

    def count(self):
        with self.cv:
            return len(self.lines)

    def wait_path(self, path, timeout, since=None):
        """Time the first line naming path (after index `since`) was read, or None."""
        start = len(self.lines) if since is None else since
        end = time.time() + timeout
        with self.cv:
            while True:
                for t, p in self.lines[start:]:
                    if p == path:
                        return t
                start = len(self.lines)
                left = end - time.time()
                if left <= 0:
                    return None
                self.cv.wait(left)

    def quiet(self, idle, limit=120):
        """Wait until no line came for `idle` seconds."""
        end = time.time() + limit
        last, n = time.time(), self.count()
        while time.time() < end:
            time.sleep(0.05)
            if self.count() != n:
                last, n = time.time(), self.count()
            elif time.time() - last >= idle:
                return

    def pids(self):
        return tree_pids(self.p.pid)

    def cpu(self):
        return sum(cpu_s(p) for p in self.pids())

    def wakeups(self):
        return sum(wakeups(p) for p in self.pids())

    def rss_kib(self):
        return sum(proc_status(p, "VmRSS") for p in self.pids())

    def anon_kib(self):
        return sum(proc_status(p, "RssAnon") for p in self.pids())

    def watches(self):
        return sum(inotify_watches(p) for p in self.pids())

    def stop(self):
        if self.p and self.p.poll() is None:
            try:
                os.killpg(self.p.pid, 2)
                self.p.wait(timeout=30)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                os.killpg(self.p.pid, 9)
                self.p.wait()


class Vfswatch(Watcher):
    def __init__(self, backend, raw, run_dir, ring_mb=64, binary=None):
        super().__init__()
        self.backend, self.raw, self.run_dir, self.ring_mb = backend, raw, run_dir, ring_mb
        self.binary = binary or VFSWATCH
        self.name = "vfswatch %s %s" % (backend, "raw" if raw else "settled")

    def command(self, roots):
        args = [self.binary, "run", "--backend", self.backend, "--run-dir", self.run_dir,
                "--no-state", "--no-pin"] + (["--raw"] if self.raw else [])
        if self.backend != "fanotify" and self.ring_mb:
            args += ["--ringbuf-mb", str(self.ring_mb)]
        for r in roots:
            args += ["--watch", r]
        return args

    def parse(self, line):
        e = json.loads(line)
        ev = e.get("event")
        if ev == "ready":
            self.mark_ready(time.perf_counter())
            return []
        if ev == "overflow":
            self.lost += e.get("lost", 0)
            return []
        if "path" not in e:
            return []
        return [os.path.join(e["root"], e["path"])]


class Inotifywait(Watcher):
    name = "inotifywait"

    def command(self, roots):
        return ["inotifywait", "-m", "-r", "-e", "modify,attrib,close_write,move,create,delete",
                "--format", "%w%f"] + roots

    def on_stderr(self, line, now):
        if "Watches established" in line:
            self.mark_ready(now)

    def parse(self, line):
        return [line] if line else []


class Fswatch(Watcher):
    """fswatch's inotify monitor, default latency (1 s)."""
    name = "fswatch"
    probe_ready = True

    def command(self, roots):
        return ["fswatch", "-r"] + roots

    def parse(self, line):
        return [line] if line else []


class Fatrace(Watcher):
    """fatrace: fanotify on the mount of the first root, writes only (its W events)."""
    name = "fatrace"
    probe_ready = True

    def command(self, roots):
        return ["fatrace", "-c", "-f", "W"]

    def parse(self, line):
        i = line.find(": W")
        if i < 0:
            return []
        path = line[i + 3:].strip()
        return [path] if any(path.startswith(r + "/") for r in self.roots) else []


class Watchman(Watcher):
    """Watchman's server with one subscription per root (its settle: 20 ms)."""
    name = "watchman"

    def __init__(self):
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="vw-bench-watchman-")
        self.sock = os.path.join(self.dir, "sock")
        self.server = None

    def start(self, roots, timeout=300):
        self.roots = roots
        self.t0 = time.perf_counter()
        self.server = subprocess.Popen(
            ["watchman", "--foreground", "--sockname=" + self.sock,
             "--statefile=" + os.path.join(self.dir, "state"),
             "--logfile=" + os.path.join(self.dir, "log"),
             "--pidfile=" + os.path.join(self.dir, "pid")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        while not os.path.exists(self.sock) and time.perf_counter() - self.t0 < 30:
            time.sleep(0.005)
        for r in roots:     # returns when the tree has been crawled
            subprocess.run(["watchman", "--sockname=" + self.sock, "watch-project", r],
                           check=True, capture_output=True, timeout=timeout)
        self.acks, self.clients = 0, []
        for i, r in enumerate(roots):   # a persistent client takes one command: one each
            c = subprocess.Popen(["watchman", "--sockname=" + self.sock, "-j", "-p",
                                  "--no-pretty"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, start_new_session=True)
            self.clients.append(c)
            threading.Thread(target=self._read_client, args=(c,), daemon=True).start()
            c.stdin.write((json.dumps(["subscribe", r, "s%d" % i, {"fields": ["name"]}]) +
                           "\n").encode())
            c.stdin.flush()
        self.p = self.clients[0]
        with self.cv:
            self.cv.wait_for(lambda: self.ready_at is not None, timeout=timeout)
        if self.ready_at is None:
            raise RuntimeError("watchman: subscriptions not acknowledged")
        return self.ready_at - self.t0

    def _read_client(self, client):
        for raw in client.stdout:
            if self.counting:
                self.counted += 1
                continue
            now = time.perf_counter()
            try:
                e = json.loads(raw)
            except ValueError:
                continue
            if "subscribe" in e and "files" not in e:
                with self.cv:
                    self.acks += 1
                    if self.acks == len(self.roots):
                        self.ready_at = now
                    self.cv.notify_all()
                continue
            if e.get("is_fresh_instance"):
                continue
            with self.cv:
                self.lines += [(now, os.path.join(e["root"], f)) for f in e.get("files") or []]
                self.cv.notify_all()

    def pids(self):
        return tree_pids(self.server.pid) if self.server else []

    def stop(self):
        try:
            subprocess.run(["watchman", "--sockname=" + self.sock, "shutdown-server"],
                           capture_output=True, timeout=30)
        except subprocess.TimeoutExpired:
            pass
        for p in getattr(self, "clients", []) + [self.server]:
            if p and p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def peers_available():
    have = {"inotifywait": Inotifywait, "fswatch": Fswatch, "fatrace": Fatrace,
            "watchman": Watchman}
    return [(n, c) for n, c in have.items() if shutil.which(n)]
