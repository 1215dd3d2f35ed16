# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# watchman_clients.py: Watchman's clients against Debian's Watchman and against vfswatch's
# watchman.sock, side by side in one run, on 100 000 files in 10 000 directories: a cold
# watch-project to the first complete query answer, a query since a clock after 1 000 changes,
# jest-haste-map's build (cold, then incremental), the server's memory and inotify watches.
# Called by bench.py; asserts nothing.
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time

from watchers import VFSWATCH, inotify_watches

SYSTEM_PYTHON = "/usr/bin/python3"
NODE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "node")

# Timed with pywatchman on one connection: argv socket, root, ndirs, per_dir, rounds.
TIMER = r"""
import json, os, sys, time
import pywatchman
sock, root, ndirs, per_dir, rounds = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
c = pywatchman.client(sockpath=sock, timeout=600)
t0 = time.perf_counter()
w = c.query("watch-project", root)
r = c.query("query", w["watch"], {"fields": ["name"], "expression": ["type", "f"]})
cold = time.perf_counter() - t0
since = []
for k in range(rounds):
    clock = c.query("clock", w["watch"], {"sync_timeout": 60000})["clock"]
    for i in range(1000):
        n = (k * 7919 + i * 104729) % (ndirs * per_dir)
        with open(os.path.join(root, "d%05d" % (n // per_dir), "f%d.js" % (n % per_dir)),
                  "ab") as f:
            f.write(b"x")
    t0 = time.perf_counter()
    s = c.query("query", w["watch"], {"since": clock, "fields": ["name", "exists"],
                                      "expression": ["type", "f"]})
    since.append(time.perf_counter() - t0)
    assert len(s["files"]) >= 990, len(s["files"])
print(json.dumps({"cold_s": cold, "files": len(r["files"]), "since_s": since}))
"""


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def make_tree(top, ndirs, per_dir):
    for d in range(ndirs):
        p = os.path.join(top, "d%05d" % d)
        os.makedirs(p)
        for f in range(per_dir):
            with open(os.path.join(p, "f%d.js" % f), "wb") as fh:
                fh.write(b"module.exports = %d;\n" % f)


def jest_build(tree, cache, sock):
    env = dict(os.environ, WATCHMAN_SOCK=sock)
    t0 = time.perf_counter()
    p = subprocess.run(["node", os.path.join(NODE_DIR, "haste.js"), tree, cache, "watchman",
                        "0"], env=env, capture_output=True, text=True, timeout=1200)
    took = time.perf_counter() - t0
    if p.returncode or "atchman" in p.stderr:
        return None
    return took


def watchman_clients(record, say, ndirs=10000, per_dir=10, rounds=5, run_dir=None):
    if not os.path.exists(SYSTEM_PYTHON) or subprocess.run(
            [SYSTEM_PYTHON, "-c", "import pywatchman"], capture_output=True).returncode:
        say("watchman clients: python3-pywatchman not installed: left out")
        return
    if not shutil.which("watchman"):
        say("watchman clients: Debian's watchman not installed: left out")
        return
    have_jest = shutil.which("node") and os.path.isdir(os.path.join(NODE_DIR, "node_modules"))
    say("watchman clients: %d files in %d directories, Debian's Watchman and vfswatch's "
        "watchman.sock, each with its own copy of the tree; median of %d since-queries"
        % (ndirs * per_dir, ndirs, rounds))
    top = tempfile.mkdtemp(prefix="vw-bench-wm-")
    procs = []
    try:
        wm_dir = os.path.join(top, "wm")
        os.makedirs(wm_dir)
        wm_sock = os.path.join(wm_dir, "sock")
        wm = subprocess.Popen(["watchman", "--foreground", "--no-save-state",
                               "--sockname=" + wm_sock,
                               "--statefile=" + os.path.join(wm_dir, "state"),
                               "--logfile=" + os.path.join(wm_dir, "log"),
                               "--pidfile=" + os.path.join(wm_dir, "pid")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
        procs.append(wm)
        idle = os.path.join(top, "idle")
        os.makedirs(idle)
        vw = subprocess.Popen([VFSWATCH, "run", "--run-dir", run_dir, "--no-state", "--watch",
                               idle], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
        procs.append(vw)
        vw_sock = os.path.join(run_dir, "watchman.sock")
        for s in (wm_sock, vw_sock):
            for _ in range(1000):
                if os.path.exists(s):
                    break
                time.sleep(0.01)
        res = {}
        for label, sock, proc in (("watchman", wm_sock, wm), ("vfswatch", vw_sock, vw)):
            tree = os.path.join(top, "tree-" + label)
            make_tree(tree, ndirs, per_dir)
            os.sync()
            p = subprocess.run([SYSTEM_PYTHON, "-c", TIMER, sock, tree, str(ndirs),
                                str(per_dir), str(rounds)], capture_output=True, text=True,
                               timeout=1800)
            if p.returncode:
                say("  %s: the client failed: %s" % (label, p.stderr.strip()[-300:]))
                continue
            t = json.loads(p.stdout)
            r = {"cold": t["cold_s"] * 1000, "since": statistics.median(t["since_s"]) * 1000,
                 "files": t["files"]}
            if have_jest:
                cache = os.path.join(top, "jest-" + label)
                os.makedirs(cache)
                r["jest_cold"] = jest_build(tree, cache, sock)
                for i in range(100):
                    with open(os.path.join(tree, "d%05d" % (i * 97 % ndirs), "f1.js"),
                              "ab") as f:
                        f.write(b"//\n")
                r["jest_incr"] = jest_build(tree, cache, sock)
            r["rss"] = rss_kib(proc.pid)
            r["watches"] = inotify_watches(proc.pid)
            res[label] = r
            say("  %-9s cold watch-project to a complete answer %8.1f ms (%d files); query "
                "since after 1000 changes %7.2f ms; RSS %7d KiB; inotify watches %6d%s" % (
                    label, r["cold"], r["files"], r["since"], r["rss"], r["watches"],
                    "; jest-haste-map cold %.2f s, incremental %.2f s" % (
                        r["jest_cold"] or float("nan"), r["jest_incr"] or float("nan"))
                    if have_jest else ""))
            record("watchman clients", "cold watch-project to first answer", label,
                   round(r["cold"], 1), "ms")
            record("watchman clients", "query since after 1000 changes", label,
                   round(r["since"], 2), "ms")
            record("watchman clients", "server RSS", label, r["rss"], "KiB")
            record("watchman clients", "inotify watches", label, r["watches"], "")
            if have_jest:
                record("watchman clients", "jest-haste-map cold", label,
                       round((r["jest_cold"] or float("nan")) * 1000), "ms")
                record("watchman clients", "jest-haste-map incremental", label,
                       round((r["jest_incr"] or float("nan")) * 1000), "ms")
            shutil.rmtree(tree, ignore_errors=True)
        if "watchman" in res and "vfswatch" in res:
            w, v = res["watchman"], res["vfswatch"]
            say("  vfswatch / Watchman: cold first answer %.2fx, since-query %.2fx, RSS %.2fx "
                "(targets: <= 0.33, <= 1, <= 0.33)" % (v["cold"] / w["cold"],
                                                      v["since"] / w["since"],
                                                      v["rss"] / max(w["rss"], 1)))
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait()
        shutil.rmtree(top, ignore_errors=True)
