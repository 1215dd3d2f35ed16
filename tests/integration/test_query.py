# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# test_query.py: read your writes: a query's answer holds every change whose system call returned
# before the query, however long the settle time, while a VCS lock holds the batch, in a storm.
import json
import os
import random
import subprocess
import time
import threading

from harness import RUN_DIR, VFSWATCH, DaemonCase, Tree, ask, write

ROUNDS = int(os.environ.get("VW_RW_ROUNDS", "1000"))


def tree_paths(root, skip):
    out = set()
    for d, dirs, files in os.walk(root):
        rel = os.path.relpath(d, root)
        for n in dirs + files:
            p = n if rel == "." else os.path.join(rel, n)
            if not any(p == s or p.startswith(s + "/") for s in skip):
                out.add(p)
    return out


class ReadYourWrites(DaemonCase):
    """Write, then at once `changes --since`: the write is in the answer, never again after."""
    backend = "tracepoint"

    def start_settled(self):
        self.start(raw=False, extra=["--settle", "200"])
        self.marker()

    def query(self, cursor):
        req = {"cmd": "changes", "project": self.root}
        if cursor:
            req["since"] = cursor
        lines = ask(req)
        self.assertTrue(lines and "cursor" in lines[-1], lines[-3:])
        self.assertNotIn("fresh", lines[-1], "a chained cursor was not answered exactly")
        return [e for e in lines[:-1] if "event" in e], lines[-1]["cursor"]

    def one_round(self, rng, files, dirs):
        """A random change; returns {path: the kinds its answer may hold}."""
        ops = ["create", "mkdir"] + ["modify", "delete", "rename", "chmod"] * bool(files)
        op = rng.choice(ops)
        n = "f%d" % rng.randrange(1 << 30)
        where = rng.choice([""] + sorted(dirs))
        new = os.path.join(where, n) if where else n
        if op == "create":
            write(os.path.join(self.root, new), b"x")
            files.add(new)
            return {new: {"create"}}
        if op == "mkdir":
            os.mkdir(os.path.join(self.root, new))
            dirs.add(new)
            return {new: {"create"}}
        f = rng.choice(sorted(files))
        if op == "modify":
            write(os.path.join(self.root, f), b"more", "ab")
            return {f: {"modify"}}
        if op == "chmod":
            os.chmod(os.path.join(self.root, f), rng.choice([0o600, 0o644, 0o755]))
            return {f: {"attrib", "modify"}}
        files.discard(f)
        if op == "delete":
            os.unlink(os.path.join(self.root, f))
            return {f: {"delete"}}
        os.rename(os.path.join(self.root, f), os.path.join(self.root, new))
        files.add(new)
        return {f: {"delete"}, new: {"create", "modify"}}

    def rounds(self, n, skip=(), storm=None):
        rng = random.Random(n)
        files, dirs = set(), set()
        _, cursor = self.query(None)
        replay = tree_paths(self.root, (".git",))  # what the first cursor stands for
        misses = []
        for i in range(n):
            want = self.one_round(rng, files, dirs)
            got, cursor = self.query(cursor)
            mine = [e for e in got if not any(e["path"] == s or e["path"].startswith(s + "/")
                                              for s in skip)]
            for path, kinds in want.items():
                if not any(e["path"] == path and e["event"] in kinds for e in mine):
                    misses.append((i, path, kinds, mine))
            # nothing told again: every line of the answer is this round's
            self.assertEqual({e["path"] for e in mine} - set(want), set(),
                             "round %d: lines of earlier rounds again: %s" % (i, mine))
            self.apply(replay, got)
        self.assertEqual(misses[:5], [], "%d of %d writes missing from the answer right after"
                         % (len(misses), n))
        if storm:
            storm.join()
        got, cursor = self.query(cursor)
        self.apply(replay, got)
        self.assertEqual({p for p in replay if not p.startswith(".marker")},
                         {p for p in tree_paths(self.root, ()) if not p.startswith(".marker")
                          and not p.startswith(".git")},
                         "the answers, replayed, are not the tree")

    @staticmethod
    def apply(paths, lines):
        for e in lines:
            p = e["path"]
            if e["event"] == "delete":
                paths.difference_update({q for q in paths if q == p or q.startswith(p + "/")})
            else:
                paths.add(p)

    def test_a_write_is_in_the_answer_right_after_it(self):
        self.start_settled()
        self.rounds(ROUNDS)

    def test_a_held_vcs_lock_does_not_delay_the_answer(self):
        os.mkdir(os.path.join(self.root, ".git"))
        self.start_settled()
        write(os.path.join(self.root, ".git", "index.lock"), b"")  # a checkout under way
        self.rounds(ROUNDS, skip=(".git",))

    def test_read_your_writes_during_a_storm(self):
        self.start_settled()
        os.mkdir(os.path.join(self.root, "storm"))

        def storm():
            for i in range(20000):
                write(os.path.join(self.root, "storm", "s%d" % i), b"s")
        t = threading.Thread(target=storm)
        t.start()
        try:
            self.rounds(ROUNDS, skip=("storm",), storm=t)
        finally:
            t.join()


    def coalesced_while_querying(self, f, project, n=200):
        """@n writes through @f, each followed by a query of @project: how many the kernel
        folded into an earlier record."""
        def coalesced():
            r = subprocess.run([VFSWATCH, "status", "--run-dir", RUN_DIR], capture_output=True,
                               text=True, timeout=30, check=True)
            return json.loads(r.stdout)["kernel"]["coalesced"]
        before = coalesced()
        for _ in range(n):
            f.write(b"x")
            ask({"cmd": "changes", "project": project})
        return coalesced() - before

    def test_a_query_ends_the_folding_of_its_own_projects_writes_only(self):
        """A user's query makes the kernel send its project's next write as news; another
        project's writes go on being folded (else any user could defeat the kernel's coalescing,
        which keeps a storm from overflowing the ring, for the whole host)."""
        if self.backend == "fanotify":
            self.skipTest("fanotify folds nothing in the kernel")
        other = Tree()
        self.addCleanup(other.cleanup)
        # settle 20 s: a record folds the writes of the next 4 s (settle / 5), far more than
        # the 200 writes and queries take, even on a sanitizer build
        self.start(roots=[self.root, other.path], raw=False,
                   extra=["--settle", "20000", "--max-delay", "60000"])
        with open(os.path.join(other.path, "log"), "ab", buffering=0) as f:
            f.write(b"0")
            time.sleep(0.05)
            folded = self.coalesced_while_querying(f, self.root)
            # (a directory the start-up crawl excludes in the kernel makes one write news)
            self.assertGreaterEqual(folded, 195, "another project's query unfolded writes")
            ask({"cmd": "changes", "project": other.path})   # every write below follows one
            folded = self.coalesced_while_querying(f, other.path)
            self.assertEqual(folded, 0, "a write after its project's query was folded")


class FanotifyReadYourWrites(ReadYourWrites):
    backend = "fanotify"


class FentryReadYourWrites(ReadYourWrites):
    backend = "fentry"
