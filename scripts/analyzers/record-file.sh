#!/bin/sh
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# A per-file analyzer: appends "<event> <path> <uid>" to the file named by $1 (the log), then
# optionally fails or hangs for the tests: VW_MODE is read from the analyzer's arguments.
# usage: record-file.sh LOG EVENT PATH [ok|fail|hang|flood]
log=$1 event=$2 path=$3 mode=${4:-ok}
printf '%s\t%s\t%s\n' "$event" "$path" "$(id -u)" >> "$log"
case $mode in
fail) exit 3 ;;
hang) sleep 600 ;;
flood) yes "analyzer output that nobody asked for" | head -c 5000000 >&2 ;;
esac
exit 0
