/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* caps.h: once set up, the daemon keeps only the capabilities it still uses. */
#ifndef VW_CAPS_H
#define VW_CAPS_H

#include <stddef.h>
#include <stdint.h>
#include <linux/capability.h>

#define VW_CAP(n) (1ull << (n))

/*
 * Keep only @keep (a mask of CAP_* bits) in the effective, permitted and
 * bounding sets, none inheritable or ambient: what the daemon runs later,
 * analyzers configured to run as root included, can never have more. Not
 * root: nothing to do. Returns 0 or -errno (with @err).
 */
int caps_keep(uint64_t keep, char *err, size_t errlen);

/* The effective set now (a mask of CAP_* bits). */
uint64_t caps_effective(void);

/* The names of the capabilities in @mask, comma-separated ("cap_kill,cap_setuid"). */
void caps_names(uint64_t mask, char *buf, size_t len);

#endif
