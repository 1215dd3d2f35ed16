// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// rescan.c: the picture of what the stream told, and rescans: a crawl compared with it.
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/log.h"
#include "core/util.h"
#include "daemon/daemon.h"
#include "daemon/daemon_priv.h"
#include "pipeline/debounce.h"
#include "pipeline/json_out.h"
#include "pipeline/reconcile.h"
#include "store/fingerprint.h"
#include "store/index.h"
#include "store/project.h"
#include "store/state.h"

#define START_GRACE_MS 10	/* a start-up crawl ends this long after it read its last entry */

struct scan {
	struct daemon *d;
	const struct vw_out *o;
};

static int scan_one(void *ctx, const char *rel, const struct stat *st)
{
	struct scan *s = ctx;
	struct vw_out c = *s->o;

	c.kind = VW_KIND_CREATE;
	c.path = rel;
	c.old_path = NULL;
	c.type = ftype_name(ftype_of_mode(st->st_mode));
	c.type_late = false;
	c.source = "scan";
	project_count((struct vw_project *)c.project, c.kind);
	if (s->d->state)
		state_put_said(s->d->state, c.project, rel, st);
	if (!s->d->out_broken && json_out_change(s->d->out, &c) < 0)
		s->d->out_broken = true;
	return 0;
}

/* --raw: a directory moved in from outside: what it holds, as create lines with "source":"scan". */
void rescan_moved_in(struct daemon *d, const struct vw_out *o)
{
	struct scan s = { .d = d, .o = o };
	bool vanished = false;

	walk_below(o->project, o->path, scan_one, &s, &vanished);
}

/*
 * Each entry the crawl finds: compared with what the stream told (rescans:
 * a difference is reported at once), and fingerprinted (--skip-identical)
 * so that even a first rewrite is recognised.
 */
void rescan_crawl_file(void *ctx, const struct vw_project *p, const char *rel, int dirfd,
		       const char *name, bool is_dir)
{
	struct daemon *d = ctx;
	bool rescanning = d->state && state_rescanning(d->state, p);
	/* asked only when the answer is used: a plain crawl looks up nothing */
	bool dirty = (rescanning || (d->fps && !is_dir)) && d->deb &&
		     debounce_dirty(d->deb, p, rel);
	struct stat st;

	if (rescanning) {
		((struct vw_project *)p)->rescan_entries++;
		/* a path with changes pending is described by its own batch */
		if (dirty)
			state_crawled(d->state, p, rel, NULL, !d->deb, rescan_change, d);
		else if (project_statat(p, dirfd, name, &st) == 0)
			state_crawled(d->state, p, rel, &st, !d->deb, rescan_change, d);
	}
	/* changes pending: what is there is not what they are compared with */
	if (!d->fps || is_dir || dirty)
		return;
	fps_record(d->fps, p, rel);
}

/* The last raw data line's path, when later lines for it were not looked at yet. */
void daemon_told_refresh(struct daemon *d)
{
	const struct vw_project *p = d->told_last.p;

	if (!p || !d->told_last.owed)
		return;
	d->told_last.owed = false;
	d->told_last.p = NULL;	/* so that it is looked at now; the call remembers it again */
	daemon_told(d, p, VW_KIND_MODIFY, d->told_last.path, NULL, NULL, NULL, true);
}

void daemon_told(struct daemon *d, const struct vw_project *p, enum vw_kind kind,
		       const char *path, const char *old_path, const struct stat *st,
		       const char *type, bool keep_gone)
{
	struct stat now;

	if (!d->state || !path)
		return;
	if (keep_gone && !st && !old_path) {
		bool data = kind_is_write(kind);

		if (data && d->told_last.p == p && d->told_last.round == d->round &&
		    !strcmp(d->told_last.path, path)) {
			d->told_last.owed = true;	/* looked at when this read ends */
			return;
		}
		daemon_told_refresh(d);
		if (data && strlen(path) < sizeof(d->told_last.path)) {
			d->told_last.p = p;
			d->told_last.round = d->round;
			if (path != d->told_last.path)	/* daemon_told_refresh() passes it */
				strcpy(d->told_last.path, path);
		} else {
			d->told_last.p = NULL;
		}
	} else {
		daemon_told_refresh(d);
		d->told_last.p = NULL;
	}
	if (old_path)	/* what it holds moved with it */
		state_move_tree(d->state, p, old_path, path);
	if (kind == VW_KIND_DELETE)
		state_drop_tree(d->state, p, path);
	else if (st || project_lstat(p, path, &now) == 0)
		state_put_said(d->state, p, path, st ? st : &now);
	else if (keep_gone)
		state_put_unknown(d->state, p, path, type && !strcmp(type, "dir"));
	else
		state_drop_tree(d->state, p, path);
}

/*
 * A difference found by a rescan. --raw: a line with "source":"rescan" now.
 * Settled: a change handed to the project's batch like the kernel's, so that
 * it is decided with them and told once (its line says "source":"rescan"
 * unless the kernel reported the path too).
 */
void rescan_change(void *ctx, const struct vw_rescan_change *c)
{
	struct daemon *d = ctx;
	struct vw_project *p = (struct vw_project *)c->project;
	struct vw_out o = { .project = p, .kind = c->kind, .path = c->path,
			    .type = ftype_name(ftype_of_mode(c->mode)), .ev = &vw_no_writer,
			    .source = "rescan" };

	p->rescan_changes++;
	settle_index_update(d, &o);
	if (d->deb) {
		if (debounce_add(d->deb, &o, now_ns(CLOCK_MONOTONIC)) < 0)
			log_warnx("debounce: out of memory; change to %s dropped", o.path);
		return;
	}
	project_count(p, o.kind);
	if (!d->out_broken && json_out_change(d->out, &o) < 0)
		d->out_broken = true;
}

/* A rescan begins, for @reason ("fresh" when the project has nothing to compare with). */
void rescan_announce(struct daemon *d, struct vw_project *p, const char *reason)
{
	p->rescan_reason = reason;
	p->rescan_entries = p->rescan_changes = 0;
	p->rescan_started_ns = p->rescan_logged_ns = now_ns(CLOCK_MONOTONIC);
	json_out_rescan(d->out, "start", p, p->rescan_fresh);
}

/* Crawl @p again and report what differs from what the stream told. */
static void start_rescan(struct daemon *d, struct vw_project *p, const char *reason)
{
	if (!d->state || !d->idx || p->gone || p->root_lost)
		return;
	state_begin_rescan(d->state, p);
	if (index_crawl(d->idx, p, "") < 0) {
		log_warnx("rescan: %s: out of memory", p->name);
		return;
	}
	d->crawling = true;
	p->rescan_owed = false;
	rescan_announce(d, p, reason);
	/* lost changes, or rules that now show other paths (a reload): the reason says which */
	log_warnx("rescan: %s (%s): crawling it to report what changed", p->name, reason);
}

/* @p must be crawled again (records lost, its rules changed): now, or when the running (or a
 * too recent) one is over. */
void rescan_request(struct daemon *d, struct vw_project *p, const char *reason)
{
	if (p->gone || !d->state)
		return;
	if (state_rescanning(d->state, p) ||
	    now_ns(CLOCK_MONOTONIC) < p->rescan_not_before_ns) {
		/* the crawl may have passed the lost change already: another one is owed */
		p->rescan_owed = true;
		p->rescan_owed_reason = reason;
		return;
	}
	start_rescan(d, p, reason);
}

void rescan_request_all(struct daemon *d, const char *reason)
{
	for (size_t i = 0; i < d->projects.n; i++)
		rescan_request(d, &d->projects.v[i], reason);
}

/* The crawl of @p is over: what it did not find is gone; a rescan owed waits its turn. */
static void end_rescan(struct daemon *d, struct vw_project *p)
{
	uint64_t now = now_ns(CLOCK_MONOTONIC);
	bool first = state_starting(d->state, p);	/* the start-up crawl: no loss loop yet */

	state_end_rescan(d->state, p, !d->deb, rescan_change, d);
	if (p->rescan_reason) {
		json_out_rescan(d->out, "done", p, false);
		log_info("rescan: %s: done in %llu ms: %llu entries, %llu changes", p->name,
			 (unsigned long long)((now - p->rescan_started_ns) / MS),
			 (unsigned long long)p->rescan_entries,
			 (unsigned long long)p->rescan_changes);
		p->rescans++;
	}
	p->rescan_reason = NULL;
	p->rescan_fresh = false;
	/* records lost again while it ran: back off (1 s doubling to a minute) before the next */
	if (p->rescan_owed && !first) {
		p->rescan_backoff_ns = p->rescan_backoff_ns ? p->rescan_backoff_ns * 2 : 1000 * MS;
		if (p->rescan_backoff_ns > 60000 * MS)
			p->rescan_backoff_ns = 60000 * MS;
		p->rescan_not_before_ns = now + p->rescan_backoff_ns;
		log_warnx("rescan: %s: records were lost again while it ran; the next in %llu ms",
			  p->name, (unsigned long long)(p->rescan_backoff_ns / MS));
	} else {
		p->rescan_backoff_ns = 0;
	}
}

/* After a step of the crawl: progress of long rescans, and the ones that are over. */
void rescan_progress(struct daemon *d)
{
	uint64_t now = now_ns(CLOCK_MONOTONIC);
	bool drained = false;

	d->crawl_end_ns = 0;
	if (!d->state)
		return;
	for (size_t i = 0; i < d->projects.n; i++) {
		struct vw_project *p = &d->projects.v[i];

		if (p->gone || !state_rescanning(d->state, p))
			continue;
		if (!index_crawling(d->idx, p) && d->deb && state_starting(d->state, p)) {
			/*
			 * A start-up crawl is over. A change made before the crawl got to
			 * its path is judged by what it implies only while the picture
			 * says it cannot judge: its record may still be on its way (a
			 * tracepoint sends it when the system call returns; a writer
			 * may be preempted in between). So the end waits a little, then
			 * what the kernel sent meanwhile is read, then the crawl ends.
			 */
			uint64_t at;

			if (!p->crawl_done_ns)
				p->crawl_done_ns = now;
			at = p->crawl_done_ns + START_GRACE_MS * MS;
			if (now < at) {
				if (!d->crawl_end_ns || at < d->crawl_end_ns)
					d->crawl_end_ns = at;
				continue;
			}
			if (!drained) {
				drained = true;
				d->src->ops->read(d->src, VW_READ_DRAIN);
			}
		}
		if (!index_crawling(d->idx, p)) {
			p->crawl_done_ns = 0;
			end_rescan(d, p);
			continue;
		}
		if (p->rescan_reason && now - p->rescan_logged_ns >= 2000 * MS) {
			p->rescan_logged_ns = now;
			log_info("rescan: %s: %llu entries read, %llu changes so far", p->name,
				 (unsigned long long)p->rescan_entries,
				 (unsigned long long)p->rescan_changes);
		}
	}
	daemon_flush(d);
}

/* Rescans owed whose back-off is over. */
void rescan_owed_ones(struct daemon *d)
{
	uint64_t now = now_ns(CLOCK_MONOTONIC);

	for (size_t i = 0; d->state && i < d->projects.n; i++) {
		struct vw_project *p = &d->projects.v[i];

		if (p->rescan_owed && !p->gone && now >= p->rescan_not_before_ns &&
		    !state_rescanning(d->state, p))
			start_rescan(d, p, p->rescan_owed_reason);
	}
}

/*
 * Records of @p were lost: it is rescanned, and so is every project that
 * holds it (nested roots): the kernel counts a record against the innermost
 * root only, yet the change was the outer projects' too.
 */
void rescan_enclosing(struct daemon *d, uint32_t id, const char *reason)
{
	struct vw_project *p = projects_by_id(&d->projects, id);

	if (!p) {	/* not known (or removed since): every project */
		rescan_request_all(d, reason);
		return;
	}
	for (size_t i = 0; i < d->projects.n; i++) {
		struct vw_project *q = &d->projects.v[i];

		if (q == p || (!q->gone && path_below(p->root, q->root)))
			rescan_request(d, q, reason);
	}
}

void rescan_lost_project(void *ctx, uint32_t id, uint64_t lost)
{
	log_debug("ringbuf: project %u lost %llu records", id, (unsigned long long)lost);
	rescan_enclosing(ctx, id, "ringbuf_full");
}

void rescan_orphan_project(void *ctx, uint32_t id)
{
	rescan_enclosing(ctx, id, "no_result");
}

/* The picture of @p to start from: its snapshot and journal, or nothing (a first start). */
void rescan_load_state(struct daemon *d, struct vw_project *p, bool announce)
{
	int r = state_load(d->state, p);

	p->rescan_reason = NULL;
	if (r == -VW_STATE_EDAMAGED) {
		log_warnx("state: %s: its snapshot is damaged (set aside as *.damaged): what changed "
			  "while the daemon was down cannot be told; a crawl rebuilds it", p->name);
		p->rescan_reason = "state_damaged";
		p->rescan_fresh = true;
	} else if (r < 0) {
		log_warnx("state: %s: cannot read its snapshot (%s); starting afresh", p->name,
			  strerror(-r));
	} else if (r == 1) {
		p->rescan_reason = "start";	/* what changed while the daemon was down */
	}
	if (p->rescan_reason && announce)
		rescan_announce(d, p, p->rescan_reason);
}
