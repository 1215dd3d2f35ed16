// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// fanout.c: one settled change, numbered and written once, to each consumer (see fanout.h).
#define _GNU_SOURCE	/* open_memstream */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "pipeline/fanout.h"
#include "pipeline/json_out.h"
#include "core/log.h"

struct consumer {
	const char *name;
	consumer_fn fn;
	void *ctx;
};

struct vw_fanout {
	struct vw_changes *changes;
	FILE *line;		/* a line is written here first... */
	char *buf;		/* ...and read from here */
	size_t len;
	struct consumer c[VW_CONSUMERS_MAX];
	size_t n;
};

struct vw_fanout *fanout_new(struct vw_changes *changes)
{
	struct vw_fanout *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->changes = changes;
	f->line = open_memstream(&f->buf, &f->len);
	if (!f->line) {
		free(f);
		return NULL;
	}
	return f;
}

void fanout_free(struct vw_fanout *f)
{
	if (!f)
		return;
	fclose(f->line);
	free(f->buf);
	free(f);
}

int fanout_add(struct vw_fanout *f, const char *name, consumer_fn fn, void *ctx)
{
	if (f->n == VW_CONSUMERS_MAX)
		return -ENOSPC;
	f->c[f->n++] = (struct consumer){ name, fn, ctx };
	return 0;
}

int fanout_settled(struct vw_fanout *f, struct vw_settled *s)
{
	char cursor[VW_CURSOR_MAX];
	size_t len;

	if (f->changes) {
		changes_next(f->changes, s->project, cursor);
		s->cursor = cursor;
	}
	rewind(f->line);
	if (json_out_settled(f->line, s) < 0 || fflush(f->line) == EOF || f->len < 2) {
		log_warnx("output: out of memory; the line about %s is lost", s->path);
		return -ENOMEM;
	}
	len = f->len - 1;
	f->buf[len] = 0;	/* the newline: each consumer ends the line its own way */
	for (size_t i = 0; i < f->n; i++)
		f->c[i].fn(f->c[i].ctx, s, f->buf, len);
	s->cursor = NULL;
	return 0;
}

void fanout_journal(void *changes, const struct vw_settled *s, const char *line, size_t len)
{
	if (changes_add(changes, s->project, line, len) < 0)
		log_debug("changes: %s: a line kept in the stream only", s->project->name);
}
