/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* runner.h: per-event analyzer commands run for settled changes: isolated, bounded, retried. */
#ifndef VW_RUNNER_H
#define VW_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/record.h"
#include "store/config.h"
#include "core/loop.h"
#include "store/project.h"

#define VW_AN_QUEUE_MAX 10000	/* jobs waiting per analyzer; a newer change of a path replaces its job */
#define VW_AN_BATCH_MAX (16u << 20)	/* bytes of JSON lines waiting for one batch analyzer */
#define VW_AN_LOG_MAX (64u * 1024)	/* bytes of an analyzer's output copied into the log */


struct vw_runner;

/* Jobs write "analyzer" lines to @out and dead letters under @state_dir (may be NULL). */
struct vw_runner *runner_new(struct vw_loop *loop, FILE *out, const char *state_dir);
/* What still runs gets SIGTERM and up to @grace_ms to finish, then SIGKILL. */
void runner_free(struct vw_runner *r, unsigned int grace_ms);

/*
 * Queue the jobs a settled change calls for; @line is its JSON line (for
 * batch analyzers, which get every line of their project's batches on stdin).
 */
void runner_submit(struct vw_runner *r, const struct vw_settled *s, const char *line);

/* Timeouts, retries whose backoff is over, queued jobs with a free slot. Call periodically. */
void runner_tick(struct vw_runner *r, uint64_t now_ns);

/*
 * Which analyzer's job made a change (its own changes are not fed back to it)?
 * @pgid covers the job's whole process tree (jobs run in their own process
 * group); @tgid the job itself when the backend knows no process group.
 */
const char *runner_child_name(const struct vw_runner *r, uint32_t tgid, uint32_t pgid);

/*
 * Queue again the dead letters of @project (NULL: all) from the dead-letter
 * file; the others stay in it. Returns how many were queued, or -errno.
 */
int runner_retry_dead(struct vw_runner *r, struct vw_projects *t, const char *project);

/*
 * A VCS holds @p's tree (its lock file exists) while @fn says so: a query's
 * sync point settled @p's batch early, for its answer; the analyzers of @p
 * still wait for the checkout to end, as they would have for the batch, at
 * most until @until_ns. runner_set_hold() names the test; runner_hold() starts
 * a wait. runner_holding(): projects whose analyzers wait.
 */
typedef bool (*runner_hold_fn)(void *ctx, const struct vw_project *p);
void runner_set_hold(struct vw_runner *r, runner_hold_fn fn, void *ctx);
void runner_hold(struct vw_runner *r, const struct vw_project *p, uint64_t until_ns);
size_t runner_holding(const struct vw_runner *r);

size_t runner_running(const struct vw_runner *r);
size_t runner_queued(const struct vw_runner *r);
/* Jobs that waited past their bound (60 s once runnable) for a slot: each said once, in the log. */
uint64_t runner_late(const struct vw_runner *r);

/* Results told so far by status: vw_an_status_names[status]. */
enum { VW_AN_OK, VW_AN_FAILED, VW_AN_DEAD, VW_AN_DROPPED, VW_AN_STATUSES };
extern const char *const vw_an_status_names[VW_AN_STATUSES];
uint64_t runner_reported(const struct vw_runner *r, int status);

#endif
