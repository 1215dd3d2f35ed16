// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// test_changes.c: change logs and cursors: in order, across a restart, trimmed, torn, stale.
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "store/changes.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/vw-unit-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static struct vw_project proj(uint32_t id, const char *name)
{
	struct vw_project p = { 0 };

	p.id = id;
	p.name = (char *)name;
	p.root = (char *)(id == 1 ? "/nowhere/one" : "/nowhere/two");
	return p;
}

struct got {
	char lines[64][64];
	size_t n;
};

static int collect(void *ctx, const char *line, size_t len)
{
	struct got *g = ctx;

	if (g->n < 64)
		snprintf(g->lines[g->n++], sizeof(g->lines[0]), "%.*s", (int)len, line);
	return 0;
}

/* Add line @i of @p: {"n":i}; returns its cursor. */
static void add(struct vw_changes *c, const struct vw_project *p, int i, char cur[VW_CURSOR_MAX])
{
	char line[64];
	int n = snprintf(line, sizeof(line), "{\"n\":%d}", i);

	changes_next(c, p, cur);
	assert_int_equal(changes_add(c, p, line, (size_t)n), 0);
}

static void lines_after_a_cursor_in_order(struct vw_changes *c, const struct vw_project *p)
{
	char c0[VW_CURSOR_MAX], c1[VW_CURSOR_MAX], c3[VW_CURSOR_MAX], now[VW_CURSOR_MAX];
	struct got g = { 0 };

	changes_cursor(c, p, c0);
	add(c, p, 1, c1);
	add(c, p, 2, now);
	add(c, p, 3, c3);
	changes_cursor(c, p, now);
	assert_string_equal(now, c3);	/* "now" is the last line's cursor */
	assert_int_equal(changes_since(c, p, c0, collect, &g), 0);
	assert_int_equal(g.n, 3);
	assert_string_equal(g.lines[0], "{\"n\":1}");
	assert_string_equal(g.lines[2], "{\"n\":3}");
	g.n = 0;
	assert_int_equal(changes_since(c, p, c1, collect, &g), 0);
	assert_int_equal(g.n, 2);
	assert_string_equal(g.lines[0], "{\"n\":2}");
	g.n = 0;
	assert_int_equal(changes_since(c, p, c3, collect, &g), 0);
	assert_int_equal(g.n, 0);
}

static void in_memory_log(void **unused)
{
	struct vw_changes *c = changes_new(NULL, 1 << 20);
	struct vw_project p = proj(1, "one");

	(void)unused;
	lines_after_a_cursor_in_order(c, &p);
	changes_free(c);
}

/* Cursors outlive the daemon: a new instance reads the log and goes on numbering. */
static void cursors_survive_a_restart(void **unused)
{
	struct vw_project p = proj(1, "one");
	struct vw_changes *c = changes_new(dir, 1 << 20);
	char c1[VW_CURSOR_MAX], c2[VW_CURSOR_MAX];
	struct got g = { 0 };

	(void)unused;
	lines_after_a_cursor_in_order(c, &p);
	changes_cursor(c, &p, c1);
	changes_free(c);
	c = changes_new(dir, 1 << 20);
	add(c, &p, 4, c2);
	assert_string_not_equal(c1, c2);
	assert_int_equal(changes_since(c, &p, c1, collect, &g), 0);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.lines[0], "{\"n\":4}");
	changes_free(c);
}

/* A crash mid-write leaves a torn last line: dropped, and the numbering goes on from the last whole one. */
static void torn_tail_is_dropped(void **unused)
{
	struct vw_project p = proj(1, "one");
	struct vw_changes *c = changes_new(dir, 1 << 20);
	char c1[VW_CURSOR_MAX], c2[VW_CURSOR_MAX];
	struct got g = { 0 };

	(void)unused;
	add(c, &p, 1, c1);
	changes_free(c);
	{
		char cmd[512];

		snprintf(cmd, sizeof(cmd), "for f in %s/one-*.changes; do printf '2 {\"n\":' >> \"$f\"; done",
			 dir);
		assert_int_equal(system(cmd), 0);
	}
	c = changes_new(dir, 1 << 20);
	add(c, &p, 2, c2);
	assert_int_equal(changes_since(c, &p, c1, collect, &g), 0);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.lines[0], "{\"n\":2}");
	changes_free(c);
}

/* Full: the oldest half goes; a cursor before what is kept is stale, one after still answers. */
static void trimmed_log_makes_old_cursors_stale(void **unused)
{
	struct vw_project p = proj(1, "one");
	struct vw_changes *c = changes_new(dir, 4096);
	char first[VW_CURSOR_MAX], mid[VW_CURSOR_MAX], cur[VW_CURSOR_MAX];
	struct got g = { 0 };

	(void)unused;
	changes_cursor(c, &p, first);
	for (int i = 1; i <= 1000; i++)
		add(c, &p, i, i == 990 ? mid : cur);
	assert_int_equal(changes_since(c, &p, first, collect, &g), -ESTALE);
	assert_int_equal(changes_since(c, &p, mid, collect, &g), 0);
	assert_int_equal(g.n, 10);
	assert_string_equal(g.lines[9], "{\"n\":1000}");
	changes_free(c);
}

/*
 * A query reads from the nearest line the log's index knows before its cursor:
 * every cursor of a long log, kept through trims, on disk and in memory, and
 * again after a restart (the index rebuilt from the file), gives exactly the
 * lines after it.
 */
static void every_cursor_answers_exactly_through_trims_and_restarts(void **unused)
{
	struct vw_project p = proj(1, "one");
	static char curs[3000][VW_CURSOR_MAX];

	(void)unused;
	for (int round = 0; round < 3; round++) {
		/* on disk (twice: the second reads the first's file back), then in memory */
		struct vw_changes *c = changes_new(round < 2 ? dir : NULL, 32 * 1024);
		int base = round == 1 ? 3000 : 0;

		for (int i = 1; i <= 3000; i++)
			add(c, &p, base + i, curs[i - 1]);
		for (int i = 2100; i < 3000; i += 37) {
			struct got g = { 0 };
			char want[64];

			/* the cursor of line i: the lines after it, the first 64 collected */
			assert_int_equal(changes_since(c, &p, curs[i - 1], collect, &g), 0);
			assert_int_equal(g.n, 3000 - i > 64 ? 64 : 3000 - i);
			snprintf(want, sizeof(want), "{\"n\":%d}", base + i + 1);
			assert_string_equal(g.lines[0], want);
		}
		{
			struct got g = { 0 };

			/* trimmed away: stale, never a partial answer */
			assert_int_equal(changes_since(c, &p, curs[10], collect, &g), -ESTALE);
		}
		changes_free(c);
	}
}

/* Another project's cursor, a cursor from the future, garbage: stale, never a partial answer. */
static void foreign_and_malformed_cursors_are_stale(void **unused)
{
	struct vw_project a = proj(1, "one"), b = proj(2, "two");
	struct vw_changes *c = changes_new(dir, 1 << 20);
	char ca[VW_CURSOR_MAX], cb[VW_CURSOR_MAX], future[VW_CURSOR_MAX + 8];
	struct got g = { 0 };

	(void)unused;
	add(c, &a, 1, ca);
	add(c, &b, 1, cb);
	assert_int_equal(changes_since(c, &a, cb, collect, &g), -ESTALE);
	snprintf(future, sizeof(future), "%.16s.99", ca);
	assert_int_equal(changes_since(c, &a, future, collect, &g), -ESTALE);
	assert_int_equal(changes_since(c, &a, "", collect, &g), -ESTALE);
	assert_int_equal(changes_since(c, &a, "zzzz", collect, &g), -ESTALE);
	assert_int_equal(changes_since(c, &a, NULL, collect, &g), -ESTALE);
	snprintf(future, sizeof(future), "%s0", ca);
	assert_int_equal(changes_since(c, &a, future, collect, &g), -ESTALE);
	assert_int_equal(g.n, 0);
	changes_free(c);
}

/* A log whose file cannot be made yet lives in memory, and goes to the file once it can. */
static void log_kept_in_memory_until_its_file_can_be_written(void **unused)
{
	struct vw_project p = proj(1, "one");
	char sub[96], c0[VW_CURSOR_MAX], c1[VW_CURSOR_MAX];
	struct vw_changes *c;
	struct got g = { 0 };

	(void)unused;
	snprintf(sub, sizeof(sub), "%s/later", dir);
	c = changes_new(sub, 1 << 20);
	changes_cursor(c, &p, c0);
	add(c, &p, 1, c1);
	assert_int_equal(mkdir(sub, 0700), 0);
	changes_sync(c);
	add(c, &p, 2, c1);
	changes_free(c);
	c = changes_new(sub, 1 << 20);	/* a restart: both lines were kept on disk */
	assert_int_equal(changes_since(c, &p, c0, collect, &g), 0);
	assert_int_equal(g.n, 2);
	assert_string_equal(g.lines[0], "{\"n\":1}");
	assert_string_equal(g.lines[1], "{\"n\":2}");
	changes_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(in_memory_log),
		cmocka_unit_test_setup_teardown(cursors_survive_a_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(torn_tail_is_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(trimmed_log_makes_old_cursors_stale, setup,
						teardown),
		cmocka_unit_test_setup_teardown(every_cursor_answers_exactly_through_trims_and_restarts,
						setup, teardown),
		cmocka_unit_test_setup_teardown(foreign_and_malformed_cursors_are_stale, setup,
						teardown),
		cmocka_unit_test_setup_teardown(log_kept_in_memory_until_its_file_can_be_written,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
