#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# check-layers.py: the layering of src/ (README "Layout"): a file includes only from its own
# layer or those below it, by folder; no include cycle between modules; no file over its bound.
import os
import re
import sys

# Lowest first. source and pipeline are peers: neither includes the other (core/record.h
# is where they meet).
RANK = {"core": 0, "store": 1, "source": 2, "pipeline": 2, "serve": 3, "daemon": 4, "cli": 4,
        "": 5}
PEERS_APART = {("source", "pipeline"), ("pipeline", "source"), ("cli", "daemon")}
SHARED = {"vw_events.h", "vfswatch.skel.h", "vfswatch_compat.skel.h"}  # include/ and build/
MAX_LINES = 1000
MAX_DAEMON_C = 700


def layer_of(path):
    rel = os.path.relpath(path, "src")
    return rel.split("/")[0] if "/" in rel else ""


def module_of(path):
    """foo.c and foo.h; foo_priv.h too (what foo's own files share)."""
    rel = os.path.relpath(path, "src")
    m = os.path.splitext(rel)[0]
    return m[:-len("_priv")] if m.endswith("_priv") else m


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    os.chdir(root)
    files = sorted(
        os.path.join(d, f) for d, _, fs in os.walk("src") for f in fs if f.endswith((".c", ".h")))
    errors = []
    edges = {}
    for f in files:
        lf = layer_of(f)
        if lf not in RANK:
            errors.append("%s: a folder that is no layer (%s)" % (f, ", ".join(k for k in RANK if k)))
            continue
        text = open(f, encoding="utf-8").read()
        n = text.count("\n")
        if f.endswith(".c") and n > MAX_LINES:
            errors.append("%s: %d lines (at most %d)" % (f, n, MAX_LINES))
        if f == "src/daemon/daemon.c" and n > MAX_DAEMON_C:
            errors.append("%s: %d lines (daemon.c is wiring: at most %d)" % (f, n, MAX_DAEMON_C))
        for lineno, inc in ((text.count("\n", 0, m.start()) + 1, m.group(1))
                            for m in re.finditer(r'^#include "([^"]+)"', text, re.M)):
            where = "%s:%d" % (f, lineno)
            if inc in SHARED:
                continue
            target = os.path.join("src", inc)
            if "/" not in inc or not os.path.exists(target):
                errors.append("%s: \"%s\": include by layer, as \"<layer>/<file>.h\"" % (where, inc))
                continue
            lt = layer_of(target)
            if lt == "daemon" and lf not in ("daemon", ""):
                errors.append("%s: %s includes %s: only main.c and daemon/ include daemon/"
                              % (where, lf, inc))
            elif RANK[lt] > RANK[lf] or (lf, lt) in PEERS_APART:
                errors.append("%s: %s (layer %s) includes %s (layer %s): a lower layer "
                              "includes a higher one" % (where, f, lf, inc, lt))
            a, b = module_of(f), module_of(target)
            if a != b:
                edges.setdefault(a, set()).add(b)
    # include cycles between modules (a module: foo.c and foo.h)
    state = {}
    stack = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(edges.get(m, ())):
            if state.get(n) == 1:
                errors.append("include cycle: " + " -> ".join(stack[stack.index(n):] + [n]))
            elif not state.get(n):
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if not state.get(m):
            visit(m)
    for e in errors:
        print("check-layers: " + e)
    print("check-layers: %d files, %d modules: %s" % (len(files), len({module_of(f) for f in files}),
                                                     "%d problems" % len(errors) if errors else "ok"))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
