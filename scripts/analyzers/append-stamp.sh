#!/bin/sh
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# A "formatter" analyzer that rewrites the file it is given (appends a stamp): its own write
# must not be routed back to it, or it would run forever.
# usage: append-stamp.sh FILE
printf 'stamped\n' >> "$1"
