/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * fuzz_route.h: events as the daemon takes them from a backend: routed to the
 * projects they fall in, each change written as a raw line; every line must
 * then be one JSON object in valid UTF-8.
 */
#ifndef VW_FUZZ_ROUTE_H
#define VW_FUZZ_ROUTE_H

#include "fuzz.h"
#include "pipeline/route.h"
#include "pipeline/json_out.h"
#include "store/project.h"
#include "source/decoder.h"

struct fuzz_route {
	struct vw_projects *t;
	FILE *out;
	char *buf;
	size_t len;
};

static void fuzz_route_out(void *ctx, const struct vw_out *o)
{
	struct fuzz_route *r = ctx;

	FUZZ_CHECK(o->path && o->project);
	FUZZ_CHECK(json_out_change(r->out, o) == 0);
}

/* An event_fn: @ctx is the struct fuzz_route. */
static void fuzz_route_event(void *ctx, const struct vw_event *ev)
{
	struct fuzz_route *r = ctx;

	FUZZ_CHECK(!ev->path || ev->path[ev->path_len] == 0);
	FUZZ_CHECK(!ev->old_path || ev->old_path[ev->old_path_len] == 0);
	route_event(r->t, ev, fuzz_route_out, r);
}

static inline void fuzz_route_begin(struct fuzz_route *r, struct vw_projects *t)
{
	r->t = t;
	FUZZ_CHECK((r->out = open_memstream(&r->buf, &r->len)));
}

static inline void fuzz_route_end(struct fuzz_route *r)
{
	FUZZ_CHECK(fclose(r->out) == 0);
	fuzz_json_lines(r->buf, r->len);
	free(r->buf);
}

#endif
