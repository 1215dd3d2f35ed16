#!/bin/sh
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# run-all.sh: every suite (unit, end-to-end) with one closing line "N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
pass=0 fail=0 skip=0
log=$(mktemp)
trap 'rm -f "$log" "$log.tp" "$log.fan"' EXIT

# unit_tests DIR LABEL: every cmocka test binary in DIR (TAP output), added to the totals.
unit_tests() {
	for t in "$1"/tests/test_*; do
		[ -f "$t" ] && [ -x "$t" ] || continue
		CMOCKA_MESSAGE_OUTPUT=TAP "$t" >"$log" 2>&1
		rc=$?
		p=$(grep -c '^ok ' "$log")
		f=$(grep -c '^not ok ' "$log")
		s=$(grep -c '^ok .*# SKIP' "$log")
		p=$((p - s))
		# a crash before any TAP line (or a sanitizer's report) still counts as a failure
		if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
		grep -E '^(not ok|#)|ERROR: |runtime error' "$log" | grep -v '^# ok' | sed 's/^/  /'
		echo "  $(basename "$t")$2: $p passed, $f failed, $s skipped"
		pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
	done
}

echo "== layers (make check-layers: src/ layering, include cycles, file sizes)"
if python3 scripts/check-layers.py; then pass=$((pass + 1)); else fail=$((fail + 1)); fi

echo "== unit tests (cmocka)"
unit_tests "$BUILD" ""

# count NAME PREFIX LOG RC: print a suite's output and add its last "PREFIX: N passed, N failed,
# N skipped" line to the totals; a suite that exits non-zero without failures counts one.
count() {
	echo "== $1"
	cat "$3"
	line=$(grep -E "^$2: [0-9]+ passed, [0-9]+ failed" "$3" | tail -n 1)
	if [ -z "$line" ]; then
		fail=$((fail + 1))
		return
	fi
	rc=$4
	set -- $(echo "$line" | sed 's/[^0-9 ]//g')
	pass=$((pass + $1)) fail=$((fail + $2)) skip=$((skip + ${3:-0}))
	if [ "$rc" -ne 0 ] && [ "$2" -eq 0 ]; then fail=$((fail + 1)); fi
}

# run_counted NAME PREFIX CMD...: run a suite, then count it.
run_counted() {
	name=$1 prefix=$2
	shift 2
	"$@" >"$log" 2>&1
	count "$name" "$prefix" "$log" $?
}

# The sanitizer build (make SANITIZE=1: ASan + UBSan, any report fatal): the unit tests again,
# then the end-to-end suite, once, with the daemon and the clients of that build. What a
# sanitizer build cannot show (memory use, valgrind) the suite runs on the plain build.
if [ "${VW_SANITIZE:-1}" = 0 ]; then
	echo "== sanitizer build: skipped (VW_SANITIZE=0); the end-to-end suite on the plain build"
	skip=$((skip + 1))
	run_counted "end-to-end tests" integration python3 tests/integration/run.py
elif ! make -s SANITIZE=1 CI=true all unit >"$log" 2>&1; then
	echo "== sanitizer build: failed"
	cat "$log"
	fail=$((fail + 1))
else
	echo "== unit tests under ASan + UBSan"
	unit_tests build-san " (sanitized)"
	export VFSWATCH="$PWD/build-san/vfswatch" VFSWATCH_PLAIN="$PWD/$BUILD/vfswatch" VW_SANITIZED=1
	run_counted "end-to-end tests (daemon and clients built with ASan + UBSan)" \
		integration python3 tests/integration/run.py
	unset VFSWATCH VFSWATCH_PLAIN VW_SANITIZED
fi

# libFuzzer: each target replays its kept crashing inputs, then fuzzes briefly from its seeds
# (make fuzz T=... S=... for long runs).
if [ "${VW_FUZZ:-1}" = 0 ]; then
	echo "== fuzz: skipped (VW_FUZZ=0)"
	skip=$((skip + 1))
elif ! make -s FUZZ=1 CI=true fuzzers >"$log" 2>&1; then
	echo "== fuzz targets: build failed"
	cat "$log"
	fail=$((fail + 1))
else
	run_counted "fuzz (${VW_FUZZ_SECONDS:-10} s per target)" fuzz \
		sh tests/fuzz/run.sh "${VW_FUZZ_SECONDS:-10}"
fi

# The model-based exactness test, side by side (one core each): the settled stream of every
# host backend, and the raw stream of the tracepoint backend (the fanotify backend names raw
# paths when it reads an event: README). VW_MODEL_SEEDS seeds of 50 operations each (0: none).
seeds=${VW_MODEL_SEEDS:-200}
if [ "$seeds" -gt 0 ]; then
	python3 tests/model/model.py --backend tracepoint --seeds "$seeds" >"$log.tp" 2>&1 &
	tp=$!
	python3 tests/model/model.py --backend fanotify --seeds "$seeds" >"$log.fan" 2>&1
	frc=$?
	wait $tp
	count "model: tracepoint, settled ($seeds seeds)" model "$log.tp" $?
	count "model: fanotify, settled ($seeds seeds)" model "$log.fan" $frc
	python3 tests/model/model.py --backend tracepoint --mode raw --seeds "$seeds" >"$log.tp" 2>&1
	count "model: tracepoint, raw ($seeds seeds)" model "$log.tp" $?
	# the same with a random consumer delay (up to 3 ms before every read of the kernel queue)
	dseeds=$(( (seeds + 3) / 4 ))
	python3 tests/model/model.py --backend tracepoint --read-delay-us 3000 --seeds "$dseeds" \
		>"$log.tp" 2>&1 &
	tp=$!
	python3 tests/model/model.py --backend fanotify --read-delay-us 3000 --seeds "$dseeds" \
		>"$log.fan" 2>&1
	frc=$?
	wait $tp
	count "model: tracepoint, settled, consumer delayed ($dseeds seeds)" model "$log.tp" $?
	count "model: fanotify, settled, consumer delayed ($dseeds seeds)" model "$log.fan" $frc
	rm -f "$log.tp" "$log.fan"
else
	echo "== model: skipped (VW_MODEL_SEEDS=0)"
	skip=$((skip + 1))
fi

if [ "${VW_VMTEST:-1}" = 0 ]; then
	echo "== fentry backend in a VM: skipped (VW_VMTEST=0)"
	skip=$((skip + 1))
else
	run_counted "fentry backend in a VM (scripts/vmtest.sh)" vmtest sh scripts/vmtest.sh
fi

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
