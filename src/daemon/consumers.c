// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// consumers.c: the consumers of settled changes, in the order fanout.c calls them.
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "serve/runner.h"
#include "store/changes.h"
#include "serve/clients.h"
#include "daemon/daemon.h"
#include "daemon/daemon_priv.h"
#include "pipeline/debounce.h"
#include "pipeline/fanout.h"
#include "store/index.h"
#include "source/loader.h"
#include "core/log.h"
#include "serve/metrics.h"
#include "store/project.h"
#include "store/state.h"
#include "core/util.h"

/* The picture of the tree: what the line says is there is there (before anybody reads it). */
static void to_snapshot(void *ctx, const struct vw_settled *s, const char *line, size_t len)
{
	(void)line, (void)len;
	daemon_told(ctx, s->project, s->kind, s->path, s->old_path, s->st, s->type, false);
}

static void to_analyzers(void *ctx, const struct vw_settled *s, const char *line, size_t len)
{
	struct daemon *d = ctx;

	(void)len;
	if (s->project->nanalyzers)
		runner_submit(d->runner, s, line);	/* the line as printed: batch stdin */
}

static void to_subscribers(void *ctx, const struct vw_settled *s, const char *line, size_t len)
{
	clients_settled(ctx, s->project, s->kind, s->path, s->old_path, line, len, s->cursor);
}

static void to_stdout(void *ctx, const struct vw_settled *s, const char *line, size_t len)
{
	struct daemon *d = ctx;

	(void)s;
	if (!d->out_broken && (fwrite(line, 1, len, d->out) != len || putc('\n', d->out) == EOF))
		d->out_broken = true;
}

int daemon_consumers(struct daemon *d)
{
	int ret = fanout_add(d->fanout, "snapshot", to_snapshot, d);

	if (!ret)
		ret = fanout_add(d->fanout, "journal", fanout_journal, d->changes);
	if (!ret)
		ret = fanout_add(d->fanout, "analyzers", to_analyzers, d);
	if (!ret && d->clients)
		ret = fanout_add(d->fanout, "subscribers", to_subscribers, d->clients);
	if (!ret)
		ret = fanout_add(d->fanout, "stdout", to_stdout, d);
	return ret;
}
