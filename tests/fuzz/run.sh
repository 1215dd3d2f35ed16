#!/bin/sh
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# run.sh SECONDS [TARGET...]: each libFuzzer target (all when none named) replays its kept
# crashing inputs (tests/fuzz/regress/<target>/), then fuzzes for SECONDS from its seed corpus
# (tests/fuzz/corpus/<target>/). New inputs go to build-fuzz/corpus/<target>/, crashes to
# build-fuzz/crashes/. Ends with "fuzz: N passed, N failed" (a target is one test).
set -u
cd "$(dirname "$0")/../.."
secs=${1:-60}
shift
BUILD=${FUZZ_BUILD:-build-fuzz}
targets=${*:-$(ls tests/fuzz/fuzz_*.c | sed 's|.*/fuzz_||; s|\.c$||')}
pass=0 fail=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in $targets; do
	bin=$BUILD/fuzz/fuzz_$t
	if [ ! -x "$bin" ]; then
		echo "fuzz $t: no target $bin (make FUZZ=1 fuzzers)"
		fail=$((fail + 1))
		continue
	fi
	mkdir -p "$BUILD/corpus/$t" "$BUILD/crashes"
	opts="-timeout=10 -rss_limit_mb=2048 -max_len=65536"
	[ -f "tests/fuzz/$t.dict" ] && opts="$opts -dict=tests/fuzz/$t.dict"
	ok=1
	if [ -d "tests/fuzz/regress/$t" ] && [ -n "$(ls "tests/fuzz/regress/$t")" ]; then
		if ! "$bin" $opts tests/fuzz/regress/"$t"/* >"$log" 2>&1; then
			echo "fuzz $t: a kept crashing input crashes again:"
			grep -E 'ERROR|runtime error|fuzz check|Running:' "$log" | head -20 | sed 's/^/  /'
			ok=0
		fi
	fi
	if [ $ok = 1 ]; then
		"$bin" $opts -print_final_stats=1 -max_total_time="$secs" -artifact_prefix="$BUILD/crashes/$t-" \
			"$BUILD/corpus/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1
		rc=$?
		runs=$(sed -n "s/^stat::number_of_executed_units: *//p" "$log")
		cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
		if [ $rc -ne 0 ]; then
			echo "fuzz $t: FAILED after ${runs:-0} runs ($cov); the input is in $BUILD/crashes/:"
			grep -E 'ERROR|runtime error|fuzz check|SUMMARY|Test unit written' "$log" |
				head -20 | sed 's/^/  /'
			ok=0
		else
			echo "fuzz $t: ${runs:-0} runs in ${secs}s, $cov, clean"
		fi
	fi
	if [ $ok = 1 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
done
echo "fuzz: $pass passed, $fail failed, 0 skipped"
[ $fail -eq 0 ]
