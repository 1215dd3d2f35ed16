// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// pathtable.c: the picture's table: records keyed by path, moved and dropped a subtree at a time.
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <linux/types.h>
#include "core/util.h"
#include "store/pathtable.h"
#include "vw_events.h"

#define BUCKETS 1024

static size_t slot(const struct table *t, const char *path)
{
	return vw_hash_component(VW_HASH_INIT, path, strlen(path), true) & (t->nb - 1);
}

void table_clear(struct table *t)
{
	for (size_t i = 0; i < t->nb; i++) {
		struct rec *r = t->b[i], *n;

		for (; r; r = n) {
			n = r->next;
			free(r);
		}
	}
	free(t->b);
	memset(t, 0, sizeof(*t));
}

struct rec *table_get(const struct table *t, const char *path)
{
	if (!t->nb)
		return NULL;
	for (struct rec *r = t->b[slot(t, path)]; r; r = r->next)
		if (strcmp(r->path, path) == 0)
			return r;
	return NULL;
}

static void table_grow(struct table *t)
{
	size_t nb = t->nb ? t->nb * 2 : BUCKETS;
	struct rec **b = calloc(nb, sizeof(*b));

	if (!b)
		return;
	for (size_t i = 0; i < t->nb; i++) {
		struct rec *r = t->b[i], *n;

		for (; r; r = n) {
			size_t s = vw_hash_component(VW_HASH_INIT, r->path, strlen(r->path), true) &
				   (nb - 1);

			n = r->next;
			r->next = b[s];
			b[s] = r;
		}
	}
	free(t->b);
	t->b = b;
	t->nb = nb;
}

struct rec *table_put(struct table *t, const char *path, const struct vw_state_entry *e)
{
	struct rec *r = table_get(t, path);
	size_t s;

	if (!r) {
		if (t->n >= t->nb)
			table_grow(t);
		if (!t->nb || !(r = calloc(1, sizeof(*r) + strlen(path) + 1)))
			return NULL;
		strcpy(r->path, path);
		s = slot(t, path);
		r->next = t->b[s];
		t->b[s] = r;
		t->n++;
	}
	if (r->ino != e->ino)
		r->said = false;	/* another file */
	r->ino = e->ino;
	r->size = e->size;
	r->mtime_ns = e->mtime_ns;
	r->ctime_ns = e->ctime_ns;
	r->mode = e->mode;
	return r;
}

/* What a record holds, as an entry. */
struct vw_state_entry entry_of_rec(const struct rec *r)
{
	return (struct vw_state_entry){ r->ino, r->size, r->mtime_ns, r->ctime_ns, r->mode,
					r->said };
}

/* @o's picture under @path in @t, told or not as @o was. */
struct rec *put_copy(struct table *t, const char *path, const struct rec *o)
{
	struct vw_state_entry e = entry_of_rec(o);
	struct rec *r = table_put(t, path, &e);

	if (r)
		r->said = o->said;
	return r;
}

bool table_below(const char *path, const char *top, size_t len)
{
	return strncmp(path, top, len) == 0 && path[len] == '/';
}

/* Can @path have records below it? A known file cannot: no scan of the whole table for it. */
static bool may_hold(const struct table *t, const char *path)
{
	const struct rec *self = table_get(t, path);

	return !self || !self->mode || S_ISDIR(self->mode);
}

/* Delete @path, or with @tree also everything below it. */

void table_del(struct table *t, const char *path, bool tree)
{
	size_t len = strlen(path), first = 0, last = t->nb;

	if (!t->nb)
		return;
	if (!tree || !may_hold(t, path)) {	/* one path: only its bucket */
		first = slot(t, path);
		last = first + 1;
	}
	for (size_t i = first; i < last; i++) {
		for (struct rec **pp = &t->b[i]; *pp;) {
			struct rec *r = *pp;

			if (strcmp(r->path, path) == 0 || (tree && table_below(r->path, path, len))) {
				*pp = r->next;
				free(r);
				t->n--;
			} else {
				pp = &r->next;
			}
		}
	}
}

void table_move(struct table *t, const char *from, const char *to)
{
	size_t flen = strlen(from), n = 0, cap = 0;
	struct rec **moved = NULL;

	if (!t->nb)
		return;
	table_del(t, to, true);
	if (!may_hold(t, from)) {	/* a known file: itself alone */
		struct rec *r = (struct rec *)table_get(t, from);

		put_copy(t, to, r);
		table_del(t, from, false);
		return;
	}
	/* unhook every record at or below @from, then put each back under @to */
	for (size_t i = 0; i < t->nb; i++) {
		for (struct rec **pp = &t->b[i]; *pp;) {
			struct rec *r = *pp;

			if (strcmp(r->path, from) == 0 || table_below(r->path, from, flen)) {
				if (n == cap) {
					struct rec **v = reallocarray(moved, cap ? cap * 2 : 16,
								      sizeof(*v));

					if (!v)
						break;
					moved = v;
					cap = cap ? cap * 2 : 16;
				}
				*pp = r->next;
				t->n--;
				moved[n++] = r;
			} else {
				pp = &r->next;
			}
		}
	}
	for (size_t i = 0; i < n; i++) {
		char path[PATH_MAX];

		if ((size_t)snprintf(path, sizeof(path), "%s%s", to, moved[i]->path + flen) <
		    sizeof(path))
			put_copy(t, path, moved[i]);
		free(moved[i]);
	}
	free(moved);
}

void entry_of(const struct stat *st, struct vw_state_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = st->st_ino;
	e->size = st->st_size;
	e->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	e->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
	e->mode = st->st_mode;
}
