/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * creds.h: who a project belongs to, and acting as that user. The daemon runs
 * as root with CAP_DAC_READ_SEARCH; what a user asks it to look at (a path
 * named in a request) is looked at with that user's file system identity
 * (fsuid, fsgid, supplementary groups: the capabilities that bypass file
 * permissions drop with a non-zero fsuid), so an answer, or an error, never
 * says more than the user could learn alone. A project root is opened once,
 * without following a symlink anywhere in its path, and held by that fd.
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

/* The file system identity to go back to (what creds_enter() replaced). */
struct vw_creds_saved {
	bool switched;
	uint32_t uid, gid;
	int ngroups;
	gid_t groups[VW_GROUPS_MAX];
};

/*
 * Act as @c for file system access (no-op for root): until creds_leave(),
 * every open, stat and directory read is checked against @c's permissions.
 * Only the calling thread changes. Returns 0 or -errno (nothing changed).
 */
int creds_enter(const struct vw_creds *c, struct vw_creds_saved *saved);
void creds_leave(struct vw_creds_saved *saved);

/*
 * Open the directory @path (absolute) as an O_PATH descriptor without
 * following a symlink in any component (openat2 RESOLVE_NO_SYMLINKS, or a
 * walk with O_NOFOLLOW on kernels without it), and fstat it into @st.
 * Returns the fd, or -errno: -ELOOP when a component is a symlink,
 * -ENOTDIR when the last one is not a directory.
 */
int creds_open_dir(const char *path, struct stat *st);

#endif
