// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// reconcile.c: a settled batch decided by identity: dirty paths vs the file system vs the model.
#define _GNU_SOURCE	/* asprintf */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pipeline/route.h"
#include "core/ignore.h"
#include "pipeline/reconcile.h"
#include "core/util.h"

enum rc_class {
	RC_NONE,	/* not there before, not there now */
	RC_GONE,	/* there before, not now */
	RC_NEW,		/* there now, not before */
	RC_REPL,	/* there before and now, but another inode or type */
	RC_SAME,	/* the same inode */
};

struct rc_item {
	const struct vw_dirty *d;
	struct stat st;		/* valid when live */
	struct vw_state_entry m;	/* valid when known */
	bool live, known;
	enum rc_class cls;
	long src;		/* a rename target: index of its source, else -1 */
	bool is_src;
};

/* One line to emit; strings owned (type and source are static). */
struct rc_line {
	enum vw_kind kind;
	const char *type, *source;
	char *path, *old_path;
	const struct rc_item *it;	/* attribution, writes, cut; NULL for none */
	struct stat st;		/* what the line says is there (not for deletes) */
	bool have_st;
};

/* A set of paths, as 64-bit hashes in open addressing (a collision only costs exactness of a skip). */
struct pset {
	uint64_t *k;
	size_t cap, n;
};

struct rc {
	struct vw_state *st;
	const struct vw_project *p;
	struct rc_item *it;
	size_t n;
	struct pset unstable;	/* names whose identity changed: no rename below them */
	struct pset dropped;	/* deleted names: what is below them went with them */
	struct pset listed;	/* created names: everything below them is described */
	struct rc_line *out;
	size_t nout, capout;
	bool torn;		/* a listing found the tree changing under it */
};

static uint64_t pkey(const char *path)
{
	uint64_t k = vw_hash_component(VW_HASH_INIT, path, strlen(path), true);

	return k ? k : 1;
}

static void pset_add(struct pset *s, const char *path)
{
	uint64_t k = pkey(path);
	size_t j;

	if ((s->n + 1) * 2 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		uint64_t *nk = calloc(cap, sizeof(*nk));

		if (!nk)
			return;
		for (size_t i = 0; i < s->cap; i++) {
			if (!s->k[i])
				continue;
			for (j = s->k[i] & (cap - 1); nk[j]; j = (j + 1) & (cap - 1))
				;
			nk[j] = s->k[i];
		}
		free(s->k);
		s->k = nk;
		s->cap = cap;
	}
	for (j = k & (s->cap - 1); s->k[j]; j = (j + 1) & (s->cap - 1))
		if (s->k[j] == k)
			return;
	s->k[j] = k;
	s->n++;
}

static bool pset_has(const struct pset *s, const char *path)
{
	uint64_t k;

	if (!s->n)
		return false;
	k = pkey(path);
	for (size_t j = k & (s->cap - 1); s->k[j]; j = (j + 1) & (s->cap - 1))
		if (s->k[j] == k)
			return true;
	return false;
}

/* Is a strict ancestor of @path in @s? */
static bool pset_above(const struct pset *s, const char *path)
{
	char buf[PATH_MAX];
	char *slash;

	if (!s->n || snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return false;
	while ((slash = strrchr(buf, '/'))) {
		*slash = 0;
		if (pset_has(s, buf))
			return true;
	}
	return false;
}

static const char *type_of(mode_t mode)
{
	return ftype_name(ftype_of_mode(mode));
}

static bool same_type(mode_t a, mode_t b)
{
	return (a & S_IFMT) == (b & S_IFMT);
}

static int emit_st(struct rc *r, enum vw_kind kind, const char *path, const char *old_path,
		   const char *type, const struct rc_item *it, const char *source,
		   const struct stat *st)
{
	struct rc_line *l;

	if (r->nout == r->capout) {
		size_t cap = r->capout ? r->capout * 2 : 32;
		struct rc_line *v = reallocarray(r->out, cap, sizeof(*v));

		if (!v)
			return -ENOMEM;
		r->out = v;
		r->capout = cap;
	}
	l = &r->out[r->nout];
	*l = (struct rc_line){ .kind = kind, .type = type, .source = source, .it = it };
	if (st) {
		l->st = *st;
		l->have_st = true;
	}
	if (!(l->path = strdup(path)) || (old_path && !(l->old_path = strdup(old_path)))) {
		free(l->path);
		return -ENOMEM;
	}
	r->nout++;
	return 0;
}

/* A line about an item: what it says is there is what lstat found when deciding. */
static int emit(struct rc *r, enum vw_kind kind, const char *path, const char *old_path,
		const char *type, const struct rc_item *it, const char *source)
{
	return emit_st(r, kind, path, old_path, type, it, source,
		       it && it->live && kind != VW_KIND_DELETE ? &it->st : NULL);
}

/* --- classification ---------------------------------------------------------------- */

static void classify(struct rc_item *it)
{
	bool before = it->known;

	if (!it->live)
		it->cls = before ? RC_GONE : RC_NONE;
	else if (!before)
		it->cls = RC_NEW;
	else if (it->m.ino != (uint64_t)it->st.st_ino || !same_type(it->m.mode, it->st.st_mode) ||
		 it->d->left != VW_LEFT_NONE)
		it->cls = RC_REPL;	/* left in the batch: the same number may be another inode */
	else
		it->cls = RC_SAME;
}

/*
 * Created in this batch, yet already in the model as this very inode: a crawl
 * read it before its create event arrived. It is news all the same, unless a
 * line (a listing) said it already.
 */
static void forget_crawled(struct rc_item *it)
{
	if (it->d->created && it->known && !it->m.said && it->live &&
	    it->m.ino == (uint64_t)it->st.st_ino)
		it->known = false;
}

static void look(struct rc *r, struct rc_item *it, bool complete)
{
	it->live = project_lstat(r->p, it->d->path, &it->st) == 0;
	it->known = state_lookup(r->st, r->p, it->d->path, &it->m);
	if (!it->known && (it->d->unjudged || (!complete && it->d->hint_before))) {
		/* the picture could not say when its first change came: the events say it was there */
		it->known = true;
		memset(&it->m, 0, sizeof(it->m));
		if (it->live) {
			it->m.ino = it->st.st_ino;
			it->m.mode = it->st.st_mode;
		}
	}
	forget_crawled(it);
	it->src = -1;
	classify(it);
}

static int cmp_ino(const void *a, const void *b)
{
	const struct rc_item *const *x = a, *const *y = b;

	return (*x)->m.ino < (*y)->m.ino ? -1 : (*x)->m.ino > (*y)->m.ino;
}

/* Pair new names with the gone names whose inode they hold: renames. */
static void pair_renames(struct rc *r)
{
	struct rc_item **gone = calloc(r->n ? r->n : 1, sizeof(*gone));
	size_t ng = 0;

	if (!gone)
		return;	/* no renames: deletes and creates, still correct */
	for (size_t i = 0; i < r->n; i++) {
		if (r->it[i].cls != RC_NONE && r->it[i].cls != RC_SAME)
			pset_add(&r->unstable, r->it[i].d->path);
		if (r->it[i].cls == RC_GONE && r->it[i].m.ino)
			gone[ng++] = &r->it[i];
	}
	qsort(gone, ng, sizeof(*gone), cmp_ino);
	for (size_t i = 0; i < r->n && ng; i++) {
		struct rc_item *t = &r->it[i], key, *kp = &key, **hit;

		if ((t->cls != RC_NEW && t->cls != RC_REPL) || !t->d->moved_here)
			continue;	/* inode numbers are reused: only a rename seen makes a rename */
		key.m.ino = t->st.st_ino;
		hit = bsearch(&kp, gone, ng, sizeof(*gone), cmp_ino);
		if (!hit)
			continue;
		while (hit > gone && hit[-1]->m.ino == key.m.ino)
			hit--;
		for (; hit < gone + ng && (*hit)->m.ino == key.m.ino; hit++) {
			struct rc_item *s = *hit;

			if (s->is_src || s->d->left != VW_LEFT_RENAME ||
			    !same_type(s->m.mode, t->st.st_mode) ||
			    pset_above(&r->unstable, s->d->path) || pset_above(&r->unstable, t->d->path))
				continue;
			s->is_src = true;
			t->src = s - r->it;
			break;
		}
	}
	free(gone);
}

/*
 * Names below a rename's target are looked up in the model under the source's
 * name (where the rename puts them); names below a source are gone from it.
 */
static void translate(struct rc *r)
{
	size_t *ends = calloc(r->n ? r->n : 1, sizeof(*ends)), nends = 0;

	if (!ends)
		return;
	for (size_t j = 0; j < r->n; j++)
		if (r->it[j].src >= 0 || r->it[j].is_src)
			ends[nends++] = j;
	for (size_t i = 0; i < r->n && nends; i++) {
		struct rc_item *it = &r->it[i];
		const char *path = it->d->path;

		for (size_t k = 0; k < nends; k++) {
			const struct rc_item *e = &r->it[ends[k]];
			const char *ep = e->d->path;
			size_t el = strlen(ep);
			char moved[PATH_MAX];

			if (strncmp(path, ep, el) != 0 || path[el] != '/')
				continue;
			if (e->src >= 0) {
				snprintf(moved, sizeof(moved), "%s%s", r->it[e->src].d->path, path + el);
				it->known = state_lookup(r->st, r->p, moved, &it->m);
			} else {
				it->known = false;
			}
			forget_crawled(it);
			classify(it);
			break;
		}
	}
	free(ends);
}

/* --- lines --------------------------------------------------------------------------- */

static int walk_fd(const struct vw_project *p, int fd, char *rel, size_t len, walk_fn fn,
		   void *ctx, bool *vanished)
{
	DIR *dir = fdopendir(fd);
	struct dirent *de;
	int ret = 0;

	if (!dir) {
		close(fd);
		*vanished = true;
		return 0;
	}
	while (!ret && (de = readdir(dir))) {
		size_t n = strlen(de->d_name);
		struct stat st;
		int cfd;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") || len + 1 + n >= PATH_MAX)
			continue;
		rel[len] = '/';
		memcpy(rel + len + 1, de->d_name, n + 1);
		if (project_statat(p, dirfd(dir), de->d_name, &st) < 0) {
			*vanished = true;
			continue;
		}
		if (p->ignore && ignore_match(p->ignore, rel, S_ISDIR(st.st_mode)))
			continue;
		ret = fn(ctx, rel, &st);
		if (ret || !S_ISDIR(st.st_mode))
			continue;
		cfd = creds_open_nofollow(dirfd(dir), de->d_name, O_RDONLY | O_DIRECTORY, true);
		if (cfd == -EREMOTE)
			continue;	/* a user's FUSE mount: never entered */
		if (cfd < 0)
			*vanished = true;
		else
			ret = walk_fd(p, cfd, rel, len + 1 + n, fn, ctx, vanished);
	}
	rel[len] = 0;
	closedir(dir);
	return ret;
}

int walk_below(const struct vw_project *p, const char *rel, walk_fn fn, void *ctx, bool *vanished)
{
	char buf[PATH_MAX];
	int fd;

	if (snprintf(buf, sizeof(buf), "%s", rel) >= (int)sizeof(buf))
		return 0;
	fd = project_open(p, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
	if (fd < 0) {
		*vanished = true;	/* gone again: its delete will come */
		return 0;
	}
	return walk_fd(p, fd, buf, strlen(buf), fn, ctx, vanished);
}

struct listing {
	struct rc *r;
	const struct rc_item *it;
};

static int list_one(void *ctx, const char *rel, const struct stat *st)
{
	struct listing *l = ctx;

	pset_add(&l->r->listed, rel);
	return emit_st(l->r, VW_KIND_CREATE, rel, NULL, type_of(st->st_mode), l->it, "scan", st);
}

/* A created directory: one create per entry below it, parents first. */
static int list_tree(struct rc *r, const char *rel, const struct rc_item *it)
{
	struct listing l = { .r = r, .it = it };

	return walk_below(r->p, rel, list_one, &l, &r->torn);
}

static int depth_cmp(const void *a, const void *b)
{
	const struct rc_item *const *x = a, *const *y = b;
	const char *p = (*x)->d->path, *q = (*y)->d->path;
	int dp = 0, dq = 0;

	for (const char *c = p; *c; c++)
		dp += *c == '/';
	for (const char *c = q; *c; c++)
		dq += *c == '/';
	return dp != dq ? dp - dq : strcmp(p, q);
}

/* A replaced name that cannot be a modify: another type, or a directory (its contents differ). */
static bool recreated(const struct rc_item *it)
{
	return it->cls == RC_REPL && it->src < 0 &&
	       (!same_type(it->m.mode, it->st.st_mode) || S_ISDIR(it->st.st_mode));
}

/* A line's "source": "rescan" when only a rescan reported the path, else the events'. */
static const char *origin(const struct rc_item *it)
{
	return it->d->rescan ? "rescan" : NULL;
}

static int lines_renames_deletes(struct rc *r)
{
	int ret = 0;

	for (size_t i = 0; i < r->n && !ret; i++) {
		struct rc_item *t = &r->it[i];

		if (t->src >= 0)
			ret = emit(r, VW_KIND_RENAME, t->d->path, r->it[t->src].d->path,
				   type_of(t->st.st_mode), t, NULL);
	}
	for (size_t i = 0; i < r->n; i++) {
		struct rc_item *it = &r->it[i];

		if ((it->cls == RC_GONE && !it->is_src) || recreated(it))
			pset_add(&r->dropped, it->d->path);
	}
	for (size_t i = 0; i < r->n && !ret; i++) {
		struct rc_item *it = &r->it[i];

		if (((it->cls == RC_GONE && !it->is_src) || recreated(it)) &&
		    !pset_above(&r->dropped, it->d->path))
			ret = emit(r, VW_KIND_DELETE, it->d->path, NULL,
				   it->m.mode ? type_of(it->m.mode) : it->d->type, it, origin(it));
	}
	return ret;
}

static int lines_creates(struct rc *r)
{
	struct rc_item **v = calloc(r->n ? r->n : 1, sizeof(*v));
	size_t nv = 0;
	int ret = 0;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < r->n; i++)
		if ((r->it[i].cls == RC_NEW && r->it[i].src < 0) || recreated(&r->it[i]))
			v[nv++] = &r->it[i];
	qsort(v, nv, sizeof(*v), depth_cmp);
	for (size_t i = 0; i < nv && !ret; i++) {
		const char *path = v[i]->d->path;

		if (pset_has(&r->listed, path) || pset_above(&r->listed, path))
			continue;
		pset_add(&r->listed, path);
		ret = emit(r, VW_KIND_CREATE, path, NULL, type_of(v[i]->st.st_mode), v[i], origin(v[i]));
		if (!ret && S_ISDIR(v[i]->st.st_mode))
			ret = list_tree(r, path, v[i]);
	}
	free(v);
	return ret;
}

static int lines_changes(struct rc *r)
{
	int ret = 0;

	for (size_t i = 0; i < r->n && !ret; i++) {
		struct rc_item *it = &r->it[i];
		const struct vw_dirty *d = it->d;
		enum vw_kind ev = VW_KIND_NONE;
		bool file = it->live && S_ISREG(it->st.st_mode);

		if (pset_above(&r->listed, d->path) || pset_above(&r->dropped, d->path))
			continue;
		if (it->cls == RC_REPL && it->src < 0 && !recreated(it))
			ev = VW_KIND_MODIFY;	/* replaced by another file: an atomic save, a swap */
		else if (it->cls == RC_SAME || it->src >= 0) {
			if (d->modified)
				ev = d->truncated_only ? VW_KIND_TRUNCATE : VW_KIND_MODIFY;
			else if (file && it->cls == RC_SAME && it->known && it->m.mode &&
				 (it->m.size != (uint64_t)it->st.st_size ||
				  it->m.mtime_ns != (int64_t)it->st.st_mtim.tv_sec * 1000000000 +
							    it->st.st_mtim.tv_nsec) && !d->attrib)
				ev = VW_KIND_MODIFY;	/* the model says it changed: a write it missed */
			else if (d->attrib)
				ev = VW_KIND_ATTRIB;
		}
		if (ev)
			ret = emit(r, ev, d->path, NULL, type_of(it->st.st_mode), it, origin(it));
	}
	return ret;
}

/*
 * A file with several names changed through one of them changed under all of
 * them: the other names the model knows for that inode get the same line.
 */
/* A changed file that may have other names: a line about it, or a written name gone since. */
struct link_origin {
	uint64_t ino;
	enum vw_kind kind;
	const struct rc_item *it;
	long line;		/* the line's index; -1 for a gone name (the event's inode) */
};

struct link_ctx {
	struct link_origin *o;
	size_t n;

	struct pset named;		/* paths that already have a line */
	char **peer;			/* (path, origin index) found in the model */
	size_t *of;
	size_t npeer, cap;
};

static bool link_peer(void *ctx, const char *rel, const struct vw_state_entry *e)
{
	struct link_ctx *c = ctx;

	if (!S_ISREG(e->mode) || pset_has(&c->named, rel))
		return true;

	for (size_t i = 0; i < c->n; i++) {
		if (e->ino != c->o[i].ino)
			continue;
		if (c->npeer == c->cap) {
			size_t cap = c->cap ? c->cap * 2 : 8;
			char **v = reallocarray(c->peer, cap, sizeof(*v));
			size_t *o = v ? reallocarray(c->of, cap, sizeof(*o)) : NULL;

			if (v)
				c->peer = v;
			if (!o)
				return false;
			c->of = o;
			c->cap = cap;
		}
		if (!(c->peer[c->npeer] = strdup(rel)))
			return false;
		c->of[c->npeer++] = i;
		break;
	}
	return true;
}

/*
 * A change by a name that is gone, to a file not known: every file told
 * before whose inode changed since (ctime) and that no line names may be it.
 */
struct sweep {
	struct rc *r;
	struct pset *named;
	const struct rc_item *it;
	enum vw_kind kind;
	int ret;
};

static bool sweep_one(void *ctx, const char *rel, const struct vw_state_entry *e)
{
	struct sweep *w = ctx;
	struct stat st;

	if (!S_ISREG(e->mode) || pset_has(w->named, rel))
		return true;
	if (project_lstat(w->r->p, rel, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_ino != e->ino ||
	    e->ctime_ns == (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec)
		return true;
	pset_add(w->named, rel);
	w->ret = emit_st(w->r, w->kind, rel, NULL, "file", w->it, NULL, &st);
	return !w->ret;
}

static enum vw_kind link_event(const struct rc_line *l)
{
	const struct vw_dirty *d = l->it ? l->it->d : NULL;

	if (!l->have_st || !S_ISREG(l->st.st_mode) || l->st.st_nlink < 2 || !d || l->source)
		return VW_KIND_NONE;
	if (l->kind == VW_KIND_CREATE || l->kind == VW_KIND_RENAME)
		return d->modified ? (d->truncated_only ? VW_KIND_TRUNCATE : VW_KIND_MODIFY) :
		       d->attrib ? VW_KIND_ATTRIB : VW_KIND_NONE;
	if (l->kind == VW_KIND_MODIFY || l->kind == VW_KIND_TRUNCATE ||
	    l->kind == VW_KIND_ATTRIB)
		return l->kind;
	return VW_KIND_NONE;
}

/*
 * A name written or chmod-ed through: the inode it went to, when that may have
 * other names (it has several, or the name holds another inode by now, or
 * nothing). Its own line may be a listing's, which says nothing of links.
 */
static enum vw_kind written_event(const struct rc *r, const struct rc_item *it, uint64_t *ino)
{
	const struct vw_dirty *d = it->d;
	struct stat st;

	/* by a name gone since, made as a link of another: that one's inode, if it is still it */
	if (d->written && !d->written_ino && !it->live && d->link_of) {
		if (project_lstat(r->p, d->link_of, &st) == 0 && S_ISREG(st.st_mode)) {
			*ino = st.st_ino;
			return d->written;
		}
	}
	/* by a name gone since that held a file told before: that file's inode */
	if (d->written && !d->written_ino && !it->live && !d->created && it->known &&
	    S_ISREG(it->m.mode) && it->m.ino) {
		*ino = it->m.ino;
		return d->written;
	}
	/*
	 * A name not made in the batch (a new file has no other names), brought
	 * where it was by a rename the picture cannot follow: the file it went to
	 * is to be found (a sweep).
	 */
	if (d->written && !d->written_ino && !it->live && !d->created && !it->known) {
		*ino = 0;
		return d->written;
	}
	/* a symlink a change by name went through, moved here and gone since: its target too */
	if (d->via && !it->live && (d->modified || d->attrib)) {
		*ino = 0;
		return d->modified ? (d->truncated_only ? VW_KIND_TRUNCATE : VW_KIND_MODIFY) :
				     VW_KIND_ATTRIB;
	}

	if (d->written && !d->written_ino && it->live && S_ISREG(it->st.st_mode) &&
	    it->st.st_nlink >= 2) {
		*ino = it->st.st_ino;	/* by name: the inode is what the name holds */
		return d->written;
	}
	if (!d->written || !d->written_ino ||
	    (it->live && (uint64_t)it->st.st_ino == d->written_ino && it->st.st_nlink < 2))
		return VW_KIND_NONE;
	*ino = d->written_ino;
	return d->written;
}

/*
 * Hard links: the other names of a file this batch changed, found in the
 * model by inode and confirmed by lstat, get the same line. The file is named
 * by a line, or was changed through a name that is gone by now.
 */
static int lines_links(struct rc *r)
{
	struct link_ctx c = {};
	struct sweep w = {};
	size_t cap = r->nout + r->n;
	int ret = 0;

	c.o = calloc(cap ? cap : 1, sizeof(*c.o));
	if (!c.o)
		return -ENOMEM;
	for (size_t i = 0; i < r->nout; i++) {
		enum vw_kind ev = link_event(&r->out[i]);

		pset_add(&c.named, r->out[i].path);
		if (ev)
			c.o[c.n++] = (struct link_origin){ .ino = r->out[i].st.st_ino, .kind = ev,
							   .it = r->out[i].it, .line = (long)i };
	}
	for (size_t i = 0; i < r->n; i++) {
		uint64_t ino = 0;
		enum vw_kind ev = written_event(r, &r->it[i], &ino);

		if (ev && !ino && !w.it)
			w = (struct sweep){ .r = r, .named = &c.named, .it = &r->it[i], .kind = ev };
		else if (ev && ino)	/* even when its delete is a line: the inode lives on */
			c.o[c.n++] = (struct link_origin){ .ino = ino, .kind = ev,
							   .it = &r->it[i], .line = -1 };
	}
	if (c.n)
		state_each(r->st, r->p, link_peer, &c);
	for (size_t i = 0; i < c.npeer; i++) {
		struct link_origin o = c.o[c.of[i]];
		struct stat st;

		if (!ret && project_lstat(r->p, c.peer[i], &st) == 0 && S_ISREG(st.st_mode) && st.st_ino == o.ino &&
		    (o.line < 0 || st.st_dev == r->out[o.line].st.st_dev) &&
		    !pset_has(&c.named, c.peer[i])) {
			pset_add(&c.named, c.peer[i]);
			ret = emit_st(r, o.kind, c.peer[i], NULL, "file", o.it, NULL, &st);
		}
		free(c.peer[i]);
	}
	if (!ret && w.it) {
		state_each(r->st, r->p, sweep_one, &w);
		ret = w.ret;
	}
	free(c.peer);
	free(c.of);
	free(c.o);
	free(c.named.k);
	return ret;
}

/*
 * chmod, chown, utimes and truncate by name follow a symlink: a change said
 * of a name that is a symlink now is the change of what it points to too,
 * when that is in the project and no line names it yet.
 */
/*
 * What the symlink at @rel points to, as a path below the root, or NULL (out
 * of the project, dangling, or across a mount). Resolved below the pinned
 * root, never out of it and never into a mount (creds_open_following()). A
 * relative target resolves from the directory of @via when a change went
 * through it under that name (renamed since), else from its own.
 */
static char *target_below(const struct rc *r, const char *rel, const char *via)
{
	const char *base = via ? via : rel, *slash = strrchr(base, '/'), *name = strrchr(rel, '/');
	size_t rl = strlen(r->p->root);
	char text[PATH_MAX], path[PATH_MAX * 2 + 2], dir[PATH_MAX], proc[64], real[PATH_MAX];
	ssize_t n;
	int dfd, fd;

	snprintf(dir, sizeof(dir), "%.*s", name ? (int)(name - rel) : 0, rel);
	dfd = project_open(r->p, dir, O_PATH | O_DIRECTORY);
	if (dfd < 0)
		return NULL;
	n = readlinkat(dfd, name ? name + 1 : rel, text, sizeof(text) - 1);
	close(dfd);
	if (n <= 0)
		return NULL;
	text[n] = 0;
	if (text[0] == '/') {	/* absolute: only a path into the root itself */
		if (strncmp(text, r->p->root, rl) != 0 || (text[rl] && text[rl] != '/'))
			return NULL;
		snprintf(path, sizeof(path), "%s", text[rl] ? text + rl + 1 : "");
	} else {
		snprintf(path, sizeof(path), "%.*s%s%s", slash ? (int)(slash - base) : 0, base,
			 slash ? "/" : "", text);
	}
	fd = creds_open_following(r->p->root_fd, path);
	if (fd < 0)
		return NULL;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	n = readlink(proc, real, sizeof(real) - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	real[n] = 0;
	if (strncmp(real, r->p->root, rl) != 0 || real[rl] != '/')
		return NULL;	/* the root itself, or its path changed meanwhile */
	return strdup(real + rl + 1);
}

static int lines_through_symlinks(struct rc *r)
{
	int ret = 0;

	for (size_t i = 0; i < r->n && !ret; i++) {
		const struct rc_item *it = &r->it[i];
		enum vw_kind ev = it->d->modified ? (it->d->truncated_only ? VW_KIND_TRUNCATE : VW_KIND_MODIFY) :
				 it->d->attrib ? VW_KIND_ATTRIB : VW_KIND_NONE;
		char *real = NULL;
		struct stat st;

		if (!ev || !it->live || !S_ISLNK(it->st.st_mode))
			continue;
		if (it->d->via)
			real = target_below(r, it->d->path, it->d->via);
		if (!real)
			real = target_below(r, it->d->path, NULL);
		if (real && project_lstat(r->p, real, &st) == 0 && !S_ISDIR(st.st_mode)) {
			bool named = false;

			for (size_t k = 0; k < r->nout && !named; k++)
				named = strcmp(r->out[k].path, real) == 0;
			if (!named)
				ret = emit_st(r, S_ISREG(st.st_mode) ? ev : VW_KIND_ATTRIB, real, NULL,
					      type_of(st.st_mode), it, NULL, &st);
		}
		free(real);
	}
	return ret;
}

static size_t deliver(struct rc *r, uint64_t batch, settled_fn fn, void *fctx,
		      unchanged_fn unchanged, void *uctx)
{
	struct vw_settled s = { .project = r->p, .batch = batch };
	size_t n = 0;
	bool *skip = calloc(r->nout ? r->nout : 1, sizeof(*skip));

	for (size_t i = 0; i < r->nout; i++) {
		struct rc_line *l = &r->out[i];

		if (skip && unchanged && l->kind != VW_KIND_DELETE && !l->source &&
		    unchanged(uctx, r->p, l->path, l->kind))
			skip[i] = true;
		else
			n++;
	}
	s.batch_size = n;
	for (size_t i = 0; i < r->nout; i++) {
		struct rc_line *l = &r->out[i];

		if (skip && skip[i])
			continue;
		s.kind = l->kind;
		s.type = l->type;
		s.path = l->path;
		s.old_path = l->old_path;
		s.source = l->source;
		s.ev = l->it ? l->it->d->ev : &vw_no_writer;
		s.writes = l->it && l->kind == VW_KIND_MODIFY ? l->it->d->writes : 0;
		s.truncated = l->it && l->it->d->cut && !l->source;
		s.st = l->have_st ? &l->st : NULL;
		fn(fctx, &s);
	}
	free(skip);
	return n;
}

/*
 * A second look at every path, after the lines are decided: the file system
 * changed under the batch while it was looked at when one differs from the
 * first look, or was ahead of the events read when a path the events say is
 * there is gone and no event took it or a directory above it away (the
 * change's events are on their way). Two looks that agree, and agree with the
 * events, bracket a moment in which everything the first look saw was so.
 */
static bool torn(struct rc *r)
{
	struct pset absent = {};
	bool ret = false;

	for (size_t i = 0; i < r->n; i++)
		if (!r->it[i].d->now)
			pset_add(&absent, r->it[i].d->path);
	for (size_t i = 0; i < r->n && !ret; i++) {
		const struct rc_item *it = &r->it[i];
		struct stat st;
		bool live;

		live = project_lstat(r->p, it->d->path, &st) == 0;
		if (live != it->live || (live && (st.st_ino != it->st.st_ino ||
						  st.st_dev != it->st.st_dev ||
						  !same_type(st.st_mode, it->st.st_mode))))
			ret = true;
		/* the events say it is there, none took it or a directory above it away */
		else if (!live && it->d->now && !pset_above(&absent, it->d->path))
			ret = true;
	}
	free(absent.k);
	return ret;
}

size_t reconcile_batch(struct vw_state *st, const struct vw_project *p, const struct vw_dirty *v,
		       size_t n, uint64_t batch, bool may_defer, settled_fn fn, void *fctx,
		       unchanged_fn unchanged, void *uctx)
{
	struct rc r = { .st = st, .p = p, .n = n };
	bool complete = state_complete(st, p);
	size_t emitted = 0;
	int ret;

	r.it = calloc(n ? n : 1, sizeof(*r.it));
	if (!r.it)
		return 0;
	for (size_t i = 0; i < n; i++) {
		r.it[i].d = &v[i];
		look(&r, &r.it[i], complete);
	}
	pair_renames(&r);
	translate(&r);
	ret = lines_renames_deletes(&r);
	if (!ret)
		ret = lines_creates(&r);
	if (!ret)
		ret = lines_changes(&r);
	if (!ret)
		ret = lines_through_symlinks(&r);
	if (!ret)
		ret = lines_links(&r);
	if (!ret && may_defer && (r.torn || torn(&r)))
		emitted = VW_RECONCILE_AGAIN;
	else
		emitted = deliver(&r, batch, fn, fctx, unchanged, uctx);
	for (size_t i = 0; i < r.nout; i++) {
		free(r.out[i].path);
		free(r.out[i].old_path);
	}
	free(r.out);
	free(r.unstable.k);
	free(r.dropped.k);
	free(r.listed.k);
	free(r.it);
	return emitted;
}
