/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* fingerprint.h: zlib crc32 + size of file contents, to drop rewrites that changed nothing. */
#ifndef VW_FINGERPRINT_H
#define VW_FINGERPRINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VW_FP_MAX_SIZE (1u << 20)	/* bigger files are never fingerprinted: always reported */

struct vw_fps;
struct vw_project;

struct vw_fps *fps_new(void);
void fps_free(struct vw_fps *f);	/* NULL is a no-op */

/*
 * Fingerprint the file at @rel of @p (opened below its pinned root, never
 * through a symlink) and compare it with what was recorded for it. Records
 * the new fingerprint. Returns true when the content is known to be
 * unchanged; false when it changed, is new to us, is too big, or cannot be read.
 */
bool fps_unchanged(struct vw_fps *f, const struct vw_project *p, const char *rel);

/* Record the fingerprint of @rel of @p (the crawl, so that a first rewrite is recognised). */
void fps_record(struct vw_fps *f, const struct vw_project *p, const char *rel);

/* Forget (@project, @rel): deleted or renamed away. */
void fps_forget(struct vw_fps *f, uint32_t project, const char *rel);

#endif
