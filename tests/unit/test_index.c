// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// test_index.c: the set of known paths per project, and forgetting a removed project's.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "store/index.h"
#include "store/project.h"

static void paths_are_kept_per_project(void **state)
{
	struct vw_index *x = index_new();

	assert_non_null(x);
	index_add(x, 1, "a/b");
	index_add(x, 1, "a/b");	/* once */
	index_add(x, 2, "a/b");
	assert_int_equal(index_count(x), 2);
	assert_true(index_has(x, 1, "a/b"));
	assert_true(index_has(x, 2, "a/b"));
	assert_false(index_has(x, 3, "a/b"));
	index_del(x, 1, "a/b");
	assert_false(index_has(x, 1, "a/b"));
	assert_true(index_has(x, 2, "a/b"));
	index_free(x);
}

static void a_removed_projects_paths_are_forgotten_and_no_others(void **state)
{
	struct vw_index *x = index_new();
	char path[32];

	for (int i = 0; i < 20000; i++) {
		snprintf(path, sizeof(path), "d/%d", i);
		index_add(x, 7, path);
		if (i % 10 == 0)
			index_add(x, 8, path);
	}
	/* a project in the same slot later (ids 7 and 7 + VW_PROJECTS_MAX) */
	index_add(x, 7 + VW_PROJECTS_MAX, "other");
	assert_int_equal(index_count(x), 20000 + 2000 + 1);
	index_forget(x, 7);
	assert_int_equal(index_count(x), 2000);
	assert_false(index_has(x, 7, "d/0"));
	assert_false(index_has(x, 7, "d/19999"));
	assert_true(index_has(x, 8, "d/0"));
	assert_true(index_has(x, 8, "d/19990"));
	assert_false(index_has(x, 8, "d/1"));
	/* the table is usable after it shrank */
	index_add(x, 9, "x");
	assert_true(index_has(x, 9, "x"));
	assert_int_equal(index_count(x), 2001);
	index_free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(paths_are_kept_per_project),
		cmocka_unit_test(a_removed_projects_paths_are_forgotten_and_no_others),
	};

	return cmocka_run_group_tests_name("index", tests, NULL, NULL);
}
