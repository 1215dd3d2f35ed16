/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* debounce.h: coalesce raw changes per (project, path) into the net change, flushed per project batch. */
#ifndef VW_DEBOUNCE_H
#define VW_DEBOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "core/record.h"
#include "store/project.h"


/*
 * Did @path (relative to the project root) exist before the current batch?
 * Asked only when no earlier change in the batch tells (a rename onto a path
 * the batch has not seen yet). Returns true, false.
 */
typedef bool (*existed_fn)(void *ctx, const struct vw_project *p, const char *path);

/* Can the model say whether @path was there (see state_judges())? May be NULL: always. */
typedef bool (*judges_fn)(void *ctx, const struct vw_project *p, const char *path);

/*
 * Asked once per settled create/modify/rename at flush time: true drops a
 * "modify" whose content is unchanged (no-op suppression). May be NULL.
 */
typedef bool (*unchanged_fn)(void *ctx, const struct vw_project *p, const char *path,
			     enum vw_kind kind);


/*
 * Report a batch of @n dirty paths of @p through @fn, every line with batch
 * id @batch. Returns how many lines were emitted, or, when @may_defer and
 * the file system changed under the paths while they were being looked at,
 * VW_RECONCILE_AGAIN without reporting anything: the batch is looked at
 * again a little later, with the events of that change.
 */
#define VW_RECONCILE_AGAIN ((size_t)-1)
typedef size_t (*reconcile_fn)(void *ctx, const struct vw_project *p, const struct vw_dirty *v,
			       size_t n, uint64_t batch, bool may_defer, settled_fn fn,
			       void *fctx);

/* Holds a project's batch while it returns true (e.g. a VCS lock file exists). */
typedef bool (*hold_fn)(void *ctx, const struct vw_project *p);

struct vw_debounce_opts {
	uint64_t settle_ns;	/* quiet time after the project's last change */
	uint64_t max_delay_ns;	/* flush a busy project at the latest this long after its first change */
	uint64_t max_hold_ns;	/* longest a hold (VCS lock) can delay a batch */
	size_t batch_max;	/* flush once this many paths are pending */
	existed_fn existed;
	judges_fn judges;
	hold_fn hold;
	unchanged_fn unchanged;
	/*
	 * When set, batches only collect which paths changed (renames carry
	 * what is pending below a moved directory along) and this decides what
	 * to report; otherwise the events are merged by rules alone.
	 */
	reconcile_fn reconcile;
	void *ctx;
};

struct vw_debounce;

struct vw_debounce *debounce_new(const struct vw_debounce_opts *o);
void debounce_free(struct vw_debounce *d);

/*
 * Whether the order of the events tells what is there (true at first): the
 * BPF backends name each path as it changes; fanotify names it when the event
 * is read, after later changes. When not, a batch is not looked at again
 * for a path the events say is there and the file system has not.
 */
void debounce_presence(struct vw_debounce *d, bool trusted);

/* Merge one routed change seen at @now_ns. Returns 0 or -ENOMEM. */
int debounce_add(struct vw_debounce *d, const struct vw_out *o, uint64_t now_ns);

/* Earliest deadline of any pending batch (CLOCK_MONOTONIC ns), 0 when nothing is pending. */
uint64_t debounce_deadline(const struct vw_debounce *d);

/* Flush the batches due at @now_ns (all of them when @all). Returns the changes emitted. */
size_t debounce_flush(struct vw_debounce *d, uint64_t now_ns, bool all, settled_fn fn, void *ctx);

/*
 * Is (p, rel) pending in @p's batch, or an ancestor whose pending change
 * moves or replaces what is below it (a chmod of a directory does not)?
 */
bool debounce_dirty(const struct vw_debounce *d, const struct vw_project *p, const char *rel);

/*
 * Flush @p's batch now, whatever its deadline and whether a hold (a VCS lock)
 * holds it, and nothing stays behind for the next batch: a query's sync point.
 * Returns the changes emitted.
 */
size_t debounce_flush_project(struct vw_debounce *d, const struct vw_project *p, settled_fn fn,
			      void *ctx);

/* Forget @p's pending batch without reporting it (its root is gone). */
void debounce_discard(struct vw_debounce *d, const struct vw_project *p);

/* Paths pending in every batch together. */
size_t debounce_pending(const struct vw_debounce *d);

#endif
