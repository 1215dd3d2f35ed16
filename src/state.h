/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* state.h: per-project snapshots (path, inode, size, mtime) for rescans at start and after losses. */
#ifndef VW_STATE_H
#define VW_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "project.h"

#define VW_STATE_DIR_DEFAULT "/var/lib/vfswatch"

struct vw_state;

/* One difference found by a rescan; borrowed strings. */
struct vw_rescan_change {
	const struct vw_project *project;
	const char *event;	/* "create" "modify" "delete" */
	const char *path;
	bool is_dir;
};

typedef void (*rescan_fn)(void *ctx, const struct vw_rescan_change *c);

/* What the snapshot holds for one path. */
struct vw_state_entry {
	uint64_t ino, size;
	int64_t mtime_ns;
	uint32_t mode;
	bool said;		/* a line described it (a crawl may have found it first) */
};

/* @dir NULL: in memory only (the settled stream's model; nothing is loaded or saved). */
struct vw_state *state_new(const char *dir);
void state_free(struct vw_state *s);	/* NULL is a no-op */

/* Load the project's snapshot file as the "before" of its next rescan. Returns 0 or -errno. */
int state_load(struct vw_state *s, const struct vw_project *p);

/* Start a rescan of @p: what is known now becomes "before", the crawl fills "now". */
void state_begin_rescan(struct vw_state *s, const struct vw_project *p);

/* Record what is at (p, rel) now (from the crawl, or after a change); NULL st: it is gone. */
void state_put(struct vw_state *s, const struct vw_project *p, const char *rel,
	       const struct stat *st);
/* The same, for what a line said: the file is no news to the stream any more. */
void state_put_said(struct vw_state *s, const struct vw_project *p, const char *rel,
		    const struct stat *st);
/* What is known of (p, rel): the tree as the settled stream has described it. */
bool state_lookup(struct vw_state *s, const struct vw_project *p, const char *rel,
		  struct vw_state_entry *out);
/* False while the crawl is still filling the picture of @p (start-up, rescans). */
/* Call @fn for every path of @p's current picture (no order); stop when it returns false. */
typedef bool (*state_each_fn)(void *ctx, const char *rel, const struct vw_state_entry *e);
void state_each(struct vw_state *s, const struct vw_project *p, state_each_fn fn, void *ctx);

bool state_complete(struct vw_state *s, const struct vw_project *p);
/* Move (p, from) and everything below it to (p, to), replacing what was there. */
void state_move_tree(struct vw_state *s, const struct vw_project *p, const char *from,
		     const char *to);
/* Forget all of @p: its root is a new directory, described from nothing. */
void state_reset(struct vw_state *s, const struct vw_project *p);
/* Forget everything at and below (p, rel): a directory moved away or removed. */
void state_drop_tree(struct vw_state *s, const struct vw_project *p, const char *rel);

/* The crawl is over: report what differs from "before" for projects being rescanned. */
size_t state_finish_rescans(struct vw_state *s, rescan_fn fn, void *ctx);

/* Write every project's snapshot atomically (temp file + rename). Returns 0 or -errno. */
int state_save(struct vw_state *s, const struct vw_projects *t);

#endif
