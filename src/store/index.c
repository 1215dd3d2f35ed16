// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// index.c: an open-addressing set of path hashes per project, and the incremental crawl that fills it.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/ignore.h"
#include "store/index.h"
#include "core/util.h"

#define EMPTY 0
#define GONE UINT64_MAX
#define INDEX_MIN 1024

static size_t slot_of(uint32_t id)
{
	return (id - 1) % VW_PROJECTS_MAX;	/* where projects_by_id() finds it */
}

/*
 * A path's key: its project's slot + 1 in the top 11 bits (never 0, never
 * all ones), 53 bits of the (project, path) hash below, so that a removed
 * project's entries can be found and dropped.
 */
#define TAG_SHIFT 53
static uint64_t key_of(uint32_t project, const char *path)
{
	return ((uint64_t)(slot_of(project) + 1) << TAG_SHIFT) |
	       (vw_path_key(project, path) & ((1ull << TAG_SHIFT) - 1));
}

struct crawl_item {
	const struct vw_project *p;
	uint32_t id;		/* p's id when queued: a slot given to another project since is skipped */
	char *rel;
};

struct vw_index {
	uint64_t *slots;
	size_t cap, used, live;	/* used counts tombstones too */
	struct crawl_item *stack;
	size_t nstack, capstack;
	struct {		/* directories queued, per project slot (and the id they are for) */
		uint32_t id;
		size_t n;
	} queued[VW_PROJECTS_MAX];
};

struct vw_index *index_new(void)
{
	struct vw_index *x = calloc(1, sizeof(*x));

	if (!x || !(x->slots = calloc(INDEX_MIN, sizeof(*x->slots)))) {
		free(x);
		return NULL;
	}
	x->cap = INDEX_MIN;
	return x;
}

void index_free(struct vw_index *x)
{
	if (!x)
		return;
	for (size_t i = 0; i < x->nstack; i++)
		free(x->stack[i].rel);
	free(x->stack);
	free(x->slots);
	free(x);
}

static void rehash(struct vw_index *x, size_t cap)
{
	uint64_t *old = x->slots, *n = calloc(cap, sizeof(*n));
	size_t oldcap = x->cap;

	if (!n)
		return;	/* stays fuller; still correct */
	x->slots = n;
	x->cap = cap;
	x->used = x->live = 0;
	for (size_t i = 0; i < oldcap; i++) {
		if (old[i] == EMPTY || old[i] == GONE)
			continue;
		size_t j = old[i] & (cap - 1);

		while (n[j] != EMPTY)
			j = (j + 1) & (cap - 1);
		n[j] = old[i];
		x->used++;
		x->live++;
	}
	free(old);
}

void index_add(struct vw_index *x, uint32_t project, const char *path)
{
	uint64_t k = key_of(project, path);
	size_t j, tomb = SIZE_MAX;

	if ((x->used + 1) * 10 > x->cap * 7)
		rehash(x, x->live * 10 > x->cap * 5 ? x->cap * 2 : x->cap);
	for (j = k & (x->cap - 1); x->slots[j] != EMPTY; j = (j + 1) & (x->cap - 1)) {
		if (x->slots[j] == k)
			return;
		if (x->slots[j] == GONE && tomb == SIZE_MAX)
			tomb = j;
	}
	if (tomb != SIZE_MAX) {
		j = tomb;
	} else {
		if (x->used + 1 >= x->cap)
			return;	/* rehash failed and the table is full: forget rather than loop */
		x->used++;
	}
	x->slots[j] = k;
	x->live++;
}

static size_t find(const struct vw_index *x, uint64_t k)
{
	for (size_t j = k & (x->cap - 1), n = 0; x->slots[j] != EMPTY && n < x->cap;
	     j = (j + 1) & (x->cap - 1), n++)
		if (x->slots[j] == k)
			return j;
	return SIZE_MAX;
}

void index_del(struct vw_index *x, uint32_t project, const char *path)
{
	size_t j = find(x, key_of(project, path));

	if (j != SIZE_MAX) {
		x->slots[j] = GONE;
		x->live--;
	}
}

bool index_has(const struct vw_index *x, uint32_t project, const char *path)
{
	return find(x, key_of(project, path)) != SIZE_MAX;
}

void index_forget(struct vw_index *x, uint32_t project)
{
	uint64_t tag = slot_of(project) + 1;

	for (size_t j = 0; j < x->cap; j++)
		if (x->slots[j] != EMPTY && x->slots[j] != GONE && x->slots[j] >> TAG_SHIFT == tag) {
			x->slots[j] = GONE;
			x->live--;
		}
	if (x->live * 10 < x->cap && x->cap > INDEX_MIN)	/* most of it went: smaller again */
		rehash(x, x->cap / 2 > INDEX_MIN ? x->cap / 2 : INDEX_MIN);
}

size_t index_count(const struct vw_index *x)
{
	return x->live;
}

int index_crawl(struct vw_index *x, const struct vw_project *p, const char *rel)
{
	char *r = strdup(rel);

	if (!r)
		return -ENOMEM;
	if (x->nstack == x->capstack) {
		size_t cap = x->capstack ? x->capstack * 2 : 64;
		struct crawl_item *s = reallocarray(x->stack, cap, sizeof(*s));

		if (!s) {
			free(r);
			return -ENOMEM;
		}
		x->stack = s;
		x->capstack = cap;
	}
	if (x->queued[slot_of(p->id)].id != p->id)	/* the slot's last project is gone */
		x->queued[slot_of(p->id)].id = p->id, x->queued[slot_of(p->id)].n = 0;
	x->queued[slot_of(p->id)].n++;
	x->stack[x->nstack] = (struct crawl_item){ .p = p, .id = p->id, .rel = r };
	x->nstack++;
	return 0;
}

/* Read one directory whole; its subdirectories go on the stack. Returns entries read. */
static size_t crawl_dir(struct vw_index *x, const struct vw_project *p, const char *rel,
			excluded_fn fn, file_fn ffn, void *ctx)
{
	char child[PATH_MAX];
	struct dirent *de;
	size_t n = 0;
	DIR *d;
	int fd;

	if (p->gone || p->root_lost)
		return 1;	/* removed while queued */
	/* below the pinned root, never through a symlink (a directory swapped for one since) */
	fd = project_open(p, rel, O_RDONLY | O_DIRECTORY);
	d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return 1;	/* gone since, or unreadable: its events will tell */
	}
	while ((de = readdir(d))) {
		bool is_dir = de->d_type == DT_DIR;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if ((size_t)snprintf(child, sizeof(child), "%s%s%s", rel, *rel ? "/" : "",
				     de->d_name) >= sizeof(child))
			continue;
		if (de->d_type == DT_UNKNOWN) {
			struct stat st;

			is_dir = project_statat(p, dirfd(d), de->d_name, &st) == 0 &&
				 S_ISDIR(st.st_mode);
		}
		n++;
		if (p->ignore && ignore_match(p->ignore, child, is_dir)) {
			if (is_dir && fn)
				fn(ctx, p, child);
			continue;
		}
		index_add(x, p->id, child);
		if (is_dir)
			index_crawl(x, p, child);
		if (ffn)
			ffn(ctx, p, child, dirfd(d), de->d_name, is_dir);
	}
	closedir(d);
	return n + 1;
}

bool index_crawl_step(struct vw_index *x, size_t budget, excluded_fn fn, file_fn ffn, void *ctx)
{
	size_t done = 0;

	while (x->nstack && done < budget) {
		struct crawl_item it = x->stack[--x->nstack];

		/* queued for a project removed since, whose slot may be another's now: dropped */
		if (it.p->id == it.id) {
			done += crawl_dir(x, it.p, it.rel, fn, ffn, ctx);
			if (x->queued[slot_of(it.id)].id == it.id && x->queued[slot_of(it.id)].n)
				x->queued[slot_of(it.id)].n--;
		} else {
			done++;
		}
		free(it.rel);
	}
	return x->nstack > 0;
}

bool index_crawling(const struct vw_index *x, const struct vw_project *p)
{
	return x->queued[slot_of(p->id)].id == p->id && x->queued[slot_of(p->id)].n > 0;
}
