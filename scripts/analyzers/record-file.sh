#!/bin/sh
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# A per-file analyzer: appends "<event> <path> <uid>" to the file named by $1 (the log), then
# optionally fails or hangs for the tests: VW_MODE is read from the analyzer's arguments.
# usage: record-file.sh LOG EVENT PATH [ok|fail|hang|flood|crash|limits|slow|fail-if FILE]
log=$1 event=$2 path=$3 mode=${4:-ok}
printf '%s\t%s\t%s\t%s\n' "$event" "$path" "$(id -u)" "$(ulimit -n)" >> "$log"
case $mode in
fail) exit 3 ;;
fail-if) [ -e "$5" ] && exit 4 ;;
crash) kill -SEGV $$ ;;
slow) sleep 0.05 ;;
hang) sleep 600 ;;
flood) yes "analyzer output that nobody asked for" | head -c 5000000 >&2 ;;
esac
exit 0
