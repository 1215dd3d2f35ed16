#!/bin/sh
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# Regenerate the checked-in vmlinux.h from this host's kernel BTF (only when asked: `make vmlinux`).
set -eu
btf=${1:-/sys/kernel/btf/vmlinux}
arch=$(uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
kver=$(uname -r | sed 's/^\([0-9]*\.[0-9]*\).*/\1/')
dir=$(dirname "$0")/../vmlinux/$arch
[ -r "$btf" ] || { echo "gen-vmlinux: no BTF at $btf" >&2; exit 1; }
mkdir -p "$dir"
bpftool btf dump file "$btf" format c > "$dir/vmlinux_$kver.h.tmp"
mv "$dir/vmlinux_$kver.h.tmp" "$dir/vmlinux_$kver.h"
ln -sf "vmlinux_$kver.h" "$dir/vmlinux.h"
echo "gen-vmlinux: wrote $dir/vmlinux_$kver.h"
