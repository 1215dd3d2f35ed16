/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * source.h: the backend interface. A source is what yields vw_events: the BPF
 * attach sets (bpf.c: loader.c's programs, the ring buffer, decoder.c) or
 * fanotify (fanotify.c). Each implements struct vw_source_ops, is registered
 * once in source.c, and the daemon calls only these operations; what a
 * backend cannot do is a NULL operation, never a test of which one it is.
 */
#ifndef VW_SOURCE_H
#define VW_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/record.h"
#include "store/project.h"

enum vw_backend {
	VW_BACKEND_AUTO = 0,
	VW_BACKEND_FENTRY,
	VW_BACKEND_TRACEPOINT,
	VW_BACKEND_FANOTIFY,	/* no BPF: src/source/fanotify.c; the loader never loads it */
};

const char *backend_name(enum vw_backend b);
int backend_parse(const char *s, enum vw_backend *out);

struct vw_source_opts {
	enum vw_backend backend;	/* AUTO: fentry, then tracepoint, then fanotify */
	struct vw_projects *projects;	/* registered at start; borrowed, outlives the source */
	event_fn fn;			/* called for each change read, with @ctx */
	void *ctx;
	const char *pin_dir;		/* BPF: where maps and programs are pinned; NULL: not */
	uint32_t ringbuf_bytes;		/* BPF: 0: default */
	uint64_t coalesce_ns;		/* BPF: kernel-side window for hot files; 0: off */
	uint64_t wakeup_ns;		/* BPF: the ring's wake-up window */
	/* VFSWATCH_TEST_HOOKS (tests only): provoke the reader's interleavings */
	bool reread_first;		/* a wake-up's records taken by a re-read before its own read */
	bool no_reread;			/* no re-read is ever planned: a reader bug, for the check */
	uint32_t read_delay_us;		/* each read of the kernel queue waits up to this (random) */
};

/* Why a source is read (the BPF source plans its re-reads by it). */
enum vw_read {
	VW_READ_WOKEN,		/* its descriptor polled readable */
	VW_READ_DUE,		/* the re-read it planned (read_due()) is due */
	VW_READ_DRAIN,		/* what it holds is wanted now: before a batch is decided, at stop */
	VW_READ_CATCH_UP,	/* stalled() found the reader behind: read as if woken */
	VW_READ_SYNC,		/* a query's sync point: to the end, past a record being written */
};

/* Counters of what a source lost or could not use; never decreasing. */
struct vw_source_counters {
	uint64_t lost;		/* changes dropped because the kernel's queue was full */
	uint64_t unresolved;	/* changes whose path could not be resolved */
	uint64_t bad;		/* records that failed their checks */
	uint64_t orphans;	/* changes whose outcome never came (take_orphans() takes them) */
	uint64_t sent, read;	/* records the kernel sent (has_sent) and read (has_read) so far */
	bool has_sent, has_read;
	uint64_t stalls;	/* times the reader was found behind (stalled()) */
	bool has_kernel;	/* kernel[] holds the programs' own counters */
	uint64_t kernel[VW_STAT_MAX];
};

typedef void (*lost_fn)(void *ctx, uint32_t project, uint64_t lost);
typedef void (*orphan_fn)(void *ctx, uint32_t project);

struct vw_source;

struct vw_source_ops {
	const char *name;	/* in log lines */
	/* Set up with every project of o->projects registered; NULL with @err on failure. */
	struct vw_source *(*start)(const struct vw_source_opts *o, char *err, size_t errlen);
	/* No more records are made (the hooks detached); what was made can still be read. */
	void (*detach)(struct vw_source *s);
	void (*stop)(struct vw_source *s);	/* frees; NULL is a no-op */
	int (*fd)(const struct vw_source *s);	/* polled for reads */
	/* Read what is queued, calling o->fn per change. Records read, or -errno (logged). */
	int (*read)(struct vw_source *s, enum vw_read why);
	/*
	 * What was read is about to be settled (after a read, before the batch
	 * is looked at): a change from now on is news even where the source
	 * would fold it into an earlier record. May be NULL: it folds nothing.
	 */
	void (*sync_mark)(struct vw_source *s, uint32_t project);
	/* When it must be read again though its descriptor may not wake (0: not). May be NULL. */
	uint64_t (*read_due)(const struct vw_source *s);
	/* Register a project added at run time. 0 or -errno (a message in @err, may be empty). */
	int (*add_project)(struct vw_source *s, const struct vw_project *p, char *err,
			   size_t errlen);
	/* @p (marked gone) goes; @t holds what stays. May be NULL: nothing is registered per root. */
	int (*remove_project)(struct vw_source *s, const struct vw_project *p,
			      const struct vw_projects *t);
	/* @p's root is gone: entries keyed by its inode go. May be NULL. */
	int (*root_lost)(struct vw_source *s, const struct vw_project *p);
	/*
	 * Keep what happens below the directory (@kdev, @ino) in the kernel
	 * (@igen: its i_generation, or NULL), and undo it: both or neither.
	 * NULL: the source cannot; ignored paths are then dropped in userspace.
	 */
	int (*exclude)(struct vw_source *s, uint32_t kdev, uint64_t ino, const uint32_t *igen);
	int (*unexclude)(struct vw_source *s, uint32_t kdev, uint64_t ino);
	/* Fill @c. 0, or -errno when the kernel's counters could not be read (the rest is filled). */
	int (*counters)(const struct vw_source *s, struct vw_source_counters *c);
	/*
	 * The projects whose changes were lost since the last call, through @fn.
	 * Returns how many were named; 0: not known, every project. May be NULL.
	 */
	int (*take_lost)(struct vw_source *s, lost_fn fn, void *ctx);
	/* The projects of the orphans counted (VW_PROJECT_NONE: every one). May be NULL. */
	uint64_t (*take_orphans)(struct vw_source *s, orphan_fn fn, void *ctx);
	/*
	 * The reader's liveness, asked every housekeeping tick (@tick_ns apart
	 * at most): has it fallen behind with no read owed? *@behind says how
	 * many records were behind (0: not known); the caller then reads it
	 * (VW_READ_CATCH_UP). See liveness.h.
	 */
	bool (*stalled)(struct vw_source *s, uint64_t tick_ns, uint64_t *behind);
	/* Records sent that the reader has not taken yet (the tick looks again soon). May be NULL. */
	bool (*unread)(const struct vw_source *s);
	/* The capabilities it still needs once set up, added to @keep (VW_CAP() bits). */
	uint64_t (*caps)(const struct vw_source *s, uint64_t keep);
	/* Which build of its programs runs, and why (NULL: it has none). */
	bool (*build)(const struct vw_source *s, const char **because);
};

/* One running source; the fields are the implementation's to fill at start. */
struct vw_source {
	const struct vw_source_ops *ops;
	enum vw_backend backend;	/* which one runs */
	const char *lost_reason;	/* the overflow line's reason for counters.lost */
	/*
	 * Names a path when its event is read, after later changes (fanotify):
	 * the order of events does not say what is there (debounce_presence()).
	 */
	bool names_late;
	/* Learns its losses only by reading (fanotify): counters looked at after each read. */
	bool losses_in_read;
	/* Sees a root's removal only by looking (fanotify): the idle tick comes sooner. */
	bool polls_roots;
};

/* Test hook (o->read_delay_us): before a read of a kernel queue, wait a random while. */
void source_read_delay(const struct vw_source_opts *o);

extern const struct vw_source_ops vw_source_bpf;
extern const struct vw_source_ops vw_source_fanotify;

/*
 * Start the source o->backend names, or for AUTO the first that works of
 * fentry, tracepoint (when the kernel has BTF: @have_btf) and fanotify.
 * NULL when none does (said in the log).
 */
struct vw_source *source_start(const struct vw_source_opts *o, bool have_btf,
			       const char *btf_path);

#endif
