// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// test_debounce.c: each merge rule, batching and deadlines, with the clock passed in.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <linux/types.h>

#include "pipeline/debounce.h"

#define MSEC 1000000ull
#define MAXOUT 16

static struct vw_project proj = { .id = 1, .name = "p", .root = "/p" };
static const char *existing[8];	/* what the index says existed */

struct got {
	int n;
	char line[MAXOUT][128];
	uint64_t batch[MAXOUT];
};

static void collect(void *ctx, const struct vw_settled *s)
{
	struct got *g = ctx;

	if (g->n < MAXOUT) {
		snprintf(g->line[g->n], sizeof(g->line[0]), "%s %s%s%s w%u", kind_name(s->kind), s->path,
			 s->old_path ? " <- " : "", s->old_path ? s->old_path : "", s->writes);
		g->batch[g->n] = s->batch;
	}
	g->n++;
}

static bool existed(void *ctx, const struct vw_project *p, const char *path)
{
	for (int i = 0; i < 8 && existing[i]; i++)
		if (strcmp(existing[i], path) == 0)
			return true;
	return false;
}

static struct vw_debounce *mk(void)
{
	struct vw_debounce_opts o = {
		.settle_ns = 50 * MSEC,
		.max_delay_ns = 1000 * MSEC,
		.max_hold_ns = 5000 * MSEC,
		.batch_max = 1000,
		.existed = existed,
	};

	memset(existing, 0, sizeof(existing));
	return debounce_new(&o);
}

static void add(struct vw_debounce *d, uint64_t t, const char *event, const char *path,
		const char *old)
{
	static struct vw_event ev = { .pid = 1, .tgid = 1 };
	struct vw_out o = { .project = &proj, .kind = kind_parse(event), .path = path, .old_path = old,
			    .type = "file", .ev = &ev };

	assert_int_equal(debounce_add(d, &o, t), 0);
}

static struct got settle(struct vw_debounce *d, uint64_t t)
{
	struct got g = {};

	debounce_flush(d, t, false, collect, &g);
	return g;
}

static void create_then_writes_is_one_create(void **state)
{
	struct vw_debounce *d = mk();
	struct got g;

	add(d, 0, "create", "a", NULL);
	add(d, 1 * MSEC, "modify", "a", NULL);
	add(d, 2 * MSEC, "modify", "a", NULL);
	g = settle(d, 51 * MSEC);	/* not quiet long enough yet */
	assert_int_equal(g.n, 0);
	g = settle(d, 52 * MSEC);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.line[0], "create a w2");
	debounce_free(d);
}

static void writes_merge_into_one_modify_with_a_count(void **state)
{
	struct vw_debounce *d = mk();
	struct got g;

	for (int i = 0; i < 5; i++)
		add(d, i * MSEC, "modify", "m", NULL);
	g = settle(d, 100 * MSEC);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.line[0], "modify m w5");
	debounce_free(d);
}

static void create_then_delete_is_nothing(void **state)
{
	struct vw_debounce *d = mk();
	struct got g;

	add(d, 0, "create", "tmp", NULL);
	add(d, 0, "modify", "tmp", NULL);
	add(d, 0, "delete", "tmp", NULL);
	g = settle(d, 100 * MSEC);
	assert_int_equal(g.n, 0);
	assert_int_equal(debounce_pending(d), 0);
	debounce_free(d);
}

static void delete_then_create_is_modify(void **state)
{
	struct vw_debounce *d = mk();
	struct got g;

	add(d, 0, "delete", "x", NULL);
	add(d, 0, "create", "x", NULL);
	g = settle(d, 100 * MSEC);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.line[0], "modify x w0");
	debounce_free(d);
}

static void rename_chain_collapses(void **state)
{
	struct vw_debounce *d = mk();
	struct got g;

	add(d, 0, "rename", "b", "a");
	add(d, 0, "rename", "c", "b");
	g = settle(d, 100 * MSEC);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.line[0], "rename c <- a w0");
	debounce_free(d);
}

static void atomic_save_is_one_modify_of_the_target(void **state)
{
	struct vw_debounce *d = mk();
	struct got g;

	existing[0] = "doc.txt";
	add(d, 0, "create", ".doc.txt.swp", NULL);
	add(d, 0, "modify", ".doc.txt.swp", NULL);
	add(d, 0, "rename", "doc.txt", ".doc.txt.swp");
	g = settle(d, 100 * MSEC);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.line[0], "modify doc.txt w1");
	debounce_free(d);
}

static void temp_renamed_to_a_new_name_is_a_create(void **state)
{
	struct vw_debounce *d = mk();
	struct got g;

	add(d, 0, "create", "part", NULL);
	add(d, 0, "rename", "final", "part");
	g = settle(d, 100 * MSEC);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.line[0], "create final w0");
	debounce_free(d);
}

static void vim_backup_dance_is_one_modify(void **state)
{
	struct vw_debounce *d = mk();
	struct got g;

	existing[0] = "f.c";
	add(d, 0, "create", "4913", NULL);	/* vim's writability probe */
	add(d, 0, "delete", "4913", NULL);
	add(d, 0, "rename", "f.c~", "f.c");	/* keep the original as backup */
	add(d, 0, "create", "f.c", NULL);
	add(d, 0, "modify", "f.c", NULL);
	add(d, 0, "delete", "f.c~", NULL);
	g = settle(d, 100 * MSEC);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.line[0], "modify f.c w1");
	debounce_free(d);
}

static void moved_then_deleted_is_a_delete_of_the_original(void **state)
{
	struct vw_debounce *d = mk();
	struct got g;

	add(d, 0, "rename", "b", "a");
	add(d, 0, "delete", "b", NULL);
	g = settle(d, 100 * MSEC);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.line[0], "delete a w0");
	debounce_free(d);
}

static void busy_project_flushes_at_max_delay_in_one_batch(void **state)
{
	struct vw_debounce *d = mk();
	struct got g;
	uint64_t t;

	for (t = 0; t < 1200 * MSEC; t += 10 * MSEC) {
		add(d, t, "modify", "hot", NULL);
		add(d, t, "modify", "other", NULL);
		g = settle(d, t);
		if (g.n)
			break;
	}
	assert_true(t >= 1000 * MSEC && t < 1020 * MSEC);
	assert_int_equal(g.n, 2);
	assert_true(g.batch[0] == g.batch[1] && g.batch[0] != 0);
	debounce_free(d);
}

/* A steady trickle into one file does not hold back a file changed once elsewhere. */
static void quiet_file_settles_while_another_is_rewritten(void **state)
{
	struct vw_debounce *d = mk();
	struct got g, quiet = {};
	uint64_t t, hot_at = 0;

	add(d, 0, "modify", "hot", NULL);
	for (t = 10 * MSEC; t <= 1500 * MSEC; t += 10 * MSEC) {
		if (t == 300 * MSEC)
			add(d, t, "modify", "quiet", NULL);
		if (t < 1400 * MSEC)
			add(d, t, "modify", "hot", NULL);
		g = settle(d, t);
		for (int i = 0; i < g.n; i++) {
			if (strcmp(g.line[i], "modify quiet w1") == 0)
				quiet = g;
			else if (strcmp(g.line[i], "modify hot w101") == 0)
				hot_at = t;
		}
		if (quiet.n && quiet.n != 1)
			break;
	}
	/* quiet: its own settle time after its write, alone; hot: at the longest delay */
	assert_int_equal(quiet.n, 1);
	assert_true(hot_at == 1000 * MSEC);
	debounce_free(d);
}

/* Many new paths (a checkout) keep one batch open; each is quiet itself meanwhile. */
static void new_paths_keep_one_batch(void **state)
{
	struct vw_debounce *d = mk();
	struct got g, all = {};
	char name[16];
	uint64_t t;

	for (t = 0; t < 200 * MSEC; t += 20 * MSEC) {
		snprintf(name, sizeof(name), "f%llu", (unsigned long long)(t / MSEC));
		add(d, t, "create", name, NULL);
		assert_int_equal(settle(d, t).n, 0);
	}
	assert_int_equal(settle(d, 220 * MSEC).n, 0);	/* 40 ms after the last new path */
	all = settle(d, 230 * MSEC);
	assert_int_equal(all.n, 10);
	assert_true(all.batch[0] == all.batch[9]);
	g = settle(d, 2000 * MSEC);
	assert_int_equal(g.n, 0);
	debounce_free(d);
}

/* A busy file below a directory that changed goes with the directory's batch. */
static void busy_file_goes_with_its_directory(void **state)
{
	struct vw_debounce *d = mk();
	struct got g;

	add(d, 0, "modify", "dir/f", NULL);
	add(d, 10 * MSEC, "attrib", "dir", NULL);
	add(d, 40 * MSEC, "modify", "dir/f", NULL);
	g = settle(d, 60 * MSEC);
	assert_int_equal(g.n, 1);	/* rules mode reports data changes: dir/f, with dir */
	assert_string_equal(g.line[0], "modify dir/f w2");
	debounce_free(d);
}

static void deadline_is_the_earliest_pending_batch(void **state)
{
	struct vw_debounce *d = mk();
	struct got g = {};

	assert_true(debounce_deadline(d) == 0);
	add(d, 10 * MSEC, "modify", "x", NULL);
	assert_true(debounce_deadline(d) == 60 * MSEC);
	add(d, 20 * MSEC, "modify", "x", NULL);
	/* a rewrite moves no deadline: at 60 x is found still busy and is due 50 ms after it */
	assert_true(debounce_deadline(d) == 60 * MSEC);
	assert_int_equal(settle(d, 60 * MSEC).n, 0);
	assert_true(debounce_deadline(d) == 70 * MSEC);
	debounce_flush(d, 0, true, collect, &g);
	assert_int_equal(g.n, 1);
	assert_true(debounce_deadline(d) == 0);
	debounce_free(d);
}

/* --- reconcile mode: a batch the file system was ahead of is looked at again ------- */

struct fake_rc {
	int calls, again;	/* answer AGAIN to the first @again calls that may defer */
	bool last_may_defer;
	size_t last_n;
	char paths[8][32];
	bool now[8];
	bool unjudged[8];
};

static struct fake_rc frc;

static size_t fake_reconcile(void *ctx, const struct vw_project *p, const struct vw_dirty *v,
			     size_t n, uint64_t batch, bool may_defer, settled_fn fn, void *fctx)
{
	frc.calls++;
	frc.last_may_defer = may_defer;
	frc.last_n = n;
	for (size_t i = 0; i < n && i < 8; i++) {
		snprintf(frc.paths[i], sizeof(frc.paths[i]), "%s", v[i].path);
		frc.now[i] = v[i].now;
		frc.unjudged[i] = v[i].unjudged;
	}
	if (may_defer && frc.again-- > 0)
		return VW_RECONCILE_AGAIN;
	return n;
}

static struct vw_debounce *mk_rc(void)
{
	struct vw_debounce_opts o = {
		.settle_ns = 50 * MSEC,
		.max_delay_ns = 1000 * MSEC,
		.batch_max = 1000,
		.existed = existed,
		.reconcile = fake_reconcile,
	};

	memset(existing, 0, sizeof(existing));
	memset(&frc, 0, sizeof(frc));
	return debounce_new(&o);
}

static void batch_looked_at_again_keeps_its_paths_and_takes_new_events(void **state)
{
	struct vw_debounce *d = mk_rc();
	size_t n;

	frc.again = 1;
	add(d, 0, "create", "x", NULL);
	n = debounce_flush(d, 60 * MSEC, false, collect, NULL);
	assert_int_equal(n, 0);
	assert_int_equal(frc.calls, 1);
	assert_true(debounce_deadline(d) == 70 * MSEC);	/* 10 ms later */
	add(d, 65 * MSEC, "rename", "y", "x");	/* the event that was on its way */
	assert_int_equal(debounce_flush(d, 70 * MSEC, false, collect, NULL), 0);	/* settling */
	n = debounce_flush(d, 120 * MSEC, false, collect, NULL);
	assert_int_equal(n, 2);
	assert_int_equal(frc.calls, 2);
	assert_int_equal(frc.last_n, 2);
	assert_string_equal(frc.paths[0], "x");
	assert_false(frc.now[0]);	/* renamed away */
	assert_string_equal(frc.paths[1], "y");
	assert_true(frc.now[1]);
	assert_true(debounce_deadline(d) == 0);
	debounce_free(d);
}

static void batch_is_reported_after_fifty_looks_whatever_they_find(void **state)
{
	struct vw_debounce *d = mk_rc();
	uint64_t t = 60 * MSEC;

	frc.again = 1000;
	add(d, 0, "modify", "busy", NULL);
	while (debounce_deadline(d) && frc.calls < 100) {
		debounce_flush(d, t, false, collect, NULL);
		t += 10 * MSEC;
	}
	assert_int_equal(frc.calls, 51);
	assert_false(frc.last_may_defer);
	debounce_free(d);
}

static const char *judged[4];	/* what the picture can say (the start-up crawl found it) */

static bool judges(void *ctx, const struct vw_project *p, const char *path)
{
	for (int i = 0; i < 4 && judged[i]; i++)
		if (strcmp(judged[i], path) == 0)
			return true;
	return false;
}

/*
 * While the start-up crawl has not found a path, its first kernel change says
 * whether it was there at ready: a delete, a write, a rename away (unjudged:
 * it was), not a create; nor a path below a directory the batch made.
 */
static void a_first_change_the_picture_cannot_judge_says_the_path_was_there(void **state)
{
	struct vw_debounce_opts o = {
		.settle_ns = 50 * MSEC, .max_delay_ns = 1000 * MSEC, .batch_max = 1000,
		.existed = existed, .judges = judges, .reconcile = fake_reconcile,
	};
	struct vw_debounce *d;

	memset(existing, 0, sizeof(existing));
	memset(&frc, 0, sizeof(frc));
	memset(judged, 0, sizeof(judged));
	judged[0] = "known";
	d = debounce_new(&o);
	add(d, 0, "delete", "gone", NULL);		/* not crawled yet: it was there */
	add(d, 0, "modify", "known", NULL);		/* the picture says */
	add(d, 0, "create", "new", NULL);		/* a create: it was not */
	add(d, 0, "create", "dir", NULL);
	add(d, 0, "delete", "dir/f", NULL);		/* below a directory the batch made */
	debounce_flush(d, 60 * MSEC, false, collect, NULL);
	assert_int_equal(frc.last_n, 5);
	for (int i = 0; i < 5; i++)
		assert_int_equal(frc.unjudged[i], strcmp(frc.paths[i], "gone") == 0);
	debounce_free(d);
}

static void presence_not_trusted_says_nothing_is_there(void **state)
{
	struct vw_debounce *d = mk_rc();

	debounce_presence(d, false);
	add(d, 0, "create", "x", NULL);
	assert_int_equal(debounce_flush(d, 60 * MSEC, false, collect, NULL), 1);
	assert_false(frc.now[0]);
	debounce_free(d);
}

/* An exchange moves what is pending below either name, whatever type its event gives. */
static void exchange_moves_pending_children_whatever_its_type(void **state)
{
	struct vw_debounce *d = mk_rc();
	static struct vw_event ev = { .pid = 1, .tgid = 1 };
	struct vw_out o = { .project = &proj, .kind = VW_KIND_RENAME, .path = "y", .old_path = "b",
			    .type = "file", .ev = &ev, .exchange = true };
	bool moved = false, left = false;

	add(d, 0, "create", "y/a", NULL);
	assert_int_equal(debounce_add(d, &o, 1 * MSEC), 0);
	debounce_flush(d, 100 * MSEC, false, collect, NULL);
	for (size_t i = 0; i < frc.last_n && i < 4; i++) {
		moved |= strcmp(frc.paths[i], "b/a") == 0;
		left |= strcmp(frc.paths[i], "y/a") == 0;
	}
	assert_true(moved);
	assert_false(left);
	debounce_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(create_then_writes_is_one_create),
		cmocka_unit_test(writes_merge_into_one_modify_with_a_count),
		cmocka_unit_test(create_then_delete_is_nothing),
		cmocka_unit_test(delete_then_create_is_modify),
		cmocka_unit_test(rename_chain_collapses),
		cmocka_unit_test(atomic_save_is_one_modify_of_the_target),
		cmocka_unit_test(temp_renamed_to_a_new_name_is_a_create),
		cmocka_unit_test(vim_backup_dance_is_one_modify),
		cmocka_unit_test(moved_then_deleted_is_a_delete_of_the_original),
		cmocka_unit_test(busy_project_flushes_at_max_delay_in_one_batch),
		cmocka_unit_test(quiet_file_settles_while_another_is_rewritten),
		cmocka_unit_test(new_paths_keep_one_batch),
		cmocka_unit_test(busy_file_goes_with_its_directory),
		cmocka_unit_test(exchange_moves_pending_children_whatever_its_type),
		cmocka_unit_test(deadline_is_the_earliest_pending_batch),
		cmocka_unit_test(batch_looked_at_again_keeps_its_paths_and_takes_new_events),
		cmocka_unit_test(batch_is_reported_after_fifty_looks_whatever_they_find),
		cmocka_unit_test(presence_not_trusted_says_nothing_is_there),
		cmocka_unit_test(a_first_change_the_picture_cannot_judge_says_the_path_was_there),
	};

	return cmocka_run_group_tests_name("debounce", tests, NULL, NULL);
}
