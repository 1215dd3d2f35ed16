// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// settle.c: settled mode's stages set up, and what the debouncer asks of the daemon.
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/log.h"
#include "core/util.h"
#include "daemon/daemon.h"
#include "daemon/daemon_priv.h"
#include "pipeline/debounce.h"
#include "pipeline/fanout.h"
#include "pipeline/reconcile.h"
#include "serve/runner.h"
#include "store/changes.h"
#include "store/fingerprint.h"
#include "store/index.h"
#include "store/project.h"
#include "store/state.h"

#define TRIM_AFTER_PATHS 1000	/* batches this large free enough to hand back */

/* Keep the index of existing paths in step with what the kernel reports. */
void settle_index_update(struct daemon *d, const struct vw_out *o)
{
	uint32_t id = o->project->id;

	if (o->kind == VW_KIND_CREATE) {
		index_add(d->idx, id, o->path);
	} else if (o->kind == VW_KIND_DELETE) {
		index_del(d->idx, id, o->path);
		if (d->fps)
			fps_forget(d->fps, id, o->path);
	} else if (o->kind == VW_KIND_RENAME) {
		index_del(d->idx, id, o->old_path);
		if (d->fps)
			fps_forget(d->fps, id, o->old_path);
		index_add(d->idx, id, o->path);
		if (o->type && strcmp(o->type, "dir") == 0 &&
		    index_crawl(d->idx, o->project, o->path) == 0)
			d->crawling = true;	/* what it holds moved with it */
	}
}

static bool path_existed(void *ctx, const struct vw_project *p, const char *path)
{
	struct daemon *d = ctx;

	return index_has(d->idx, p->id, path);
}

static bool picture_judges(void *ctx, const struct vw_project *p, const char *path)
{
	struct daemon *d = ctx;

	return !d->state || state_judges(d->state, p, path);
}

/* --skip-identical: a "modify" whose bytes are what they were is not a change. */
static bool content_unchanged(void *ctx, const struct vw_project *p, const char *path,
			      enum vw_kind kind)
{
	struct daemon *d = ctx;

	if (kind == VW_KIND_MODIFY)
		return fps_unchanged(d->fps, p, path);
	fps_record(d->fps, p, path);	/* created or moved here: the next rewrite compares */
	return false;
}

/* A settled batch: decided by comparing its paths with the file system and the model. */
static size_t settle_batch(void *ctx, const struct vw_project *p, const struct vw_dirty *v,
			   size_t n, uint64_t batch, bool may_defer, settled_fn fn, void *fctx)
{
	struct daemon *d = ctx;

	if (p->root_lost || !roots_intact(p)) {
		if (!p->root_lost)
			roots_changed(d, (struct vw_project *)p, false);
		return 0;	/* nothing is reported under a root path that names something else */
	}
	if (n >= TRIM_AFTER_PATHS)
		d->trim_owed = true;
	n = reconcile_batch(d->state, p, v, n, batch, may_defer, fn, fctx,
			    d->fps ? content_unchanged : NULL, d);
	if (n == VW_RECONCILE_AGAIN)
		log_debug("settle: %s: the tree moved while the batch was looked at; again", p->name);
	else
		log_debug("settle: %s: batch %llu: %zu lines (may defer %d)", p->name,
			  (unsigned long long)batch, n, may_defer);
	return n;
}

/* While a VCS holds its lock, a checkout is under way: keep its changes in one batch. */
bool vcs_locked(void *ctx, const struct vw_project *p)
{
	static const char *const locks[] = { ".git/index.lock", ".hg/wlock" };
	struct stat st;

	/* below the pinned root, as every look at a project's files */
	for (size_t i = 0; i < sizeof(locks) / sizeof(locks[0]); i++)
		if (project_lstat(p, locks[i], &st) == 0)
			return true;
	return false;
}

/* Settled mode: the debouncer, and the index it asks whether a path existed before. */
int settle_setup(struct daemon *d, const struct run_opts *o)
{
	struct vw_debounce_opts dopts = {
		.settle_ns = o->settle_ms * MS,
		.max_delay_ns = o->max_delay_ms * MS,
		.max_hold_ns = VW_VCS_HOLD_MAX_MS * MS,
		.batch_max = o->batch_max,
		.existed = path_existed,
		.judges = picture_judges,
		.hold = vcs_locked,
		.unchanged = o->skip_identical ? content_unchanged : NULL,
		.reconcile = settle_batch,
		.ctx = d,
	};

	/* the crawl also finds the ignored directories to exclude in the kernel */
	d->idx = index_new();
	if (!d->idx)
		return -ENOMEM;
	for (size_t i = 0; i < d->projects.n; i++)
		if (index_crawl(d->idx, &d->projects.v[i], "") < 0)
			return -ENOMEM;
	d->crawling = true;
	if (!o->raw && o->state_dir)
		statedir_prepare(d, o);
	/*
	 * The picture of what the stream told, which rescans compare with: kept
	 * on disk when there is a state dir (settled mode), in memory otherwise.
	 */
	d->state = state_new(o->raw ? NULL : o->state_dir);
	if (!d->state)
		return -ENOMEM;
	for (size_t i = 0; i < d->projects.n; i++)
		rescan_load_state(d, &d->projects.v[i], false);
	if (o->raw)
		return 0;
	if (o->skip_identical && !(d->fps = fps_new()))
		return -ENOMEM;
	d->deb = debounce_new(&dopts);
	d->runner = runner_new(d->loop, d->out, o->state_dir);
	if (d->runner)	/* a query settles a held batch early; its analyzers still wait */
		runner_set_hold(d->runner, vcs_locked, d);
	/* every settled line is numbered and kept for clients (cursors) */
	d->changes = changes_new(o->state_dir, o->journal_mb << 20);
	if (d->changes && d->unclean)
		changes_renew(d->changes);
	d->fanout = d->changes ? fanout_new(d->changes) : NULL;
	if (!d->deb || !d->runner || !d->changes || !d->fanout)
		return -ENOMEM;
	return 0;
}
