// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// maps.bpf.c: the one definition of every map and rodata knob of vfswatch.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "vw_events.h"
#define VW_MAPS_OWNER
#include "maps.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";
