/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * state.h: what the stream has told about each project's tree (path, inode,
 * size, times, mode), kept in memory and, with a state directory, on disk as a
 * checksummed snapshot plus a journal of every change told since it was
 * written. Rescans (at start, after lost records) compare a crawl with it.
 */
#ifndef VW_STATE_H
#define VW_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "core/record.h"
#include "store/pathtable.h"
#include "store/project.h"

#define VW_STATE_DIR_DEFAULT "/var/lib/vfswatch"
#define VW_STATE_EDAMAGED EBADMSG	/* state_load(): the snapshot failed its checks */

struct vw_state;



/* @dir NULL: in memory only (nothing is loaded or saved). */
struct vw_state *state_new(const char *dir);
void state_free(struct vw_state *s);	/* NULL is a no-op */
/* @p was removed: what it told is written out, its journal closed (the files stay). */
void state_forget(struct vw_state *s, const struct vw_project *p);

/*
 * Start the picture of @p with a crawl. With a state dir, its snapshot and
 * journal become what the crawl is compared with. Returns 1 (loaded), 0 (none
 * on disk: a first start), -VW_STATE_EDAMAGED (failed its checks: set aside as
 * <file>.damaged) or -errno.
 */
int state_load(struct vw_state *s, const struct vw_project *p);

/* Start a rescan of @p: what was told becomes what the crawl is compared with. */
void state_begin_rescan(struct vw_state *s, const struct vw_project *p);
bool state_rescanning(struct vw_state *s, const struct vw_project *p);

/*
 * The crawl of a rescan found @st at (p, rel): a difference from what was
 * told is reported through @fn at once (streamed). @direct: @fn tells it (a
 * line), so the picture takes it now; otherwise @fn hands it on to a batch
 * whose line will, and the picture keeps what was told until then.
 * NULL @st: the path has changes pending that will be told by their own line;
 * it is kept as it was for now.
 */
void state_crawled(struct vw_state *s, const struct vw_project *p, const char *rel,
		   const struct stat *st, bool direct, rescan_fn fn, void *ctx);

/*
 * The crawl of @p is over: what it did not find is reported deleted (one
 * change for a directory and all below it). Returns the changes reported.
 */
size_t state_end_rescan(struct vw_state *s, const struct vw_project *p, bool direct,
			rescan_fn fn, void *ctx);

/* A line told what is at (p, rel) now. */
void state_put_said(struct vw_state *s, const struct vw_project *p, const char *rel,
		    const struct stat *st);
/* A line told (p, rel) exists, without a stat to go with it (gone again since). */
void state_put_unknown(struct vw_state *s, const struct vw_project *p, const char *rel,
		       bool is_dir);
/* What is known of (p, rel): the tree as the stream has described it. */
bool state_lookup(struct vw_state *s, const struct vw_project *p, const char *rel,
		  struct vw_state_entry *out);
/* Call @fn for every path of @p's current picture (no order); stop when it returns false. */
typedef bool (*state_each_fn)(void *ctx, const char *rel, const struct vw_state_entry *e);
void state_each(struct vw_state *s, const struct vw_project *p, state_each_fn fn, void *ctx);

/*
 * Can the picture of @p say whether a path was there? False only while a crawl
 * fills it with nothing to compare with (a first start): then what the events
 * say stands. During a rescan the picture from before it answers: a path a
 * crawl found but no line told is news, whatever the index holds.
 */
bool state_complete(struct vw_state *s, const struct vw_project *p);
/*
 * Can the picture say whether (p, rel) was there at `ready`? False only while
 * the start-up crawl runs, for a path it has not found and no line has told
 * (not reached yet, or gone before it got there): a change read now is then
 * the first word on it, and what the change implies (a delete, a write, a
 * rename away: it was there) is the truth.
 */
bool state_judges(struct vw_state *s, const struct vw_project *p, const char *rel);
/* Is the running crawl of @p the start-up one? */
bool state_starting(struct vw_state *s, const struct vw_project *p);
/* A line told (p, from) and everything below it moved to (p, to), replacing what was there. */
void state_move_tree(struct vw_state *s, const struct vw_project *p, const char *from,
		     const char *to);
/* Forget all of @p: its root is a new directory, described from nothing. */
void state_reset(struct vw_state *s, const struct vw_project *p);
/* A line told (p, rel) and everything below it are gone. */
void state_drop_tree(struct vw_state *s, const struct vw_project *p, const char *rel);

/* The lines written so far are out: what they told goes to the journal (and snapshots due). */
void state_commit(struct vw_state *s);
/* Write every complete project's snapshot atomically and start its journal afresh. */
int state_save(struct vw_state *s);
/* Periodic: journals to disk (fsync), and a broken state dir tried again. */
void state_tick(struct vw_state *s, uint64_t now_ns);
/* Does state_tick() have work soon (a journal to sync, a broken state dir to try again)? */
bool state_tick_due(const struct vw_state *s);
/*
 * Why changes made while the daemon is down would not be caught up for some
 * project (the state dir, or the first project whose files fail), or NULL.
 */
const char *state_error(const struct vw_state *s);
/* Why @p's catch-up after a restart is off (its files, or the dir), or NULL. */
const char *state_project_error(struct vw_state *s, const struct vw_project *p);
size_t state_count(struct vw_state *s, const struct vw_project *p);

#endif
