#!/bin/sh
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# Like append-stamp.sh, but the write is made by a child process of the analyzer, as a real
# formatter pipeline would: the whole process tree's changes must still count as its own.
# usage: stamp-via-child.sh FILE
/bin/sh -c 'printf "stamped\n" >> "$1"; exit 0' child "$1"
exit 0
