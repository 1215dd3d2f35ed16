// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// state.c: snapshots as path-keyed hash tables per project; binary files written atomically.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/types.h>

#include "state.h"
#include "util.h"
#include "vw_events.h"

#define SNAP_MAGIC "VWSNAP1\n"
#define BUCKETS 1024

struct rec {
	struct rec *next;
	uint64_t ino, size;
	int64_t mtime_ns;
	uint32_t mode;
	bool said;		/* a line described this file (not only a crawl) */
	char path[];
};

struct table {
	struct rec **b;
	size_t nb, n;
};

struct proj_state {
	const struct vw_project *p;
	struct table now;
	struct table before;	/* loaded snapshot or the state when a rescan began */
	bool rescanning;
};

struct vw_state {
	char *dir;
	struct proj_state *ps;
	size_t n, cap;
};

static size_t slot(const struct table *t, const char *path)
{
	return vw_hash_component(VW_HASH_INIT, path, strlen(path), true) & (t->nb - 1);
}

static void table_clear(struct table *t)
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

static struct rec *table_get(const struct table *t, const char *path)
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

static void table_put(struct table *t, const char *path, uint64_t ino, uint64_t size,
		      int64_t mtime, uint32_t mode)
{
	struct rec *r = table_get(t, path);
	size_t s;

	if (!r) {
		if (t->n >= t->nb)
			table_grow(t);
		if (!t->nb || !(r = calloc(1, sizeof(*r) + strlen(path) + 1)))
			return;
		strcpy(r->path, path);
		s = slot(t, path);
		r->next = t->b[s];
		t->b[s] = r;
		t->n++;
	}
	if (r->ino != ino)
		r->said = false;	/* another file */
	r->ino = ino;
	r->size = size;
	r->mtime_ns = mtime;
	r->mode = mode;
}

/* Delete @path, or with @tree also everything below it. */
static void table_del(struct table *t, const char *path, bool tree)
{
	size_t len = strlen(path), first = 0, last = t->nb;

	if (!t->nb)
		return;
	if (!tree) {	/* one path: only its bucket */
		first = slot(t, path);
		last = first + 1;
	}
	for (size_t i = first; i < last; i++) {
		for (struct rec **pp = &t->b[i]; *pp;) {
			struct rec *r = *pp;
			bool hit = strncmp(r->path, path, len) == 0 &&
				   (r->path[len] == 0 || (tree && r->path[len] == '/'));

			if (hit) {
				*pp = r->next;
				free(r);
				t->n--;
			} else {
				pp = &r->next;
			}
		}
	}
}

struct vw_state *state_new(const char *dir)
{
	struct vw_state *s = calloc(1, sizeof(*s));

	if (!s || (dir && !(s->dir = strdup(dir)))) {
		free(s);
		return NULL;
	}
	return s;
}

void state_free(struct vw_state *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		table_clear(&s->ps[i].now);
		table_clear(&s->ps[i].before);
	}
	free(s->ps);
	free(s->dir);
	free(s);
}

static struct proj_state *ps_of(struct vw_state *s, const struct vw_project *p)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->ps[i].p == p)
			return &s->ps[i];
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct proj_state *v = reallocarray(s->ps, cap, sizeof(*v));

		if (!v)
			return NULL;
		s->ps = v;
		s->cap = cap;
	}
	memset(&s->ps[s->n], 0, sizeof(s->ps[0]));
	s->ps[s->n].p = p;
	return &s->ps[s->n++];
}

/* <dir>/<name>-<hash of the root>.snap: the name for people, the hash for uniqueness. */
static void snap_path(const struct vw_state *s, const struct vw_project *p, char *buf, size_t n)
{
	uint64_t h = vw_hash_component(VW_HASH_INIT, p->root, strlen(p->root), true);

	snprintf(buf, n, "%s/%s-%016llx.snap", s->dir, p->name, (unsigned long long)h);
}

int state_load(struct vw_state *s, const struct vw_project *p)
{
	struct proj_state *ps = ps_of(s, p);
	char path[PATH_MAX], magic[8], name[PATH_MAX];
	struct {
		uint64_t ino, size;
		int64_t mtime;
		uint32_t mode;
		uint32_t len;
	} h;
	FILE *f;

	if (!ps)
		return -ENOMEM;
	ps->rescanning = true;	/* the start-up crawl is its rescan */
	if (!s->dir)
		return 0;
	snap_path(s, p, path, sizeof(path));
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	if (fread(magic, 1, 8, f) != 8 || memcmp(magic, SNAP_MAGIC, 8) != 0) {
		fclose(f);
		return -EINVAL;
	}
	table_grow(&ps->before);
	while (fread(&h, sizeof(h), 1, f) == 1 && h.len < sizeof(name) &&
	       fread(name, 1, h.len, f) == h.len) {
		name[h.len] = 0;
		table_put(&ps->before, name, h.ino, h.size, h.mtime, h.mode);
	}
	fclose(f);
	return 1;
}

void state_begin_rescan(struct vw_state *s, const struct vw_project *p)
{
	struct proj_state *ps = ps_of(s, p);

	if (!ps || ps->rescanning)
		return;
	table_clear(&ps->before);
	ps->before = ps->now;
	memset(&ps->now, 0, sizeof(ps->now));
	ps->rescanning = true;
}

void state_put(struct vw_state *s, const struct vw_project *p, const char *rel,
	       const struct stat *st)
{
	struct proj_state *ps = ps_of(s, p);

	if (!ps || !*rel)
		return;
	if (!st) {
		table_del(&ps->now, rel, false);
		return;
	}
	table_put(&ps->now, rel, st->st_ino, st->st_size,
		  (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec, st->st_mode);
}

void state_put_said(struct vw_state *s, const struct vw_project *p, const char *rel,
		    const struct stat *st)
{
	struct proj_state *ps = ps_of(s, p);
	struct rec *r;

	state_put(s, p, rel, st);
	if (ps && *rel && st && (r = table_get(&ps->now, rel)))
		r->said = true;
}

bool state_lookup(struct vw_state *s, const struct vw_project *p, const char *rel,
		  struct vw_state_entry *out)
{
	struct proj_state *ps = ps_of(s, p);
	struct rec *r = ps && *rel ? table_get(&ps->now, rel) : NULL;

	/* while a rescan refills the picture, what it has not reached is as it was */
	if (!r && ps && *rel && ps->rescanning)
		r = table_get(&ps->before, rel);
	if (!r)
		return false;
	out->ino = r->ino;
	out->size = r->size;
	out->mtime_ns = r->mtime_ns;
	out->mode = r->mode;
	out->said = r->said;
	return true;
}

void state_each(struct vw_state *s, const struct vw_project *p, state_each_fn fn, void *ctx)
{
	struct proj_state *ps = ps_of(s, p);

	if (!ps)
		return;
	for (size_t i = 0; i < ps->now.nb; i++)
		for (struct rec *r = ps->now.b[i]; r; r = r->next) {
			struct vw_state_entry e = { .ino = r->ino, .size = r->size,
						    .mtime_ns = r->mtime_ns, .mode = r->mode };

			if (!fn(ctx, r->path, &e))
				return;
		}
}

bool state_complete(struct vw_state *s, const struct vw_project *p)
{
	struct proj_state *ps = ps_of(s, p);

	return ps && !ps->rescanning;
}

void state_move_tree(struct vw_state *s, const struct vw_project *p, const char *from,
		     const char *to)
{
	struct proj_state *ps = ps_of(s, p);
	size_t flen = strlen(from), n = 0, cap = 0;
	struct rec **moved = NULL;

	if (!ps || !*from || !*to || !ps->now.nb)
		return;
	table_del(&ps->now, to, true);
	/* unhook every record at or below @from, then put each back under @to */
	for (size_t i = 0; i < ps->now.nb; i++) {
		for (struct rec **pp = &ps->now.b[i]; *pp;) {
			struct rec *r = *pp;

			if (strncmp(r->path, from, flen) == 0 &&
			    (r->path[flen] == 0 || r->path[flen] == '/')) {
				if (n == cap) {
					struct rec **v = reallocarray(moved, cap ? cap * 2 : 16,
								      sizeof(*v));

					if (!v)
						break;
					moved = v;
					cap = cap ? cap * 2 : 16;
				}
				*pp = r->next;
				ps->now.n--;
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
			table_put(&ps->now, path, moved[i]->ino, moved[i]->size, moved[i]->mtime_ns,
				  moved[i]->mode);
		free(moved[i]);
	}
	free(moved);
}

void state_reset(struct vw_state *s, const struct vw_project *p)
{
	struct proj_state *ps = ps_of(s, p);

	if (!ps)
		return;
	table_clear(&ps->now);
	table_clear(&ps->before);
	ps->rescanning = false;
}

void state_drop_tree(struct vw_state *s, const struct vw_project *p, const char *rel)
{
	struct proj_state *ps = ps_of(s, p);

	if (ps && *rel)
		table_del(&ps->now, rel, true);
}

size_t state_finish_rescans(struct vw_state *s, rescan_fn fn, void *ctx)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n; i++) {
		struct proj_state *ps = &s->ps[i];
		struct vw_rescan_change c = { .project = ps->p };

		if (!ps->rescanning || ps->p->gone)
			continue;
		ps->rescanning = false;
		if (!ps->before.nb)
			continue;	/* nothing known before: a first start reports nothing */
		for (size_t b = 0; b < ps->now.nb; b++) {
			for (struct rec *r = ps->now.b[b]; r; r = r->next) {
				struct rec *o = table_get(&ps->before, r->path);

				c.path = r->path;
				c.is_dir = S_ISDIR(r->mode);
				if (!o)
					c.event = "create";
				else if (!c.is_dir && (o->ino != r->ino || o->size != r->size ||
						       o->mtime_ns != r->mtime_ns))
					c.event = "modify";
				else
					continue;
				fn(ctx, &c);
				n++;
			}
		}
		for (size_t b = 0; b < ps->before.nb; b++) {
			for (struct rec *o = ps->before.b[b]; o; o = o->next) {
				if (table_get(&ps->now, o->path))
					continue;
				c.path = o->path;
				c.is_dir = S_ISDIR(o->mode);
				c.event = "delete";
				fn(ctx, &c);
				n++;
			}
		}
		table_clear(&ps->before);
	}
	return n;
}

static int save_one(struct vw_state *s, struct proj_state *ps)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	FILE *f;
	int ret = 0;

	snap_path(s, ps->p, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	fwrite(SNAP_MAGIC, 1, 8, f);
	for (size_t b = 0; b < ps->now.nb; b++) {
		for (struct rec *r = ps->now.b[b]; r; r = r->next) {
			struct {
				uint64_t ino, size;
				int64_t mtime;
				uint32_t mode;
				uint32_t len;
			} h = { r->ino, r->size, r->mtime_ns, r->mode, (uint32_t)strlen(r->path) };

			fwrite(&h, sizeof(h), 1, f);
			fwrite(r->path, 1, h.len, f);
		}
	}
	if (fflush(f) == EOF || fsync(fileno(f)) < 0)
		ret = -errno;
	if (fclose(f) == EOF && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path) < 0)
		ret = -errno;
	if (ret)
		unlink(tmp);
	return ret;
}

int state_save(struct vw_state *s, const struct vw_projects *t)
{
	int ret = 0;

	if (!s->dir)
		return 0;	/* in memory only */
	if (mkdir(s->dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	for (size_t i = 0; i < s->n; i++) {
		/* a project still being rescanned has a partial picture: keep its old file */
		if (s->ps[i].p->gone || s->ps[i].rescanning)
			continue;
		int r = save_one(s, &s->ps[i]);

		if (r && !ret)
			ret = r;
	}
	return ret;
}
