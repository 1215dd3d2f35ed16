// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// test_project.c: root validation, the chains entries for a root's ancestors, devs below a root.
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
#include <linux/types.h>

#include "core/mounts.h"
#include "store/project.h"
#include "core/util.h"

static char tmp[64];

static int setup(void **state)
{
	char cmd[256];

	snprintf(tmp, sizeof(tmp), "/tmp/vw-unit-XXXXXX");
	assert_non_null(mkdtemp(tmp));
	snprintf(cmd, sizeof(cmd), "mkdir -p %s/a/b %s/c && touch %s/file", tmp, tmp, tmp);
	return system(cmd);
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	return system(cmd);
}

static void bad_roots_get_clear_errors(void **state)
{
	struct vw_projects t = {};
	char dir[128], err[512];

	snprintf(dir, sizeof(dir), "%s/missing", tmp);
	assert_int_equal(projects_add(&t, dir, NULL, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "No such file or directory"));
	snprintf(dir, sizeof(dir), "%s/file", tmp);
	assert_int_equal(projects_add(&t, dir, NULL, err, sizeof(err)), -ENOTDIR);
	assert_non_null(strstr(err, "not a directory"));
	assert_int_equal(projects_add(&t, "", NULL, err, sizeof(err)), -EINVAL);
	snprintf(dir, sizeof(dir), "%s/a", tmp);
	assert_int_equal(projects_add(&t, dir, NULL, err, sizeof(err)), 0);
	snprintf(dir, sizeof(dir), "%s/a/b/..", tmp);	/* the same directory, spelled otherwise */
	assert_int_equal(projects_add(&t, dir, NULL, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, "already watched as project 'a'"));
	snprintf(dir, sizeof(dir), "%s/c", tmp);
	assert_int_equal(projects_add(&t, dir, "a", err, sizeof(err)), -EBUSY);
	assert_non_null(strstr(err, "already in use"));
	assert_int_equal(t.n, 1);
	projects_free(&t);
}

static void relative_roots_are_made_absolute_and_names_unique(void **state)
{
	struct vw_projects t = {};
	char cwd[256], err[512], dir[128];

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	snprintf(dir, sizeof(dir), "%s/a", tmp);
	assert_int_equal(chdir(dir), 0);
	assert_int_equal(projects_add(&t, "./b", NULL, err, sizeof(err)), 0);
	assert_int_equal(projects_add(&t, "../c", "b", err, sizeof(err)), -EBUSY);
	snprintf(dir, sizeof(dir), "%s/a/b", tmp);
	assert_string_equal(t.v[0].root, dir);
	assert_string_equal(t.v[0].name, "b");
	assert_int_equal(projects_add(&t, ".", NULL, err, sizeof(err)), 0);
	assert_int_equal(projects_add(&t, "../c", NULL, err, sizeof(err)), 0);
	assert_string_equal(t.v[1].name, "a");
	assert_int_equal(t.v[2].id, 3);
	assert_int_equal(chdir(cwd), 0);
	projects_free(&t);
}

static void names_are_bounded_and_printable(void **state)
{
	struct vw_projects t = {};
	char dir[128], err[512], name[300];

	snprintf(dir, sizeof(dir), "%s/c", tmp);
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = 0;
	assert_int_equal(projects_add(&t, dir, name, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "longer than 128 bytes"));
	assert_int_equal(projects_add(&t, dir, "tab\there", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "control character"));
	assert_int_equal(projects_add(&t, dir, "..", err, sizeof(err)), -EINVAL);
	assert_int_equal(projects_add(&t, dir, "a/b", err, sizeof(err)), -EINVAL);
	assert_int_equal(t.n, 0);
	/* a base name that is not a valid name is made one: control characters replaced */
	snprintf(dir, sizeof(dir), "%s/new\nline", tmp);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(projects_add(&t, dir, NULL, err, sizeof(err)), 0);
	assert_string_equal(t.v[0].name, "new_line");
	assert_null(project_name_invalid(t.v[0].name));
	projects_free(&t);
}

/* The root is held: a path renamed or swapped for a symlink cannot lead anywhere else. */
static void the_root_is_pinned_and_paths_below_never_follow_symlinks(void **state)
{
	struct vw_projects t = {};
	char dir[128], moved[128], link[160], err[512];
	struct stat st;
	int fd;

	snprintf(dir, sizeof(dir), "%s/pin", tmp);
	snprintf(moved, sizeof(moved), "%s/pin-moved", tmp);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(link, sizeof(link), "%s/sub", dir);
	assert_int_equal(mkdir(link, 0700), 0);
	assert_int_equal(projects_add(&t, dir, NULL, err, sizeof(err)), 0);
	assert_true(t.v[0].root_fd > 0);
	assert_int_equal(t.v[0].owner.uid, getuid());
	/* a symlink as a component below the root: refused, whatever it points to */
	snprintf(link, sizeof(link), "%s/sub/up", dir);
	assert_int_equal(symlink(tmp, link), 0);
	assert_int_equal(project_lstat(&t.v[0], "sub/up", &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(project_lstat(&t.v[0], "sub/up/file", &st), -ELOOP);
	assert_true(project_open(&t.v[0], "sub/up", O_RDONLY | O_DIRECTORY) < 0);
	assert_true(project_open(&t.v[0], "../pin", O_RDONLY | O_DIRECTORY) < 0);
	/* the root renamed away and a symlink put in its place: the fd still reads the root */
	assert_int_equal(rename(dir, moved), 0);
	assert_int_equal(symlink(tmp, dir), 0);
	fd = project_open(&t.v[0], "sub", O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(project_lstat(&t.v[0], "file", &st), -ENOENT);	/* not tmp's "file" */
	/* and adding the path now is refused: it is a symlink */
	assert_int_equal(project_pin(&t.v[0], dir, NULL), -ELOOP);
	projects_free(&t);
	unlink(dir);
}

/* Removed projects' slots go to new ones once released; ids never come back. */
static void slots_of_removed_projects_are_reused_and_ids_never(void **state)
{
	struct vw_projects t = {};
	char dir[128], err[512];
	uint32_t last = 0;

	snprintf(dir, sizeof(dir), "%s/c", tmp);
	for (int i = 0; i < 3 * VW_PROJECTS_MAX; i++) {
		struct vw_project *p;

		assert_int_equal(projects_add(&t, dir, NULL, err, sizeof(err)), 0);
		p = t.last;
		assert_true(p->id > last);	/* a record of an old id finds nothing */
		if (last)
			assert_null(projects_by_id(&t, last));
		assert_ptr_equal(projects_by_id(&t, p->id), p);
		last = p->id;
		p->gone = true;
		p->reclaimable = true;
	}
	assert_int_equal(projects_live(&t), 0);
	/* a removed project still referred to keeps its slot: the table fills up */
	projects_free(&t);
	for (int i = 0; i < VW_PROJECTS_MAX; i++) {
		snprintf(dir, sizeof(dir), "%s/c", tmp);
		assert_int_equal(projects_add(&t, dir, NULL, err, sizeof(err)), 0);
		t.last->gone = true;	/* not reclaimable */
	}
	assert_int_equal(projects_add(&t, dir, NULL, err, sizeof(err)), -ENOSPC);
	assert_non_null(strstr(err, "more than 1024 projects"));
	t.v[5].reclaimable = true;
	assert_int_equal(projects_add(&t, dir, NULL, err, sizeof(err)), 0);
	assert_ptr_equal(t.last, &t.v[5]);
	assert_int_equal(t.last->id, VW_PROJECTS_MAX + 6);
	projects_free(&t);
}

struct chains {
	int n;
	struct vw_chain_key k[64];
	struct vw_chain_val v[64];
};

static void put(void *ctx, const struct vw_chain_key *k, const struct vw_chain_val *v)
{
	struct chains *c = ctx;

	c->k[c->n] = *k;
	c->v[c->n] = *v;
	c->n++;
}

static void chain_entries_lead_from_every_ancestor_to_the_root(void **state)
{
	struct vw_project p = { .id = 5, .root = "/tmp" };
	struct chains c = {};
	struct stat st;

	/* "/tmp": one ancestor ("/"), one component -> one final entry */
	assert_int_equal(project_chain_entries(&p, put, &c), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(stat("/", &st), 0);
	assert_true(c.k[0].ino == st.st_ino);
	assert_int_equal(c.k[0].dev, kernel_dev(st.st_dev));
	assert_true(c.k[0].hash == vw_hash_component(VW_HASH_INIT, "tmp", 3, true));
	assert_int_equal(c.v[0].final, 1);
	assert_int_equal(c.v[0].project, 5);

	/* "<tmp>/a/b": ancestors /, /tmp, <tmp>, <tmp>/a */
	char root[128];

	snprintf(root, sizeof(root), "%s/a/b", tmp);
	p.root = root;
	memset(&c, 0, sizeof(c));
	assert_int_equal(project_chain_entries(&p, put, &c), 0);
	assert_int_equal(c.n, 4 + 3 + 2 + 1);	/* components after each ancestor */
	/* the last entry: from <tmp>/a, "b" is final */
	assert_int_equal(c.v[c.n - 1].final, 1);
	assert_true(c.k[c.n - 1].hash == vw_hash_component(VW_HASH_INIT, "b", 1, true));
	/* from "/", "tmp" is not final */
	assert_int_equal(c.v[0].final, 0);
	assert_int_equal(c.v[0].project, VW_PROJECT_NONE);
}

struct devs {
	int n;
	uint32_t d[8];
};

static void put_dev(void *ctx, uint32_t dev)
{
	struct devs *d = ctx;

	d->d[d->n++] = dev;
}

static void devs_are_the_root_and_mounts_below_it_only(void **state)
{
	struct vw_project p = { .id = 1, .root = "/srv/my proj", .dev = 0x800001 };
	char mi[128];
	FILE *f;
	struct devs d = {};

	snprintf(mi, sizeof(mi), "%s/mountinfo", tmp);
	f = fopen(mi, "w");
	fputs("21 1 8:1 / / rw - ext4 /dev/vda rw\n"
	      "30 21 0:40 / /srv/my\\040proj/cache rw - tmpfs tmpfs rw\n"
	      "31 21 0:41 / /srv/my\\040project rw - tmpfs tmpfs rw\n"
	      "32 21 0:42 / /srv/my\\040proj rw - tmpfs tmpfs rw\n"
	      "33 30 0:43 / /srv/my\\040proj/fuse rw - fuse.sshfs u@h: rw,user_id=1000,group_id=1000\n",
	      f);
	fclose(f);
	/* the root's own dev, then mounts strictly below it ("my project" is a sibling; a
	 * user's FUSE mount is no part of it) */
	assert_int_equal(project_devs(&p, mi, put_dev, &d), 0);
	assert_int_equal(d.n, 2);
	assert_int_equal(d.d[0], 0x800001);
	assert_int_equal(d.d[1], 40);
}

static void user_fuse_mounts_are_told_from_roots_and_others(void **state)
{
	static const struct {
		const char *line;
		int ret;
		enum vw_mount_kind kind;
		uint32_t uid;
	} cases[] = {
		{ "21 1 8:1 / / rw - ext4 /dev/vda rw,errors=remount-ro\n", 0, VW_MOUNT_LOCAL, 0 },
		{ "40 21 0:50 / /home/a/s rw,nosuid shared:7 - fuse.sshfs a@h:/ rw,user_id=1000,"
		  "group_id=1000,allow_other\n", 0, VW_MOUNT_USER_FUSE, 1000 },
		{ "41 21 0:51 / /mnt/r rw - fuse /dev/fuse rw,user_id=0,group_id=0\n", 0,
		  VW_MOUNT_REMOTE, 0 },
		{ "42 21 8:17 / /mnt/usb rw - fuseblk /dev/sdb1 rw,user_id=0,group_id=0\n", 0,
		  VW_MOUNT_REMOTE, 0 },
		/* a FUSE mount that does not say who mounted it: not trusted */
		{ "43 21 0:52 / /mnt/x rw - fuse.odd src rw\n", 0, VW_MOUNT_USER_FUSE, UINT32_MAX },
		{ "44 21 0:53 / /mnt/y rw - fuse.odd src rw,user_id=12x\n", 0, VW_MOUNT_USER_FUSE,
		  UINT32_MAX },
		{ "45 21 0:54 / /net rw - nfs4 srv:/ rw,vers=4.2\n", 0, VW_MOUNT_REMOTE, 0 },
		{ "46 21 0:55 / /t rw - tmpfs tmpfs rw\n", 0, VW_MOUNT_LOCAL, 0 },
		{ "garbage\n", -1, 0, 0 },
		{ "47 21 0:56 / /no-separator rw tmpfs tmpfs rw\n", -1, 0, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum vw_mount_kind kind = VW_MOUNT_LOCAL;
		uint32_t uid = 7;
		dev_t dev;

		assert_int_equal(mounts_parse_line(cases[i].line, &dev, &kind, &uid), cases[i].ret);
		if (cases[i].ret)
			continue;
		assert_int_equal(kind, cases[i].kind);
		assert_int_equal(uid, cases[i].uid);
	}
}

static void state_file_names_are_told_from_others(void **state)
{
	const char *ext = NULL;
	size_t nl = 0;

	assert_true(project_file_parts("a-0123456789abcdef.id", &nl, &ext));
	assert_int_equal(nl, 1);
	assert_string_equal(ext, "id");
	/* a name holding '-' and hex digits: the last '-' ends it */
	assert_true(project_file_parts("a-0123456789abcdef-fedcba9876543210.snap.tmp", &nl, &ext));
	assert_int_equal(nl, 18);
	assert_string_equal(ext, "snap.tmp");
	assert_true(project_file_parts(".dot-0123456789abcdef.changes", NULL, &ext));
	assert_false(project_file_parts("-0123456789abcdef.id", &nl, &ext));	/* no name */
	assert_false(project_file_parts("a-0123456789abcdeF.id", &nl, &ext));	/* not lower hex */
	assert_false(project_file_parts("a-0123456789abcde.id", &nl, &ext));	/* 15 digits */
	assert_false(project_file_parts("a-0123456789abcdef0.id", &nl, &ext));	/* 17 digits */
	assert_false(project_file_parts("vfswatch.running", &nl, &ext));
	assert_false(project_file_parts("a-dead-letters.jsonl", &nl, &ext));
}

static void the_running_systems_own_root_is_local(void **state)
{
	struct stat st;
	uint32_t uid = 7;

	assert_int_equal(stat("/", &st), 0);
	assert_int_not_equal(mounts_kind(st.st_dev, &uid), VW_MOUNT_USER_FUSE);
	mounts_forget();	/* read again on the next use */
	assert_int_not_equal(mounts_kind(st.st_dev, &uid), VW_MOUNT_USER_FUSE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bad_roots_get_clear_errors),
		cmocka_unit_test(relative_roots_are_made_absolute_and_names_unique),
		cmocka_unit_test(names_are_bounded_and_printable),
		cmocka_unit_test(the_root_is_pinned_and_paths_below_never_follow_symlinks),
		cmocka_unit_test(slots_of_removed_projects_are_reused_and_ids_never),
		cmocka_unit_test(chain_entries_lead_from_every_ancestor_to_the_root),
		cmocka_unit_test(devs_are_the_root_and_mounts_below_it_only),
		cmocka_unit_test(user_fuse_mounts_are_told_from_roots_and_others),
		cmocka_unit_test(state_file_names_are_told_from_others),
		cmocka_unit_test(the_running_systems_own_root_is_local),
	};

	return cmocka_run_group_tests_name("project", tests, setup, teardown);
}
