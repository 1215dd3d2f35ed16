// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// test_route.c: routing kernel records to projects: renames across roots, nesting, "..".
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <linux/types.h>

#include "pipeline/route.h"

#define MAXOUT 8

struct outs {
	int n;
	char line[MAXOUT][512];
};

static void collect(void *ctx, const struct vw_out *o)
{
	struct outs *s = ctx;

	if (s->n < MAXOUT)
		snprintf(s->line[s->n], sizeof(s->line[0]), "%s %s %s%s%s%s%s", o->project->name,
			 kind_name(o->kind), o->path, o->old_path ? " <- " : "", o->old_path ? o->old_path : "",
			 o->type ? " " : "", o->type ? o->type : "");
	s->n++;
}

struct fixture {
	char tmp[64];
	struct vw_projects t;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char dir[128], err[256];

	snprintf(f->tmp, sizeof(f->tmp), "/tmp/vw-unit-XXXXXX");
	assert_non_null(mkdtemp(f->tmp));
	snprintf(dir, sizeof(dir), "%s/outer/inner", f->tmp);
	snprintf(err, sizeof(err), "mkdir -p %s %s/other", dir, f->tmp);
	assert_int_equal(system(err), 0);
	snprintf(dir, sizeof(dir), "%s/outer", f->tmp);
	assert_int_equal(projects_add(&f->t, dir, NULL, err, sizeof(err)), 0);	/* id 1 */
	snprintf(dir, sizeof(dir), "%s/outer/inner", f->tmp);
	assert_int_equal(projects_add(&f->t, dir, NULL, err, sizeof(err)), 0);	/* id 2 */
	snprintf(dir, sizeof(dir), "%s/other", f->tmp);
	assert_int_equal(projects_add(&f->t, dir, NULL, err, sizeof(err)), 0);	/* id 3 */
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->tmp);
	assert_int_equal(system(cmd), 0);
	projects_free(&f->t);
	free(f);
	return 0;
}

static struct vw_event ev_of(uint16_t op, uint32_t proj, const char *path, uint32_t oproj,
			     const char *old)
{
	struct vw_event ev = { .op = op, .ftype = VW_FT_FILE, .project = proj, .old_project = oproj };

	ev.path = path;
	ev.path_len = path ? strlen(path) : 0;
	ev.old_path = old;
	ev.old_path_len = old ? strlen(old) : 0;
	return ev;
}

static void nested_roots_each_get_the_change(void **state)
{
	struct fixture *f = *state;
	struct outs o = {};
	struct vw_event ev = ev_of(VW_OP_MODIFY, 2, "src/a.c", 0, NULL);

	assert_int_equal(route_event(&f->t, &ev, collect, &o), 2);
	assert_string_equal(o.line[0], "outer modify inner/src/a.c file");
	assert_string_equal(o.line[1], "inner modify src/a.c file");
}

static void rename_between_projects_is_delete_plus_create(void **state)
{
	struct fixture *f = *state;
	struct outs o = {};
	struct vw_event ev = ev_of(VW_OP_RENAME, 3, "moved", 1, "x");

	assert_int_equal(route_event(&f->t, &ev, collect, &o), 2);
	assert_string_equal(o.line[0], "outer delete x file");
	assert_string_equal(o.line[1], "other create moved file");
}

static void rename_out_of_inner_is_still_a_rename_for_outer(void **state)
{
	struct fixture *f = *state;
	struct outs o = {};
	struct vw_event ev = ev_of(VW_OP_RENAME, 1, "top", 2, "deep");

	assert_int_equal(route_event(&f->t, &ev, collect, &o), 2);
	assert_string_equal(o.line[0], "outer rename top <- inner/deep file");
	assert_string_equal(o.line[1], "inner delete deep file");
}

static void rename_from_outside_every_root_is_a_create(void **state)
{
	struct fixture *f = *state;
	struct outs o = {};
	struct vw_event ev = ev_of(VW_OP_RENAME, 3, "arrived", 0, NULL);

	assert_int_equal(route_event(&f->t, &ev, collect, &o), 1);
	assert_string_equal(o.line[0], "other create arrived file");
}

static void lexical_dotdot_is_resolved_and_may_leave_the_root(void **state)
{
	struct fixture *f = *state;
	struct outs o = {};
	struct vw_event ev = ev_of(VW_OP_MKDIR, 3, "./a/../b//c", 0, NULL);

	ev.flags = VW_EVF_LEXICAL;
	assert_int_equal(route_event(&f->t, &ev, collect, &o), 1);
	assert_string_equal(o.line[0], "other create b/c dir");
	memset(&o, 0, sizeof(o));
	ev = ev_of(VW_OP_DELETE, 3, "../outer/f", 0, NULL);	/* lands in another project */
	assert_int_equal(route_event(&f->t, &ev, collect, &o), 1);
	assert_string_equal(o.line[0], "outer delete f file");
	memset(&o, 0, sizeof(o));
	ev = ev_of(VW_OP_DELETE, 3, "../../../etc/passwd", 0, NULL);	/* leaves every root */
	assert_int_equal(route_event(&f->t, &ev, collect, &o), 0);
}

static void unknown_project_id_is_ignored(void **state)
{
	struct fixture *f = *state;
	struct outs o = {};
	struct vw_event ev = ev_of(VW_OP_MODIFY, 42, "x", 0, NULL);

	assert_int_equal(route_event(&f->t, &ev, collect, &o), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(nested_roots_each_get_the_change, setup, teardown),
		cmocka_unit_test_setup_teardown(rename_between_projects_is_delete_plus_create, setup,
						teardown),
		cmocka_unit_test_setup_teardown(rename_out_of_inner_is_still_a_rename_for_outer, setup,
						teardown),
		cmocka_unit_test_setup_teardown(rename_from_outside_every_root_is_a_create, setup,
						teardown),
		cmocka_unit_test_setup_teardown(lexical_dotdot_is_resolved_and_may_leave_the_root,
						setup, teardown),
		cmocka_unit_test_setup_teardown(unknown_project_id_is_ignored, setup, teardown),
	};

	return cmocka_run_group_tests_name("events", tests, NULL, NULL);
}
