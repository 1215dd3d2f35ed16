/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * daemon_priv.h: the running daemon's state, shared by its parts: daemon.c
 * (set-up, the loop and its handlers, teardown), verbs.c (what the control
 * and client sockets are asked; status and metrics) and consumers.c (where
 * fanout.c hands each settled change).
 */
#ifndef VW_DAEMON_PRIV_H
#define VW_DAEMON_PRIV_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include "serve/control.h"
#include "daemon/daemon.h"
#include "source/liveness.h"
#include "store/project.h"

#define MS (1000ull * 1000)
#define VW_VERSION "0.1.0"

struct cJSON;
struct ring_buffer;

/* A directory excluded in the kernel (vw_roots), and the project that ignores it. */
struct vw_excl {
	uint32_t dev;
	uint64_t ino;
	uint32_t project;
};

struct daemon {
	struct vw_projects projects;
	struct vw_loader *loader;	/* BPF backends */
	struct vw_fan *fan;		/* or the fanotify backend */
	struct vw_decoder *dec;
	struct ring_buffer *rb;
	struct vw_loop *loop;
	struct vw_debounce *deb;	/* NULL in --raw mode */
	struct vw_index *idx;		/* paths known to exist, for the debouncer */
	struct vw_fps *fps;		/* --skip-identical: content fingerprints */
	struct vw_state *state;		/* snapshots: rescans at start and after losses */
	struct vw_runner *runner;	/* analyzer jobs (settled mode) */
	bool crawling;
	bool unclean;		/* the last daemon on this state dir did not stop cleanly */
	uint64_t collect_due_ns;	/* unclaimed state files are looked for then (0: never) */
	uint64_t crawl_end_ns;	/* a start-up crawl's end is settled then (crawl_progress()) */
	int sfd, tfd, dfd;		/* signals, housekeeping tick, debounce deadline */
	uint64_t tick_at;	/* when the tick is armed to fire (CLOCK_MONOTONIC ns), 0: fired */
	/*
	 * --raw: the last path a data or metadata line named in this read of
	 * the ring buffer. More lines for it in the same read look at it once,
	 * at the end of the read (one lstat per file per wake-up, not per write).
	 */
	struct {
		const struct vw_project *p;
		uint64_t round;
		bool owed;
		char path[PATH_MAX];
	} told_last;
	uint64_t round;
	uint64_t recheck_ns;	/* read the ring again then (records sent without a wake-up) */
	uint64_t wakeup_ns;	/* the kernel's wake-up window: VW_RB_WAKEUP_NS unless a test widens it */
	struct vw_liveness live;	/* the reader's liveness, checked at every tick */
	struct vw_excl *excl;	/* the kernel's exclusions, by project */
	size_t nexcl;
	uint64_t fan_reads;	/* reads of the fanotify queue */
	uint64_t ring_wakes;	/* reads of the ring a wake-up caused */
	struct {	/* VFSWATCH_TEST_HOOKS (tests only): provoke the reader's interleavings */
		bool reread_first;	/* a wake-up's records taken by a re-read before its own read */
		bool no_reread;		/* no re-read is ever planned: a reader bug, for the check */
		uint32_t read_delay_us;	/* each read of the kernel queue waits up to this (random) */
	} hooks;
	bool activity;		/* events came since the last tick: look for losses soon */
	bool trim_owed;		/* a large batch was settled: return its memory once flushed */
	uint64_t metrics_due;	/* the metrics file is written again then */
	bool metrics_said;	/* a failure to write it was logged */
	FILE *out;
	uint64_t lost_seen;	/* ring-buffer-full count already reported */
	bool stats_warned;	/* said once that the kernel counters cannot be read */
	uint64_t bad_seen;
	uint64_t unresolved_seen;
	uint64_t fan_lost_seen;
	uint64_t fan_unresolved_seen;
	bool out_broken;
	struct vw_control *ctl;
	struct vw_clients *clients;	/* client.sock: changes since a cursor, subscriptions */
	struct vw_changes *changes;	/* settled mode: each project's numbered lines */
	struct vw_fanout *fanout;	/* settled mode: where each settled change goes */
	const struct run_opts *opts;
	uint64_t started_ns;
	int lock_fd;
	char lock_path[PATH_MAX];
	enum vw_backend backend;
};

/* daemon.c */
/* A line told what is at (p, path) now: the picture, the index, the raw dedupe. */
void daemon_told(struct daemon *d, const struct vw_project *p, enum vw_kind kind,
		 const char *path, const char *old_path, const struct stat *st, const char *type,
		 bool keep_gone);
/* A project just added to the table: to the backend and the crawl. */
int daemon_project_start(struct daemon *d, struct vw_project *p, char *err, size_t errlen);
/* The project's ignore rules: the defaults, its .gitignore, @extra patterns. */
int daemon_project_ignores(struct vw_project *p, bool defaults, bool gitignore,
			   const char *const *extra, size_t nextra);
/* Its pending changes flushed, then gone (kernel entries no other project needs removed). */
int daemon_project_stop(struct daemon *d, struct vw_project *p);

/* verbs.c */
extern const struct ctl_verb daemon_ctl_verbs[];	/* ctl.sock */
struct vw_creds;
int daemon_user_add(void *ctx, const struct vw_creds *who, const struct cJSON *req,
		    struct cJSON *reply, char *err, size_t errlen);	/* client.sock */
int daemon_user_remove(void *ctx, const struct vw_creds *who, const struct cJSON *req,
		       struct cJSON *reply, char *err, size_t errlen);
/* The metrics file, when one is asked for: every VW_METRICS_EVERY_MS (@now: at once). */
void daemon_write_metrics(struct daemon *d, bool now);

/* consumers.c */
/* Register the consumers of settled changes with d->fanout, in their order. */
int daemon_consumers(struct daemon *d);

#endif
