#!/bin/sh
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# A batch analyzer: stdin holds the batch's settled changes as JSON lines; append them to the
# log named by $1, then an end marker. An optional $2 seconds of work follows, so that changes
# arriving meanwhile are collected for the next run.
# usage: batch-log.sh LOG [SECONDS]
cat >> "$1"
printf -- '--- end of batch (%s)\n' "$VFSWATCH_PROJECT" >> "$1"
[ -n "$2" ] && sleep "$2"
exit 0
