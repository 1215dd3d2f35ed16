/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * changes.h: each project's change log, for clients that ask "what changed
 * since I last looked". Every settled line gets a cursor ("<epoch>.<seq>":
 * the log's random epoch, the line's number) and is kept, in order, in
 * <state_dir>/<name>-<hash>.changes, bounded (the oldest half goes when it
 * is full). A cursor stays valid across restarts while the log holds what
 * came after it; one older than the log, or from another log, is stale.
 */
#ifndef VW_CHANGES_H
#define VW_CHANGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/project.h"

#define VW_CURSOR_MAX 48
#define VW_CHANGES_MB_DEFAULT 16

struct vw_changes;

/* @dir NULL: kept in memory only, for the daemon's lifetime (bounded the same way). */
struct vw_changes *changes_new(const char *dir, uint64_t max_bytes);
void changes_free(struct vw_changes *c);	/* NULL is a no-op */
/*
 * The daemon did not stop cleanly (it crashed, or was killed): lines told
 * since the last sync may be missing from the logs and their numbers given
 * again. Every log read from now on starts a new epoch, so a cursor from
 * before is answered with a full listing ("fresh"), never a gap.
 */
void changes_renew(struct vw_changes *c);

/* The cursor the next line of @p gets (it goes into the line itself). */
void changes_next(struct vw_changes *c, const struct vw_project *p, char cursor[VW_CURSOR_MAX]);

/*
 * Keep the settled line @line (a JSON object, no newline) of @p under the
 * number changes_next() gave. Returns 0 or -errno (a log that cannot be
 * written is said once; cursors of it are stale from then on).
 */
int changes_add(struct vw_changes *c, const struct vw_project *p, const char *line, size_t len);

/*
 * Is @cursor a cursor as changes_next() writes them ("<16 hex>.<seq>")? Then
 * its parts into @epoch and @seq (either may be NULL). Whether a log still
 * covers it is changes_since()'s to say.
 */
bool changes_cursor_parse(const char *cursor, uint64_t *epoch, uint64_t *seq);

/* The cursor after the last line of @p (what "now" is). */
void changes_cursor(struct vw_changes *c, const struct vw_project *p, char cursor[VW_CURSOR_MAX]);

/*
 * Call @fn with every line of @p after @cursor, in order (the JSON text,
 * without newline). Returns 0, or -ESTALE when the log cannot say (the
 * cursor is older than the log, from another log, or malformed), or -errno.
 */
typedef int (*changes_fn)(void *ctx, const char *line, size_t len);
int changes_since(struct vw_changes *c, const struct vw_project *p, const char *cursor,
		  changes_fn fn, void *ctx);

/* Write the lines added since the last call (once a batch, before its lines go out). */
void changes_flush(struct vw_changes *c);
/* @p was removed: its log is written out and closed (the file stays for a later add). */
void changes_forget(struct vw_changes *c, const struct vw_project *p);

/* Periodic: the logs written since the last call go to disk (fdatasync); one kept in memory
 * because its file could not be opened goes to the file if it opens now. */
void changes_sync(struct vw_changes *c);

#endif
