// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// test_decoder.c: sample validation and pending/result pairing, fed hand-built records.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <linux/types.h>

#include "source/decoder.h"

struct seen {
	int n;
	struct vw_event last;
	char path[256], old[256];
};

static void collect(void *ctx, const struct vw_event *ev)
{
	struct seen *s = ctx;

	s->n++;
	s->last = *ev;
	snprintf(s->path, sizeof(s->path), "%.*s", (int)ev->path_len, ev->path ? ev->path : "");
	snprintf(s->old, sizeof(s->old), "%.*s", (int)ev->old_path_len,
		 ev->old_path ? ev->old_path : "");
}

/* Build a change record with path (and old path) in @buf; returns its size. */
static size_t make_change(struct vw_change *c, uint16_t op, uint32_t pid, const char *path,
			  const char *old, uint16_t flags)
{
	size_t pl = path ? strlen(path) + 1 : 0, ol = old ? strlen(old) + 1 : 0;

	memset(c, 0, sizeof(*c));
	c->hdr.type = VW_EV_CHANGE;
	c->hdr.flags = flags;
	c->op = op;
	c->pid = pid;
	c->tgid = pid;
	c->project = path ? 1 : 0;
	c->old_project = old ? 1 : 0;
	c->path_len = pl;
	c->old_path_len = ol;
	memcpy(c->comm, "writer", 7);
	if (path)
		memcpy(c->data, path, pl);
	if (old)
		memcpy(c->data + pl, old, ol);
	c->hdr.size = offsetof(struct vw_change, data) + pl + ol;
	return c->hdr.size;
}

static void valid_change_is_delivered_with_its_paths(void **state)
{
	struct seen s = {};
	struct vw_decoder *d = decoder_new(collect, &s);
	struct vw_change c;
	size_t n = make_change(&c, VW_OP_RENAME, 7, "new/name", "old/name", 0);

	assert_int_equal(decoder_sample(d, &c, n), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.path, "new/name");
	assert_string_equal(s.old, "old/name");
	assert_string_equal(s.last.comm, "writer");
	assert_int_equal(decoder_bad_samples(d), 0);
	decoder_free(d);
}

/* A late writer's wake-up record: counted as read, neither a change nor bad. */
static void wake_record_is_read_and_nothing_else(void **state)
{
	struct seen s = {};
	struct vw_decoder *d = decoder_new(collect, &s);
	struct { struct vw_ev_hdr h; char more[8]; } w = { .h = { .type = VW_EV_WAKE,
								  .size = sizeof(w.h) } };

	assert_int_equal(decoder_sample(d, &w, sizeof(w.h)), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(decoder_bad_samples(d), 0);
	w.h.size = sizeof(w);		/* a wake record with a body is malformed */
	assert_int_equal(decoder_sample(d, &w, sizeof(w)), 0);
	assert_int_equal(decoder_bad_samples(d), 1);
	assert_int_equal(decoder_samples(d), 2);
	decoder_free(d);
}

static void malformed_samples_are_counted_and_skipped(void **state)
{
	struct seen s = {};
	struct vw_decoder *d = decoder_new(collect, &s);
	struct vw_change c;
	size_t n = make_change(&c, VW_OP_MODIFY, 7, "p", NULL, 0);

	assert_int_equal(decoder_sample(d, &c, 4), 0);		/* shorter than a header */
	assert_int_equal(decoder_sample(d, &c, n + 1), 0);	/* size disagrees with hdr */
	c.data[1] = 'x';					/* path not NUL-terminated */
	assert_int_equal(decoder_sample(d, &c, n), 0);
	make_change(&c, 99, 7, "p", NULL, 0);			/* unknown op */
	assert_int_equal(decoder_sample(d, &c, n), 0);
	make_change(&c, VW_OP_MODIFY, 7, "p", NULL, 0);
	c.hdr.type = 77;					/* unknown record type */
	assert_int_equal(decoder_sample(d, &c, n), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(decoder_bad_samples(d), 5);
	decoder_free(d);
}

static void pending_change_waits_for_a_successful_result(void **state)
{
	struct seen s = {};
	struct vw_decoder *d = decoder_new(collect, &s);
	struct vw_result r = { .hdr = { .type = VW_EV_RESULT, .size = sizeof(r) }, .pid = 9 };
	struct vw_change c;
	size_t n = make_change(&c, VW_OP_DELETE, 9, "victim", NULL, VW_EVF_PENDING);

	decoder_sample(d, &c, n);
	assert_int_equal(s.n, 0);
	r.ret = -2;	/* ENOENT: the unlink failed */
	decoder_sample(d, &r, sizeof(r));
	assert_int_equal(s.n, 0);

	decoder_sample(d, &c, n);
	r.pid = 10;	/* another thread's result does not complete it */
	r.ret = 0;
	decoder_sample(d, &r, sizeof(r));
	assert_int_equal(s.n, 0);
	r.pid = 9;
	decoder_sample(d, &r, sizeof(r));
	assert_int_equal(s.n, 1);
	assert_string_equal(s.path, "victim");
	decoder_sample(d, &r, sizeof(r));	/* a second result finds nothing */
	assert_int_equal(s.n, 1);
	decoder_free(d);
}

static void newer_pending_of_a_thread_replaces_the_older(void **state)
{
	struct seen s = {};
	struct vw_decoder *d = decoder_new(collect, &s);
	struct vw_result r = { .hdr = { .type = VW_EV_RESULT, .size = sizeof(r) }, .pid = 3 };
	struct vw_change c;

	decoder_sample(d, &c, make_change(&c, VW_OP_DELETE, 3, "first", NULL, VW_EVF_PENDING));
	decoder_sample(d, &c, make_change(&c, VW_OP_MKDIR, 3, "second", NULL, VW_EVF_PENDING));
	decoder_sample(d, &r, sizeof(r));
	assert_int_equal(s.n, 1);
	assert_string_equal(s.path, "second");
	decoder_free(d);
}

struct orphans {
	int calls;
	uint32_t projects[4];
};

static void note_orphan(void *ctx, uint32_t project)
{
	struct orphans *o = ctx;

	if (o->calls < 4)
		o->projects[o->calls] = project;
	o->calls++;
}

/* A pending change replaced before its result: not known to have happened, its project told. */
static void a_pending_change_left_without_result_is_an_orphan_of_its_projects(void **state)
{
	struct seen s = {};
	struct vw_decoder *d = decoder_new(collect, &s);
	struct vw_change c;
	struct orphans o = {};
	size_t n;

	assert_int_equal(decoder_take_orphans(d, note_orphan, &o), 0);
	assert_int_equal(o.calls, 0);
	n = make_change(&c, VW_OP_RMDIR, 3, "gone", NULL, VW_EVF_PENDING);
	c.project = 7;
	decoder_sample(d, &c, n);
	n = make_change(&c, VW_OP_RENAME, 3, "to", "from", VW_EVF_PENDING);
	c.project = 7;
	c.old_project = 8;
	decoder_sample(d, &c, n);	/* the rmdir got no result */
	decoder_sample(d, &c, make_change(&c, VW_OP_DELETE, 3, "x", NULL, VW_EVF_PENDING));
	assert_int_equal(decoder_orphans(d), 2);
	assert_int_equal(decoder_take_orphans(d, note_orphan, &o), 2);
	assert_int_equal(o.calls, 2);	/* each project once */
	assert_int_equal(o.projects[0], 7);
	assert_int_equal(o.projects[1], 8);
	assert_int_equal(s.n, 0);
	assert_int_equal(decoder_orphans(d), 0);	/* taken */
	decoder_free(d);
}

/* Orphans in more projects than are kept by name: every project. */
static void orphans_in_too_many_projects_mean_every_project(void **state)
{
	struct seen s = {};
	struct vw_decoder *d = decoder_new(collect, &s);
	struct vw_change c;
	struct orphans o = {};

	for (uint32_t i = 1; i <= 40; i++) {
		size_t n = make_change(&c, VW_OP_DELETE, 3, "f", NULL, VW_EVF_PENDING);

		c.project = i;
		decoder_sample(d, &c, n);
	}
	assert_int_equal(decoder_take_orphans(d, note_orphan, &o), 39);
	assert_int_equal(o.calls, 1);
	assert_int_equal(o.projects[0], VW_PROJECT_NONE);
	decoder_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(valid_change_is_delivered_with_its_paths),
		cmocka_unit_test(malformed_samples_are_counted_and_skipped),
		cmocka_unit_test(wake_record_is_read_and_nothing_else),
		cmocka_unit_test(pending_change_waits_for_a_successful_result),
		cmocka_unit_test(newer_pending_of_a_thread_replaces_the_older),
		cmocka_unit_test(a_pending_change_left_without_result_is_an_orphan_of_its_projects),
		cmocka_unit_test(orphans_in_too_many_projects_mean_every_project),
	};

	return cmocka_run_group_tests_name("ringbuf", tests, NULL, NULL);
}
