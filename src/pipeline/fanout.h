/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * fanout.h: where a settled change goes. The data path is
 *   ringbuf.c (read) -> events.c (route to projects) -> debounce.c +
 *   reconcile.c (settle) -> fanout.c (consumers)
 * A settled change is numbered (its cursor in the project's change log) and
 * written as one JSON line once; then each consumer, in the order added, gets
 * the change and that same line: the snapshot (state), the change log, the
 * analyzers, the subscribers, stdout.
 */
#ifndef VW_FANOUT_H
#define VW_FANOUT_H

#include <stddef.h>

#include "store/changes.h"
#include "pipeline/debounce.h"

#define VW_CONSUMERS_MAX 8

/* @line: the JSON text (NUL-terminated, no newline), @len its length. */
typedef void (*consumer_fn)(void *ctx, const struct vw_settled *s, const char *line,
			    size_t len);

struct vw_fanout;

/* @changes numbers the lines (NULL: no cursors). */
struct vw_fanout *fanout_new(struct vw_changes *changes);
void fanout_free(struct vw_fanout *f);	/* NULL is a no-op */

/* Add a consumer (called in the order added). 0, or -ENOSPC. */
int fanout_add(struct vw_fanout *f, const char *name, consumer_fn fn, void *ctx);

/* One settled change to every consumer. 0, or -ENOMEM (the line could not be made). */
int fanout_settled(struct vw_fanout *f, struct vw_settled *s);

/* A consumer: the change log (add it with @changes as ctx). */
void fanout_journal(void *changes, const struct vw_settled *s, const char *line, size_t len);

#endif
