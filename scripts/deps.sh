#!/bin/sh
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# Install every build and test dependency of vfswatch from Debian packages.
# Idempotent: does nothing (quietly) when everything is already there.
set -eu

PKGS="make gcc clang llvm libclang-rt-14-dev pkg-config libbpf-dev bpftool libelf-dev zlib1g-dev
libcjson-dev libcmocka-dev libssl-dev python3 python3-prometheus-client python3-fusepy procps util-linux
coreutils
qemu-system-x86 busybox-static cpio gzip valgrind
vim-tiny rsync git tar python3-pywatchman mercurial watchman"
# Watchman's Node clients (tests/node): a node and npm the host has already are used as they are
command -v node >/dev/null 2>&1 || PKGS="$PKGS nodejs"
command -v npm >/dev/null 2>&1 || PKGS="$PKGS npm"

# `deps.sh bench`: also the peers make bench measures side by side, and gnuplot for its chart
if [ "${1:-}" = bench ]; then
	PKGS="$PKGS inotify-tools fswatch fatrace watchman gnuplot-nox"
fi

# npm's Watchman clients for the tests, as tests/node/package-lock.json pins them
node_clients() {
	lock=$(dirname "$0")/../tests/node/package-lock.json
	mods=$(dirname "$lock")/node_modules
	if [ -f "$lock" ] && { [ ! -d "$mods" ] || [ "$lock" -nt "$mods" ]; }; then
		(cd "$(dirname "$lock")" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) ||
			{ echo "deps: npm ci in tests/node failed" >&2; exit 1; }
		touch "$mods"
	fi
}

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
if [ -z "$missing" ]; then
	node_clients
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: need root to install:$missing" >&2
	exit 1
fi
echo "deps: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
node_clients
