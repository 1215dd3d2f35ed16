// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// daemon.c: `vfswatch run`: set-up, the loop, the handlers that pass records on, teardown.
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/util.h"
#include "daemon/daemon.h"
#include "daemon/daemon_priv.h"
#include "pipeline/debounce.h"
#include "pipeline/fanout.h"
#include "pipeline/json_out.h"
#include "pipeline/route.h"
#include "serve/clients.h"
#include "serve/control.h"
#include "serve/runner.h"
#include "source/source.h"
#include "store/changes.h"
#include "store/config.h"
#include "store/fingerprint.h"
#include "store/index.h"
#include "store/project.h"
#include "store/state.h"

/*
 * The housekeeping tick (losses, analyzer timeouts, rescans owed, journal
 * syncs, root checks) runs every TICK_MS while any of that has work, and every
 * IDLE_TICK_MS otherwise: an idle daemon does not wake up. The BPF backends
 * see a root go by its events; a source that polls its roots (fanotify) has
 * them looked at on this tick, every IDLE_TICK_POLL_MS when idle.
 */
#define TICK_MS 250
#define IDLE_TICK_MS 10000
#define IDLE_TICK_POLL_MS 2000
#define CRAWL_BUDGET 2048	/* directory entries indexed per loop turn */

/* --- the handlers: each hands a record of core/record.h to the next stage ------------ */

/* 1. source -> route: one change the kernel reported, to every project that holds it. */
static void on_event(void *ctx, const struct vw_event *ev)
{
	struct daemon *d = ctx;

	log_debug("event: op %u project %u path_len %zu '%.*s' old %u '%.*s' flags %#x", ev->op,
		  ev->project, ev->path_len, (int)ev->path_len, ev->path ? ev->path : "",
		  ev->old_project, (int)ev->old_path_len, ev->old_path ? ev->old_path : "", ev->flags);
	route_event(&d->projects, ev, daemon_out, d);
}

/* 2. route -> debounce (settled mode), or a line now (--raw). */
void daemon_out(void *ctx, const struct vw_out *o)
{
	struct daemon *d = ctx;

	if (o->kind == VW_KIND_ROOT_GONE || o->kind == VW_KIND_ROOT_BACK) {
		roots_changed(d, (struct vw_project *)o->project, o->kind == VW_KIND_ROOT_BACK);
		return;
	}
	if (o->ignored) {	/* a new ignored directory: keep what happens inside in the kernel */
		excl_dir(d, o->project, o->path);
		return;
	}
	if (d->nexcl && o->type && !strcmp(o->type, "dir") && o->ev->op == VW_OP_RENAME)
		excl_moved(d, o);
	if (!d->deb) {
		project_count((struct vw_project *)o->project, o->kind);
		/* before the line: what it covers is what is there now */
		daemon_told(d, o->project, o->kind, o->path, o->old_path, NULL, o->type, true);
		if (!d->out_broken && json_out_change(d->out, o) < 0)
			d->out_broken = true;
		if (o->ev->op == VW_OP_RENAME && o->kind == VW_KIND_CREATE &&
		    (o->type_late || (o->type && !strcmp(o->type, "dir"))))
			rescan_moved_in(d, o);	/* a type read late may be a later occupant's */
		return;
	}
	if (debounce_add(d->deb, o, now_ns(CLOCK_MONOTONIC)) < 0)
		log_warnx("debounce: out of memory; change to %s dropped", o->path);
	settle_index_update(d, o);
}

/*
 * 3. debounce -> reconcile happens inside debounce_flush() (settle.c's
 * settle_batch()); 4. reconcile -> fanout -> the consumers (consumers.c).
 */
void daemon_settled(void *ctx, const struct vw_settled *cs)
{
	struct daemon *d = ctx;
	struct vw_settled tagged = *cs;

	if (d->runner && tagged.ev)	/* its own write */
		tagged.by = runner_child_name(d->runner, tagged.ev->tgid, tagged.ev->pgid);
	project_count((struct vw_project *)tagged.project, tagged.kind);
	fanout_settled(d->fanout, &tagged);
}

/* --- housekeeping -------------------------------------------------------------------- */

/* Report what the source lost or could not use as overflow lines: never silent. */
static void check_losses(struct daemon *d)
{
	const struct vw_source_ops *ops = d->src->ops;
	struct vw_source_counters c;

	if (ops->counters(d->src, &c) && !d->stats_warned) {
		log_warnx("%s: the kernel counters cannot be read: a full queue would go unseen",
			  ops->name);
		d->stats_warned = true;
	}
	/* changes the kernel announced and never said the outcome of: look at the disk */
	if (c.orphans && ops->take_orphans) {
		json_out_overflow(d->out, "no_result", c.orphans);
		log_warnx("%s: %llu changes got no result from the kernel: rescanning", ops->name,
			  (unsigned long long)c.orphans);
		ops->take_orphans(d->src, rescan_orphan_project, d);
	}
	if (c.lost > d->lost_seen) {
		json_out_overflow(d->out, d->src->lost_reason, c.lost - d->lost_seen);
		log_warnx("%s: %llu records lost (%s)", ops->name,
			  (unsigned long long)(c.lost - d->lost_seen), d->src->lost_reason);
		d->lost_seen = c.lost;
		/* the kernel marked the projects whose records were lost; none (one queue): all */
		if (!ops->take_lost || ops->take_lost(d->src, rescan_lost_project, d) == 0)
			rescan_request_all(d, d->src->lost_reason);
	}
	if (c.unresolved > d->unresolved_seen) {
		json_out_overflow(d->out, "unresolved", c.unresolved - d->unresolved_seen);
		d->unresolved_seen = c.unresolved;
	}
	if (c.bad > d->bad_seen) {
		json_out_overflow(d->out, "bad_record", c.bad - d->bad_seen);
		d->bad_seen = c.bad;
	}
}

/*
 * The reader's liveness (liveness.h; each source's stalled()), at every tick.
 * Even a bug not found yet cannot make the daemon deaf without a word: a
 * stall is told like a loss (an overflow line, reason reader_stalled, and a
 * rescan of every project), counted in status, and the queue is read at once.
 */
static void check_liveness(struct daemon *d)
{
	uint64_t behind = 0;

	if (!d->src->ops->stalled(d->src, TICK_MS * MS, &behind))
		return;
	json_out_overflow(d->out, "reader_stalled", behind);
	log_warnx("liveness: the kernel queue held records no read was owed for "
		  "(%llu records): reading it, rescanning", (unsigned long long)behind);
	rescan_request_all(d, "reader_stalled");
	d->src->ops->read(d->src, VW_READ_CATCH_UP);
	daemon_told_refresh(d);
}

/* Has the tick work within TICK_MS? */
static bool tick_busy(const struct daemon *d)
{
	/* records the kernel sent and the reader has not taken: the liveness check looks again */
	if (d->src && d->src->ops->unread && d->src->ops->unread(d->src))
		return true;
	if (d->activity || state_tick_due(d->state) ||
	    (d->runner && (runner_running(d->runner) || runner_queued(d->runner) ||
			   runner_holding(d->runner))))
		return true;
	for (size_t i = 0; i < d->projects.n; i++)
		if (d->projects.v[i].rescan_owed && !d->projects.v[i].gone)
			return true;
	return false;
}

/* Arm the tick for when it is needed next; only a tick due sooner re-arms the timer. */
static void arm_tick(struct daemon *d)
{
	uint64_t now = now_ns(CLOCK_MONOTONIC);
	uint64_t idle = d->src && d->src->polls_roots ? IDLE_TICK_POLL_MS : IDLE_TICK_MS;
	uint64_t at = now + (tick_busy(d) ? TICK_MS : idle) * MS;
	struct itimerspec its = { .it_value = { at / 1000000000ull, at % 1000000000ull } };

	if (d->tick_at && d->tick_at <= at)
		return;
	if (timerfd_settime(d->tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
		d->tick_at = at;
}

/* The debounce timerfd fires at the earliest batch deadline (absolute, CLOCK_MONOTONIC). */
static void arm_debounce(struct daemon *d)
{
	uint64_t at = d->deb ? debounce_deadline(d->deb) : 0;
	struct itimerspec its = { .it_value = { at / 1000000000ull, at % 1000000000ull } };

	if (at == 0)
		its.it_value.tv_nsec = 0;	/* disarm */
	timerfd_settime(d->dfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/*
 * What was said reaches the change log, subscribers (@clients: not from inside
 * a client's request) and stdout; timers re-armed.
 */
static void flush_lines(struct daemon *d, bool clients)
{
	changes_flush(d->changes);	/* the change log before the lines it numbers */
	if (clients)
		clients_flush(d->clients);
	arm_tick(d);
	if (d->deb)
		arm_debounce(d);
	if (fflush(d->out) == EOF || ferror(d->out))
		d->out_broken = true;
	else	/* what the lines told is out: now the journal may say so */
		state_commit(d->state);
	if (d->out_broken) {
		log_warnx("output: stdout closed; stopping");
		loop_stop(d->loop);
	}
}

int daemon_flush(struct daemon *d)
{
	flush_lines(d, true);
	return 0;
}

/* --- the loop's handlers ------------------------------------------------------------- */

/* A read of the source: @why a wake-up (its descriptor) or the re-read it planned. */
static int read_source(struct daemon *d, enum vw_read why)
{
	int n;

	d->round++;
	n = d->src->ops->read(d->src, why);
	daemon_told_refresh(d);
	if (d->src->losses_in_read)
		check_losses(d);
	else if (n > 0)	/* records dropped for a full queue are counted on the next tick */
		d->activity = true;
	return daemon_flush(d);
}

/*
 * A query's sync point (clients_sync_fn): the kernel queue is read to its end,
 * so every change whose system call has returned is routed; then @p's batch
 * is settled at once, held or not, its lines numbered in the change log.
 * Subscribers get them at the end of this loop turn (loop_turn() step 4).
 */
void daemon_sync(void *ctx, const struct vw_project *p)
{
	struct daemon *d = ctx;
	uint64_t t0 = now_ns(CLOCK_MONOTONIC);
	int n;

	d->round++;
	n = d->src->ops->read(d->src, VW_READ_SYNC);
	/*
	 * After the read: no write to @p from now on is folded into a record sent
	 * before. The kernel names a write's innermost project: the projects
	 * inside @p (nested roots) are marked too. Only they: a query stops the
	 * folding of its own project's writes, never the host's.
	 */
	for (size_t i = 0; d->src->ops->sync_mark && i < d->projects.n; i++) {
		const struct vw_project *q = &d->projects.v[i];

		if (q == p || (!q->gone && path_below(q->root, p->root)))
			d->src->ops->sync_mark(d->src, q->id);
	}
	daemon_told_refresh(d);
	if (n > 0)
		d->activity = true;
	check_losses(d);	/* a loss now is a rescan now: the answer says it is incomplete */
	if (d->deb) {
		/* a checkout under way: the answer has it now, the analyzers when it ends */
		if (p->nanalyzers && vcs_locked(d, p))
			runner_hold(d->runner, p, now_ns(CLOCK_MONOTONIC) + VW_VCS_HOLD_MAX_MS * MS);
		debounce_flush_project(d->deb, p, daemon_settled, d);
	}
	flush_lines(d, false);
	d->syncs++;
	d->sync_ns += now_ns(CLOCK_MONOTONIC) - t0;
}

static int on_source(void *ctx, uint32_t events)
{
	return read_source(ctx, VW_READ_WOKEN);
}

/* The earliest batch is due: its records read first, then what is due is settled. */
static int on_debounce(void *ctx, uint32_t events)
{
	struct daemon *d = ctx;
	uint64_t expirations;

	if (read(d->dfd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		return -errno;
	/* what the hooks already sent belongs in the batches before they are decided */
	d->src->ops->read(d->src, VW_READ_DRAIN);
	if (d->src->ops->sync_mark)	/* a batch flushed at its longest delay: later writes are news */
		d->src->ops->sync_mark(d->src, VW_PROJECT_NONE);
	debounce_flush(d->deb, now_ns(CLOCK_MONOTONIC), false, daemon_settled, d);
	if (d->trim_owed) {
		/* a flood's batches and their lookups are freed now: give the heap back rather
		 * than keep the peak for good */
		d->trim_owed = false;
		malloc_trim(0);
	}
	if (d->runner)
		runner_tick(d->runner, now_ns(CLOCK_MONOTONIC));	/* the batch is complete now */
	return daemon_flush(d);
}

static int on_timer(void *ctx, uint32_t events)
{
	struct daemon *d = ctx;
	uint64_t expirations;

	if (read(d->tfd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		return -errno;
	d->tick_at = 0;
	d->activity = false;
	if (d->runner)
		runner_tick(d->runner, now_ns(CLOCK_MONOTONIC));	/* timeouts, retries */
	roots_check(d);
	if (d->collect_due_ns && now_ns(CLOCK_MONOTONIC) >= d->collect_due_ns) {
		statedir_collect(d, d->opts);
		d->collect_due_ns = now_ns(CLOCK_MONOTONIC) + COLLECT_EVERY_NS;
	}
	check_liveness(d);
	check_losses(d);
	rescan_owed_ones(d);
	state_tick(d->state, now_ns(CLOCK_MONOTONIC));
	changes_sync(d->changes);
	clients_tick(d->clients, now_ns(CLOCK_MONOTONIC));
	control_tick(d->ctl, now_ns(CLOCK_MONOTONIC));
	daemon_write_metrics(d, false);
	return daemon_flush(d);
}

static int on_signal(void *ctx, uint32_t events)
{
	struct daemon *d = ctx;
	struct signalfd_siginfo si;

	while (read(d->sfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM) {
			log_info("signal %d: draining and stopping", si.ssi_signo);
			loop_stop(d->loop);
		} else if (si.ssi_signo == SIGHUP) {
			daemon_reload(d);
		}
	}
	return 0;
}

/* --- set-up, the loop, teardown ------------------------------------------------------ */

static int setup_fds(struct daemon *d)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	d->sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (d->sfd < 0)
		return -errno;
	d->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (d->tfd < 0)
		return -errno;
	d->dfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (d->dfd < 0)
		return -errno;
	return 0;
}

/* The two sockets: ctl.sock (root, and a group), client.sock (every user, settled mode). */
static int setup_sockets(struct daemon *d, const struct run_opts *o)
{
	struct group *gr = o->socket_group ? getgrnam(o->socket_group) : NULL;
	char path[PATH_MAX], err[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/ctl.sock", o->run_dir);
	if (o->socket_group && !gr) {
		log_warnx("control: no group named '%s'", o->socket_group);
		return -EINVAL;
	}
	d->ctl = control_new(path, gr ? (long)gr->gr_gid : -1, d->loop, daemon_ctl_verbs, d, err,
			     sizeof(err));
	if (!d->ctl) {
		log_warnx("control: %s", err);
		return -EINVAL;
	}
	snprintf(path, sizeof(path), "%s/client.sock", o->run_dir);
	if (d->changes &&
	    !(d->clients = clients_new(path, d->loop, &d->projects, d->changes, d->state,
				       &(struct vw_clients_ops){ .add = daemon_user_add,
								 .remove = daemon_user_remove,
								 .sync = daemon_sync, .ctx = d },
				       err, sizeof(err)))) {
		log_warnx("clients: %s", err);
		return -EINVAL;
	}
	if (d->clients) {
		clients_set_reply_budget(d->clients, (size_t)o->user_reply_mb << 20);
		/* Watchman's clients (jest, Mercurial, pywatchman) on the same terms */
		snprintf(path, sizeof(path), "%s/watchman.sock", o->run_dir);
		if (clients_listen_watchman(d->clients, path, err, sizeof(err)) < 0) {
			log_warnx("clients: %s", err);
			return -EINVAL;
		}
	}
	return 0;
}

/* The source of vw_events (source.h), started with every project registered. */
static int setup_source(struct daemon *d, const struct run_opts *o)
{
	struct vw_source_opts *so = &d->src_opts;	/* the test hooks are in already */

	so->backend = o->backend;
	so->projects = &d->projects;
	so->fn = on_event;
	so->ctx = d;
	so->pin_dir = o->pin_dir;
	so->ringbuf_bytes = o->ringbuf_bytes;
	/*
	 * settled mode: a fifth of the settle time, well inside it, so settled
	 * lines never run ahead of the writes they cover; --raw keeps every write
	 */
	so->coalesce_ns = o->raw || o->no_kernel_coalesce ? 0 : o->settle_ms * MS / 5;
	d->src = source_start(so, host_have_btf(), daemon_btf_path());
	if (!d->src)
		return -EINVAL;
	d->backend = d->src->backend;
	if (d->deb && d->src->names_late)	/* it names paths when read, not when they changed */
		debounce_presence(d->deb, false);
	return loop_add(d->loop, d->src->ops->fd(d->src), on_source, d);
}

static int run_setup(struct daemon *d, const struct run_opts *o)
{
	int ret = host_test_hooks(d);

	if (ret)
		return ret;
	d->loop = loop_new();
	if (!d->loop)
		return -ENOMEM;
	ret = setup_fds(d);
	if (!ret)
		ret = loop_add(d->loop, d->sfd, on_signal, d);
	if (!ret)
		ret = loop_add(d->loop, d->tfd, on_timer, d);
	if (!ret)
		ret = settle_setup(d, o);
	if (!ret && d->deb)
		ret = loop_add(d->loop, d->dfd, on_debounce, d);
	if (!ret)
		ret = setup_sockets(d, o);
	if (!ret && d->fanout)
		ret = daemon_consumers(d);
	if (!ret)
		ret = setup_source(d, o);
	return ret;
}

/*
 * One turn of the loop, top to bottom (redis's beforeSleep is the model):
 * everything that is read, decided and told happens in the handlers step 2
 * runs; the rest of the turn makes sure nothing waits for a wake-up that
 * will not come.
 */
static int loop_turn(struct daemon *d)
{
	/* 1. how long to sleep: not at all while a crawl runs (it runs between events, never
	 *    delaying one for long); else until the source's planned re-read or the end of a
	 *    start-up crawl is due, whichever is first */
	uint64_t now = now_ns(CLOCK_MONOTONIC);
	uint64_t due = d->src->ops->read_due ? d->src->ops->read_due(d->src) : 0;
	int64_t wait = d->crawling ? 0 : -1;
	int ret;

	if (due && wait < 0)
		wait = due > now ? (int64_t)(due - now) : 0;
	if (d->crawl_end_ns) {
		int64_t w = d->crawl_end_ns > now ? (int64_t)(d->crawl_end_ns - now) : 0;

		if (wait < 0 || w < wait)
			wait = w;
	}
	/* 2. wait, then run the handlers of what is ready: on_source (source -> route ->
	 *    debounce, or --raw lines), on_debounce (batches -> reconcile -> fanout ->
	 *    consumers), on_timer (housekeeping), on_signal, the control and client sockets */
	ret = loop_run_once(d->loop, wait);
	/* 3. the source's planned re-read, when due: records sent without a wake-up */
	due = d->src->ops->read_due ? d->src->ops->read_due(d->src) : 0;
	if (due && now_ns(CLOCK_MONOTONIC) >= due)
		read_source(d, VW_READ_DUE);
	/* 4. lines told on any path reach subscribers now: numbered in the change log first,
	 *    so that no client holds a cursor a crash could give out again */
	changes_flush(d->changes);
	clients_flush(d->clients);
	/* 5. a step of the crawl (start-up, rescans, directories moved in), and the rescans
	 *    it ended */
	if (d->crawling || (d->crawl_end_ns && now_ns(CLOCK_MONOTONIC) >= d->crawl_end_ns)) {
		if (d->crawling)
			d->crawling = index_crawl_step(d->idx, CRAWL_BUDGET, excl_dir,
						       rescan_crawl_file, d);
		rescan_progress(d);
	}
	return ret;
}

static void run_teardown(struct daemon *d)
{
	control_free(d->ctl);	/* stop accepting first */
	d->ctl = NULL;
	/* Stop the hooks first, then drain what they already sent. */
	if (d->src) {
		d->src->ops->detach(d->src);
		d->src->ops->read(d->src, VW_READ_DRAIN);
	}
	daemon_told_refresh(d);
	if (d->deb)
		debounce_flush(d->deb, 0, true, daemon_settled, d);
	runner_free(d->runner, 2000);	/* running jobs get 2 s; queued ones are dropped */
	d->runner = NULL;
	if (d->src) {
		check_losses(d);
		json_out_stop(d->out, "signal");
	}
	/* the lines first: the snapshot holds only what is out */
	if (fflush(d->out) == 0 && !ferror(d->out) && d->state) {
		int r = state_save(d->state);

		if (r)
			log_warnx("state: save: %s", strerror(-r));
	}
	if (d->src)
		d->src->ops->stop(d->src);
	debounce_free(d->deb);
	index_free(d->idx);
	fps_free(d->fps);
	free(d->excl);
	clients_free(d->clients);
	changes_free(d->changes);
	statedir_mark_running(d, false);	/* everything is written: the next daemon trusts it */
	fanout_free(d->fanout);
	state_free(d->state);
	loop_free(d->loop);
	if (d->sfd >= 0)
		close(d->sfd);
	if (d->tfd >= 0)
		close(d->tfd);
	if (d->dfd >= 0)
		close(d->dfd);
	projects_free(&d->projects);
	if (d->lock_fd >= 0) {
		unlink(d->lock_path);	/* still holding it: nobody else can have taken it */
		close(d->lock_fd);
	}
}

int daemon_run(const struct run_opts *opts)
{
	struct daemon d = { .sfd = -1, .tfd = -1, .dfd = -1, .lock_fd = -1, .out = stdout };
	struct run_opts o = *opts;
	struct vw_config *cfg = NULL;
	char err[PATH_MAX + 512];
	int ret, code = 0;

	if (o.config) {
		cfg = config_load(o.config, err, sizeof(err));
		if (!cfg) {
			log_warnx("config: %s", err);
			return EXIT_USAGE;
		}
		host_merge_config(&o, cfg);
		if (o.max_delay_ms < o.settle_ms) {
			log_warnx("config: max_delay_ms must not be shorter than settle_ms");
			config_free(cfg);
			return EXIT_USAGE;
		}
	}
	/* cfg stays alive to the end: o's strings may point into it */
	ret = daemon_projects_load(&d, &o, cfg);
	if (ret) {
		projects_free(&d.projects);
		config_free(cfg);
		return EXIT_USAGE;
	}
	if (host_require_root_and_btf(o.backend) || host_take_lock(&d, o.run_dir)) {
		projects_free(&d.projects);
		config_free(cfg);
		if (d.lock_fd >= 0)
			close(d.lock_fd);
		return EXIT_SETUP;
	}
	ret = run_setup(&d, &o);
	if (ret) {
		if (ret != -EINVAL && ret != -EPERM)
			log_warnx("setup: %s", errstr(ret));
		code = EXIT_SETUP;
		goto out;
	}
	ret = host_drop_caps(&d);
	if (ret) {
		code = EXIT_SETUP;
		goto out;
	}
	d.opts = &o;
	d.started_ns = now_ns(CLOCK_MONOTONIC);
	statedir_mark_running(&d, true);
	/* loading parsed the kernel's BTF (megabytes, freed): give the heap back */
	malloc_trim(0);
	json_out_ready(d.out, backend_name(d.backend), &d.projects, getpid());
	daemon_write_metrics(&d, true);
	for (size_t i = 0; i < d.projects.n; i++)	/* catch-up of what changed while down */
		if (d.projects.v[i].rescan_reason)
			rescan_announce(&d, &d.projects.v[i], d.projects.v[i].rescan_reason);
	daemon_flush(&d);
	host_notify("READY=1");
	while (!loop_stopped(d.loop)) {
		ret = loop_turn(&d);
		if (ret) {
			log_warnx("loop: %s", strerror(-ret));
			code = EXIT_SETUP;
			break;
		}
	}
	host_notify("STOPPING=1");
out:
	run_teardown(&d);
	config_free(cfg);
	return code;
}
