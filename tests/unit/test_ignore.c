// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// test_ignore.c: gitignore semantics: globs, "**", directories only, anchoring, negation.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "core/ignore.h"

static struct vw_ignore *rules(const char *const *lines)
{
	struct vw_ignore *ig = ignore_new();

	for (; *lines; lines++)
		assert_int_equal(ignore_add(ig, *lines), 0);
	return ig;
}

static void glob_basics(void **state)
{
	assert_true(glob_match("*.c", "main.c"));
	assert_false(glob_match("*.c", "src/main.c"));	/* '*' stops at '/' */
	assert_true(glob_match("src/*.c", "src/main.c"));
	assert_true(glob_match("**/x", "x"));
	assert_true(glob_match("**/x", "a/b/x"));
	assert_true(glob_match("a/**", "a/b/c"));
	assert_true(glob_match("a/**/b", "a/b"));
	assert_true(glob_match("a/**/b", "a/x/y/b"));
	assert_false(glob_match("a/**/b", "a/x/y/c"));
	assert_true(glob_match("fil?.[ch]", "file.h"));
	assert_false(glob_match("fil?.[ch]", "file.o"));
	assert_true(glob_match("[!a]bc", "xbc"));
	assert_true(glob_match("\\*lit", "*lit"));
	assert_false(glob_match("\\*lit", "xlit"));
}

static void defaults_ignore_vcs_deps_and_editor_files(void **state)
{
	struct vw_ignore *ig = rules((const char *const *)vw_default_ignores);

	assert_true(ignore_match(ig, ".git", true));
	assert_true(ignore_match(ig, ".git/index.lock", false));
	assert_true(ignore_match(ig, "web/node_modules/react/index.js", false));
	assert_true(ignore_match(ig, "pkg/__pycache__/m.cpython-311.pyc", false));
	assert_true(ignore_match(ig, ".main.c.swp", false));
	assert_true(ignore_match(ig, "notes.txt~", false));
	assert_false(ignore_match(ig, "src/main.c", false));
	assert_false(ignore_match(ig, "build", false));	/* a file named build: "build/" is for dirs */
	assert_true(ignore_match(ig, "build", true));
	ignore_free(ig);
}

static void anchored_negated_and_dir_only(void **state)
{
	static const char *const lines[] = { "# comment", "", "/out", "*.log", "!keep.log",
					     "docs/*.html", "tmp/", "!tmp/", NULL };
	struct vw_ignore *ig = rules(lines);

	assert_int_equal(ignore_count(ig), 6);
	assert_true(ignore_match(ig, "out", false));
	assert_false(ignore_match(ig, "src/out", false));	/* anchored to the root */
	assert_true(ignore_match(ig, "a/b/x.log", false));
	assert_false(ignore_match(ig, "a/keep.log", false));	/* negation wins: it comes later */
	assert_true(ignore_match(ig, "docs/i.html", false));
	assert_false(ignore_match(ig, "docs/sub/i.html", false));
	assert_false(ignore_match(ig, "tmp/x", false));		/* "!tmp/" re-includes */
	ignore_free(ig);
}

static void inside_an_ignored_dir_cannot_be_reincluded(void **state)
{
	static const char *const lines[] = { "vendor/", "!vendor/keep.go", NULL };
	struct vw_ignore *ig = rules(lines);

	assert_true(ignore_match(ig, "vendor/keep.go", false));
	ignore_free(ig);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(glob_basics),
		cmocka_unit_test(defaults_ignore_vcs_deps_and_editor_files),
		cmocka_unit_test(anchored_negated_and_dir_only),
		cmocka_unit_test(inside_an_ignored_dir_cannot_be_reincluded),
	};

	return cmocka_run_group_tests_name("ignore", tests, NULL, NULL);
}
