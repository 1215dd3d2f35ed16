# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# test_git.py: `vfswatch git-fsmonitor` as git's core.fsmonitor: `git status` with the hook equals
# git's own full look, round after round of random edits and git commands; answers incremental.
import os
import random
import shutil
import subprocess
import tempfile
import time

from harness import RUN_DIR, VFSWATCH, DaemonCase, write

ROUNDS = int(os.environ.get("VW_GIT_ROUNDS", "200"))
FILES = int(os.environ.get("VW_GIT_FILES", "3000"))
NOBODY = 65534
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org", "GIT_CONFIG_NOSYSTEM": "1"}


class GitFsmonitor(DaemonCase):
    backend = "tracepoint"

    def setUp(self):
        super().setUp()
        os.chmod(RUN_DIR, 0o755)
        self.home = tempfile.mkdtemp(prefix="vw-home-")
        self.addCleanup(shutil.rmtree, self.home, True)
        self.repo = tempfile.mkdtemp(prefix="vw-repo-")
        self.addCleanup(shutil.rmtree, self.repo, True)
        self.user = None

    def as_user(self, uid):
        self.user = uid
        for d in (self.home, self.repo):
            os.chown(d, uid, uid)

    def git(self, *args, check=True, fsmonitor=True):
        env = dict(os.environ, HOME=self.home, **GIT_ENV)
        cmd = ["git"] + ([] if fsmonitor else ["--no-optional-locks", "-c",
                                                "core.fsmonitor=false"]) + list(args)
        if self.user is not None:
            cmd = ["setpriv", "--reuid", str(self.user), "--regid", str(self.user),
                   "--clear-groups"] + cmd
        p = subprocess.run(cmd, cwd=self.repo, env=env, capture_output=True, text=True)
        if check and p.returncode:
            self.fail("git %s: %s %s" % (" ".join(args), p.stdout, p.stderr))
        return p.stdout

    def hook(self, token):
        """The hook as git runs it: (token, [paths]) from its NUL-separated answer."""
        cmd = [VFSWATCH, "git-fsmonitor", "--run-dir", RUN_DIR, "2", token]
        if self.user is not None:
            cmd = ["setpriv", "--reuid", str(self.user), "--regid", str(self.user),
                   "--clear-groups"] + cmd
        p = subprocess.run(cmd, cwd=self.repo, capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        parts = p.stdout.split(b"\0")
        self.assertEqual(parts[-1], b"", "the answer ends with a NUL")
        return parts[0].decode(), [x.decode("utf-8", "surrogateescape") for x in parts[1:-1]]

    def hook_when_crawled(self, token, timeout=20):
        """The hook's answer once the daemon's first crawl of the tree is over: until then it
        cannot say what changed, and answers "/"."""
        end = time.monotonic() + timeout
        while True:
            token, paths = self.hook(token)
            if paths != ["/"] or time.monotonic() > end:
                return token, paths
            time.sleep(0.05)

    def make_repo(self, n):
        self.git("init", "-q", "-b", "main")
        for i in range(n):
            d = os.path.join(self.repo, "d%d" % (i % max(1, n // 15)))
            os.makedirs(d, exist_ok=True)
            write(os.path.join(d, "f%d.txt" % i), b"%d\n" % i)
        if self.user is not None:
            subprocess.run(["chown", "-R", "%d:%d" % (self.user, self.user), self.repo], check=True)
        self.git("add", "-A")
        self.git("commit", "-qm", "init")
        self.git("config", "core.fsmonitor", "%s git-fsmonitor --run-dir %s" % (VFSWATCH, RUN_DIR))
        self.git("config", "core.fsmonitorHookVersion", "2")
        self.git("config", "core.untrackedCache", "true")

    def status_equal(self, what):
        want = self.git("status", "--porcelain=v2", "-uall", fsmonitor=False)
        got = self.git("status", "--porcelain=v2", "-uall")
        self.assertEqual(got, want, "git status with the hook differs from git's own look "
                         "after %s" % what)

    def files(self):
        out = []
        for d, dirs, fs in os.walk(self.repo):
            if ".git" in dirs:
                dirs.remove(".git")
            out += [os.path.relpath(os.path.join(d, f), self.repo) for f in fs]
        return sorted(out)

    def edit(self, rng):
        """One random change to the work tree; returns what it was."""
        files = self.files()
        op = rng.choice(["modify", "create", "delete", "rename", "chmod", "mkdir", "rmdir",
                         "symlink", "newdir"])
        p = lambda *x: os.path.join(self.repo, *x)
        f = rng.choice(files) if files else None
        if op == "modify" and f:
            write(p(f), b"edit %d\n" % rng.randrange(1 << 30), "ab")
        elif op == "create" or not f:
            write(p(os.path.dirname(f or "x") or ".", "n%d.txt" % rng.randrange(1 << 30)))
        elif op == "delete":
            os.unlink(p(f))
        elif op == "rename":
            os.rename(p(f), p(os.path.dirname(f), "r%d.txt" % rng.randrange(1 << 30)))
        elif op == "chmod":
            os.chmod(p(f), 0o755 if not os.access(p(f), os.X_OK) else 0o644)
        elif op == "mkdir":
            d = p("nd%d" % rng.randrange(1 << 30))
            os.makedirs(os.path.join(d, "sub"))
            write(os.path.join(d, "sub", "x.txt"))
        elif op == "rmdir":
            d = os.path.dirname(f)
            if d:
                shutil.rmtree(p(d))
        elif op == "symlink":
            os.symlink(os.path.basename(f), p(os.path.dirname(f), "l%d" % rng.randrange(1 << 30)))
        elif op == "newdir":
            d = os.path.dirname(f)
            if d:
                os.rename(p(d), p(d + "-moved%d" % rng.randrange(1 << 30)))
        if self.user is not None:
            subprocess.run(["chown", "-R", "-h", "%d:%d" % (self.user, self.user), self.repo],
                           check=True)
        return op

    def git_step(self, rng, branch):
        """Now and then a git command that rewrites the work tree or the index."""
        op = rng.choice(["add", "commit", "branch", "switch", "stash", "rebase", "none", "none"])
        if op == "add":
            self.git("add", "-A")
        elif op == "commit":
            self.git("commit", "-qam", "c", check=False)
        elif op == "branch":
            self.git("add", "-A")
            self.git("commit", "-qm", "b", check=False)
            branch[0] += 1
            self.git("checkout", "-qb", "b%d" % branch[0])
        elif op == "switch" and branch[0]:
            self.git("add", "-A")
            self.git("commit", "-qm", "s", check=False)
            self.git("switch", "-q", rng.choice(["main", "b%d" % rng.randint(1, branch[0])]))
        elif op == "stash":
            self.git("stash", "-q", "-u", check=False)
            self.git("stash", "pop", "-q", check=False)
        elif op == "rebase" and branch[0]:
            self.git("add", "-A")
            self.git("commit", "-qm", "r", check=False)
            self.git("rebase", "-q", "main", check=False)
            self.git("rebase", "--abort", check=False)  # when it stopped at a conflict
        return op

    def rounds(self, n):
        rng = random.Random(n)
        branch = [0]
        self.status_equal("the first status")
        for i in range(n):
            did = [self.edit(rng) for _ in range(rng.randint(1, 4))]
            did.append(self.git_step(rng, branch))
            self.status_equal("round %d (%s)" % (i, ", ".join(did)))

    def test_status_with_the_hook_equals_gits_own_look(self):
        self.start(raw=False)
        self.make_repo(FILES)
        self.rounds(ROUNDS)

    def test_answers_are_incremental(self):
        self.start(raw=False)
        self.make_repo(80)
        token, paths = self.hook("")
        self.assertEqual(paths, ["/"], "no token: everything")
        token, paths = self.hook_when_crawled(token)
        self.assertEqual(paths, [], "nothing changed")
        write(os.path.join(self.repo, "d0", "f0.txt"), b"changed\n")
        token, paths = self.hook(token)
        self.assertEqual(paths, ["d0/f0.txt"])
        os.rename(os.path.join(self.repo, "d1"), os.path.join(self.repo, "d1-renamed"))
        token, paths = self.hook(token)
        self.assertIn("d1/", paths, "the old name, as a directory")
        self.assertIn("d1-renamed/", paths, "the new name, as a directory")
        self.assertEqual([x for x in paths if not x.startswith("d1")], [], paths)
        shutil.rmtree(os.path.join(self.repo, "d2"))
        token, paths = self.hook(token)
        self.assertEqual(paths, ["d2/"])
        shutil.rmtree(os.path.join(self.repo, "d3"))
        write(os.path.join(self.repo, "d3"), b"now a file\n")
        token, paths = self.hook(token)
        self.assertEqual(sorted(paths), ["d3", "d3/"], "a file where a directory was: both")
        strange = b"bad\xff\nname"   # not UTF-8, and a newline: the exact bytes come back
        write(os.path.join(self.repo.encode(), b"d0", strange), b"x")
        token, paths = self.hook(token)
        self.assertEqual(paths, [os.path.join("d0", strange.decode("utf-8", "surrogateescape"))])
        self.git("add", "-A")
        token, paths = self.hook(token)
        self.assertEqual(paths, [], "git's own writes below .git/ are not the work tree's")
        _, paths = self.hook("0000000000000000.1")
        self.assertEqual(paths, ["/"], "a foreign token: everything")
        _, paths = self.hook("c:123:watchman")
        self.assertEqual(paths, ["/"], "another tool's token: everything")

    def test_a_project_whose_rules_hide_paths_is_answered_whole(self):
        # the work tree is already a project that ignores build/: git may track build/
        self.start(raw=False)
        self.make_repo(20)
        subprocess.run([VFSWATCH, "ctl", "--run-dir", RUN_DIR, "add", self.repo, "--ignore",
                        "build/"], check=True, capture_output=True)
        token, _ = self.hook("")
        token, paths = self.hook(token)
        self.assertEqual(paths, ["/"], "rules that may hide a tracked path: git looks itself")
        p = subprocess.run([VFSWATCH, "changes", self.repo, "--run-dir", RUN_DIR],
                           capture_output=True, text=True, check=True)
        self.assertIn('"ignores_beyond_git":true', p.stdout.replace(" ", ""), "and says why")

    def test_an_ordinary_user_in_their_own_repository(self):
        self.as_user(NOBODY)
        self.start(raw=False)
        self.make_repo(200)
        self.rounds(max(10, ROUNDS // 10))
        token, _ = self.hook_when_crawled("")
        write(os.path.join(self.repo, "d0", "new.txt"), b"x")
        os.chown(os.path.join(self.repo, "d0", "new.txt"), NOBODY, NOBODY)
        _, paths = self.hook(token)
        self.assertEqual(paths, ["d0/new.txt"])

    def test_root_adds_no_project_in_a_users_tree(self):
        self.start(raw=False)
        self.make_repo(5)
        subprocess.run(["chown", "-R", "%d:%d" % (NOBODY, NOBODY), self.repo], check=True)
        p = subprocess.run([VFSWATCH, "git-fsmonitor", "--run-dir", RUN_DIR, "2", ""],
                           cwd=self.repo, capture_output=True)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn(b"not yours to add", p.stderr)
        listed = subprocess.run([VFSWATCH, "ctl", "--run-dir", RUN_DIR, "list"],
                                capture_output=True, text=True).stdout
        self.assertNotIn(self.repo, listed)

    def test_another_directory_at_the_same_path_is_never_answered_for(self):
        """The hook in another mount namespace, where the work tree's path holds another
        directory than the daemon sees: no answer about the daemon's (git looks itself), and
        nothing added in the daemon's view."""
        self.start(raw=False)
        self.make_repo(5)
        token, _ = self.hook_when_crawled(self.hook("")[0])
        other = tempfile.mkdtemp(prefix="vw-other-")
        self.addCleanup(shutil.rmtree, other, True)
        shown = os.path.join(other, "shown")
        os.mkdir(shown)
        script = 'mount --bind "$1" "$2" && cd "$2" && exec "$3" git-fsmonitor --run-dir "$4" 2 "$5"'
        for tok in (token, ""):
            p = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script,
                                "sh", shown, self.repo, VFSWATCH, RUN_DIR, tok],
                               capture_output=True)
            self.assertEqual(p.returncode, 1, p.stdout)
            self.assertIn(b"another directory", p.stderr)
        # a directory of the daemon's view is not added for what another namespace shows
        os.rmdir(shown)
        os.mkdir(shown)
        p = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script,
                            "sh", self.repo, shown, VFSWATCH, RUN_DIR, ""], capture_output=True)
        self.assertEqual(p.returncode, 1, p.stdout)
        listed = subprocess.run([VFSWATCH, "ctl", "--run-dir", RUN_DIR, "list"],
                                capture_output=True, text=True).stdout
        self.assertNotIn(shown, listed)
        _, paths = self.hook(token)     # the daemon's own view is answered as before
        self.assertEqual(paths, [])

    def test_without_a_daemon_git_looks_itself(self):
        self.make_repo(5)
        p = subprocess.run([VFSWATCH, "git-fsmonitor", "--run-dir", RUN_DIR, "2", ""],
                           cwd=self.repo, capture_output=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"git-fsmonitor", p.stderr)
        self.status_equal("no daemon")


class FanotifyGitFsmonitor(GitFsmonitor):
    backend = "fanotify"
