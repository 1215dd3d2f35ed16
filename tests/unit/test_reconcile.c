// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// test_reconcile.c: a settled batch decided against a real temp tree and the picture of it.
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

#include "pipeline/reconcile.h"
#include "store/project.h"
#include "store/state.h"

#define MAXLINES 32

struct fix {
	char dir[64];
	struct vw_projects t;
	struct vw_project *p;
	struct vw_state *st;
	char line[MAXLINES][160];
	size_t n;
	uint64_t batch;
};

static char *path_of(struct fix *f, const char *rel)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "%s/%s", f->dir, rel);
	return buf;
}

static void put_file(struct fix *f, const char *rel, const char *content)
{
	int fd = open(path_of(f, rel), O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
}

/* The picture says @rel is there as it is now (a line told it). */
static void told(struct fix *f, const char *rel)
{
	struct stat st;

	assert_int_equal(lstat(path_of(f, rel), &st), 0);
	state_put_said(f->st, f->p, rel, &st);
}

/* Each settled line, as the daemon's consumers would see it; the picture follows it. */
static void collect(void *ctx, const struct vw_settled *s)
{
	struct fix *f = ctx;

	if (f->n < MAXLINES)
		snprintf(f->line[f->n], sizeof(f->line[0]), "%s %s%s%s%s%s", kind_name(s->kind),
			 s->path, s->old_path ? " <- " : "", s->old_path ? s->old_path : "",
			 s->source ? " " : "", s->source ? s->source : "");
	f->n++;
	f->batch = s->batch;
	if (s->old_path)
		state_move_tree(f->st, s->project, s->old_path, s->path);
	if (s->kind == VW_KIND_DELETE)
		state_drop_tree(f->st, s->project, s->path);
	else if (s->st)
		state_put_said(f->st, s->project, s->path, s->st);
}

static size_t settle(struct fix *f, const struct vw_dirty *v, size_t n)
{
	f->n = 0;
	return reconcile_batch(f->st, f->p, v, n, 7, false, collect, f, NULL, NULL);
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	char err[512];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/vw-reconcile-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(projects_add(&f->t, f->dir, NULL, err, sizeof(err)), 0);
	f->p = f->t.last;
	f->st = state_new(NULL);
	assert_non_null(f->st);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	char cmd[128];

	state_free(f->st);
	projects_free(&f->t);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	free(f);
	return system(cmd);
}

static const struct vw_event writer = { .pid = 1, .tgid = 1 };

/* A file written in place: modify; only truncated: truncate; only chmod-ed: attrib. */
static void same_inode_is_modify_truncate_or_attrib(void **state)
{
	struct fix *f = *state;
	struct vw_dirty v[3] = {
		{ .path = "w", .hint_before = true, .now = true, .modified = true, .writes = 2,
		  .ev = &writer },
		{ .path = "t", .hint_before = true, .now = true, .modified = true,
		  .truncated_only = true, .ev = &writer },
		{ .path = "m", .hint_before = true, .now = true, .attrib = true, .ev = &writer },
	};

	put_file(f, "w", "1");
	put_file(f, "t", "1234");
	put_file(f, "m", "x");
	told(f, "w"), told(f, "t"), told(f, "m");
	put_file(f, "w", "12");
	assert_int_equal(truncate(path_of(f, "t"), 0), 0);
	assert_int_equal(chmod(path_of(f, "m"), 0600), 0);
	assert_int_equal(settle(f, v, 3), 3);
	assert_string_equal(f->line[0], "modify w");
	assert_string_equal(f->line[1], "truncate t");
	assert_string_equal(f->line[2], "attrib m");
	assert_int_equal(f->batch, 7);
}

/* What the events say is checked against the disk: made and gone again is nothing. */
static void created_and_gone_again_is_nothing(void **state)
{
	struct fix *f = *state;
	struct vw_dirty v[1] = {
		{ .path = "tmp", .created = true, .modified = true, .ev = &writer },
	};

	assert_int_equal(settle(f, v, 1), 0);
	assert_int_equal(f->n, 0);
}

/* A name gone and a new name holding its inode: one rename line. */
static void same_inode_under_a_new_name_is_a_rename(void **state)
{
	struct fix *f = *state;
	char from[256];
	struct vw_dirty v[2] = {
		{ .path = "a", .hint_before = true, .left = VW_LEFT_RENAME, .ev = &writer },
		{ .path = "b", .created = true, .moved_here = true, .now = true, .ev = &writer },
	};

	put_file(f, "a", "x");
	told(f, "a");
	snprintf(from, sizeof(from), "%s", path_of(f, "a"));
	assert_int_equal(rename(from, path_of(f, "b")), 0);
	assert_int_equal(settle(f, v, 2), 1);
	assert_string_equal(f->line[0], "rename b <- a");
}

/* An atomic save (a new file renamed over the old name): modify, not delete + create. */
static void replaced_by_another_file_is_modify(void **state)
{
	struct fix *f = *state;
	char tmp[256];
	struct vw_dirty v[2] = {
		{ .path = "doc", .hint_before = true, .now = true, .moved_here = true,
		  .modified = true, .ev = &writer },
		{ .path = "doc.tmp", .created = true, .left = VW_LEFT_RENAME, .ev = &writer },
	};

	put_file(f, "doc", "old");
	told(f, "doc");
	put_file(f, "doc.tmp", "new");
	snprintf(tmp, sizeof(tmp), "%s", path_of(f, "doc.tmp"));
	assert_int_equal(rename(tmp, path_of(f, "doc")), 0);
	assert_int_equal(settle(f, v, 2), 1);
	assert_string_equal(f->line[0], "modify doc");
}

/* A file where a directory was: the directory (and all below it) goes, then the file comes. */
static void type_changed_is_delete_then_create(void **state)
{
	struct fix *f = *state;
	struct vw_dirty v[1] = {
		{ .path = "x", .hint_before = true, .now = true, .moved_here = true,
		  .ev = &writer },
	};

	assert_int_equal(mkdir(path_of(f, "x"), 0755), 0);
	told(f, "x");
	assert_int_equal(rmdir(path_of(f, "x")), 0);
	put_file(f, "x", "now a file");
	assert_int_equal(settle(f, v, 1), 2);
	assert_string_equal(f->line[0], "delete x");
	assert_string_equal(f->line[1], "create x");
}

/* A directory that arrives whole: it, then what it holds, parents first ("source":"scan"). */
static void new_directory_is_described_whole(void **state)
{
	struct fix *f = *state;
	struct vw_dirty v[1] = {
		{ .path = "d", .created = true, .moved_here = true, .now = true, .type = "dir",
		  .ev = &writer },
	};

	assert_int_equal(mkdir(path_of(f, "d"), 0755), 0);
	assert_int_equal(mkdir(path_of(f, "d/sub"), 0755), 0);
	put_file(f, "d/sub/f", "x");
	assert_int_equal(settle(f, v, 1), 3);
	assert_string_equal(f->line[0], "create d");
	assert_string_equal(f->line[1], "create d/sub scan");
	assert_string_equal(f->line[2], "create d/sub/f scan");
}

/* A directory told with its files, deleted: one delete for it and everything below. */
static void deleted_directory_is_one_line(void **state)
{
	struct fix *f = *state;
	struct vw_dirty v[2] = {
		{ .path = "d/f", .hint_before = true, .left = VW_LEFT_DELETE, .ev = &writer },
		{ .path = "d", .hint_before = true, .left = VW_LEFT_DELETE, .type = "dir",
		  .ev = &writer },
	};

	assert_int_equal(mkdir(path_of(f, "d"), 0755), 0);
	put_file(f, "d/f", "x");
	told(f, "d"), told(f, "d/f");
	assert_int_equal(unlink(path_of(f, "d/f")), 0);
	assert_int_equal(rmdir(path_of(f, "d")), 0);
	assert_int_equal(settle(f, v, 2), 1);
	assert_string_equal(f->line[0], "delete d");
	assert_int_equal(state_count(f->st, f->p), 0);
}

/* The model says a path was there and it is gone though no event said so: a delete. */
static void gone_without_an_event_is_a_delete(void **state)
{
	struct fix *f = *state;
	struct vw_dirty v[1] = {
		{ .path = "lost", .hint_before = true, .modified = true, .now = true,
		  .ev = &writer },
	};

	put_file(f, "lost", "x");
	told(f, "lost");
	assert_int_equal(unlink(path_of(f, "lost")), 0);
	assert_int_equal(settle(f, v, 1), 1);
	assert_string_equal(f->line[0], "delete lost");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(same_inode_is_modify_truncate_or_attrib, setup,
						teardown),
		cmocka_unit_test_setup_teardown(created_and_gone_again_is_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(same_inode_under_a_new_name_is_a_rename, setup,
						teardown),
		cmocka_unit_test_setup_teardown(replaced_by_another_file_is_modify, setup, teardown),
		cmocka_unit_test_setup_teardown(type_changed_is_delete_then_create, setup, teardown),
		cmocka_unit_test_setup_teardown(new_directory_is_described_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(deleted_directory_is_one_line, setup, teardown),
		cmocka_unit_test_setup_teardown(gone_without_an_event_is_a_delete, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
