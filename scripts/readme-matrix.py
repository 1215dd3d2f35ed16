#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""readme-matrix.py MATRIX README: put the support matrix scripts/vmtest.sh measured (MATRIX,
build/vm/matrix.md) into README between its "vmtest-matrix" markers. Run by make vmtest-all."""
import os
import sys

BEGIN, END = "<!-- vmtest-matrix: begin -->", "<!-- vmtest-matrix: end -->"


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: readme-matrix.py MATRIX README")
    with open(sys.argv[1]) as f:
        table = f.read().strip()
    with open(sys.argv[2]) as f:
        text = f.read()
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        sys.exit("readme-matrix.py: %s needs one %s ... %s block" % (sys.argv[2], BEGIN, END))
    head, rest = text.split(BEGIN)
    tail = rest.split(END)[1]
    with open(sys.argv[2] + ".tmp", "w") as f:
        f.write(head + BEGIN + "\n" + table + "\n" + END + tail)
    os.replace(sys.argv[2] + ".tmp", sys.argv[2])
    print("readme-matrix.py: %s now carries %s" % (sys.argv[2], sys.argv[1]))


if __name__ == "__main__":
    main()
