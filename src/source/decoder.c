// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// decoder.c: ring-buffer samples validated (length checked against the header), pending/result pairing.
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "source/decoder.h"

#define PENDING_MAX 4096	/* changes waiting for their result; the oldest is dropped beyond */
#define ORPHAN_PROJECTS 32	/* projects of orphaned changes kept by name; beyond: all */

struct pending {
	struct pending *next;
	uint32_t pid;
	uint32_t size;
	struct vw_change rec;	/* only size bytes are valid */
};

struct vw_decoder {
	event_fn fn;
	void *ctx;
	struct pending *head;	/* newest first */
	size_t npending;
	uint64_t samples;	/* records read, good or bad */
	uint64_t bad;
	uint64_t orphans;	/* pending changes whose result never came */
	uint32_t orphan_projects[ORPHAN_PROJECTS];
	size_t norphan_projects;	/* ORPHAN_PROJECTS + 1: too many, every project */
};

struct vw_decoder *decoder_new(event_fn fn, void *ctx)
{
	struct vw_decoder *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->fn = fn;
	d->ctx = ctx;
	return d;
}

void decoder_free(struct vw_decoder *d)
{
	struct pending *p, *n;

	if (!d)
		return;
	for (p = d->head; p; p = n) {
		n = p->next;
		free(p);
	}
	free(d);
}

uint64_t decoder_bad_samples(const struct vw_decoder *d)
{
	return d->bad;
}

uint64_t decoder_samples(const struct vw_decoder *d)
{
	return d->samples;
}

static void deliver(struct vw_decoder *d, const struct vw_change *c)
{
	struct vw_event ev = {
		.ts_ns = c->hdr.ts_ns,
		.cgroup_id = c->cgroup_id,
		.ino = c->ino,
		.anchor_ino = c->anchor_ino,
		.old_anchor_ino = c->old_anchor_ino,
		.dev = c->dev,
		.pid = c->pid,
		.tgid = c->tgid,
		.uid = c->uid,
		.pgid = c->pgid,
		.project = c->project,
		.old_project = c->old_project,
		.op = c->op,
		.ftype = c->ftype,
		.flags = c->hdr.flags,
	};

	memcpy(ev.comm, c->comm, VW_COMM_LEN);
	ev.comm[VW_COMM_LEN] = 0;
	if (c->path_len) {
		ev.path = c->data;
		ev.path_len = c->path_len - 1;
	}
	if (c->old_path_len) {
		ev.old_path = c->data + c->path_len;
		ev.old_path_len = c->old_path_len - 1;
	}
	d->fn(d->ctx, &ev);
}

/* Header, sizes and NUL terminators must agree with what was received. */
static bool change_valid(const struct vw_change *c, size_t size)
{
	size_t head = offsetof(struct vw_change, data);

	if (size < head || (size_t)c->path_len + c->old_path_len != size - head)
		return false;
	if (c->path_len && c->data[c->path_len - 1] != 0)
		return false;
	if (c->old_path_len && c->data[c->path_len + c->old_path_len - 1] != 0)
		return false;
	if (c->op < VW_OP_MODIFY || c->op > VW_OP_ATTRIB)
		return false;
	return c->path_len || c->old_path_len;
}

static void orphan_project(struct vw_decoder *d, uint32_t project)
{
	if (project == VW_PROJECT_NONE || d->norphan_projects > ORPHAN_PROJECTS)
		return;
	for (size_t i = 0; i < d->norphan_projects; i++)
		if (d->orphan_projects[i] == project)
			return;
	if (d->norphan_projects == ORPHAN_PROJECTS)
		d->norphan_projects++;	/* too many to name */
	else
		d->orphan_projects[d->norphan_projects++] = project;
}

/*
 * A pending change that will get no result: its thread began another, or too
 * many waited. Whether it happened is unknown (an LSM may have refused it
 * after the hook; a kernel may call a copy of the function whose exit is
 * hooked), so its projects are remembered for a rescan rather than guessed.
 */
static void orphan(struct vw_decoder *d, struct pending *p)
{
	d->orphans++;
	orphan_project(d, p->rec.project);
	orphan_project(d, p->rec.old_project);
	free(p);
}

uint64_t decoder_orphans(const struct vw_decoder *d)
{
	return d->orphans;
}

uint64_t decoder_take_orphans(struct vw_decoder *d, orphan_fn fn, void *ctx)
{
	uint64_t n = d->orphans;

	if (!n)
		return 0;
	if (d->norphan_projects > ORPHAN_PROJECTS)
		fn(ctx, VW_PROJECT_NONE);
	else
		for (size_t i = 0; i < d->norphan_projects; i++)
			fn(ctx, d->orphan_projects[i]);
	d->orphans = 0;
	d->norphan_projects = 0;
	return n;
}

static struct pending *pending_take(struct vw_decoder *d, uint32_t pid)
{
	struct pending **pp;

	for (pp = &d->head; *pp; pp = &(*pp)->next) {
		struct pending *p = *pp;

		if (p->pid == pid) {
			*pp = p->next;
			d->npending--;
			return p;
		}
	}
	return NULL;
}

static void pending_drop_oldest(struct vw_decoder *d)
{
	struct pending **pp = &d->head;

	while (*pp && (*pp)->next)
		pp = &(*pp)->next;
	if (*pp) {
		orphan(d, *pp);
		*pp = NULL;
		d->npending--;
	}
}

static void pending_put(struct vw_decoder *d, const struct vw_change *c, size_t size)
{
	struct pending *p = pending_take(d, c->pid);

	/* A thread owes at most one result: an older pending of it never got one. */
	if (p)
		orphan(d, p);
	if (d->npending >= PENDING_MAX) {
		log_warnx("ringbuf: more than %d changes wait for results; dropping the oldest",
			  PENDING_MAX);
		pending_drop_oldest(d);
	}
	p = malloc(offsetof(struct pending, rec) + size);
	if (!p) {
		d->bad++;
		return;
	}
	p->pid = c->pid;
	p->size = size;
	memcpy(&p->rec, c, size);
	p->next = d->head;
	d->head = p;
	d->npending++;
}

int decoder_sample(void *decoder, void *data, size_t size)
{
	struct vw_decoder *d = decoder;
	const struct vw_ev_hdr *h = data;

	d->samples++;
	if (size < sizeof(*h) || h->size != size) {
		d->bad++;
		return 0;
	}
	switch (h->type) {
	case VW_EV_CHANGE:
		if (!change_valid(data, size)) {
			d->bad++;
			return 0;
		}
		if (h->flags & VW_EVF_PENDING)
			pending_put(d, data, size);
		else
			deliver(d, data);
		return 0;
	case VW_EV_RESULT: {
		const struct vw_result *r = data;
		struct pending *p;

		if (size != sizeof(*r)) {
			d->bad++;
			return 0;
		}
		p = pending_take(d, r->pid);
		if (p && r->ret == 0)
			deliver(d, &p->rec);
		free(p);
		return 0;
	}
	case VW_EV_WAKE:	/* its wake-up was the point */
		if (size != sizeof(*h))
			d->bad++;
		return 0;
	default:
		d->bad++;
		return 0;
	}
}
