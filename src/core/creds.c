// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// creds.c: a user's credentials, taken on for file system access; roots opened without symlinks.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/openat2.h>

#include "core/creds.h"
#include "core/log.h"
#include "core/mounts.h"

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

/*
 * @fd if it is a directory (@st filled, as far as known without asking a file
 * system's server), else closed and -errno; -EREMOTE: on a user's FUSE mount.
 */
static int dir_or_error(int fd, struct stat *st)
{
	int e = creds_statat(fd, "", (dev_t)-1, false, st);
	uint32_t uid;

	if (!e && mounts_kind(st->st_dev, &uid) == VW_MOUNT_USER_FUSE)
		e = -EREMOTE;
	else if (!e && !S_ISDIR(st->st_mode))
		e = S_ISLNK(st->st_mode) ? -ELOOP : -ENOTDIR;
	if (e)
		close(fd);
	return e ? e : fd;
}

/* What a look at @fd (O_PATH) learns without asking a file system's server: its device and type. */
static int peek(int fd, dev_t *dev, mode_t *mode)
{
	struct statx stx;

	/* asking for nothing: also where FUSE refuses root (no allow_other) it answers */
	if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW | AT_STATX_DONT_SYNC, 0, &stx) < 0)
		return -errno;
	*dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
	*mode = stx.stx_mode;
	return 0;
}

/* Said once for each user's FUSE file system met below a root (a few remembered). */
static void refused(dev_t dev, uint32_t uid, const char *name)
{
	static dev_t said[16];
	static unsigned int next;

	for (size_t i = 0; i < sizeof(said) / sizeof(said[0]); i++)
		if (said[i] == dev)
			return;
	said[next++ % (sizeof(said) / sizeof(said[0]))] = dev;
	log_warnx("a FUSE file system mounted by uid %u is at '%s' below a root: vfswatch never "
		  "looks into one (its server could hold the daemon); nothing below it is told",
		  (unsigned)uid, name);
}

/* @fd (O_PATH, taken) opened again with @flags: the same inode, no new lookup. */
static int reopen(int fd, int flags)
{
	char proc[64];
	int nfd;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	nfd = open(proc, (flags & ~O_NOFOLLOW) | O_CLOEXEC);
	nfd = nfd < 0 ? -errno : nfd;
	close(fd);
	return nfd;
}

/*
 * One component at a time, none a symlink, none "." or "..": without openat2
 * (before 5.6, or filtered), and where a path crosses a mount point. Every
 * component is first reached as O_PATH and looked at without asking its file
 * system's server; a user's FUSE file system is never entered (-EREMOTE), and
 * the last component is opened again through its O_PATH fd (no second lookup
 * that a mount made in between could redirect).
 */
static int open_walk(int dirfd, const char *path, int flags)
{
	char buf[PATH_MAX], *save = NULL, *comp, *next;
	dev_t dev, ndev;
	mode_t mode;
	uint32_t uid;
	int fd, nfd, e;

	if (strlen(path) >= sizeof(buf))
		return -ENAMETOOLONG;
	strcpy(buf, path);
	fd = path[0] == '/' ? open("/", O_PATH | O_DIRECTORY | O_CLOEXEC) :
			      openat(dirfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if ((e = peek(fd, &dev, &mode)) < 0) {
		close(fd);
		return e;
	}
	for (comp = strtok_r(buf, "/", &save); comp; comp = next) {
		next = strtok_r(NULL, "/", &save);
		if (!strcmp(comp, ".") || !strcmp(comp, "..")) {
			close(fd);
			return -EINVAL;
		}
		nfd = openat(fd, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		close(fd);
		if (nfd < 0)
			return -errno;
		fd = nfd;
		e = peek(fd, &ndev, &mode);
		if (!e && ndev != dev && mounts_kind(ndev, &uid) == VW_MOUNT_USER_FUSE) {
			e = -EREMOTE;	/* served by a user's process: never entered */
			refused(ndev, uid, comp);
		}
		else if (!e && S_ISLNK(mode))
			e = -ELOOP;
		else if (!e && !S_ISDIR(mode) && (next || (flags & O_DIRECTORY)))
			e = -ENOTDIR;
		if (e) {
			close(fd);
			return e;
		}
		dev = ndev;
	}
	return flags & O_PATH ? fd : reopen(fd, flags);
}

int creds_open_nofollow(int dirfd, const char *path, int flags, bool beneath)
{
	static bool no_openat2;
	/* no mount point crossed either: where one is, the walk looks at what is there */
	struct open_how how = { .flags = (uint64_t)(flags | O_CLOEXEC),
				.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
					   RESOLVE_NO_XDEV | (beneath ? RESOLVE_BENEATH : 0) };
	int fd;

	if (!no_openat2) {
		fd = (int)syscall(SYS_openat2, dirfd, *path ? path : ".", &how, sizeof(how));
		if (fd >= 0)
			return fd;
		if (errno == EXDEV)
			return open_walk(dirfd, path, flags);
		if (errno != ENOSYS && errno != E2BIG)
			return -errno;
		no_openat2 = true;
	}
	return open_walk(dirfd, path, flags);
}

int creds_open_following(int dirfd, const char *path)
{
	struct open_how how = { .flags = O_PATH | O_CLOEXEC,
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS };
	int fd = (int)syscall(SYS_openat2, dirfd, *path ? path : ".", &how, sizeof(how));

	return fd < 0 ? -errno : fd;
}

int creds_statat(int dirfd, const char *name, dev_t dir_dev, bool fresh, struct stat *st)
{
	struct statx x;
	uint32_t uid;
	dev_t dev;

	/* the cached attributes first: a user's FUSE mount point must not ask its server */
	int flags = AT_SYMLINK_NOFOLLOW | AT_STATX_DONT_SYNC | (*name ? 0 : AT_EMPTY_PATH);

	if (statx(dirfd, name, flags, STATX_BASIC_STATS, &x) < 0) {
		int e = errno;

		/* a FUSE mount point refusing root (no allow_other): which it is, asking nothing */
		if (e != EACCES || statx(dirfd, name, flags, 0, &x) < 0 ||
		    mounts_kind(makedev(x.stx_dev_major, x.stx_dev_minor), &uid) !=
			    VW_MOUNT_USER_FUSE)
			return -e;
		fresh = false;
	}
	dev = makedev(x.stx_dev_major, x.stx_dev_minor);
	if (dev != dir_dev && dir_dev != (dev_t)-1) {	/* a mount point */
		enum vw_mount_kind k = mounts_kind(dev, &uid);

		if (k == VW_MOUNT_USER_FUSE)
			fresh = false;	/* what is known without asking: a directory, no more */
		else if (k == VW_MOUNT_REMOTE)
			fresh = true;
	}
	if (fresh)
		return fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW | (*name ? 0 : AT_EMPTY_PATH)) < 0 ?
			       -errno : 0;
	memset(st, 0, sizeof(*st));
	st->st_dev = dev;
	st->st_ino = x.stx_ino;
	st->st_mode = x.stx_mode;
	st->st_nlink = x.stx_nlink;
	st->st_uid = x.stx_uid;
	st->st_gid = x.stx_gid;
	st->st_rdev = makedev(x.stx_rdev_major, x.stx_rdev_minor);
	st->st_size = (off_t)x.stx_size;
	st->st_blksize = (blksize_t)x.stx_blksize;
	st->st_blocks = (blkcnt_t)x.stx_blocks;
	st->st_atim = (struct timespec){ x.stx_atime.tv_sec, x.stx_atime.tv_nsec };
	st->st_mtim = (struct timespec){ x.stx_mtime.tv_sec, x.stx_mtime.tv_nsec };
	st->st_ctim = (struct timespec){ x.stx_ctime.tv_sec, x.stx_ctime.tv_nsec };
	return 0;
}

int creds_open_dir(const char *path, struct stat *st)
{
	int fd;

	if (path[0] != '/')
		return -EINVAL;
	fd = creds_open_nofollow(AT_FDCWD, path, O_PATH, false);
	return fd < 0 ? fd : dir_or_error(fd, st);
}

int creds_child_become(const struct vw_creds *as, int keep)
{
	gid_t g[VW_GROUPS_MAX];

	/* nothing of the daemon's but fds up to @keep: not its maps, not other roots */
	if (close_range((unsigned int)keep + 1, ~0u, 0) < 0)
		for (int k = keep + 1; k < 65536; k++)
			close(k);
	mounts_forget();	/* its mountinfo fd was among them */
	prctl(PR_SET_DUMPABLE, 0);	/* the daemon's memory: not for the user to read */
	for (uint32_t i = 0; i < as->ngroups; i++)
		g[i] = as->groups[i];
	if (as->uid && (setgroups(as->ngroups, g) < 0 || setresgid(as->gid, as->gid, as->gid) < 0 ||
			setresuid(as->uid, as->uid, as->uid) < 0))
		return -EPERM;
	return 0;
}

/* In the child: become @as, resolve, open, send the fd and the path back; never returns. */
static void __attribute__((noreturn)) resolve_child(const struct vw_creds *as, const char *path,
						   bool resolve, int sock)
{
	char real[PATH_MAX], cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct stat st;
	int fd, err = 0;
	struct iovec iov[2];
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };

	/* the socket back as fd 3, and nothing else of the daemon's */
	if (sock != 3 && dup2(sock, 3) < 0)
		_exit(1);
	sock = 3;
	err = -creds_child_become(as, 3);
	if (!err && resolve && !realpath(path, real))
		err = errno;
	else if (!err && !resolve && snprintf(real, sizeof(real), "%s", path) >= (int)sizeof(real))
		err = ENAMETOOLONG;
	fd = err ? -1 : creds_open_dir(real, &st);
	if (!err && fd < 0)
		err = -fd;
	iov[0] = (struct iovec){ &err, sizeof(err) };
	iov[1] = (struct iovec){ real, err ? 1 : strlen(real) + 1 };
	if (fd >= 0) {
		struct cmsghdr *c;

		msg.msg_control = cbuf;
		msg.msg_controllen = sizeof(cbuf);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	_exit(sendmsg(sock, &msg, MSG_NOSIGNAL) < 0);
}

int creds_open_dir_as(const struct vw_creds *as, const char *path, bool resolve, char *real,
		      size_t reallen, struct stat *st, int timeout_ms)
{
	char buf[PATH_MAX + 1], cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov[2];
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2, .msg_control = cbuf,
			      .msg_controllen = sizeof(cbuf) };
	struct pollfd pfd;
	struct cmsghdr *c;
	int sv[2], err = 0, fd = -1;
	ssize_t n;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	/*
	 * Two forks: the one that resolves is nobody's child of ours, so that one
	 * stuck in a FUSE request (which even SIGKILL does not end once the server
	 * has it) is never waited for; it says its pid first, is killed when it
	 * does not answer in time, and goes when its file system lets it.
	 */
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		if (fork() == 0) {
			pid_t me = getpid();

			if (send(sv[1], &me, sizeof(me), MSG_NOSIGNAL) != sizeof(me))
				_exit(1);
			resolve_child(as, path, resolve, sv[1]);
		}
		_exit(0);
	}
	close(sv[1]);
	if (pid < 0) {
		close(sv[0]);
		return -errno;
	}
	waitpid(pid, NULL, 0);	/* the middle one: gone at once */
	pfd = (struct pollfd){ .fd = sv[0], .events = POLLIN };
	if (poll(&pfd, 1, timeout_ms) <= 0 || recv(sv[0], &pid, sizeof(pid), 0) != sizeof(pid) ||
	    poll(&pfd, 1, timeout_ms) <= 0) {
		if (pid > 0)
			kill(pid, SIGKILL);	/* it ends when its file system lets it */
		close(sv[0]);
		return -ETIMEDOUT;
	}
	iov[0] = (struct iovec){ &err, sizeof(err) };
	iov[1] = (struct iovec){ buf, sizeof(buf) - 1 };
	n = recvmsg(sv[0], &msg, MSG_CMSG_CLOEXEC);
	close(sv[0]);
	if (n < (ssize_t)sizeof(err))
		return -EIO;
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(&fd, CMSG_DATA(c), sizeof(int));
	if (err || fd < 0) {
		if (fd >= 0)
			close(fd);
		return -(err ? err : EIO);
	}
	buf[n - (ssize_t)sizeof(err)] = 0;
	if (snprintf(real, reallen, "%s", buf) >= (int)reallen ||
	    creds_statat(fd, "", (dev_t)-1, false, st) < 0) {
		close(fd);
		return -ENAMETOOLONG;
	}
	return fd;
}
