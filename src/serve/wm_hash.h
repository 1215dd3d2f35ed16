/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * wm_hash.h: Watchman's content.sha1hex: a file's SHA-1, computed lazily by a
 * child running as the user who asks (never as root: what they cannot read,
 * they are not told the hash of), and cached by (dev, ino, size, mtime).
 */
#ifndef VW_WM_HASH_H
#define VW_WM_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/creds.h"
#include "core/loop.h"
#include "store/project.h"

struct wm_hash_key {
	uint64_t dev, ino, size;
	int64_t mtime_ns;
};

struct wm_hasher;

struct wm_hasher *wm_hasher_new(struct vw_loop *loop);
void wm_hasher_free(struct wm_hasher *h);	/* running jobs are killed; NULL is a no-op */

/*
 * What is known of @k: 1 with the hash in @hex (40 hex digits and a NUL), or
 * with the reason in @err (@hex then ""); 0 when it is not known.
 */
int wm_hash_get(struct wm_hasher *h, const struct wm_hash_key *k, char hex[41], char *err,
		size_t errlen);

/*
 * Hash the @n files @rels (relative to @p's pinned root, whose picture gave
 * @keys) as @as, in a child; @done(@ctx) is called once every answer is in the
 * cache (or the child gave up, timed out, or died: the files left are cached
 * as errors). One job per @ctx at a time. 0 or -errno.
 */
int wm_hash_start(struct wm_hasher *h, const struct vw_creds *as, const struct vw_project *p,
		  char *const *rels, const struct wm_hash_key *keys, size_t n,
		  void (*done)(void *ctx), void *ctx);
/* Is a job of @ctx's running? */
bool wm_hash_running(const struct wm_hasher *h, const void *ctx);
/* A job's owner goes: its job is killed, and @done is not called. */
void wm_hash_forget(struct wm_hasher *h, const void *ctx);
/* Periodic: jobs past their time are killed (their files cached as errors). */
void wm_hash_tick(struct wm_hasher *h, uint64_t now_ns);

#endif
