/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * record.h: the records of the data path, in pipeline order: what each stage
 * hands to the next. A kind of change is an enum vw_kind from the kernel's op
 * to the last consumer; it becomes text only where a line is written
 * (kind_name()). docs/architecture.md walks one record through every stage.
 *
 *   source (loader + decoder, fanotify) -- vw_event --> route
 *   store/state (a rescan's crawl)      -- vw_rescan_change --> daemon, as a vw_out
 *   route                               -- vw_out --> debounce (or, --raw, json_out)
 *   debounce (one batch of a project)   -- vw_dirty[] --> reconcile
 *   reconcile                           -- vw_settled --> fanout --> consumers
 */
#ifndef VW_RECORD_H
#define VW_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <linux/types.h>
#include "vw_events.h"

struct vw_project;

/* What happened to a path, as the stream says it. */
enum vw_kind {
	VW_KIND_NONE,		/* no change (a net change that cancelled out) */
	VW_KIND_CREATE,
	VW_KIND_MODIFY,
	VW_KIND_TRUNCATE,
	VW_KIND_ATTRIB,
	VW_KIND_DELETE,
	VW_KIND_RENAME,
	VW_KIND_ROOT_GONE,	/* the root directory itself went away (vw_out only) */
	VW_KIND_ROOT_BACK,	/* ...or a directory is at its path again */
	VW_KINDS
};

/* The word on the stream ("create" ...), NULL for VW_KIND_NONE. */
const char *kind_name(enum vw_kind k);
/* The kind a word names (the user's filters and config), VW_KIND_NONE when none. */
enum vw_kind kind_parse(const char *word);
/* A write of data or metadata (modify, truncate, attrib): the name stays, what it holds changes. */
static inline bool kind_is_write(enum vw_kind k)
{
	return k == VW_KIND_MODIFY || k == VW_KIND_TRUNCATE || k == VW_KIND_ATTRIB;
}

/* "file" "dir" "symlink" "other" of an enum vw_ftype, NULL when unknown. */
const char *ftype_name(unsigned int ftype);
/* enum vw_ftype of an lstat() mode. */
unsigned int ftype_of_mode(unsigned int mode);

/* --- 1. source -> route: one change the kernel reported ------------------------------- */

/*
 * Userspace-only bits of vw_event.flags (the kernel's VW_EVF_* use the low
 * byte): attribution a backend could not fill, left out of the JSON line.
 */
#define VW_EVU_NO_TID		0x1000
#define VW_EVU_NO_UID		0x2000
#define VW_EVU_NO_COMM		0x4000
#define VW_EVU_NO_CGROUP	0x8000
#define VW_EVU_NO_PID		0x0800	/* a rescan: no writer is known */

/* A decoded change; the strings point into the sample and live only during the callback. */
struct vw_event {
	uint64_t ts_ns;		/* CLOCK_BOOTTIME */
	uint64_t cgroup_id;
	uint64_t ino;
	uint64_t anchor_ino, old_anchor_ino;	/* cut paths: where the kept names start */
	uint32_t dev, pid, tgid, uid;
	uint32_t pgid;		/* 0 when the backend does not know it */
	uint32_t project, old_project;
	uint16_t op, ftype, flags;	/* enum vw_op, enum vw_ftype, VW_EVF_* | VW_EVU_* */
	char comm[VW_COMM_LEN + 1];
	const char *path;	/* NULL when project is NONE */
	size_t path_len;	/* bytes, no NUL */
	const char *old_path;	/* renames: NULL when old_project is NONE */
	size_t old_path_len;
};

typedef void (*event_fn)(void *ctx, const struct vw_event *ev);

/* Attribution of a change no process is known for (rescans, a root described anew). */
extern const struct vw_event vw_no_writer;

/* --- 1b. a rescan -> the daemon: a difference a crawl found ---------------------------- */

/* One difference found by a rescan (state_crawled()); borrowed strings. */
struct vw_rescan_change {
	const struct vw_project *project;
	enum vw_kind kind;	/* create modify attrib delete */
	const char *path;
	uint32_t mode;		/* the file type (st_mode) of what is there, or was */
};

typedef void (*rescan_fn)(void *ctx, const struct vw_rescan_change *c);

/* --- 2. route -> debounce: one change as one project sees it --------------------------- */

/* One change as a user of one project sees it; borrowed pointers, valid during the callback. */
struct vw_out {
	const struct vw_project *project;
	enum vw_kind kind;	/* any but NONE; ROOT_GONE / ROOT_BACK: the root directory itself */
	const char *type;	/* "file" "dir" "symlink" "other", or NULL when unknown */
	const char *path;	/* relative to the project root, NUL-terminated */
	const char *old_path;	/* renames only */
	bool truncated;		/* the kernel had to cut the path */
	bool exchange;		/* renames: RENAME_EXCHANGE, both names swapped contents */
	bool type_late;		/* type read from the name after the fact: a later change may show */
	const char *source;	/* "kernel" (NULL), "fanotify", or "rescan" (a crawl found it) */
	const char *link_from;	/* a hard link's create: the name it was made from (this project) */
	bool ignored;		/* a directory created under an ignore rule: not a change to report */
	const struct vw_event *ev;	/* attribution */
};

typedef void (*out_fn)(void *ctx, const struct vw_out *o);

/* --- 3. debounce -> reconcile: one path a batch touched -------------------------------- */

/*
 * What the events said of one path of a batch, as handed to a reconcile_fn.
 * The events name the paths; what to report is decided by comparing the file
 * system now with what was reported before (reconcile.c).
 */
enum { VW_LEFT_NONE, VW_LEFT_RENAME, VW_LEFT_DELETE };

struct vw_dirty {
	const char *path;
	bool hint_before;	/* its first change in the batch implies it existed before */
	bool created;		/* its first change in the batch made it */
	bool modified;		/* data written or truncated (content moved here by a rename too) */
	bool truncated_only;	/* only truncations */
	bool attrib;		/* metadata changed */
	bool moved_here;	/* a rename put what is here now here (inode numbers are reused) */
	uint8_t left;		/* how what was here when the batch began left (VW_LEFT_*) */
	bool now;		/* the latest event left something here */
	enum vw_kind written;	/* the last modify/truncate/attrib through this name (or NONE)... */
	uint64_t written_ino;	/* ...to this inode: its other names changed too */
	const char *via;	/* renamed here after a change by name: the name it went through */
	const char *link_of;	/* made in the batch as a hard link of this name */
	bool rescan;		/* only a rescan reported it (its lines say "source":"rescan") */
	bool unjudged;		/* its first kernel change, which implies it was there, came before
				 * the picture could say (start-up crawl): it was there */
	bool cut;		/* the kernel flagged the path as cut */
	uint32_t writes;
	const char *type;	/* as the last event said; may be NULL */
	const struct vw_event *ev;	/* the last writer */
};

/* --- 4. reconcile -> fanout -> consumers: one settled change --------------------------- */

/* One settled change; borrowed strings, valid during the callback. */
struct vw_settled {
	const struct vw_project *project;
	enum vw_kind kind;	/* create modify delete rename truncate attrib */
	const char *type;	/* or NULL */
	const char *path;
	const char *old_path;	/* renames */
	uint32_t writes;	/* data writes merged into this change */
	uint64_t batch;		/* id shared by every change flushed together */
	uint32_t batch_size;
	bool truncated;
	const struct vw_event *ev;	/* the last writer's attribution */
	const char *source;	/* NULL ("kernel") or "rescan" */
	const char *by;		/* the analyzer whose process made the change, or NULL */
	const struct stat *st;	/* what the line describes (lstat when decided), or NULL */
	const char *cursor;	/* its place in the project's change log, or NULL */
};

typedef void (*settled_fn)(void *ctx, const struct vw_settled *s);

#endif
