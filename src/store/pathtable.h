/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * pathtable.h: a hash table of per-path records (what a picture holds for
 * each path), with the tree operations a picture needs: drop a directory and
 * everything below it, move a subtree. Used by state.c only.
 */
#ifndef VW_PATHTABLE_H
#define VW_PATHTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

/* What the picture holds for one path. */
struct vw_state_entry {
	uint64_t ino, size;
	int64_t mtime_ns, ctime_ns;
	uint32_t mode;
	bool said;		/* a line described it (a crawl may have found it first) */
};

struct rec {
	struct rec *next;
	uint64_t ino, size;
	int64_t mtime_ns, ctime_ns;
	uint32_t mode;
	bool said;		/* a line described this file (not only a crawl) */
	char path[];
};

struct table {
	struct rec **b;
	size_t nb, n;
};

void table_clear(struct table *t);
struct rec *table_get(const struct table *t, const char *path);
/* Add or replace @path's record. NULL when out of memory. */
struct rec *table_put(struct table *t, const char *path, const struct vw_state_entry *e);
/* @o's picture under @path in @t, told or not as @o was. */
struct rec *put_copy(struct table *t, const char *path, const struct rec *o);
/* Delete @path, or with @tree also everything below it. */
void table_del(struct table *t, const char *path, bool tree);
/* Move @from and everything below it to @to, replacing what was there. */
void table_move(struct table *t, const char *from, const char *to);
/* Is @path below @top (its first @len bytes)? */
bool table_below(const char *path, const char *top, size_t len);
struct vw_state_entry entry_of_rec(const struct rec *r);
void entry_of(const struct stat *st, struct vw_state_entry *e);

#endif
