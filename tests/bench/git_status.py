# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# git_status.py: `git status` on a large repository side by side, in one run: no fsmonitor,
# Watchman with git's own fsmonitor-watchman sample hook, vfswatch's hook, and git's floor (a
# hook the bench tells the answer: what git costs around any fsmonitor), also with a split
# index; then the hook's own latency and a query's sync point on an idle daemon. Called by
# bench.py; asserts nothing.
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time

from watchers import VFSWATCH

FLOOR = "git's floor (perfect hook)"
VW_SPLIT = "vfswatch hook, split index"
FLOOR_SPLIT = "git's floor, split index"
SAMPLE_HOOK = "/usr/share/git-core/templates/hooks/fsmonitor-watchman.sample"
GIT_ENV = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.org", "GIT_COMMITTER_NAME": "b",
           "GIT_COMMITTER_EMAIL": "b@example.org", "GIT_CONFIG_NOSYSTEM": "1"}


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * q / 100))] if v else float("nan")


# The floor: a hook that needs no watcher, since the bench tells it what it changed (a token
# that moves only with a change, then those paths). What git itself costs around any fsmonitor.
FLOOR_HOOK = """#!/bin/sh
exec cat "$(dirname "$0")/answer"
"""


class Floor:
    """The perfect hook's answers, written by the bench before each git status."""

    def __init__(self, top):
        self.hook = os.path.join(top, "floor", "hook")
        os.makedirs(os.path.dirname(self.hook))
        with open(self.hook, "w") as f:
            f.write(FLOOR_HOOK)
        os.chmod(self.hook, 0o755)
        self.token = 0

    def answer(self, paths, everything=False):
        if paths or everything:
            self.token += 1
        body = b"floor-%d\0" % self.token
        body += b"/\0" if everything else b"".join(p.encode() + b"\0" for p in paths)
        with open(os.path.join(os.path.dirname(self.hook), "answer"), "wb") as f:
            f.write(body)


def make_repo(top, ndirs, per_dir):
    os.makedirs(top)
    for d in range(ndirs):
        p = os.path.join(top, "d%05d" % d)
        os.mkdir(p)
        for f in range(per_dir):
            with open(os.path.join(p, "f%02d.txt" % f), "wb") as fh:
                fh.write(b"%d %d\n" % (d, f))
    env = dict(os.environ, **GIT_ENV)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "init"],
                 # as git advises with a watcher, and as it helps git alone too
                 ["config", "core.untrackedCache", "true"]):
        subprocess.run(["git"] + args, cwd=top, env=env, check=True)


def timed_status(repo, env, extra):
    t0 = time.perf_counter()
    subprocess.run(["git"] + extra + ["status", "--porcelain"], cwd=repo, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - t0) * 1000


def touch_files(repo, n, round_no, ndirs, per_dir):
    """Append to @n tracked files; their paths."""
    paths = []
    for i in range(n):
        k = (round_no * 7919 + i * 104729) % (ndirs * per_dir)
        paths.append("d%05d/f%02d.txt" % (k // per_dir, k % per_dir))
        with open(os.path.join(repo, paths[-1]), "ab") as fh:
            fh.write(b"r%d\n" % round_no)
    return paths


def git_status(record, say, ndirs=10000, per_dir=10, runs=5, run_dir=None):
    """Medians of `runs` git status after 0, 1 and 1000 changes, each way, in one run."""
    top = tempfile.mkdtemp(prefix="vw-bench-git-")
    repo = os.path.join(top, "repo")
    wm_dir = os.path.join(top, "watchman")
    os.makedirs(wm_dir)
    say("git status: a repository of %d files in %d directories; median of %d runs after 0, 1 "
        "and 1000 changed files: no fsmonitor, Watchman + git's sample hook, vfswatch's hook, "
        "and git's floor (a hook told the answer by the bench), also with a split index"
        % (ndirs * per_dir, ndirs, runs))
    make_repo(repo, ndirs, per_dir)
    env = dict(os.environ, **GIT_ENV)
    floor = Floor(top)
    ways = [("no fsmonitor", ["-c", "core.fsmonitor=false"], env)]
    wm = None
    if shutil.which("watchman") and os.path.exists(SAMPLE_HOOK):
        hook = os.path.join(top, "fsmonitor-watchman")
        shutil.copy(SAMPLE_HOOK, hook)
        os.chmod(hook, 0o755)
        sock = os.path.join(wm_dir, "sock")
        wm = subprocess.Popen(["watchman", "--foreground", "--sockname=" + sock,
                               "--statefile=" + os.path.join(wm_dir, "state"),
                               "--logfile=" + os.path.join(wm_dir, "log"),
                               "--pidfile=" + os.path.join(wm_dir, "pid")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
        while not os.path.exists(sock):
            time.sleep(0.01)
        ways.append(("watchman + sample hook", ["-c", "core.fsmonitor=" + hook, "-c",
                                                 "core.fsmonitorHookVersion=2"],
                     dict(env, WATCHMAN_SOCK=sock)))
    else:
        say("  watchman or git's fsmonitor-watchman sample not installed: left out")
    idle = os.path.join(top, "idle")    # the daemon's own project; the hook adds the repo
    os.makedirs(idle)
    vw = subprocess.Popen([VFSWATCH, "run", "--run-dir", run_dir, "--no-state", "--watch", idle],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True)
    try:
        while not os.path.exists(os.path.join(run_dir, "client.sock")):
            time.sleep(0.01)
        vw_hook = "%s git-fsmonitor --run-dir %s" % (VFSWATCH, run_dir)
        ways.append(("vfswatch hook", ["-c", "core.fsmonitor=" + vw_hook, "-c",
                                       "core.fsmonitorHookVersion=2"], env))
        ways.append((FLOOR, ["-c", "core.fsmonitor=" + floor.hook, "-c",
                             "core.fsmonitorHookVersion=2"], env))
        # last, as they leave the index split: git's own advice for a large index (the index
        # written again for a new token is then the changed entries only)
        split = ["-c", "core.splitIndex=true"]
        ways.append((VW_SPLIT, ways[-2][1] + split, env))
        ways.append((FLOOR_SPLIT, ways[-2][1] + split, env))
        res = {}
        for label, extra, wenv in ways:
            floor.answer([], everything=True)
            for _ in range(3):      # the first looks at everything, and writes the token
                timed_status(repo, wenv, extra)
                floor.answer([])
            for changed in (0, 1, 1000):
                samples = []
                for r in range(runs):
                    floor.answer(touch_files(repo, changed, r + changed, ndirs, per_dir))
                    if changed:
                        time.sleep(0.3)     # Watchman's settle is 20 ms; no watcher is behind
                    samples.append(timed_status(repo, wenv, extra))
                res[(label, changed)] = statistics.median(samples)
                record("git status", "after %d changed" % changed, label,
                       round(res[(label, changed)], 1), "ms")
            say("  %-28s %8.1f ms %8.1f ms %8.1f ms  (after 0 / 1 / 1000 changed)" % (
                label, res[(label, 0)], res[(label, 1)], res[(label, 1000)]))
            if wm and label.startswith("watchman"):    # its server idle beside the next: no
                os.killpg(wm.pid, 15)
                wm.wait()
                wm = None
        base = res[("no fsmonitor", 1)]
        for label, _, _ in ways[1:]:
            if label in (FLOOR, FLOOR_SPLIT):
                continue
            record("git status", "speed-up after 1 changed", label,
                   round(base / max(res[(label, 1)], 1e-9), 2), "x")
            say("  %-28s %.1fx faster than no fsmonitor after 1 change" % (
                label, base / max(res[(label, 1)], 1e-9)))
        for fl, mine in ((FLOOR, "vfswatch hook"), (FLOOR_SPLIT, VW_SPLIT)):
            say("  %s after 1 change (%.1f ms) is %.1fx faster than no fsmonitor: what any "
                "fsmonitor can reach with this git; %s: %+.1f ms from it" % (
                    fl, res[(fl, 1)], base / max(res[(fl, 1)], 1e-9), mine,
                    res[(mine, 1)] - res[(fl, 1)]))
            record("git status", "floor speed-up after 1 changed", fl,
                   round(base / max(res[(fl, 1)], 1e-9), 2), "x")
        hook_latency(record, say, repo, run_dir)
        sync_latency(record, say, repo, run_dir)
    finally:
        vw.terminate()
        vw.wait()
        if wm:
            os.killpg(wm.pid, 15)
            wm.wait()
        shutil.rmtree(top, ignore_errors=True)


def hook_latency(record, say, repo, run_dir, n=200):
    """The hook alone, as git runs it, with a current token (nothing changed): p50/p99."""
    def run(token):
        p = subprocess.run([VFSWATCH, "git-fsmonitor", "--run-dir", run_dir, "2", token],
                           cwd=repo, capture_output=True, check=True)
        return p.stdout.split(b"\0")[0].decode()
    token = run("")
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        token = run(token)
        lat.append((time.perf_counter() - t0) * 1000)
    record("git status", "hook p50", "vfswatch hook", round(pct(lat, 50), 2), "ms")
    record("git status", "hook p99", "vfswatch hook", round(pct(lat, 99), 2), "ms")
    say("  the hook alone (a process git spawns, its query and answer): p50 %.2f ms, p99 %.2f ms"
        % (pct(lat, 50), pct(lat, 99)))


def sync_latency(record, say, repo, run_dir, n=500):
    """A `changes --since` round trip on an idle daemon (its sync point included): p50/p99."""
    def ask(req):
        s = socket.socket(socket.AF_UNIX)
        s.connect(os.path.join(run_dir, "client.sock"))
        s.sendall(json.dumps(req).encode() + b"\n")
        buf = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            buf += b
        s.close()
        return [json.loads(x) for x in buf.splitlines()]
    cursor = ask({"cmd": "changes", "project": repo})[-1]["cursor"]
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        cursor = ask({"cmd": "changes", "project": repo, "since": cursor})[-1]["cursor"]
        lat.append((time.perf_counter() - t0) * 1000)
    record("git status", "query with sync p50", "vfswatch", round(pct(lat, 50), 3), "ms")
    record("git status", "query with sync p99", "vfswatch", round(pct(lat, 99), 3), "ms")
    say("  a query with its sync point on an idle daemon (round trip): p50 %.3f ms, p99 %.3f ms"
        % (pct(lat, 50), pct(lat, 99)))
