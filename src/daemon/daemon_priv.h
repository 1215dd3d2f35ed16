/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * daemon_priv.h: the running daemon's state (struct daemon), shared by the
 * files of src/daemon/, and what each of them offers the others, one section
 * per file: daemon.c (set-up, the loop and the handlers that pass records
 * from stage to stage, teardown) calls into the rest; they call back only
 * through the few daemon.c functions declared in its section.
 */
#ifndef VW_DAEMON_PRIV_H
#define VW_DAEMON_PRIV_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include "serve/control.h"
#include "core/record.h"
#include "source/source.h"
#include "store/project.h"

#define MS (1000ull * 1000)
#define VW_VERSION "0.1.0"

struct cJSON;
struct run_opts;	/* daemon.h */
struct vw_config;

/* A directory excluded in the kernel (vw_roots), and the project that ignores it. */
struct vw_excl {
	uint32_t dev;
	uint64_t ino;
	uint32_t project;
};

struct daemon {
	struct vw_projects projects;
	struct vw_source *src;		/* the backend (source.h), NULL until set up */
	struct vw_source_opts src_opts;	/* what it was started with (test hooks included) */
	struct vw_loop *loop;
	struct vw_debounce *deb;	/* NULL in --raw mode */
	struct vw_index *idx;		/* paths known to exist, for the debouncer */
	struct vw_fps *fps;		/* --skip-identical: content fingerprints */
	struct vw_state *state;		/* snapshots: rescans at start and after losses */
	struct vw_runner *runner;	/* analyzer jobs (settled mode) */
	bool crawling;
	bool unclean;		/* the last daemon on this state dir did not stop cleanly */
	uint64_t collect_due_ns;	/* unclaimed state files are looked for then (0: never) */
	uint64_t crawl_end_ns;	/* a start-up crawl's end is settled then (rescan_progress()) */
	int sfd, tfd, dfd;		/* signals, housekeeping tick, debounce deadline */
	uint64_t tick_at;	/* when the tick is armed to fire (CLOCK_MONOTONIC ns), 0: fired */
	/*
	 * --raw: the last path a data or metadata line named in this read of
	 * the kernel queue. More lines for it in the same read look at it once,
	 * at the end of the read (one lstat per file per wake-up, not per write).
	 */
	struct {
		const struct vw_project *p;
		uint64_t round;
		bool owed;
		char path[PATH_MAX];
	} told_last;
	uint64_t round;		/* reads of the source so far */
	struct vw_excl *excl;	/* the kernel's exclusions, by project */
	size_t nexcl;
	uint64_t syncs, sync_ns;	/* queries' sync points, and the time they took */
	bool activity;		/* events came since the last tick: look for losses soon */
	bool trim_owed;		/* a large batch was settled: return its memory once flushed */
	uint64_t metrics_due;	/* the metrics file is written again then */
	bool metrics_said;	/* a failure to write it was logged */
	FILE *out;
	/* the source's counters already reported (overflow lines) */
	uint64_t lost_seen, bad_seen, unresolved_seen;
	bool stats_warned;	/* said once that the kernel counters cannot be read */
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

/* daemon.c: the handlers the other files pass records back through */
/* A settled change, to the consumers (fanout); a settled_fn. */
void daemon_settled(void *ctx, const struct vw_settled *s);
/* A change as a project sees it, to its stage (debounce, or --raw a line); an out_fn. */
void daemon_out(void *ctx, const struct vw_out *o);
/* What was said is out: the change log, subscribers, stdout; timers re-armed. Returns 0. */
int daemon_flush(struct daemon *d);
/* A query's sync point: @p brought up to this moment (a clients_sync_fn). */
void daemon_sync(void *ctx, const struct vw_project *p);

/* exclusions.c: directories a project ignores, kept in the kernel (source ops exclude) */
/* Do the live projects @p and @q share a tree (one holds the other)? */
bool excl_trees_overlap(const struct vw_project *p, const struct vw_project *q);
/* A directory @rel that @p ignores (an index_crawl callback, and new ignored dirs). */
void excl_dir(void *ctx, const struct vw_project *p, const char *rel);
/* A directory renamed: an exclusion it carried goes (it may hide nothing where it is now). */
void excl_moved(struct daemon *d, const struct vw_out *o);
/* @p's exclusions go: a project shares its tree now, or it is removed. */
void excl_drop_project(struct daemon *d, const struct vw_project *p);

/* roots.c: a project's root directory gone, or back */
/* Does the root path still name the directory pinned, itself? */
bool roots_intact(const struct vw_project *p);
/* At every tick: roots gone, and lost roots' paths holding something again. */
void roots_check(struct daemon *d);
/* The root of @p went away (@back false) or a directory is at its path again. */
void roots_changed(struct daemon *d, struct vw_project *p, bool back);

/* rescan.c: the picture of what was told, and rescans that compare a crawl with it */
/*
 * Keep the picture of what was told current with a line. @st is what the
 * line describes, or NULL: what is there is looked at now (just before the
 * line, so any change it does not cover is a change after it). A name gone
 * again is dropped (a settled line was decided against the tree) or, with
 * @keep_gone, kept as told (a raw line says it exists).
 */
void daemon_told(struct daemon *d, const struct vw_project *p, enum vw_kind kind,
		 const char *path, const char *old_path, const struct stat *st, const char *type,
		 bool keep_gone);
/* The last raw data line's path, when later lines for it were not looked at yet. */
void daemon_told_refresh(struct daemon *d);
/* --raw: a directory moved in from outside: what it holds, as create lines ("source":"scan"). */
void rescan_moved_in(struct daemon *d, const struct vw_out *o);
/* Each entry a crawl finds (an index_crawl callback). */
void rescan_crawl_file(void *ctx, const struct vw_project *p, const char *rel, int dirfd,
		       const char *name, bool is_dir);
/* A difference a rescan found: a rescan_fn. */
void rescan_change(void *ctx, const struct vw_rescan_change *c);
/* A rescan begins, for @reason; its start line. */
void rescan_announce(struct daemon *d, struct vw_project *p, const char *reason);
/* @p must be crawled again (changes lost, rules changed): now, or after the running one. */
void rescan_request(struct daemon *d, struct vw_project *p, const char *reason);
void rescan_request_all(struct daemon *d, const char *reason);
/* ...of @p and every project that holds it (VW_PROJECT_NONE or unknown: all). */
void rescan_enclosing(struct daemon *d, uint32_t id, const char *reason);
void rescan_lost_project(void *ctx, uint32_t id, uint64_t lost);	/* a lost_fn */
void rescan_orphan_project(void *ctx, uint32_t id);	/* an orphan_fn */
/* After a step of the crawl: progress of long rescans, and the ones that are over. */
void rescan_progress(struct daemon *d);
/* Rescans owed whose back-off is over. */
void rescan_owed_ones(struct daemon *d);
/* The picture of @p to start from: its snapshot and journal, or nothing (a first start). */
void rescan_load_state(struct daemon *d, struct vw_project *p, bool announce);

/* settle.c: the debouncer and what it asks (settled mode) */
/* Settled mode: the debouncer, the index, the picture, the change log, analyzers. */
int settle_setup(struct daemon *d, const struct run_opts *o);
/* Does a VCS hold @p's tree (.git/index.lock, .hg/wlock)? A batch waits at most VW_VCS_HOLD_MAX_MS. */
#define VW_VCS_HOLD_MAX_MS 30000
bool vcs_locked(void *ctx, const struct vw_project *p);
/* Keep the index of existing paths in step with a change. */
void settle_index_update(struct daemon *d, const struct vw_out *o);

/* projects.c: projects added, removed, reloaded */
/* The project's ignore rules: the defaults, its .gitignore, @extra patterns. */
int daemon_project_ignores(struct vw_project *p, bool defaults, bool gitignore,
			   const char *const *extra, size_t nextra);
/* Projects from the config file, then --watch; the current directory when neither names one. */
int daemon_projects_load(struct daemon *d, const struct run_opts *o, const struct vw_config *cfg);
/* A project just added to the table: to the backend and the crawl. */
int daemon_project_start(struct daemon *d, struct vw_project *p, char *err, size_t errlen);
/* Its pending changes flushed, then gone (kernel entries no other project needs removed). */
int daemon_project_stop(struct daemon *d, struct vw_project *p);
/* SIGHUP: the config read again, the difference applied in place. */
void daemon_reload(struct daemon *d);

/* statedir.c: the state directory and each project's files in it */
#define COLLECT_EVERY_NS (86400ull * 1000000000ull)	/* state files no project claims: looked for */
void statedir_prepare(struct daemon *d, const struct run_opts *o);
void statedir_collect(struct daemon *d, const struct run_opts *o);
void statedir_bind(const struct run_opts *o, struct vw_project *p);
void statedir_remove_project(struct daemon *d, const struct vw_project *p);
void statedir_mark_running(struct daemon *d, bool running);

/* host.c: what the host must offer, and what the daemon takes of it */
bool host_have_btf(void);
int host_require_root_and_btf(enum vw_backend b);
int host_take_lock(struct daemon *d, const char *run_dir);
void host_notify(const char *msg);	/* sd_notify */
void host_merge_config(struct run_opts *o, const struct vw_config *cfg);
int host_test_hooks(struct daemon *d);
int host_drop_caps(struct daemon *d);

/* verbs.c: what the control and client sockets are asked; status and metrics */
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
