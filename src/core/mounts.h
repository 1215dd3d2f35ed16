/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * mounts.h: which mounted file systems the daemon may look into. A FUSE file
 * system that an ordinary user mounted (user_id= in its options, not 0) is
 * served by that user's process: a lookup, stat or read there can wait for
 * ever on it (a request survives SIGKILL once the server holds it). The
 * daemon never looks into one: crawls stop at its mount point, nothing below
 * it is read or told, and a project root on one is refused. Whether root's
 * own accesses reach it at all depends on allow_other; either way nothing
 * below it is the daemon's to read.
 *
 * Known from /proc/self/mountinfo, read again when the kernel says the mount
 * table changed (POLLPRI on it), so a mount made just before a look is seen
 * by that look.
 */
#ifndef VW_MOUNTS_H
#define VW_MOUNTS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* The file system of a mount, as far as looking into it goes. */
enum vw_mount_kind {
	VW_MOUNT_LOCAL,		/* a disk or memory file system: a stat is fresh */
	VW_MOUNT_REMOTE,	/* network or root's FUSE: a fresh stat asks its server */
	VW_MOUNT_USER_FUSE,	/* FUSE mounted by an ordinary user: never looked into */
};

/* The kind of the file system whose st_dev is @dev; @uid gets who mounted a user FUSE. */
enum vw_mount_kind mounts_kind(dev_t dev, uint32_t *uid);
/* A child that closed the descriptors it inherited: the table is read anew on its next use. */
void mounts_forget(void);
/* The parsed form of one mountinfo line, for tests: 0, or -1 when it is malformed. */
int mounts_parse_line(const char *line, dev_t *dev, enum vw_mount_kind *kind, uint32_t *uid);

#endif
