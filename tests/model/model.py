#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# model.py: model-based exactness test: random operations, the stream replayed, compared with the tree.
"""
Each seed runs a random sequence of file operations over a small namespace
(so that names collide often) in its own directory below a watched root, then
checks the daemon's stream against the file system:

settled: a consumer that starts from the tree at `ready` and applies every
  settled line in order ends with exactly the live tree's paths and types, and
  every path whose content or metadata changed during the seed got a line.
raw: every changed path appears in a line (a renamed directory's line standing
  for what is below it). Raw lines are one per event, typed and listed when the
  daemon handles the event (fanotify: named then too), so the raw stream is not
  replayed; the settled stream is the one to replay.

Usage: model.py [--backend B] [--mode settled|raw] [--seeds N] [--first S] [--ops N]
Prints one line per failing seed (with a minimized operation list) and ends with
"model: N passed, N failed, N skipped".
"""
import argparse
import ast
import ctypes
import hashlib
import os
import queue
import random
import re
import shutil
import stat
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
sys.path.insert(0, os.path.dirname(HERE))   # the VM keeps harness.py one level up
from harness import Daemon, Tree, backend_reason  # noqa: E402

NAMES = ["a", "b", "c", "dd"]
DIRS = ["", "x", "y", "x/z"]
SETTLE_MS = 40
libc = ctypes.CDLL(None, use_errno=True)
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
NB = os.O_NONBLOCK


def renameat2(a, b, flags):
    if libc.renameat2(-100, a.encode(), -100, b.encode(), flags) != 0:
        raise OSError(ctypes.get_errno(), "renameat2")


# --- operations ---------------------------------------------------------------------

def gen_ops(rng, n):
    """A list of operations; each is a tuple (name, args...) with paths relative to the seed dir."""
    def path():
        d = rng.choice(DIRS)
        return os.path.join(d, rng.choice(NAMES)) if d else rng.choice(NAMES)

    def anypath():
        return rng.choice([path(), path(), rng.choice(DIRS[1:])])

    kinds = ["create", "create", "write", "append", "truncate", "otrunc", "unlink", "mkdir",
             "mkdir", "rmdir", "rmtree", "rename", "rename", "rename", "exchange", "noreplace",
             "link", "symlink", "chmod", "touch", "mkfifo", "unlinked_write", "move_in",
             "move_out", "pause"]
    ops = []
    for _ in range(n):
        k = rng.choice(kinds)
        if k in ("rename", "exchange", "noreplace", "link"):
            ops.append((k, anypath(), anypath()))
        elif k == "symlink":
            ops.append((k, rng.choice(NAMES), path()))
        elif k in ("mkdir", "rmdir", "rmtree"):
            ops.append((k, rng.choice([rng.choice(DIRS[1:]), path()])))
        elif k == "move_in":
            ops.append((k, anypath(), rng.randint(0, 3)))
        elif k == "pause":
            ops.append((k, rng.choice([SETTLE_MS * 2, 5])))
        elif k in ("write", "append", "create"):
            ops.append((k, path(), rng.randint(1, 64)))
        else:
            ops.append((k, anypath() if k in ("move_out", "chmod", "touch") else path()))
    return ops


TOUCHED = []     # (inode, name) of each change made by name: raw lines name that name


def through_symlink(base, q):
    """Does the name q reach its entry through a symlinked directory?"""
    parent = os.path.dirname(os.path.join(base, q))
    return os.path.realpath(parent) != os.path.realpath(base) + parent[len(base):]


def run_op(op, base, outside, names_only=False):
    k, a = op[0], op[1]
    p = lambda q: os.path.join(base, q)  # noqa: E731
    # a backend that sees names only (tracepoint) names a change made through a symlinked
    # directory by the name used (README): such operations are left out for it
    if names_only and any(isinstance(q, str) and k != "move_in" and through_symlink(base, q)
                          for q in op[1:3]):
        return
    if k in ("write", "append", "truncate", "otrunc", "chmod", "touch", "unlinked_write"):
        try:
            TOUCHED.append((os.stat(p(a), follow_symlinks=k != "touch").st_ino, a))
        except OSError:
            pass
    try:
        if k == "create":   # O_NONBLOCK: a fifo of the namespace must not block the test
            fd = os.open(p(a), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | NB, 0o644)
            try:
                os.write(fd, os.urandom(op[2]))
            finally:
                os.close(fd)
        elif k in ("write", "append"):
            fd = os.open(p(a), os.O_WRONLY | NB | (os.O_APPEND if k == "append" else 0))
            try:
                os.write(fd, os.urandom(op[2]))
            finally:
                os.close(fd)
        elif k == "truncate":
            os.truncate(p(a), 1)
        elif k == "otrunc":
            os.close(os.open(p(a), os.O_WRONLY | os.O_TRUNC | NB))
        elif k == "unlink":
            os.unlink(p(a))
        elif k == "mkdir":
            os.mkdir(p(a))
        elif k == "rmdir":
            os.rmdir(p(a))
        elif k == "rmtree":
            if os.path.isdir(p(a)) and not os.path.islink(p(a)):
                shutil.rmtree(p(a))
        elif k == "rename":
            os.rename(p(a), p(op[2]))
        elif k == "exchange":
            renameat2(p(a), p(op[2]), RENAME_EXCHANGE)
        elif k == "noreplace":
            renameat2(p(a), p(op[2]), RENAME_NOREPLACE)
        elif k == "link":
            os.link(p(a), p(op[2]), follow_symlinks=False)
        elif k == "symlink":
            os.symlink(a, p(op[2]))
        elif k == "chmod":
            os.chmod(p(a), 0o600 if os.stat(p(a)).st_mode & 0o044 else 0o644,
                     follow_symlinks=True)
        elif k == "touch":
            os.utime(p(a), follow_symlinks=False)
        elif k == "mkfifo":
            os.mkfifo(p(a))
        elif k == "unlinked_write":
            fd = os.open(p(a), os.O_WRONLY | NB)
            try:
                os.unlink(p(a))
                os.write(fd, b"after unlink")
            finally:
                os.close(fd)
        elif k == "move_in":
            src = os.path.join(outside, "in%d" % time.monotonic_ns())
            os.mkdir(src)
            for i in range(op[2]):
                with open(os.path.join(src, "f%d" % i), "wb") as f:
                    f.write(b"moved in %d" % i)
            if op[2] >= 2:
                os.mkdir(os.path.join(src, "sub"))
                with open(os.path.join(src, "sub", "g"), "wb") as f:
                    f.write(b"deep")
            os.rename(src, p(a))
        elif k == "move_out":
            os.rename(p(a), os.path.join(outside, "out%d" % time.monotonic_ns()))
        elif k == "pause":
            time.sleep(a / 1000.0)
    except OSError:
        pass    # the operation did not apply: the tree did not change


# --- the truth and the replay ---------------------------------------------------------

def kind(st):
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    if stat.S_ISLNK(st.st_mode):
        return "symlink"
    if stat.S_ISREG(st.st_mode):
        return "file"
    return "other"


def snapshot(top, prefix):
    """rel path (prefix/...) -> (type, digest of content and metadata) for everything below top."""
    snap = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            t = kind(st)
            rel = prefix + "/" + os.path.relpath(full, top)
            if t == "file":
                with open(full, "rb") as f:
                    content = hashlib.sha256(f.read()).hexdigest()
            elif t == "symlink":
                content = os.readlink(full)
            else:
                content = ""
            snap[rel] = (t, (content, st.st_mode, st.st_uid, st.st_mtime_ns if t != "dir" else 0,
                             st.st_ino))
    return snap


class Replay:
    """The tree as a consumer of the stream believes it to be: path -> type. A child index
    makes a delete or rename cost what is below it, not the whole tree (the soak replays
    hundreds of thousands of lines). With track_named, the paths a line named since the
    last reset, carried along by renames."""

    def __init__(self, track_named=True):
        self.paths = {}
        self.kids = {}
        self.named = set() if track_named else None
        self.violations = []

    def add(self, p, t):
        if p not in self.paths:
            self.kids.setdefault(p.rpartition("/")[0], set()).add(p)
        self.paths[p] = t

    def below(self, p):
        out, stack = [], [p]
        while stack:
            q = stack.pop()
            if q in self.paths:
                out.append(q)
            stack.extend(self.kids.get(q, ()))
        return out

    def drop(self, p):
        for q in self.below(p):
            del self.paths[q]
            self.kids.get(q.rpartition("/")[0], set()).discard(q)

    def carry_named(self, old, new):
        if self.named is not None:
            self.named |= {new + q[len(old):] for q in self.named if q.startswith(old + "/")}

    def move(self, old, new):
        moved = [(new + q[len(old):], self.paths[q]) for q in self.below(old)]
        self.drop(old)
        self.drop(new)
        for q, t in moved:
            self.add(q, t)
        self.carry_named(old, new)

    def apply(self, e, strict):
        ev, p, t = e["event"], e.get("path"), e.get("type")
        if self.named is not None:
            self.named |= {q for q in (p, e.get("old_path")) if q}
        if ev == "create":
            if t != "dir":
                self.drop(p)
            self.add(p, t)
        elif ev == "delete":
            if strict and p not in self.paths:
                self.violations.append("delete of %s, which the stream never said exists" % p)
            self.drop(p)
        elif ev in ("modify", "truncate", "attrib"):
            if strict and p not in self.paths:
                self.violations.append("%s of %s, which the stream never said exists" % (ev, p))
            if self.paths.get(p) == "dir" and t != "dir":
                self.drop(p)
            self.add(p, t)
        elif ev == "rename":
            old = e["old_path"]
            if strict and old not in self.paths:
                self.violations.append("rename from %s, which the stream never said exists" % old)
            if e.get("exchange"):
                a = [(p + q[len(old):], self.paths[q]) for q in self.below(old)]
                b = [(old + q[len(p):], self.paths[q]) for q in self.below(p)]
                self.drop(old)
                self.drop(p)
                for q, v in a + b:
                    self.add(q, v)
                if self.named is not None:
                    na = {q for q in self.named if q.startswith(old + "/")}
                    nb = {q for q in self.named if q.startswith(p + "/")}
                    self.named |= {p + q[len(old):] for q in na} | {old + q[len(p):] for q in nb}
            else:
                known = old in self.paths
                self.move(old, p)
                if t and not known:
                    self.add(p, t)   # what moved keeps its type (raw lines type renames late)


# --- one seed -------------------------------------------------------------------------

class World:
    """One daemon on one root for many seeds."""

    def __init__(self, backend, mode, read_delay_us=0):
        self.backend, self.mode = backend, mode
        self.tree = Tree("vw-model-")
        self.root = self.tree.mkdir("root")
        self.outside = self.tree.mkdir("outside")
        extra = ["--no-default-ignores"] + (["-v", "-v"] if os.environ.get("VW_MODEL_VERBOSE") else [])
        if mode == "settled":
            extra += ["--settle", str(SETTLE_MS), "--max-delay", "400"]
        env = None
        if read_delay_us:   # every read of the kernel queue waits a random while first
            env = dict(os.environ, VFSWATCH_TEST_HOOKS="read_delay_us=%d" % read_delay_us)
        self.d = Daemon([self.root], backend, raw=(mode == "raw"), extra=extra, env=env)
        self.replay = Replay()
        # raw lines are one per event, typed and listed when the daemon handles it (fanotify:
        # named then too): they promise coverage only (README: the exactness contract)
        self.exact = mode == "settled"
        self.pos = 0
        self.n = 0

    def sync(self):
        """Wait until every change made so far has been reported."""
        self.n += 1
        name = ".sync-%d" % self.n
        with open(os.path.join(self.root, name), "wb"):
            pass
        e = self.wait_new(lambda e: e.get("event") == "create" and e.get("path") == name)
        if e is None:
            raise AssertionError("no line for sync file %s; last lines:\n%s\nstderr: %s" %
                                 (name, "\n".join(str(x) for x in self.d.seen[-8:]),
                                  "".join(self.d.err)[-2000:]))
        if self.mode == "settled":   # the rest of its batch (lines come parents first)
            b, left = e["batch"], [e["batch_size"]]

            def rest(x):
                if x.get("batch") == b and x.get("root") == self.root:
                    left[0] -= 1
                return left[0] <= 0
            self.wait_new(rest)
        os.unlink(os.path.join(self.root, name))

    def wait_new(self, pred, timeout=20):
        """The first line not yet consumed that matches pred (waiting for it), or None."""
        for e in self.d.seen[self.pos:]:
            if pred(e):
                return e
        end = time.time() + timeout
        while time.time() < end:
            try:
                e = self.d.lines.get(timeout=max(0.01, end - time.time()))
            except queue.Empty:
                return None
            if e is None:
                return None
            self.d.seen.append(e)
            if pred(e):
                return e
        return None

    def consume(self, strict):
        lines = self.d.seen[self.pos:]
        self.pos = len(self.d.seen)
        for e in lines:
            if "path" in e and e.get("root") == self.root and e["event"] in (
                    "create", "delete", "modify", "truncate", "attrib", "rename"):
                self.replay.apply(e, strict)
        return lines

    def run_seed(self, name, ops):
        """Returns a list of problems (empty: the contract held)."""
        base = os.path.join(self.root, name)
        os.mkdir(base)
        for d in ("x", "y", "x/z"):
            os.mkdir(os.path.join(base, d))
        for i, n in enumerate(NAMES[:3]):
            with open(os.path.join(base, n), "wb") as f:
                f.write(b"initial %d" % i)
        self.sync()
        self.consume(False)
        self.replay.violations = []
        self.replay.named = set()
        before = snapshot(base, name)
        del TOUCHED[:]
        for op in ops:
            run_op(op, base, self.outside, self.backend == "tracepoint")
        self.sync()
        lines = [e for e in self.consume(self.exact) if e.get("root") == self.root and "path" in e]
        after = snapshot(base, name)
        problems = list(self.replay.violations)
        believed = {p: t for p, t in self.replay.paths.items()
                    if p == name or p.startswith(name + "/")}
        truth = {p: v[0] for p, v in after.items()}
        truth[name] = "dir"
        for p in sorted(set(believed) | set(truth)) if self.exact else []:
            if believed.get(p) != truth.get(p):
                problems.append("replay has %s as %s, the tree as %s" %
                                (p, believed.get(p), truth.get(p)))
        named = self.replay.named
        renames = [(e["path"], e["old_path"]) for e in lines if e["event"] == "rename"]
        renames += [(o, n) for n, o in renames if any(
            e.get("exchange") for e in lines if e.get("old_path") == o and e["path"] == n)]

        def moved_unchanged(p, v, depth=0):
            # below a renamed directory (through a chain of renames), with the content and
            # metadata it had under the old name
            for new, old in renames:
                if p.startswith(new + "/"):
                    q = old + p[len(new):]
                    if before.get(q) == v or (depth < 8 and moved_unchanged(q, v, depth + 1)):
                        return True
            return False

        # raw lines name the link a change was made through; the settled stream names every link
        inodes = {after[q][1][4] for q in named if q in after} if not self.exact else set()
        inodes |= {i for i, q in TOUCHED if name + "/" + q in named} if not self.exact else set()
        def listed_late(p):
            # raw: what a moved-in directory holds is listed when the daemon reads its event;
            # renamed again before that, its name holds something else then (README)
            return not self.exact and p not in before and any(
                re.fullmatch(r"f\d+|sub", c) for c in p.split("/")) and any(
                e["event"] == "rename" for e in lines)
        for p, v in after.items():
            if before.get(p) != v and p not in named and not moved_unchanged(p, v) and \
                    not (v[0] == "file" and v[1][4] in inodes) and not listed_late(p):
                problems.append("%s changed (%s) but no line names it" %
                                ("created" if p not in before else "content or metadata", p))
        for p in before:
            if p not in after and p not in named and not any(
                    p.startswith(q + "/") for q in named if q):
                problems.append("%s is gone but no line names it or a directory above it" % p)
        if problems and os.environ.get("VW_MODEL_VERBOSE"):
            with open(os.environ["VW_MODEL_VERBOSE"], "w") as f:
                f.write("".join(self.d.err))
        if problems:
            problems.append("lines (#batch): " + " | ".join(
                "#%s %s %s%s" % (e.get("batch"), e["event"], e["path"],
                                 " <- " + e["old_path"] if "old_path" in e else "")
                for e in lines if not e["path"].startswith(".sync")))
        return problems

    def close(self):
        rc = self.d.stop()
        self.tree.cleanup()
        return rc


def minimize(world, seed, ops):
    """Drop operations one at a time while the seed still fails."""
    k = 0
    i = len(ops) - 1
    while i >= 0:
        trial = ops[:i] + ops[i + 1:]
        k += 1
        if world.run_seed("min%d-%d" % (seed, k), trial):
            ops = trial
        i -= 1
    return ops


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", default="tracepoint")
    ap.add_argument("--mode", default="settled", choices=["settled", "raw"])
    ap.add_argument("--seeds", type=int, default=200)
    ap.add_argument("--first", type=int, default=1)
    ap.add_argument("--ops", type=int, default=50)
    ap.add_argument("--no-minimize", action="store_true")
    ap.add_argument("--read-delay-us", type=int, default=0, metavar="N",
                    help="the daemon waits up to N us (at random) before each read of the "
                    "kernel queue: the consumer races the writers at every point")
    ap.add_argument("--run", metavar="OPS", help="run this operation list (as printed by a "
                    "failure) instead of seeds, and print what it found")
    a = ap.parse_args()
    tag = "model %s %s" % (a.backend, a.mode)
    if a.read_delay_us:
        tag += " read-delay %d us" % a.read_delay_us
    reason = backend_reason(a.backend)
    if reason:
        print("%s: skipped: %s" % (tag, reason))
        print("model: 0 passed, 0 failed, 1 skipped")
        return 0
    world = World(a.backend, a.mode, a.read_delay_us)
    if a.run:
        try:
            problems = world.run_seed("run", ast.literal_eval(a.run))
        finally:
            world.close()
        print("\n".join(problems) or "the contract held")
        return 1 if problems else 0
    passed = failed = 0
    t0 = time.time()
    try:
        for seed in range(a.first, a.first + a.seeds):
            ops = gen_ops(random.Random(seed), a.ops)
            problems = world.run_seed("s%d" % seed, ops)
            if not problems:
                passed += 1
                continue
            failed += 1
            print("FAIL %s seed %d:" % (tag, seed))
            for p in problems:
                print("   ", p)
            if not a.no_minimize and failed == 1:
                small = minimize(world, seed, ops)
                print("    minimized (%d of %d operations): %s" % (len(small), len(ops), small))
            sys.stdout.flush()
    finally:
        rc = world.close()
    if rc != 0:
        failed += 1
        print("FAIL %s: daemon exit code %d" % (tag, rc))
    print("%s: %d seeds of %d operations in %.0f s" % (tag, a.seeds, a.ops, time.time() - t0))
    print("model: %d passed, %d failed, 0 skipped" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
