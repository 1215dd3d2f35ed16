// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// bpf.c: the BPF source: loader.c's programs, their ring buffer read through decoder.c.
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "core/caps.h"
#include "core/log.h"
#include "core/util.h"
#include "source/decoder.h"
#include "source/liveness.h"
#include "source/loader.h"
#include "source/source.h"

struct bpf_source {
	struct vw_source s;	/* first: the daemon holds a pointer to it */
	struct vw_source_opts o;
	struct vw_loader *loader;
	struct vw_decoder *dec;
	struct ring_buffer *rb;
	uint64_t recheck_ns;	/* read the ring again then (records sent without a wake-up) */
	uint64_t wakes;		/* reads of the ring a wake-up caused */
	struct vw_liveness live;	/* the reader's liveness, checked at every tick */
};

static struct bpf_source *of(const struct vw_source *s)
{
	return (struct bpf_source *)s;
}

static void bpf_stop(struct vw_source *s)
{
	struct bpf_source *b = of(s);

	if (!b)
		return;
	ring_buffer__free(b->rb);
	decoder_free(b->dec);
	loader_free(b->loader);
	free(b);
}

static struct vw_source *bpf_start(const struct vw_source_opts *o, char *err, size_t errlen)
{
	struct vw_loader_opts lo = {
		.backend = o->backend,
		.pin_dir = o->pin_dir,
		.ringbuf_bytes = o->ringbuf_bytes,
		.coalesce_ns = o->coalesce_ns,
		.wakeup_ns = o->wakeup_ns,
	};
	struct bpf_source *b = calloc(1, sizeof(*b));
	int ret;

	if (!b) {
		snprintf(err, errlen, "%s", strerror(ENOMEM));
		return NULL;
	}
	b->s = (struct vw_source){ .ops = &vw_source_bpf, .lost_reason = "ringbuf_full" };
	b->o = *o;
	b->loader = loader_new(&lo, err, errlen);
	if (!b->loader)
		goto fail;
	b->s.backend = loader_backend(b->loader);
	for (size_t i = 0; i < o->projects->n; i++) {
		ret = loader_add_project(b->loader, &o->projects->v[i]);
		if (ret) {
			snprintf(err, errlen, "register %s: %s", o->projects->v[i].root, errstr(ret));
			goto fail;
		}
	}
	b->dec = decoder_new(o->fn, o->ctx);
	if (!b->dec) {
		snprintf(err, errlen, "%s", strerror(ENOMEM));
		goto fail;
	}
	b->rb = ring_buffer__new(loader_events_fd(b->loader), decoder_sample, b->dec, NULL);
	if (!b->rb) {
		snprintf(err, errlen, "ring buffer: %s", strerror(errno));
		goto fail;
	}
	return &b->s;
fail:
	bpf_stop(&b->s);
	return NULL;
}

static void bpf_detach(struct vw_source *s)
{
	loader_detach(of(s)->loader);
}

static int bpf_fd(const struct vw_source *s)
{
	return ring_buffer__epoll_fd(of(s)->rb);
}

/*
 * Read what the ring holds; @woken: a wake-up caused this read. Returns the
 * records read, or a negative error (logged).
 *
 * The invariant, with rb_flags() (bpf/common.bpf.h): no record stays in the
 * ring unless a read of it is owed, that is a wake-up not handled yet or a
 * planned re-read (recheck_ns). A record is sent either as the first of
 * its window, which may wake the reader (the kernel's adaptive rule), or within
 * one window after such a record, without a wake-up. The read a wake-up causes
 * comes after that record was committed, and it plans a re-read one window
 * later, found anything or not: by then the window's last record was sent.
 * When the first record woke no one, a read of the records in front of it was
 * owed, and that read finds it or sees it still being written, and plans a
 * re-read (tests/unit/test_liveness.c). A read that finds records, or that leaves
 * bytes in the ring behind it (a record still being written, or committed
 * after the read passed it), plans a re-read too. A read moves a planned
 * re-read later, never cancels it: a read that finds nothing because an
 * earlier re-read took its records cannot strand the records of the window
 * its wake-up opened (found by a burst of mkdirs: the old rule cancelled the
 * re-read when a read found nothing, and the kernel's adaptive rule then woke
 * no one again, the stranded record sitting in front of every later one).
 * The re-read itself drops the plan when it finds the ring empty. A writer
 * held up (preempted) between choosing its flags and committing its record
 * for longer than the re-read took to come finds its window over when it has
 * committed, and sends a header-only record that forces a wake-up
 * (rb_late_wake()). bpf_stalled() says so if the reader ever falls behind
 * anyway.
 */
static int consume(struct bpf_source *b, bool woken)
{
	int n;

	source_read_delay(&b->o);
	n = ring_buffer__consume(b->rb);
	if (n < 0)
		log_warnx("ringbuf: consume: %s", errstr(n));
	b->recheck_ns = liveness_reread_at(b->recheck_ns, now_ns(CLOCK_MONOTONIC), b->o.wakeup_ns,
					   woken, n, loader_ring_backlog(b->loader));
	if (b->o.no_reread)
		b->recheck_ns = 0;
	return n;
}

/*
 * Read to the end of the ring: a record another writer reserved and has not
 * committed yet stops a read in front of records committed behind it (a
 * query's own write among them). Read again while bytes are left, for at most
 * SYNC_WAIT_NS. Returns the records read.
 */
#define SYNC_WAIT_NS (5ull * 1000 * 1000)
static int consume_to_end(struct bpf_source *b)
{
	uint64_t until = now_ns(CLOCK_MONOTONIC) + SYNC_WAIT_NS;
	int n = consume(b, false), k;

	while (n >= 0 && loader_ring_backlog(b->loader) && now_ns(CLOCK_MONOTONIC) < until) {
		sched_yield();
		k = consume(b, false);
		n = k < 0 ? k : n + k;
	}
	return n;
}

static int bpf_read(struct vw_source *s, enum vw_read why)
{
	struct bpf_source *b = of(s);

	switch (why) {
	case VW_READ_WOKEN:
		b->wakes++;
		if (b->o.reread_first)	/* the race: a re-read takes what woke us */
			consume(b, false);
		return consume(b, true);
	case VW_READ_DUE:
		b->recheck_ns = 0;	/* the re-read plans the next one if it finds any */
		return consume(b, false);
	case VW_READ_CATCH_UP:
		return consume(b, true);
	case VW_READ_SYNC:
		return consume_to_end(b);
	default:
		return consume(b, false);
	}
}

static void bpf_sync_mark(struct vw_source *s, uint32_t project)
{
	int ret = loader_sync_mark(of(s)->loader, project, now_ns(CLOCK_MONOTONIC));

	if (ret)
		log_warnx("loader: the sync point could not be marked: %s", errstr(ret));
}

static uint64_t bpf_read_due(const struct vw_source *s)
{
	return of(s)->recheck_ns;
}

static int bpf_add_project(struct vw_source *s, const struct vw_project *p, char *err,
			   size_t errlen)
{
	return loader_add_project(of(s)->loader, p);
}

static int bpf_remove_project(struct vw_source *s, const struct vw_project *p,
			      const struct vw_projects *t)
{
	return loader_remove_project(of(s)->loader, p, t);
}

static int bpf_root_lost(struct vw_source *s, const struct vw_project *p)
{
	return loader_root_lost(of(s)->loader, p);
}

static int bpf_exclude(struct vw_source *s, uint32_t kdev, uint64_t ino, const uint32_t *igen)
{
	return loader_exclude(of(s)->loader, kdev, ino, igen);
}

static int bpf_unexclude(struct vw_source *s, uint32_t kdev, uint64_t ino)
{
	return loader_unexclude(of(s)->loader, kdev, ino);
}

static int bpf_counters(const struct vw_source *s, struct vw_source_counters *c)
{
	const struct bpf_source *b = of(s);
	int ret;

	*c = (struct vw_source_counters){
		.bad = decoder_bad_samples(b->dec),
		.orphans = decoder_orphans(b->dec),
		.read = decoder_samples(b->dec),
		.has_read = true,
		.stalls = b->live.stalls,
	};
	ret = loader_stats(b->loader, c->kernel);	/* one read of the per-CPU map */
	if (ret == 0) {
		c->has_kernel = c->has_sent = true;
		c->lost = c->kernel[VW_STAT_RINGBUF_FULL];
		c->unresolved = c->kernel[VW_STAT_UNRESOLVED];
		c->sent = c->kernel[VW_STAT_EMITTED];
	}
	return ret;
}

static int bpf_take_lost(struct vw_source *s, lost_fn fn, void *ctx)
{
	return loader_take_lost(of(s)->loader, fn, ctx);
}

static uint64_t bpf_take_orphans(struct vw_source *s, orphan_fn fn, void *ctx)
{
	return decoder_take_orphans(of(s)->dec, fn, ctx);
}

/* Is @fd readable now (a wake-up waiting to be handled)? */
static bool fd_readable(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN);
}

/*
 * Every record the kernel had sent by the previous tick has been read by now,
 * or a read of it is owed: a re-read planned and not overdue by a tick, or a
 * wake-up waiting that was not already waiting at the previous check with no
 * wake-up handled since (the check does not trust the mechanisms it audits).
 */
static bool bpf_stalled(struct vw_source *s, uint64_t tick_ns, uint64_t *behind)
{
	struct bpf_source *b = of(s);
	uint64_t st[VW_STAT_MAX], now = now_ns(CLOCK_MONOTONIC);
	bool readable, waiting, owed;

	*behind = 0;
	if (loader_stats(b->loader, st) != 0)
		return false;
	readable = fd_readable(ring_buffer__epoll_fd(b->rb));
	waiting = readable && !(b->live.readable_then && b->live.wakes_then == b->wakes);
	owed = (b->recheck_ns && now < b->recheck_ns + tick_ns) || waiting;
	b->live.readable_then = readable;
	b->live.wakes_then = b->wakes;
	*behind = liveness_ring_check(&b->live, st[VW_STAT_EMITTED], decoder_samples(b->dec), owed);
	return *behind > 0;
}

static bool bpf_unread(const struct vw_source *s)
{
	const struct bpf_source *b = of(s);

	/* records the kernel sent and the reader has not taken: the liveness check looks again */
	return decoder_samples(b->dec) < b->live.sent_then;
}

/*
 * Can the BPF maps still be read and written once @keep is all that is left?
 * Kernels before 5.19 with unprivileged BPF disabled (Debian's default) ask
 * for CAP_BPF on every bpf() command, map lookups on a descriptor already
 * held included; later ones only on creating maps and loading programs.
 * Tried in a child that drops to @keep, since a dropped capability cannot be
 * had back.
 */
static bool maps_work_without_cap_bpf(const struct bpf_source *b, uint64_t keep)
{
	char err[256];
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return false;
	if (pid == 0)
		_exit(caps_keep(keep, err, sizeof(err)) == 0 && loader_map_probe(b->loader) == 0 ? 0
											      : 1);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/*
 * The programs are loaded and attached by now: their maps and ring buffer
 * are used through descriptors, which needs no capability on current
 * kernels; where the kernel still asks for CAP_BPF there, that is kept.
 */
static uint64_t bpf_caps(const struct vw_source *s, uint64_t keep)
{
	if (geteuid() == 0 && !maps_work_without_cap_bpf(of(s), keep)) {
		log_info("capabilities: this kernel asks for CAP_BPF on map access: kept");
		keep |= VW_CAP(CAP_BPF);
	}
	return keep;
}

static bool bpf_build(const struct vw_source *s, const char **because)
{
	return loader_compat(of(s)->loader, because);
}

const struct vw_source_ops vw_source_bpf = {
	.name = "loader",
	.start = bpf_start,
	.detach = bpf_detach,
	.stop = bpf_stop,
	.fd = bpf_fd,
	.read = bpf_read,
	.sync_mark = bpf_sync_mark,
	.read_due = bpf_read_due,
	.add_project = bpf_add_project,
	.remove_project = bpf_remove_project,
	.root_lost = bpf_root_lost,
	.exclude = bpf_exclude,
	.unexclude = bpf_unexclude,
	.counters = bpf_counters,
	.take_lost = bpf_take_lost,
	.take_orphans = bpf_take_orphans,
	.stalled = bpf_stalled,
	.unread = bpf_unread,
	.caps = bpf_caps,
	.build = bpf_build,
};
