// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// mounts.c: the mount table, read from /proc/self/mountinfo: which file systems the daemon may look into.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mounts.h"

struct mount {
	dev_t dev;
	enum vw_mount_kind kind;
	uint32_t uid;
};

static struct {
	int fd;			/* /proc/self/mountinfo, kept open for its change events */
	bool opened;
	bool broken;		/* the last read failed: nothing can be told apart, nothing entered */
	struct mount *v;
	size_t n;
} tab;

/* File systems whose inodes' attributes live on a server: a fresh stat asks it. */
static bool remote_type(const char *t)
{
	static const char *const remote[] = { "nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph",
					      "9p", "afs", "ncpfs", "coda", "orangefs", "lustre",
					      "virtiofs", "gfs2", "ocfs2" };

	for (size_t i = 0; i < sizeof(remote) / sizeof(remote[0]); i++)
		if (!strcmp(t, remote[i]))
			return true;
	return false;
}

/* @opts (comma-separated) holds @key=<number>: into @val. */
static bool option_num(const char *opts, const char *key, uint32_t *val)
{
	size_t kl = strlen(key);

	for (const char *o = opts; o && *o; o = strchr(o, ',') ? strchr(o, ',') + 1 : NULL) {
		if (!strncmp(o, key, kl) && o[kl] == '=') {
			char *end;
			unsigned long v = strtoul(o + kl + 1, &end, 10);

			if (end == o + kl + 1 || (*end && *end != ','))
				return false;
			*val = (uint32_t)v;
			return true;
		}
	}
	return false;
}

int mounts_parse_line(const char *line, dev_t *dev, enum vw_mount_kind *kind, uint32_t *uid)
{
	unsigned int maj, min;
	const char *sep = strstr(line, " - ");
	char type[64], source[4096], opts[4096];

	/* "<id> <parent> <major>:<minor> <root> <mount point> <options> [tags] - <type> <source> <super options>" */
	if (sscanf(line, "%*u %*u %u:%u ", &maj, &min) != 2 || !sep)
		return -1;
	opts[0] = 0;
	if (sscanf(sep + 3, "%63s %4095s %4095s", type, source, opts) < 2)
		return -1;
	*dev = makedev(maj, min);
	*uid = 0;
	if (!strcmp(type, "fuse") || !strcmp(type, "fuseblk") || !strncmp(type, "fuse.", 5)) {
		/* no user_id: not a FUSE mount as the kernel makes them; not trusted */
		if (!option_num(opts, "user_id", uid))
			*uid = (uint32_t)-1;
		*kind = *uid ? VW_MOUNT_USER_FUSE : VW_MOUNT_REMOTE;
	} else {
		*kind = remote_type(type) ? VW_MOUNT_REMOTE : VW_MOUNT_LOCAL;
	}
	return 0;
}

static bool read_once(void)
{
	FILE *f;
	char *line = NULL;
	size_t cap = 0, n = 0;
	struct mount *v = NULL;
	bool ok = true;
	int fd;

	if (lseek(tab.fd, 0, SEEK_SET) < 0 || (fd = dup(tab.fd)) < 0)
		return false;
	f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return false;
	}
	while (ok && getline(&line, &cap, f) > 0) {
		struct mount m;
		struct mount *nv;

		if (mounts_parse_line(line, &m.dev, &m.kind, &m.uid) < 0)
			continue;
		nv = reallocarray(v, n + 1, sizeof(*v));
		if (!nv)
			ok = false;	/* a table with holes would let a FUSE mount pass as local */
		else
			v = nv, v[n++] = m;
	}
	ok = ok && !ferror(f);
	free(line);
	fclose(f);
	free(tab.v);
	tab.v = ok ? v : NULL;
	tab.n = ok ? n : 0;
	if (!ok)
		free(v);
	return ok;
}

/*
 * The table anew. Mounts made while it is read may be missed (before 5.8 a
 * read could skip lines then): read again while the kernel says it changed.
 * A table that cannot be read leaves every mount unknown, and none entered.
 */
static void reread(void)
{
	struct pollfd pfd = { .fd = tab.fd, .events = POLLPRI };

	for (int i = 0; i < 4; i++) {
		tab.broken = !read_once();
		if (tab.broken || poll(&pfd, 1, 0) <= 0 || !(pfd.revents & (POLLPRI | POLLERR)))
			break;
	}
	if (tab.broken)
		log_warnx("mounts: /proc/self/mountinfo could not be read whole: no other mount "
			  "below a root is looked into until it can");
}

void mounts_forget(void)
{
	free(tab.v);
	tab.v = NULL;
	tab.n = 0;
	tab.opened = false;	/* its fd is not this process's any more: opened again */
}

enum vw_mount_kind mounts_kind(dev_t dev, uint32_t *uid)
{
	struct pollfd pfd;
	bool fresh = false;

	*uid = 0;
	if (!tab.opened) {
		tab.opened = true;
		tab.fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
		if (tab.fd < 0)
			log_warn("mounts: /proc/self/mountinfo (FUSE file systems of users cannot be "
				 "told apart: every other file system is taken as local)");
		else
			reread();
		fresh = true;
	}
	if (tab.fd < 0)
		return VW_MOUNT_LOCAL;
	/* a mount made since the last read (so also one made before @dev was looked at) */
	pfd = (struct pollfd){ .fd = tab.fd, .events = POLLPRI };
	if (!fresh && poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLPRI | POLLERR))) {
		reread();
		fresh = true;
	}
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < tab.n; i++)
			if (tab.v[i].dev == dev) {
				*uid = tab.v[i].uid;
				return tab.v[i].kind;
			}
		if (fresh)
			break;
		reread();	/* not in the table: mounted since the last read? */
		fresh = true;
	}
	if (tab.broken)
		return VW_MOUNT_USER_FUSE;	/* cannot tell: not entered */
	/*
	 * Not a mount's device (a btrfs subvolume, say): local, and remembered as
	 * such until the table changes (a FUSE mount taking the number then is a
	 * change, which clears this).
	 */
	struct mount *nv = reallocarray(tab.v, tab.n + 1, sizeof(*tab.v));

	if (nv) {
		tab.v = nv;
		tab.v[tab.n++] = (struct mount){ .dev = dev, .kind = VW_MOUNT_LOCAL };
	}
	return VW_MOUNT_LOCAL;
}
