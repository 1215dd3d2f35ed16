# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# test_hardening.py: the README's bad-input table, row by row, and the privilege boundaries.
#
# Each bad input is given to a running daemon (or to a start) and the test asserts the message
# a user sees, then that nothing else was disturbed: the daemon still streams its project.
import ctypes
import json
import os
import signal
import subprocess
import time

from harness import RUN_DIR, VFSWATCH, DaemonCase, Tree, write
from test_control import ctl, raw_request, status


def start_fails(*args, env=None, preexec_fn=None):
    return subprocess.run([VFSWATCH, "run", "--run-dir", RUN_DIR + "-x", "--no-pin", "--no-state"]
                          + list(args), capture_output=True, text=True, timeout=60, env=env,
                          preexec_fn=preexec_fn)


def caps_of(pid):
    with open("/proc/%d/status" % pid) as f:
        return {k: int(v, 16) for k, v in (l.split(":\t") for l in f.read().splitlines()
                                            if l.startswith("Cap"))}


CAP = {"dac_read_search": 2, "kill": 5, "setgid": 6, "setuid": 7, "sys_admin": 21}


def mask(*names):
    return sum(1 << CAP[n] for n in names)


def deny_bpf():
    """In the child before exec: a seccomp filter that fails bpf(2) with EPERM, as a container
    profile or a locked-down kernel would."""
    libc = ctypes.CDLL(None, use_errno=True)

    class Filter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                    ("k", ctypes.c_uint)]

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]

    insns = (Filter * 4)(Filter(0x20, 0, 0, 0),             # A = syscall number
                         Filter(0x15, 0, 1, 321),           # == __NR_bpf (x86_64)?
                         Filter(0x06, 0, 0, 0x00050000 | 1),  # errno EPERM
                         Filter(0x06, 0, 0, 0x7fff0000))    # allow
    prog = Prog(4, insns)
    if libc.prctl(38, 1, 0, 0, 0) or libc.prctl(22, 2, ctypes.byref(prog), 0, 0):
        raise OSError(ctypes.get_errno(), "seccomp")


class BadInput(DaemonCase):
    """Rows of the README's bad-input table; the daemon watches self.root meanwhile."""

    backend = "tracepoint"

    def still_streaming(self):
        name = "after-%d" % time.monotonic_ns()
        write(os.path.join(self.root, name))
        self.expect("create", name)

    def refused_add(self, root, want):
        r = ctl("add", root)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn(want, r.stderr)
        self.still_streaming()

    # --- roots ------------------------------------------------------------------------------

    def test_root_missing(self):
        self.start()
        r = ctl("add", os.path.join(self.root, "nope"))
        self.assertEqual(r.returncode, 2, r.stdout)     # the client checks it first
        self.assertIn("No such file or directory", r.stderr)
        reply = json.loads(raw_request(b'{"cmd": "add", "root": "/nowhere/at/all"}\n'))
        self.assertEqual(reply, {"ok": False, "error": "/nowhere/at/all: No such file or directory"})
        self.still_streaming()

    def test_root_relative_over_the_socket(self):
        self.start()
        reply = json.loads(raw_request(b'{"cmd": "add", "root": "some/dir"}\n'))
        self.assertEqual(reply, {"ok": False, "error": 'add: "root" must be an absolute path'})
        self.still_streaming()

    def test_root_relative_on_the_command_line_is_taken_from_the_current_directory(self):
        sub = self.trees[0].mkdir("rel")
        self.start(roots=[], extra=["--watch", "rel"], cwd=self.root)
        self.assertEqual([p["root"] for p in self.d.ready["projects"]], [sub])

    def test_root_is_a_file(self):
        self.start()
        write(os.path.join(self.root, "plain"))
        self.refused_add(os.path.join(self.root, "plain"), "not a directory")

    def test_root_is_a_symlink_to_a_directory_which_is_watched(self):
        self.start()
        target = Tree()
        try:
            link = os.path.join(self.root, "link")
            os.symlink(target.path, link)
            r = ctl("add", link)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(json.loads(r.stdout)["root"], target.path)
            write(os.path.join(target.path, "f"))
            self.expect("create", "f", root=target.path)
            self.still_streaming()
        finally:
            target.cleanup()

    def test_root_slash_is_refused(self):
        self.start()
        self.refused_add("/", "refusing the whole file system")

    def test_roots_on_kernel_interfaces_are_refused(self):
        self.start()
        for root, fs in [("/proc", "proc"), ("/sys", "sysfs"), ("/sys/fs/bpf", "bpf")]:
            self.refused_add(root, "on %s, a kernel interface shown as files" % fs)
        r = start_fails("--backend", "tracepoint", "--watch", "/proc")
        self.assertEqual(r.returncode, 2)
        self.assertIn("on proc, a kernel interface", r.stderr)

    def test_root_duplicated_at_run_time(self):
        self.start()
        self.refused_add(self.root, "already watched as project")

    def test_root_on_overlayfs(self):
        t = self.trees[0]
        lower, upper, work, merged = (t.mkdir(n) for n in ("lower", "upper", "work", "merged"))
        write(os.path.join(lower, "old"))
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                        "lowerdir=%s,upperdir=%s,workdir=%s" % (lower, upper, work), merged],
                       check=True)
        try:
            self.start(roots=[merged])
            write(os.path.join(merged, "new"))
            self.expect("create", "new", root=merged)
            write(os.path.join(merged, "old"), b"changed")    # copied up, then written
            self.expect("modify", "old", root=merged)
        finally:
            if self.d:
                self.d.stop()
                self.d = None
            subprocess.run(["umount", "-l", merged])

    # --- names ------------------------------------------------------------------------------

    def test_control_bytes_and_255_byte_names(self):
        self.start()
        names = [b"ctl-\x01\x07\x1b[31m-\x7f", b"tab\there", b"n" * 255,
                 "é".encode() * 127 + b"x"]          # 255 bytes of UTF-8
        for n in names:
            write(os.path.join(self.root.encode(), n))
        for n in names:
            want = n.decode()
            self.expect("create", want)
        self.still_streaming()

    def path_longer_than_path_max(self, raw):
        self.start(raw=raw)
        # 20 levels of 250-byte names: 5000 bytes, more than PATH_MAX (4096)
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        parts = []
        for i in range(20):
            name = ("%02d" % i) + "d" * 248
            os.mkdir(name, dir_fd=fd)
            nfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
            parts.append(name)
        self.marker()
        leaf = os.open("leaf", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(leaf, b"x")
        os.close(leaf)
        os.close(fd)
        rel = "/".join(parts + ["leaf"])
        self.assertGreater(len(rel), 4096)
        # told as a change of the deepest directory the kernel could name whole, marked
        e = self.d.wait(lambda e: e.get("truncated") and e.get("event") == "modify")
        self.assertIsNotNone(e, "no line for the leaf")
        self.assertEqual(e["type"], "dir")
        self.assertTrue(rel.startswith(e["path"] + "/"), e["path"][-40:])
        # no line names anything that is not there
        for e in self.d.changes(self.root):
            self.assertTrue(e["path"].startswith(".marker") or rel.startswith(e["path"] + "/"),
                            e["path"][-40:])
        self.still_streaming()
        subprocess.run(["rm", "-rf", os.path.join(self.root, parts[0])])

    def test_path_longer_than_path_max_raw(self):
        self.path_longer_than_path_max(True)

    def test_path_longer_than_path_max_settled(self):
        self.path_longer_than_path_max(False)

    # --- configs ----------------------------------------------------------------------------

    def config_refused(self, text, want):
        path = os.path.join(self.trees[0].path, "c.json")
        with open(path, "wb") as f:
            f.write(text)
        r = subprocess.run([VFSWATCH, "config", "check", path], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 2, text[:80])
        self.assertIn(want, r.stderr)
        # and a reload (SIGHUP) with it keeps the daemon as it was
        return path

    def test_configs_empty_nested_huge_duplicated_nul(self):
        cases = [(b"", "line 1: not valid JSON"),
                 (b"[" * 100000 + b"]" * 100000, "not valid JSON"),
                 (b'{"settle_ms": 50, "settle_ms": 60}', "settle_ms: given twice"),
                 (b'{"projects": [{"root": "/tmp", "root": "/srv"}]}',
                  "projects[0].root: given twice"),
                 (b'{"settle_ms": 50}\0{"x": 1}', "holds a NUL byte"),
                 (b'{"settle_ms": 1e300}', "settle_ms: must be from 1 to 60000"),
                 (b" " * (100 << 20), "larger than")]
        for text, want in cases:
            self.config_refused(text, want)

    def test_bad_config_on_reload_keeps_the_running_daemon(self):
        cfg = os.path.join(self.trees[0].path, "..", os.path.basename(self.root) + ".json")
        with open(cfg, "w") as f:
            json.dump({"projects": [{"root": self.root}]}, f)
        try:
            self.start(roots=[], extra=["--config", cfg])
            with open(cfg, "w") as f:
                f.write('{"projects": [{"root": ')
            self.d.proc.send_signal(signal.SIGHUP)
            self.assertIsNotNone(self.d.wait_err("not valid JSON"))
            self.still_streaming()
        finally:
            os.unlink(cfg)

    def test_hostile_analyzer_commands_run_no_shell(self):
        log = os.path.join(self.trees[0].mkdir("..log"), "out")
        cfg = os.path.join(self.trees[0].path, "..", os.path.basename(self.root) + ".json")
        with open(cfg, "w") as f:
            json.dump({"projects": [{"root": self.root, "analyzers": [
                {"name": "sh-line", "match": ["*.c"], "retries": 0, "user": "root",
                 "on_change": ["touch %s; echo pwned" % log]},
                {"name": "subst", "match": ["*.c"], "retries": 0, "user": "root",
                 "on_change": ["/bin/echo", "$(touch %s)", "`id`", "{path}"]}]}]}, f)
        try:
            self.start(roots=[], extra=["--config", cfg], raw=False)
            write(os.path.join(self.root, "a.c"))
            res = {}
            self.d.wait(lambda e: e.get("event") == "analyzer" and
                        res.setdefault(e["analyzer"], e["status"]) and len(res) == 2)
            self.assertEqual(res, {"sh-line": "dead", "subst": "ok"})
            self.assertFalse(os.path.exists(log), "a shell ran the command")
            self.still_streaming()
        finally:
            os.unlink(cfg)

    # --- the daemon itself ------------------------------------------------------------------

    def test_sigstop_sigcont_loses_nothing(self):
        self.start()
        self.d.proc.send_signal(signal.SIGSTOP)
        try:
            for i in range(200):
                write(os.path.join(self.root, "while-stopped-%03d" % i))
            time.sleep(1)
        finally:
            self.d.proc.send_signal(signal.SIGCONT)
        for i in range(200):
            self.expect("create", "while-stopped-%03d" % i)
        self.still_streaming()

    def test_bpf_denied_falls_back_to_fanotify_or_says_why(self):
        r = start_fails("--backend", "tracepoint", "--watch", self.root, preexec_fn=deny_bpf)
        self.assertEqual(r.returncode, 1)
        self.assertIn("Operation not permitted", r.stderr)
        self.start(preexec_fn=deny_bpf, extra=["--backend", "auto"])
        self.assertEqual(self.d.ready["backend"], "fanotify")
        self.assertIsNotNone(self.d.wait_err("fanotify"))
        self.still_streaming()


class Privileges(DaemonCase):
    backend = "tracepoint"
    kept = ("dac_read_search", "kill", "setgid", "setuid")

    def test_daemon_keeps_only_the_capabilities_it_names(self):
        self.start()
        caps = caps_of(self.d.proc.pid)
        want = mask(*self.kept)
        self.assertEqual((caps["CapEff"], caps["CapPrm"], caps["CapBnd"], caps["CapInh"],
                          caps["CapAmb"]), (want, want, want, 0, 0))
        self.assertEqual(status()["capabilities"], ",".join("cap_" + c for c in sorted(
            self.kept, key=lambda c: CAP[c])))
        # what it does later still works: a project added, its changes told
        other = Tree()
        try:
            self.assertEqual(ctl("add", other.path).returncode, 0)
            write(os.path.join(other.path, "later"))
            self.expect("create", "later", root=other.path)
        finally:
            ctl("remove", os.path.basename(other.path))
            other.cleanup()

    def analyzer_view(self, user):
        out = self.trees[0].mkdir("..view")
        os.chmod(out, 0o777)
        cfg = os.path.join(out, "c.json")
        # before it opens anything: which descriptors it was given, its environment, its caps
        script = ("import json, os\n"
                  "def is_open(fd):\n"
                  "    try:\n"
                  "        os.fstat(fd)\n"
                  "        return True\n"
                  "    except OSError:\n"
                  "        return False\n"
                  "fds = [fd for fd in range(1024) if is_open(fd)]\n"
                  "caps = dict(l.split(':\\t') for l in open('/proc/self/status').read()"
                  ".splitlines() if l.startswith('Cap'))\n"
                  "json.dump({'fds': fds, 'env': dict(os.environ), 'caps': caps},"
                  " open(%r, 'w'))\n" % os.path.join(out, "view.json"))
        an = {"name": "view", "match": ["trigger"],
              "on_change": ["/usr/bin/python3", "-I", "-S", "-c", script]}
        if user:
            an["user"] = user
        with open(cfg, "w") as f:
            json.dump({"projects": [{"root": self.root, "analyzers": [an]}]}, f)
        self.start(roots=[], raw=False, extra=["--config", cfg],
                   env=dict(os.environ, VW_SECRET="do-not-leak"))
        write(os.path.join(self.root, "trigger"))
        e = self.d.wait(lambda e: e.get("event") == "analyzer")
        self.assertEqual(e and e["status"], "ok", e)
        with open(os.path.join(out, "view.json")) as f:
            view = json.load(f)
        return view["fds"], view["env"], {k: int(v, 16) for k, v in view["caps"].items()}

    def test_analyzer_gets_no_descriptor_environment_or_capability_of_the_daemon(self):
        os.chown(self.root, 65534, 65534)
        fds, env, caps = self.analyzer_view(None)
        self.assertEqual(fds, [0, 1, 2])
        self.assertNotIn("VW_SECRET", env)
        self.assertEqual(env["VFSWATCH_PROJECT"], os.path.basename(self.root))
        self.assertEqual(env["VFSWATCH_EVENT"], "create")
        # Python itself may add LC_CTYPE (PEP 538); nothing else but what the daemon sets
        self.assertEqual(set(env) - {"LC_CTYPE"},
                         {"PATH", "VFSWATCH_PROJECT", "VFSWATCH_ROOT", "VFSWATCH_EVENT"})
        self.assertEqual((caps["CapEff"], caps["CapPrm"]), (0, 0))

    def test_analyzer_run_as_root_is_bounded_by_what_the_daemon_kept(self):
        fds, env, caps = self.analyzer_view("root")
        self.assertEqual(fds, [0, 1, 2])
        self.assertEqual(caps["CapBnd"], mask(*self.kept))
        self.assertEqual(caps["CapEff"] & ~mask(*self.kept), 0)

    def test_projects_added_and_removed_leave_no_descriptor_open(self):
        self.start(raw=False)
        other = Tree()
        fds = []
        try:
            for i in range(4):
                self.assertEqual(ctl("add", other.path, "--name", "other").returncode, 0)
                write(os.path.join(other.path, "f%d" % i))
                self.expect("create", "f%d" % i, root=other.path)
                self.assertEqual(ctl("remove", "other").returncode, 0)
                fds.append(len(os.listdir("/proc/%d/fd" % self.d.proc.pid)))
        finally:
            other.cleanup()
        # its journal and change log are closed with it
        self.assertEqual(fds, [fds[0]] * 4)

    def test_pin_dir_is_made_root_only_even_when_it_existed(self):
        pins = "/sys/fs/bpf/vw-test-%d" % os.getpid()
        os.makedirs(pins, exist_ok=True)
        os.chmod(pins, 0o755)
        try:
            self.start(pin_dir=pins)
            self.assertEqual(os.stat(pins).st_mode & 0o777, 0o700)
            self.assertTrue(os.listdir(pins))
        finally:
            self.d.stop()
            self.d = None
            subprocess.run(["rm", "-rf", pins])


class FanotifyPrivileges(Privileges):
    backend = "fanotify"
    kept = ("dac_read_search", "kill", "setgid", "setuid", "sys_admin")

    test_pin_dir_is_made_root_only_even_when_it_existed = None    # fanotify pins nothing


class FanotifyBadInput(BadInput):
    """The rows whose outcome depends on the backend, on fanotify."""

    backend = "fanotify"
    test_bpf_denied_falls_back_to_fanotify_or_says_why = None   # no BPF to deny
    test_bad_config_on_reload_keeps_the_running_daemon = None   # the same code on every backend
    test_configs_empty_nested_huge_duplicated_nul = None
    test_hostile_analyzer_commands_run_no_shell = None
    test_root_relative_over_the_socket = None
    test_root_relative_on_the_command_line_is_taken_from_the_current_directory = None

    def test_root_on_overlayfs(self):
        """fanotify cannot mark an overlayfs here (it reports no file handles): it says so and
        names the backends that can."""
        t = self.trees[0]
        lower, upper, work, merged = (t.mkdir(n) for n in ("lower", "upper", "work", "merged"))
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                        "lowerdir=%s,upperdir=%s,workdir=%s" % (lower, upper, work), merged],
                       check=True)
        try:
            r = start_fails("--backend", "fanotify", "--watch", merged)
            if r.returncode == 0:
                self.fail("fanotify watched an overlayfs: make this a test that it works")
            self.assertEqual(r.returncode, 1)
            self.assertIn("fanotify_mark %s: " % merged, r.stderr)
            self.assertIn("use --backend tracepoint or fentry", r.stderr)
        finally:
            subprocess.run(["umount", "-l", merged])
