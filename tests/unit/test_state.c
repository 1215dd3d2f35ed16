// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// test_state.c: snapshots and journals on disk (checksums, torn tails), and rescans that compare.
#include <errno.h>
#include <fcntl.h>
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

#include "store/state.h"

static char dir[64];

struct seen {
	char lines[64][96];
	size_t n;
};

static void record(void *ctx, const struct vw_rescan_change *c)
{
	struct seen *s = ctx;

	if (s->n < 64)
		snprintf(s->lines[s->n++], sizeof(s->lines[0]), "%s %s", kind_name(c->kind), c->path);
}

static bool has(const struct seen *s, const char *line)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->lines[i], line) == 0)
			return true;
	return false;
}

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/vw-unit-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static struct stat st_of(uint64_t ino, uint64_t size, long mtime, mode_t mode)
{
	struct stat st = { 0 };

	st.st_ino = ino;
	st.st_size = size;
	st.st_mtim.tv_sec = mtime;
	st.st_ctim.tv_sec = mtime;
	st.st_mode = mode;
	return st;
}

static struct vw_project proj(void)
{
	struct vw_project p = { 0 };

	p.id = 1;
	p.name = "p";
	p.root = "/nowhere/p";
	return p;
}

/* A first start: the crawl fills the picture, reports nothing; a saved picture loads back. */
static void picture_round_trips_through_snapshot_and_journal(void **unused)
{
	struct vw_project p = proj();
	struct vw_state *s = state_new(dir);
	struct stat a = st_of(10, 1, 100, S_IFREG | 0644), d = st_of(11, 0, 100, S_IFDIR | 0755);
	struct vw_state_entry e;
	struct seen seen = { 0 };

	assert_int_equal(state_load(s, &p), 0);
	state_crawled(s, &p, "a", &a, false, record, &seen);
	state_crawled(s, &p, "d", &d, false, record, &seen);
	assert_int_equal(seen.n, 0);
	assert_int_equal(state_end_rescan(s, &p, false, record, &seen), 0);
	state_commit(s);	/* the snapshot is written */
	/* told after it: the journal */
	struct stat b = st_of(12, 5, 200, S_IFREG | 0600);
	state_put_said(s, &p, "d/b", &b);
	state_move_tree(s, &p, "d", "e");
	state_commit(s);
	state_free(s);

	s = state_new(dir);
	assert_int_equal(state_load(s, &p), 1);
	assert_true(state_lookup(s, &p, "a", &e));
	assert_int_equal(e.ino, 10);
	assert_true(state_lookup(s, &p, "e/b", &e));
	assert_int_equal(e.size, 5);
	assert_false(state_lookup(s, &p, "d/b", &e));
	state_free(s);
}

/* A rescan reports what differs from what was told: creates, modifies, attribs, deletes, types. */
static void rescan_reports_each_difference_once(void **unused)
{
	struct vw_project p = proj();
	struct vw_state *s = state_new(NULL);
	struct stat f = st_of(1, 1, 100, S_IFREG | 0644), g = st_of(2, 1, 100, S_IFREG | 0644);
	struct stat h = st_of(3, 1, 100, S_IFREG | 0644), d = st_of(4, 0, 100, S_IFDIR | 0755);
	struct stat dx = st_of(5, 1, 100, S_IFREG | 0644), t = st_of(6, 1, 100, S_IFREG | 0644);
	struct stat dy = st_of(9, 1, 100, S_IFREG | 0644);
	struct seen seen = { 0 };

	state_load(s, &p);
	state_crawled(s, &p, "f", &f, true, record, &seen);
	state_crawled(s, &p, "g", &g, true, record, &seen);
	state_crawled(s, &p, "h", &h, true, record, &seen);
	state_crawled(s, &p, "d", &d, true, record, &seen);
	state_crawled(s, &p, "d/x", &dx, true, record, &seen);
	state_crawled(s, &p, "d-y", &dy, true, record, &seen);
	state_crawled(s, &p, "t", &t, true, record, &seen);
	state_end_rescan(s, &p, true, record, &seen);
	assert_int_equal(seen.n, 0);

	state_begin_rescan(s, &p);
	f.st_mtim.tv_sec = 300;	/* rewritten */
	g.st_mode = S_IFREG | 0600;	/* chmod */
	g.st_ctim.tv_sec = 300;
	t = st_of(7, 0, 300, S_IFDIR | 0755);	/* a file replaced by a directory */
	struct stat n = st_of(8, 1, 300, S_IFREG | 0644);
	state_crawled(s, &p, "f", &f, true, record, &seen);
	state_crawled(s, &p, "g", &g, true, record, &seen);
	state_crawled(s, &p, "h", &h, true, record, &seen);
	state_crawled(s, &p, "t", &t, true, record, &seen);
	state_crawled(s, &p, "new", &n, true, record, &seen);
	state_crawled(s, &p, "new", &n, true, record, &seen);	/* crawled twice: once */
	/* "d", "d/x" and "d-y" are gone: one delete for the tree, one for "d-y" */
	state_end_rescan(s, &p, true, record, &seen);
	assert_true(has(&seen, "modify f"));
	assert_true(has(&seen, "attrib g"));
	assert_true(has(&seen, "delete t"));
	assert_true(has(&seen, "create t"));
	assert_true(has(&seen, "create new"));
	assert_true(has(&seen, "delete d"));
	assert_false(has(&seen, "delete d/x"));
	assert_true(has(&seen, "delete d-y"));
	assert_int_equal(seen.n, 7);
	state_free(s);
}

/* Settled: a difference goes to a batch; the picture keeps what was told until its line. */
static void settled_rescan_keeps_what_was_told_until_the_line(void **unused)
{
	struct vw_project p = proj();
	struct vw_state *s = state_new(NULL);
	struct stat f = st_of(1, 1, 100, S_IFREG | 0644), gone = st_of(2, 1, 100, S_IFREG | 0644);
	struct vw_state_entry e;
	struct seen seen = { 0 };

	state_load(s, &p);
	state_crawled(s, &p, "f", &f, false, record, &seen);
	state_crawled(s, &p, "gone", &gone, false, record, &seen);
	state_end_rescan(s, &p, false, record, &seen);
	state_begin_rescan(s, &p);
	f.st_size = 9;
	state_crawled(s, &p, "f", &f, false, record, &seen);
	state_end_rescan(s, &p, false, record, &seen);
	assert_true(has(&seen, "modify f"));
	assert_true(has(&seen, "delete gone"));
	assert_true(state_lookup(s, &p, "f", &e));
	assert_int_equal(e.size, 1);	/* as told: the batch's line will say the rest */
	assert_true(state_lookup(s, &p, "gone", &e));
	state_free(s);
}

static void write_snapshot(struct vw_state **s, struct vw_project *p)
{
	struct stat a = st_of(10, 1, 100, S_IFREG | 0644);
	struct seen seen = { 0 };

	*s = state_new(dir);
	state_load(*s, p);
	state_crawled(*s, p, "a", &a, false, record, &seen);
	state_end_rescan(*s, p, false, record, &seen);
	state_commit(*s);
}

static void snap_file(char *buf, size_t n, const char *ext)
{
	char cmd[256];
	FILE *f;

	snprintf(cmd, sizeof(cmd), "ls %s/*.%s", dir, ext);
	f = popen(cmd, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, (int)n, f));
	buf[strcspn(buf, "\n")] = 0;
	pclose(f);
}

/* A flipped byte: the snapshot is set aside and nothing is compared with it. */
static void damaged_snapshot_is_detected(void **unused)
{
	struct vw_project p = proj();
	struct vw_state *s;
	char path[256], aside[300];
	int fd;

	write_snapshot(&s, &p);
	state_free(s);
	snap_file(path, sizeof(path), "snap");
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "\xff", 1, 30), 1);
	close(fd);
	s = state_new(dir);
	assert_int_equal(state_load(s, &p), -VW_STATE_EDAMAGED);
	snprintf(aside, sizeof(aside), "%s.damaged", path);
	assert_int_equal(access(aside, F_OK), 0);
	assert_int_not_equal(access(path, F_OK), 0);
	state_free(s);
}

/* A journal whose last record was cut by a crash: what came before it counts. */
static void torn_journal_tail_is_dropped(void **unused)
{
	struct vw_project p = proj();
	struct vw_state *s;
	struct stat b = st_of(12, 5, 200, S_IFREG | 0600);
	struct vw_state_entry e;
	char path[256];
	int fd;

	write_snapshot(&s, &p);
	state_put_said(s, &p, "b", &b);
	state_commit(s);
	/* no state_free: a crash leaves the journal as it is */
	snap_file(path, sizeof(path), "journal");
	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "\x40\0\0\0\1\2\3", 7), 7);
	close(fd);
	state_free(s);
	s = state_new(dir);
	assert_int_equal(state_load(s, &p), 1);
	assert_true(state_lookup(s, &p, "b", &e));
	assert_int_equal(e.ino, 12);
	state_free(s);
}

/* The journal says only what went out: records wait for state_commit(). */
static void journal_waits_for_the_lines(void **unused)
{
	struct vw_project p = proj();
	struct vw_state *s, *s2;
	struct stat b = st_of(12, 5, 200, S_IFREG | 0600);
	struct vw_state_entry e;

	write_snapshot(&s, &p);
	state_put_said(s, &p, "b", &b);	/* its line is not out yet */
	s2 = state_new(dir);	/* what a restart after a crash now would read */
	assert_int_equal(state_load(s2, &p), 1);
	assert_false(state_lookup(s2, &p, "b", &e));
	state_free(s2);
	state_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(picture_round_trips_through_snapshot_and_journal,
						setup, teardown),
		cmocka_unit_test(rescan_reports_each_difference_once),
		cmocka_unit_test(settled_rescan_keeps_what_was_told_until_the_line),
		cmocka_unit_test_setup_teardown(damaged_snapshot_is_detected, setup, teardown),
		cmocka_unit_test_setup_teardown(torn_journal_tail_is_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(journal_waits_for_the_lines, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
