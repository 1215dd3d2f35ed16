// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// creds.c: a user's credentials, taken on for file system access; roots opened without symlinks.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/openat2.h>

#include "creds.h"

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif

int creds_of_peer(int fd, struct vw_creds *c)
{
	struct ucred uc;
	gid_t g[VW_GROUPS_MAX];
	socklen_t len = sizeof(uc);

	memset(c, 0, sizeof(*c));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
		return -errno;
	c->uid = uc.uid;
	c->gid = uc.gid;
	len = sizeof(g);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) == 0) {
		c->ngroups = len / sizeof(g[0]);
		for (uint32_t i = 0; i < c->ngroups; i++)
			c->groups[i] = g[i];
	} else if (errno == ERANGE) {
		/* more groups than we act with: fewer rights, never more */
		gid_t *big = malloc(len);

		if (big && getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, big, &len) == 0) {
			c->ngroups = VW_GROUPS_MAX;
			for (uint32_t i = 0; i < c->ngroups; i++)
				c->groups[i] = big[i];
		}
		free(big);
	}
	return 0;
}

void creds_of_user(uint32_t uid, uint32_t gid, struct vw_creds *c)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	gid_t g[VW_GROUPS_MAX];
	int n = VW_GROUPS_MAX;

	memset(c, 0, sizeof(*c));
	c->uid = uid;
	c->gid = gid;
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) != 0 || !res)
		return;	/* no account: @gid only */
	c->gid = gid = res->pw_gid;
	if (getgrouplist(res->pw_name, gid, g, &n) < 0)
		n = VW_GROUPS_MAX;	/* the first ones: fewer rights, never more */
	c->ngroups = (uint32_t)n;
	for (int i = 0; i < n; i++)
		c->groups[i] = g[i];
}

bool creds_in_group(const struct vw_creds *c, uint32_t gid)
{
	if (c->gid == gid)
		return true;
	for (uint32_t i = 0; i < c->ngroups; i++)
		if (c->groups[i] == gid)
			return true;
	return false;
}

int creds_enter(const struct vw_creds *c, struct vw_creds_saved *saved)
{
	gid_t g[VW_GROUPS_MAX];

	memset(saved, 0, sizeof(*saved));
	if (c->uid == 0)
		return 0;
	saved->ngroups = getgroups(VW_GROUPS_MAX, saved->groups);
	if (saved->ngroups < 0)
		return -errno;
	for (uint32_t i = 0; i < c->ngroups; i++)
		g[i] = c->groups[i];
	/* the raw call: this thread only (glibc's setgroups() changes every thread) */
	if (syscall(SYS_setgroups, (size_t)c->ngroups, g) < 0)
		return -errno;
	saved->gid = (uint32_t)setfsgid(c->gid);
	saved->uid = (uint32_t)setfsuid(c->uid);
	saved->switched = true;
	/* setfsuid() cannot say it failed: ask what it is now */
	if ((uint32_t)setfsuid((uid_t)-1) != c->uid || (uint32_t)setfsgid((gid_t)-1) != c->gid) {
		creds_leave(saved);
		return -EPERM;
	}
	return 0;
}

void creds_leave(struct vw_creds_saved *saved)
{
	if (!saved->switched)
		return;
	setfsuid(saved->uid);
	setfsgid(saved->gid);
	syscall(SYS_setgroups, (size_t)saved->ngroups, saved->groups);
	saved->switched = false;
}

/* @fd if it is a directory (@st filled), else closed and -errno. */
static int dir_or_error(int fd, struct stat *st)
{
	int e = 0;

	if (fstat(fd, st) < 0)
		e = -errno;
	else if (!S_ISDIR(st->st_mode))
		e = S_ISLNK(st->st_mode) ? -ELOOP : -ENOTDIR;
	if (e)
		close(fd);
	return e ? e : fd;
}

/* Without openat2 (before 5.6): one component at a time, none of them a symlink. */
static int open_walk(const char *path, struct stat *st)
{
	char buf[PATH_MAX];
	int fd, nfd;
	char *save = NULL;

	if (strlen(path) >= sizeof(buf))
		return -ENAMETOOLONG;
	strcpy(buf, path);
	fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (char *comp = strtok_r(buf, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
		if (strcmp(comp, "..") == 0) {
			close(fd);
			return -EINVAL;
		}
		nfd = openat(fd, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		close(fd);
		if (nfd < 0)
			return -errno;
		fd = dir_or_error(nfd, st);
		if (fd < 0)
			return fd;
	}
	return fd;
}

int creds_open_dir(const char *path, struct stat *st)
{
	struct open_how how = { .flags = O_PATH | O_CLOEXEC,
				.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
	int fd;

	if (path[0] != '/')
		return -EINVAL;
	fd = (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));
	if (fd < 0 && (errno == ENOSYS || errno == E2BIG))
		return open_walk(path, st);
	if (fd < 0)
		return -errno;
	return dir_or_error(fd, st);
}
