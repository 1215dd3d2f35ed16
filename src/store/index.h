/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* index.h: which paths exist in each project, as 64-bit hashes; filled by a background crawl. */
#ifndef VW_INDEX_H
#define VW_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/project.h"

struct vw_index;

struct vw_index *index_new(void);
void index_free(struct vw_index *x);	/* NULL is a no-op */

void index_add(struct vw_index *x, uint32_t project, const char *path);
void index_del(struct vw_index *x, uint32_t project, const char *path);
bool index_has(const struct vw_index *x, uint32_t project, const char *path);
size_t index_count(const struct vw_index *x);
/* Drop every path of the project @project (removed: its slot may go to another). */
void index_forget(struct vw_index *x, uint32_t project);

/* Queue the directory @rel ("" for the root) of @p for crawling. Returns 0 or -ENOMEM. */
int index_crawl(struct vw_index *x, const struct vw_project *p, const char *rel);

/* Called for each directory the crawl finds under an ignore rule (it does not descend there). */
typedef void (*excluded_fn)(void *ctx, const struct vw_project *p, const char *rel);

/*
 * Crawl up to @budget directory entries (no stat: d_type only, symlinks not
 * followed; ignored paths are left out). Returns true while work remains.
 * The projects must outlive the crawl.
 */
/* Called for each entry the crawl indexes (to stat or fingerprint it); may be NULL. */
typedef void (*file_fn)(void *ctx, const struct vw_project *p, const char *rel, int dirfd,
			const char *name, bool is_dir);

/* Is a directory of @p still queued for the crawl? */
bool index_crawling(const struct vw_index *x, const struct vw_project *p);

bool index_crawl_step(struct vw_index *x, size_t budget, excluded_fn fn, file_fn ffn, void *ctx);

#endif
