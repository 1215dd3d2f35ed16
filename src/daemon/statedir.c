// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// statedir.c: the state directory: private, told whether the last daemon stopped cleanly, its files collected.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "daemon/daemon.h"
#include "daemon/daemon_priv.h"
#include "store/project.h"

#define RUNNING_MARK "vfswatch.running"	/* in the state dir while a daemon runs: gone at a clean stop */

/* The kinds of state file a project has (picture, journal, change log, a damaged picture). */
static const char *const state_exts[] = { "snap", "journal", "changes", "snap.damaged", "id" };
#define NSTATE_EXTS (sizeof(state_exts) / sizeof(state_exts[0]))

/* Delete @p's state files under its identity now. */
void statedir_remove_project(struct daemon *d, const struct vw_project *p)
{
	char path[PATH_MAX];

	if (!d->opts || !d->opts->state_dir || d->opts->raw)
		return;
	for (size_t i = 0; i < NSTATE_EXTS; i++) {
		project_file(p, d->opts->state_dir, state_exts[i], path, sizeof(path));
		if (unlink(path) < 0 && errno != ENOENT)
			log_warn("state: remove %s", path);
	}
}

/* Name @p's state files by its identity's instance (found, or made and written down). */
void statedir_bind(const struct run_opts *o, struct vw_project *p)
{
	/* an identity that cannot be written now is written with its next snapshot */
	if (o && o->state_dir && !o->raw)
		project_bind_files(p, o->state_dir);
}

/* Is @name a project's state file: <name>-<instance>.<one of state_exts>[.tmp]? */
static bool project_file_name(const char *name)
{
	const char *ext;
	size_t el;

	if (!project_file_parts(name, NULL, &ext))
		return false;
	el = strlen(ext);
	if (el > 4 && strcmp(ext + el - 4, ".tmp") == 0)
		el -= 4;	/* a write a crash cut short */
	for (size_t i = 0; i < NSTATE_EXTS; i++)
		if (strlen(state_exts[i]) == el && strncmp(ext, state_exts[i], el) == 0)
			return true;
	return false;
}

/* Is @name one of the state files of a project in the table now? */
static bool claimed(const struct daemon *d, const char *dir, const char *name)
{
	char path[PATH_MAX];
	size_t dl = strlen(dir);

	for (size_t i = 0; i < d->projects.n; i++) {
		if (d->projects.v[i].gone)
			continue;
		for (size_t k = 0; k < NSTATE_EXTS; k++) {
			project_file(&d->projects.v[i], dir, state_exts[k], path, sizeof(path));
			if (strncmp(path, dir, dl) == 0 && strcmp(path + dl + 1, name) == 0)
				return true;
		}
	}
	return false;
}

/*
 * The files in the state dir: each made root's only (0600) if it was not, and
 * those of projects nobody watches any more deleted once they are older than
 * state_keep_days (a project dropped from the config, a root gone for good).
 * At start, and once a day.
 */
void statedir_collect(struct daemon *d, const struct run_opts *o)
{
	uint64_t keep_s = o->state_keep_days * 86400ull;
	time_t now = time(NULL);
	struct dirent *de;
	struct stat st;
	DIR *dir;
	int fd = open(o->state_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return;
	dir = fdopendir(fd);
	while (dir && (de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue;
		if ((st.st_mode & 077) && fchmodat(fd, de->d_name, 0600, 0) == 0)
			log_info("state: %s/%s was readable by others: made root's only",
				 o->state_dir, de->d_name);
		if (!project_file_name(de->d_name) || claimed(d, o->state_dir, de->d_name))
			continue;
		if ((uint64_t)(now - st.st_mtime) >= keep_s && unlinkat(fd, de->d_name, 0) == 0)
			log_info("state: %s/%s: no project has claimed it for %llu days: deleted",
				 o->state_dir, de->d_name,
				 (unsigned long long)o->state_keep_days);
	}
	if (dir)
		closedir(dir);
	else
		close(fd);
}

/*
 * The state dir before anything in it is read: root's only (0700, tightened
 * if it was not), told whether the last daemon stopped cleanly, its files
 * looked after (statedir_collect()).
 */
void statedir_prepare(struct daemon *d, const struct run_opts *o)
{
	struct stat st;
	int ret = make_dir_private(o->state_dir);
	int fd = ret ? ret : open(o->state_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0) {	/* tried again when first written */
		log_warnx("state: %s: %s", o->state_dir, strerror(fd == ret ? -ret : errno));
		return;
	}
	if (fstat(fd, &st) == 0 && (st.st_mode & 077) && fchmod(fd, 0700) == 0)
		log_info("state: %s was open to others (mode %04o): made root's only", o->state_dir,
			 st.st_mode & 07777);
	d->unclean = faccessat(fd, RUNNING_MARK, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
	if (d->unclean)
		log_warnx("state: the last daemon did not stop cleanly: change logs start a new "
			  "epoch (a client's cursor from before gets a full listing, never a gap)");
	close(fd);
	for (size_t i = 0; i < d->projects.n; i++)	/* their files claimed before any is collected */
		if (!d->projects.v[i].gone)
			statedir_bind(o, &d->projects.v[i]);
	statedir_collect(d, o);
	d->collect_due_ns = now_ns(CLOCK_MONOTONIC) + COLLECT_EVERY_NS;
}

/* A clean stop ahead: the next daemon trusts the change logs. */
void statedir_mark_running(struct daemon *d, bool running)
{
	char path[PATH_MAX];
	int fd;

	if (!d->opts || !d->opts->state_dir || d->opts->raw)
		return;
	snprintf(path, sizeof(path), "%s/" RUNNING_MARK, d->opts->state_dir);
	if (!running) {
		unlink(path);
		return;
	}
	if (mkdir(d->opts->state_dir, 0700) < 0 && errno != EEXIST)
		return;
	fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
}
