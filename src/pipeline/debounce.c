// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// debounce.c: per-path merge rules, per-project batches, a min-heap of deadlines (clock passed in).
#define _GNU_SOURCE	/* asprintf */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/debounce.h"
#include "core/util.h"

#define BUCKETS_MIN 64
#define VW_DEFER_MAX 50			/* looks again at most this often... */
#define VW_DEFER_NS (10 * 1000000ull)	/* ...this long apart */

/*
 * One path's net change within the current batch. "before" is whether the
 * path existed when the batch began, "now" whether it exists at the latest
 * change; "src" names the pre-batch path whose content a rename brought here.
 */
struct entry {
	struct entry *hnext;		/* hash chain */
	struct entry *prev, *next;	/* order of first appearance */
	bool before, now;
	bool fresh;		/* the content here was created within the batch */
	bool modified;		/* data written */
	bool truncated_only;	/* only truncations so far */
	bool moved_away;	/* its pre-batch content now lives under another name */
	bool cut;		/* the kernel flagged the path as cut */
	bool same;		/* at flush: content unchanged, nothing to report */
	bool attrib;		/* metadata changed */
	bool moved_here;	/* a rename brought its content */
	bool created_first;	/* the batch's first change of this path created it */
	bool by_rescan, by_event;	/* who reported its changes: a rescan, the backend */
	bool unjudged;		/* see vw_dirty.unjudged */
	bool start_found;	/* the start-up crawl found it (a difference from the snapshot) */
	bool held;		/* at flush: still being written, kept for the next batch */
	uint8_t left;		/* how what was here when the batch began left: VW_LEFT_* */
	enum vw_kind written;	/* the last data or metadata change through this name... */
	uint64_t written_ino;	/* ...and the inode it went to (0: not known) */
	uint32_t writes;
	uint64_t first_ns, last_ns;	/* its first and latest change in the batch */
	const char *type;	/* static strings from ftype_name() */
	char *src;
	char *via;		/* the name a change by name went through, renamed here since */
	char *link_of;		/* made as a hard link of this name in the batch */
	struct vw_event ev;	/* last writer; path fields not kept */
	char path[];
};

struct batch {
	const struct vw_project *project;
	struct entry **buckets;
	size_t nbuckets, n;
	struct entry *head, *tail;
	uint64_t first_ns, deadline;
	size_t heap_pos;	/* SIZE_MAX when not pending */
	unsigned defers;	/* looks again while the file system is ahead of the events */
};

struct vw_debounce {
	struct vw_debounce_opts o;
	struct batch **batches;
	size_t nbatches;
	struct batch **heap;	/* pending batches, earliest deadline first */
	size_t nheap;
	uint64_t next_batch;
	bool presence;		/* the events' order tells what is there */
};

struct vw_debounce *debounce_new(const struct vw_debounce_opts *o)
{
	struct vw_debounce *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->o = *o;
	d->next_batch = 1;
	d->presence = true;
	return d;
}

void debounce_presence(struct vw_debounce *d, bool trusted)
{
	d->presence = trusted;
}

static void entry_free(struct entry *e)
{
	free(e->src);
	free(e->via);
	free(e->link_of);
	free(e);
}

static void batch_clear(struct batch *b)
{
	struct entry *e, *n;

	for (e = b->head; e; e = n) {
		n = e->next;
		entry_free(e);
	}
	memset(b->buckets, 0, b->nbuckets * sizeof(*b->buckets));
	b->head = b->tail = NULL;
	b->n = 0;
	b->defers = 0;
}

void debounce_free(struct vw_debounce *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->nbatches; i++) {
		batch_clear(d->batches[i]);
		free(d->batches[i]->buckets);
		free(d->batches[i]);
	}
	free(d->batches);
	free(d->heap);
	free(d);
}

/* --- the heap of pending batches ------------------------------------------------- */

static void heap_swap(struct vw_debounce *d, size_t i, size_t j)
{
	struct batch *t = d->heap[i];

	d->heap[i] = d->heap[j];
	d->heap[j] = t;
	d->heap[i]->heap_pos = i;
	d->heap[j]->heap_pos = j;
}

static void heap_fix(struct vw_debounce *d, size_t i)
{
	while (i > 0 && d->heap[(i - 1) / 2]->deadline > d->heap[i]->deadline) {
		heap_swap(d, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < d->nheap && d->heap[l]->deadline < d->heap[m]->deadline)
			m = l;
		if (r < d->nheap && d->heap[r]->deadline < d->heap[m]->deadline)
			m = r;
		if (m == i)
			return;
		heap_swap(d, i, m);
		i = m;
	}
}

static void heap_remove(struct vw_debounce *d, struct batch *b)
{
	size_t i = b->heap_pos;

	b->heap_pos = SIZE_MAX;
	if (--d->nheap == i)
		return;
	d->heap[i] = d->heap[d->nheap];
	d->heap[i]->heap_pos = i;
	heap_fix(d, i);
}

/* Pending batches never outnumber batches, so the heap has room for all of them. */
static void heap_set(struct vw_debounce *d, struct batch *b, uint64_t deadline)
{
	b->deadline = deadline;
	if (b->heap_pos == SIZE_MAX) {
		b->heap_pos = d->nheap;
		d->heap[d->nheap++] = b;
	}
	heap_fix(d, b->heap_pos);
}

uint64_t debounce_deadline(const struct vw_debounce *d)
{
	return d->nheap ? d->heap[0]->deadline : 0;
}

size_t debounce_pending(const struct vw_debounce *d)
{
	size_t n = 0;

	for (size_t i = 0; i < d->nbatches; i++)
		n += d->batches[i]->n;
	return n;
}

/* --- entries ----------------------------------------------------------------------- */

static struct batch *batch_of(struct vw_debounce *d, const struct vw_project *p)
{
	struct batch *b, **v, **h;

	for (size_t i = 0; i < d->nbatches; i++)
		if (d->batches[i]->project == p)
			return d->batches[i];
	v = reallocarray(d->batches, d->nbatches + 1, sizeof(*v));
	if (!v)
		return NULL;
	d->batches = v;
	h = reallocarray(d->heap, d->nbatches + 1, sizeof(*h));
	if (!h)
		return NULL;
	d->heap = h;
	b = calloc(1, sizeof(*b));
	if (!b || !(b->buckets = calloc(BUCKETS_MIN, sizeof(*b->buckets)))) {
		free(b);
		return NULL;
	}
	b->project = p;
	b->nbuckets = BUCKETS_MIN;
	b->heap_pos = SIZE_MAX;
	d->batches[d->nbatches++] = b;
	return b;
}

static size_t slot(const struct batch *b, const char *path)
{
	return vw_hash_component(VW_HASH_INIT, path, strlen(path), true) & (b->nbuckets - 1);
}

static struct entry *lookup(struct batch *b, const char *path)
{
	for (struct entry *e = b->buckets[slot(b, path)]; e; e = e->hnext)
		if (strcmp(e->path, path) == 0)
			return e;
	return NULL;
}

static void grow(struct batch *b)
{
	struct entry **nb = calloc(b->nbuckets * 2, sizeof(*nb));

	if (!nb)
		return;	/* longer chains, still correct */
	free(b->buckets);
	b->buckets = nb;
	b->nbuckets *= 2;
	for (struct entry *e = b->head; e; e = e->next) {
		size_t s = slot(b, e->path);

		e->hnext = b->buckets[s];
		b->buckets[s] = e;
	}
}

/* The entry for @path, made with @before/@now when the batch has none yet. */
static struct entry *get(struct batch *b, const char *path, bool before)
{
	struct entry *e = lookup(b, path);
	size_t s, len;

	if (e)
		return e;
	if (b->n >= b->nbuckets)
		grow(b);
	len = strlen(path);
	e = calloc(1, sizeof(*e) + len + 1);
	if (!e)
		return NULL;
	memcpy(e->path, path, len + 1);
	e->before = e->now = before;
	s = slot(b, path);
	e->hnext = b->buckets[s];
	b->buckets[s] = e;
	e->prev = b->tail;
	if (b->tail)
		b->tail->next = e;
	else
		b->head = e;
	b->tail = e;
	b->n++;
	return e;
}

static void unlink_entry(struct batch *b, struct entry *e)
{
	struct entry **pp = &b->buckets[slot(b, e->path)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	if (e->prev)
		e->prev->next = e->next;
	else
		b->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		b->tail = e->prev;
	b->n--;
	entry_free(e);
}

/* The content that came from @src is gone or overwritten: @src's own change is a delete again. */
static void release_src(struct batch *b, struct entry *e)
{
	struct entry *s = e->src ? lookup(b, e->src) : NULL;

	if (s)
		s->moved_away = false;
	free(e->src);
	e->src = NULL;
}

static void note(struct entry *e, const struct vw_out *o)
{
	if (o->source && strcmp(o->source, "rescan") == 0)
		e->by_rescan = true;
	else
		e->by_event = true;
	e->ev = *o->ev;
	e->ev.path = e->ev.old_path = NULL;
	e->ev.path_len = e->ev.old_path_len = 0;
	if (o->type)
		e->type = o->type;
	if (o->truncated)
		e->cut = true;
}

/* A data write or truncate merged into @e's pending change. */
static void note_data(struct entry *e, bool trunc)
{
	if (!e->modified)
		e->truncated_only = trunc;
	else if (!trunc)
		e->truncated_only = false;
	e->modified = true;
	if (!trunc)
		e->writes++;
}

static int on_rename(struct vw_debounce *d, struct batch *b, const struct vw_out *o)
{
	bool replaced = o->ev->flags & VW_EVF_REPLACED;
	struct entry *a = get(b, o->old_path, true), *t;
	char *src = NULL;

	if (!a)
		return -ENOMEM;
	t = lookup(b, o->path);
	if (!t) {
		bool existed = replaced || (d->o.existed && d->o.existed(d->o.ctx, b->project, o->path));

		t = get(b, o->path, existed);
		if (!t)
			return -ENOMEM;
		t->now = false;
	}
	if (t == a)
		return 0;
	release_src(b, t);
	/* the moved content: where it came from before the batch, if anywhere */
	if (a->src)
		src = strdup(a->src);
	else if (a->before && a->now && !a->fresh)
		src = strdup(a->path);
	if ((a->src || (a->before && a->now && !a->fresh)) && !src)
		return -ENOMEM;
	t->src = src;
	t->now = true;
	t->fresh = a->fresh;
	t->modified = a->modified;
	t->truncated_only = a->truncated_only;
	t->writes = a->writes;
	t->type = a->type;
	note(t, o);
	if (src && strcmp(src, a->path) == 0)
		a->moved_away = true;
	free(a->src);
	a->src = NULL;
	a->now = false;
	a->fresh = a->modified = false;
	a->writes = 0;
	if (!a->before && !a->moved_away)
		unlink_entry(b, a);	/* created in this batch and moved on: nothing to say */
	return 0;
}

/* --- reconcile mode: dirty paths ---------------------------------------------- */

/* What the events said of a path's content and metadata, carried by renames. */
static void flags_copy(struct entry *dst, const struct entry *src)
{
	dst->modified = src->modified;
	dst->truncated_only = src->truncated_only;
	dst->attrib = src->attrib;
	dst->moved_here = src->moved_here;
	dst->writes = src->writes;
	dst->cut = src->cut;
	if (src->type)
		dst->type = src->type;
	dst->ev = src->ev;
}

static void flags_clear(struct entry *e)
{
	e->modified = e->truncated_only = e->attrib = e->moved_here = false;
	e->writes = 0;
	free(e->via);
	e->via = NULL;
}

/*
 * What a rename moves from @a: the name a change by name went through, so that
 * a symlink's relative target is still read from where the change went through it.
 */
static char *via_of(struct entry *a)
{
	char *v = a->via;

	a->via = NULL;
	if (!v && a->written)
		v = strdup(a->path);
	return v;
}

struct moved {
	char *path;
	struct entry flags;	/* only the flag fields are used */
};

/*
 * Entries below directory @from now live below @to (and, for an exchange,
 * those below @to below @from): pending writes follow their files.
 */
static int rekey(struct batch *b, const char *from, const char *to, bool swap)
{
	size_t fl = strlen(from), tl = strlen(to), n = 0, cap = 0;
	struct moved *v = NULL;
	struct entry *e, *next;
	int ret = 0;

	for (e = b->head; e; e = next) {
		const char *src = NULL, *dst = NULL;
		size_t sl = 0;
		struct moved *nv;

		next = e->next;
		if (strncmp(e->path, from, fl) == 0 && e->path[fl] == '/')
			src = from, dst = to, sl = fl;
		else if (swap && strncmp(e->path, to, tl) == 0 && e->path[tl] == '/')
			src = to, dst = from, sl = tl;
		if (!src)
			continue;
		if (n == cap) {
			nv = reallocarray(v, cap ? cap * 2 : 8, sizeof(*v));
			if (!nv) {
				ret = -ENOMEM;
				break;
			}
			v = nv;
			cap = cap ? cap * 2 : 8;
		}
		if (asprintf(&v[n].path, "%s%s", dst, e->path + sl) < 0) {
			ret = -ENOMEM;
			break;
		}
		v[n].flags = *e;
		v[n].flags.src = NULL;
		v[n].flags.via = NULL;
		e->link_of = NULL;	/* the name it was made from goes with it */
		n++;
		unlink_entry(b, e);
	}
	for (size_t i = 0; i < n; i++) {
		struct entry *t = lookup(b, v[i].path);

		if (!t && (t = get(b, v[i].path, false)))
			t->created_first = false;
		if (t) {
			flags_copy(t, &v[i].flags);
			t->left = v[i].flags.left;	/* children move with their history */
			t->now = v[i].flags.now;
			t->moved_here = true;
			free(t->link_of);
			t->link_of = v[i].flags.link_of;
		} else {
			free(v[i].flags.link_of);
			ret = -ENOMEM;
		}
		free(v[i].path);
	}
	free(v);
	return ret;
}

/*
 * The first change from the kernel to @e's path, which implies it was there
 * just before: when the model cannot say (the start-up crawl has not found it),
 * it was there at `ready` (a crawl that gets there later finds the change done).
 */
static void judge(struct vw_debounce *d, struct batch *b, struct entry *e, const struct vw_out *o)
{
	bool rescan = o->source && strcmp(o->source, "rescan") == 0;
	char path[PATH_MAX], *slash;

	if (e->by_event || e->moved_here || !d->o.judges)
		return;
	if (rescan) {
		/* the start-up crawl found it there (after `ready`), its line still to come */
		if (o->kind != VW_KIND_DELETE && !d->o.judges(d->o.ctx, b->project, e->path))
			e->start_found = true;
		return;
	}
	if (o->kind == VW_KIND_CREATE)
		return;
	if (e->by_rescan) {
		/* a kernel change after the start-up crawl found it there: it was there */
		if (e->start_found && e->now)
			e->unjudged = true;
		return;
	}
	if (d->o.judges(d->o.ctx, b->project, e->path) ||
	    snprintf(path, sizeof(path), "%s", e->path) >= (int)sizeof(path))
		return;
	/* below a directory this batch made or moved here: not there at `ready` under this name */
	while ((slash = strrchr(path, '/'))) {
		struct entry *a;

		*slash = 0;
		a = lookup(b, path);
		if (a && (a->created_first || a->moved_here || !a->before))
			return;
	}
	e->unjudged = true;
}

static int dirty_rename(struct vw_debounce *d, struct batch *b, const struct vw_out *o)
{
	bool replaced = o->ev->flags & VW_EVF_REPLACED;
	/* a type read after the fact may be that of a later occupant: carry children then too */
	bool dirish = o->exchange || !o->type || strcmp(o->type, "dir") == 0 || o->type_late;
	struct entry *a = get(b, o->old_path, true), *t, tmp;

	if (!a)
		return -ENOMEM;
	t = lookup(b, o->path);
	if (!t) {
		bool existed = replaced || o->exchange ||
			       (d->o.existed && d->o.existed(d->o.ctx, b->project, o->path));

		t = get(b, o->path, existed);
		if (!t)
			return -ENOMEM;
	}
	if (t == a)
		return 0;
	judge(d, b, a, o);
	if (!a->left)
		a->left = VW_LEFT_RENAME;
	if (!t->left)	/* replaced: what was there is destroyed (an exchange moves it) */
		t->left = o->exchange ? VW_LEFT_RENAME : VW_LEFT_DELETE;
	if (o->exchange) {
		char *va = via_of(a), *vt = via_of(t);

		tmp = *t;
		flags_copy(t, a);
		flags_copy(a, &tmp);
		t->via = va;
		a->via = vt;
		a->moved_here = true;
		a->now = true;
	} else {
		char *va = via_of(a);

		flags_copy(t, a);
		flags_clear(a);
		free(t->via);
		t->via = va;
		free(t->link_of);
		t->link_of = a->link_of;
		a->link_of = NULL;
		a->now = false;
	}
	t->moved_here = true;
	t->now = true;
	note(t, o);
	return dirish ? rekey(b, o->old_path, o->path, o->exchange) : 0;
}

static int dirty_add(struct vw_debounce *d, struct batch *b, const struct vw_out *o)
{
	bool creates = o->kind == VW_KIND_CREATE;
	struct entry *e;

	if (o->kind == VW_KIND_RENAME)
		return dirty_rename(d, b, o);
	e = lookup(b, o->path);
	if (!e) {
		e = get(b, o->path, !creates);
		if (!e)
			return -ENOMEM;
		e->created_first = creates;
	}
	judge(d, b, e, o);
	if (!creates && !e->left && o->kind == VW_KIND_DELETE)
		e->left = VW_LEFT_DELETE;
	if (creates || o->kind == VW_KIND_DELETE) {
		e->now = creates;	/* a write or chmod through a descriptor makes no name */
		flags_clear(e);	/* what was written before belongs to another file */
		if (creates) {	/* a delete keeps it: a change by name went to that file */
			free(e->link_of);
			e->link_of = o->link_from ? strdup(o->link_from) : NULL;
		}
	} else {
		if (o->kind == VW_KIND_ATTRIB)
			e->attrib = true;
		else	/* modify, truncate */
			note_data(e, o->kind == VW_KIND_TRUNCATE);
		/* its other names, if any, changed too (0: by name, the inode is not known) */
		e->written = e->written && o->kind == VW_KIND_ATTRIB ? e->written : o->kind;
		e->written_ino = o->ev->ino;
	}
	note(e, o);
	return 0;
}

/* Does @e's pending change move or replace what is below it (not a chmod or a touch)? */
static bool renames_below(const struct entry *e)
{
	return e->created_first || e->moved_here || e->left || !e->now || !e->before;
}

bool debounce_dirty(const struct vw_debounce *d, const struct vw_project *p, const char *rel)
{
	char path[PATH_MAX];
	struct batch *b = NULL;
	bool self = true;

	for (size_t i = 0; i < d->nbatches && !b; i++)
		if (d->batches[i]->project == p)
			b = d->batches[i];
	if (!b || !b->n || snprintf(path, sizeof(path), "%s", rel) >= (int)sizeof(path))
		return false;
	for (;;) {
		const struct entry *e = lookup(b, path);
		char *slash;

		if (e && (self || renames_below(e)))
			return true;
		slash = strrchr(path, '/');
		if (!slash)
			return false;
		*slash = 0;
		self = false;
	}
}

void debounce_discard(struct vw_debounce *d, const struct vw_project *p)
{
	for (size_t i = 0; i < d->nbatches; i++) {
		struct batch *b = d->batches[i];

		if (b->project != p)
			continue;
		if (b->heap_pos != SIZE_MAX)
			heap_remove(d, b);
		batch_clear(b);
	}
}

/*
 * A file that only has its content or metadata changed in place (it was there
 * before the batch, nothing moved it, made it or took it away): one that is
 * still being written may wait for the next batch while the rest of the batch
 * settles. Only a new path, or a change of what a path names, keeps a batch
 * open; a file rewritten every few milliseconds does not hold back the others.
 */
static bool holdable(const struct vw_debounce *d, const struct entry *e)
{
	if (!e->by_event || e->by_rescan || !e->before || !e->now || e->cut)
		return false;
	if (d->o.reconcile)
		return !e->created_first && e->left == VW_LEFT_NONE && !e->moved_here && !e->via &&
		       !e->link_of;
	return !e->fresh && !e->src && !e->moved_away;
}

int debounce_add(struct vw_debounce *d, const struct vw_out *o, uint64_t now_ns)
{
	struct batch *b = batch_of(d, o->project);
	struct entry *e;
	bool rewrite, fresh;
	int ret = 0;

	if (!b)
		return -ENOMEM;
	e = lookup(b, o->path);
	fresh = !e;
	rewrite = e && holdable(d, e) && (o->kind == VW_KIND_MODIFY ||
					  o->kind == VW_KIND_TRUNCATE ||
					  o->kind == VW_KIND_ATTRIB);
	if (d->o.reconcile) {
		ret = dirty_add(d, b, o);
	} else if (o->kind == VW_KIND_ATTRIB) {
		e = get(b, o->path, true);
		if (!e)
			return -ENOMEM;
		note(e, o);	/* the rules alone report data changes only */
	} else if (o->kind == VW_KIND_RENAME) {
		ret = on_rename(d, b, o);
	} else if (o->kind == VW_KIND_CREATE) {
		e = get(b, o->path, false);
		if (!e)
			return -ENOMEM;
		release_src(b, e);
		e->now = true;
		e->fresh = true;
		e->moved_away = false;
		note(e, o);
	} else if (o->kind == VW_KIND_DELETE) {
		e = get(b, o->path, true);
		if (!e)
			return -ENOMEM;
		release_src(b, e);
		e->now = false;
		e->fresh = e->modified = false;
		e->writes = 0;
		note(e, o);
	} else {	/* modify, truncate */
		e = get(b, o->path, true);
		if (!e)
			return -ENOMEM;
		e->now = true;
		note_data(e, o->kind == VW_KIND_TRUNCATE);
		note(e, o);
	}
	if (ret)
		return ret;
	e = lookup(b, o->path);
	if (e) {
		if (fresh)
			e->first_ns = now_ns;
		e->last_ns = now_ns;
	}
	if (b->heap_pos == SIZE_MAX)
		b->first_ns = now_ns;
	else if (rewrite)
		return 0;	/* one more write to a file already pending: the rest may settle */
	heap_set(d, b, now_ns + d->o.settle_ns < b->first_ns + d->o.max_delay_ns ?
			       now_ns + d->o.settle_ns :
			       b->first_ns + d->o.max_delay_ns);
	if (d->o.batch_max && b->n >= d->o.batch_max)
		heap_set(d, b, now_ns);	/* full: due now */
	return 0;
}

/* --- flushing ---------------------------------------------------------------------- */

/* Is a directory above @e's path pending too (then @e goes with it)? */
static bool parent_pending(struct batch *b, const struct entry *e)
{
	char path[PATH_MAX];
	char *slash;

	if (snprintf(path, sizeof(path), "%s", e->path) >= (int)sizeof(path))
		return true;
	while ((slash = strrchr(path, '/'))) {
		*slash = 0;
		if (lookup(b, path))
			return true;
	}
	return false;
}

/*
 * Mark what stays for the next batch at @now_ns: files written within the
 * settle time that a batch may leave behind (holdable()), unless they have
 * waited the longest delay already.
 */
static void mark_held(struct vw_debounce *d, struct batch *b, uint64_t now_ns)
{
	for (struct entry *e = b->head; e; e = e->next)
		e->held = now_ns && e->last_ns + d->o.settle_ns > now_ns &&
			  now_ns < e->first_ns + d->o.max_delay_ns && holdable(d, e) &&
			  !parent_pending(b, e);
}

/* After a flush: drop what was reported, keep what was held; the batch is due again then. */
static void batch_keep_held(struct vw_debounce *d, struct batch *b)
{
	uint64_t first = UINT64_MAX, due = UINT64_MAX;
	struct entry *e, *next;

	for (e = b->head; e; e = next) {
		next = e->next;
		if (!e->held) {
			unlink_entry(b, e);
			continue;
		}
		e->held = false;
		if (e->first_ns < first)
			first = e->first_ns;
		if (e->last_ns + d->o.settle_ns < due)
			due = e->last_ns + d->o.settle_ns;
		if (e->first_ns + d->o.max_delay_ns < due)
			due = e->first_ns + d->o.max_delay_ns;
	}
	b->defers = 0;
	if (!b->n)
		return;
	b->first_ns = first;
	heap_set(d, b, due);
}

/* The net change of one entry, or VW_KIND_NONE when it nets to nothing. */
static enum vw_kind net_event(const struct entry *e, const char **old_path)
{
	*old_path = NULL;
	if (!e->now) {
		if (!e->before || e->moved_away)
			return VW_KIND_NONE;
		return VW_KIND_DELETE;
	}
	if (e->src) {
		*old_path = e->src;
		return VW_KIND_RENAME;
	}
	if (!e->before)
		return VW_KIND_CREATE;
	if (e->fresh)
		return VW_KIND_MODIFY;	/* replaced: deleted and made again, or a file renamed over it */
	if (e->modified)
		return e->truncated_only ? VW_KIND_TRUNCATE : VW_KIND_MODIFY;
	return VW_KIND_NONE;
}

static size_t flush_reconcile(struct vw_debounce *d, struct batch *b, bool may_defer,
			      settled_fn fn, void *ctx)
{
	struct vw_dirty *v = calloc(b->n ? b->n : 1, sizeof(*v));
	size_t i = 0, n = 0;

	if (v) {
		for (struct entry *e = b->head; e; e = e->next) {
			if (e->held)
				continue;
			v[i++] = (struct vw_dirty){
				.path = e->path,
				.hint_before = e->before,
				.created = e->created_first,
				.modified = e->modified,
				.truncated_only = e->truncated_only,
				.attrib = e->attrib,
				.moved_here = e->moved_here,
				.left = e->left,
				.now = d->presence && e->now,
				.written = e->written,
				.written_ino = e->written_ino,
				.via = e->via,
				.link_of = e->link_of,
				.rescan = e->by_rescan && !e->by_event,
				.unjudged = e->unjudged,
				.cut = e->cut,
				.writes = e->writes,
				.type = e->type,
				.ev = &e->ev,
			};
		}
		n = i ? d->o.reconcile(d->o.ctx, b->project, v, i, d->next_batch, may_defer, fn,
				       ctx) : 0;
		if (n == VW_RECONCILE_AGAIN) {
			free(v);
			return n;	/* kept as it is: looked at again */
		}
		if (n)
			d->next_batch++;
	}
	free(v);
	batch_keep_held(d, b);
	return n;
}

static size_t flush_batch(struct vw_debounce *d, struct batch *b, bool may_defer, settled_fn fn,
			  void *ctx)
{
	struct vw_settled s = { .project = b->project };
	size_t n = 0;

	if (d->o.reconcile)
		return flush_reconcile(d, b, may_defer, fn, ctx);
	for (struct entry *e = b->head; e; e = e->next) {
		enum vw_kind ev = e->held ? VW_KIND_NONE : net_event(e, &s.old_path);

		if (!ev)
			continue;
		if (d->o.unchanged && ev != VW_KIND_DELETE)
			e->same = d->o.unchanged(d->o.ctx, b->project, e->path, ev);
		if (!e->same)
			n++;
	}
	s.batch = n ? d->next_batch++ : 0;
	s.batch_size = n;
	for (struct entry *e = b->head; e; e = e->next) {
		s.kind = e->held ? VW_KIND_NONE : net_event(e, &s.old_path);
		if (!s.kind || e->same)
			continue;
		s.path = e->path;
		s.type = e->type;
		s.writes = e->writes;
		s.truncated = e->cut;
		s.ev = &e->ev;
		fn(ctx, &s);
	}
	batch_keep_held(d, b);
	return n;
}

/* Look at @b again shortly. */
static void defer(struct vw_debounce *d, struct batch *b, uint64_t now_ns)
{
	b->defers++;
	heap_set(d, b, now_ns + (d->o.settle_ns < VW_DEFER_NS ? d->o.settle_ns : VW_DEFER_NS));
}

size_t debounce_flush_project(struct vw_debounce *d, const struct vw_project *p, settled_fn fn,
			      void *ctx)
{
	struct batch *b = NULL;
	size_t k;

	for (size_t i = 0; i < d->nbatches && !b; i++)
		if (d->batches[i]->project == p)
			b = d->batches[i];
	if (!b || b->heap_pos == SIZE_MAX)
		return 0;	/* nothing pending */
	heap_remove(d, b);
	mark_held(d, b, 0);
	k = flush_batch(d, b, false, fn, ctx);
	return k == VW_RECONCILE_AGAIN ? 0 : k;
}

size_t debounce_flush(struct vw_debounce *d, uint64_t now_ns, bool all, settled_fn fn, void *ctx)
{
	size_t n = 0, k;
	bool may_defer;

	while (d->nheap && (all || d->heap[0]->deadline <= now_ns)) {
		struct batch *b = d->heap[0];

		if (!all && d->o.hold && now_ns < b->first_ns + d->o.max_hold_ns &&
		    d->o.hold(d->o.ctx, b->project)) {
			heap_set(d, b, now_ns + d->o.settle_ns);	/* look again later */
			continue;
		}
		may_defer = !all && d->o.reconcile && b->defers < VW_DEFER_MAX;
		heap_remove(d, b);
		mark_held(d, b, all ? 0 : now_ns);
		k = flush_batch(d, b, may_defer, fn, ctx);
		if (k == VW_RECONCILE_AGAIN)
			defer(d, b, now_ns);
		else
			n += k;
	}
	return n;
}
