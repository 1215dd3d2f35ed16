/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * creds.h: who a project belongs to, and acting as that user. The daemon runs
 * as root with CAP_DAC_READ_SEARCH; what a user asks it to look at (a path
 * named in a request) is looked at by a short-lived child with that user's
 * identity, so an answer, or an error, never says more than the user could
 * learn alone, and a path that never answers (their FUSE server) costs a
 * bounded wait. A project root is opened once, without following a symlink
 * anywhere in its path, and held by that fd.
 */
#ifndef VW_CREDS_H
#define VW_CREDS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#define VW_GROUPS_MAX 64

struct vw_creds {
	uint32_t uid, gid;
	uint32_t ngroups;
	uint32_t groups[VW_GROUPS_MAX];
};

/* The peer of a connected unix socket (SO_PEERCRED, SO_PEERGROUPS). 0 or -errno. */
int creds_of_peer(int fd, struct vw_creds *c);
/* @uid with its account's primary group (@gid if it has no account) and its groups. */
void creds_of_user(uint32_t uid, uint32_t gid, struct vw_creds *c);
/* Is @gid one of @c's groups (primary or supplementary)? */
bool creds_in_group(const struct vw_creds *c, uint32_t gid);

/*
 * openat(@dirfd, @path, @flags) without following a symlink in any component
 * (openat2 RESOLVE_NO_SYMLINKS, and RESOLVE_BENEATH with @beneath: never out
 * of @dirfd; a walk with O_NOFOLLOW where openat2 is missing or filtered).
 * "" opens @dirfd itself. No mount point of a user's FUSE file system is
 * entered (mounts.h): -EREMOTE. Returns the fd or -errno (-ELOOP: a
 * symlink).
 */
int creds_open_nofollow(int dirfd, const char *path, int flags, bool beneath);

/*
 * @path below @dirfd opened as O_PATH following symlinks, as long as every
 * step stays below @dirfd and on its mount (openat2 RESOLVE_BENEATH |
 * RESOLVE_NO_XDEV): no symlink leads out, no mount is entered. The fd or
 * -errno (-ENOSYS before 5.6).
 */
int creds_open_following(int dirfd, const char *path);

/*
 * lstat of @name in @dirfd ("": @dirfd itself), whose device is @dir_dev
 * ((dev_t)-1: unknown), without ever asking a user's FUSE server: attributes
 * as cached first; then, when @fresh or the entry is a mount point of a
 * network file system, a real fstatat. A user's FUSE mount point is answered
 * from what is cached. 0 or -errno.
 */
int creds_statat(int dirfd, const char *name, dev_t dir_dev, bool fresh, struct stat *st);

/*
 * Open the directory @path (absolute) as an O_PATH descriptor without
 * following a symlink in any component (openat2 RESOLVE_NO_SYMLINKS, or a
 * walk with O_NOFOLLOW on kernels without it), and fstat it into @st.
 * Returns the fd, or -errno: -ELOOP when a component is a symlink,
 * -ENOTDIR when the last one is not a directory.
 */
int creds_open_dir(const char *path, struct stat *st);

/*
 * In a child the daemon forked to act for a user: every fd above @keep is
 * closed, the process is made undumpable, and it becomes @as (groups, gid,
 * uid; root stays root). 0, or -EPERM when it could not become @as.
 */
int creds_child_become(const struct vw_creds *as, int keep);

/*
 * realpath() of @path (when @resolve; else @path as it is) and
 * creds_open_dir() of the result, done as @as in a child process (a user's path may lead into their own FUSE filesystem whose
 * server never answers: that costs at most @timeout_ms, never the daemon's
 * loop). @real gets the resolved path. Returns the fd (passed back over a
 * socket) or -errno: -ETIMEDOUT when the child did not answer in time.
 */
int creds_open_dir_as(const struct vw_creds *as, const char *path, bool resolve, char *real,
		      size_t reallen, struct stat *st, int timeout_ms);

#endif
