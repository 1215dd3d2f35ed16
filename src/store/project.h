/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* project.h: the table of watched project roots and the kernel map entries they need. */
#ifndef VW_PROJECT_H
#define VW_PROJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <linux/types.h>
#include "core/creds.h"
#include "core/record.h"
#include "store/config.h"
#include "vw_events.h"

struct vw_ignore;
struct vw_analyzer;

/* Project names: at most this many bytes, no '/', no control characters, not "." or "..". */
#define VW_PROJECT_NAME_MAX 128

struct vw_project {
	uint32_t id;		/* value in the kernel roots map, >= 1 */
	char *name;
	char *root;		/* absolute, symlinks resolved, no trailing '/' */
	/*
	 * Its identity, pinned when it was added (or adopted again): the root
	 * directory, opened without following a symlink and held, and its owner.
	 * Nothing is re-derived from the path: who may read it, whose rights
	 * analyzers run with, which state files are its own.
	 */
	int root_fd;		/* O_PATH, the directory itself (-1: none) */
	uint32_t dev;		/* kernel dev_t of the root directory */
	dev_t st_dev;		/* ...as stat() says it */
	bool remote;		/* on a network file system (or root's FUSE): a fresh stat asks it */
	uint64_t ino;
	uint64_t btime_ns;	/* its birth time where the file system keeps one (else 0) */
	struct vw_creds owner;	/* the owner of the root directory, with its account's groups */
	uint32_t added_by;	/* uid of who added it (0: the config, or root) */
	char instance[17];	/* names its state files (project_bind_files()); "": not bound */
	struct vw_ignore *ignore;	/* owned; NULL: nothing ignored */
	bool gone;		/* removed at run time: skipped everywhere, id never reused */
	bool reclaimable;	/* gone, and nothing refers to it: its slot may take a new project */
	bool from_config;	/* came from the config file (a SIGHUP reload may drop it) */
	bool by_user;		/* added over client.sock by added_by (counts to its limit) */
	bool root_lost;		/* root_gone said: nothing is reported until root_back */
	uint32_t refused_dev;	/* what was found at the lost root's path and not adopted */
	uint64_t refused_ino;
	uint64_t adopt_after_ns;	/* a try to adopt what is there did not answer: not before */
	uint64_t changes;	/* changes delivered, for status */
	uint64_t events[VW_KINDS];	/* ...by kind */
	/* rescans (the daemon's): why one runs, what it has read, what is owed after it */
	const char *rescan_reason;	/* non-NULL while one runs that was announced */
	uint64_t rescan_entries, rescan_changes, rescan_started_ns, rescan_logged_ns;
	uint64_t crawl_done_ns;	/* its start-up crawl found its end then (0: not yet) */
	uint64_t rescan_not_before_ns, rescan_backoff_ns;
	bool rescan_owed;	/* records were lost after the running crawl began, or too soon */
	const char *rescan_owed_reason;
	bool rescan_fresh;	/* the running one has nothing to compare with */
	uint64_t rescans;	/* rescans done, for status */
	char **readers;		/* owned, NULL-ended: users, "@group"s (config "readers") */
	struct vw_analyzer *analyzers;	/* owned */
	size_t nanalyzers;
};

/* VW_PROJECTS_MAX (store/config.h): the table is allocated once for that many. */

/*
 * <dir>/<name>-<instance>.<ext>: a file of @p's, the name for people, then
 * the random id of its identity's instance (project_bind_files()).
 */
void project_file(const struct vw_project *p, const char *dir, const char *ext, char *buf,
		  size_t n);
/*
 * Is @file named as project_file() names them, <name>-<instance>.<ext>? Then
 * the length of its <name> into @name_len (may be NULL) and its <ext> into @ext.
 */
bool project_file_parts(const char *file, size_t *name_len, const char **ext);
/*
 * Find the instance of @p's identity (root path, directory, birth time,
 * owner) in the state dir @dir: the one whose <name>-<instance>.id holds
 * exactly that identity, or a new random one with its .id written. A project
 * with another identity never finds another's files, whatever its name or
 * path. 0, or -errno when the .id could not be written (files named by the
 * new instance are written all the same; a start after it begins afresh).
 */
int project_bind_files(struct vw_project *p, const char *dir);
/* Write @p's <name>-<instance>.id into @dir unless it is there. 0 or -errno. */
int project_write_identity(const struct vw_project *p, const char *dir);

/* One more line of @kind about @p. */
void project_count(struct vw_project *p, enum vw_kind kind);

struct vw_projects {
	struct vw_project *v;
	size_t n, cap;		/* slots ever used (a loop over them skips the gone ones) */
	uint32_t next_id;
	struct vw_project *last;	/* the one projects_add() added last */
};

/*
 * Add the directory @dir (absolute or relative) as a project named @name
 * (NULL: the root's base name, made unique). On failure returns -errno and
 * writes a message for the user into @err.
 */
int projects_add(struct vw_projects *t, const char *dir, const char *name, char *err, size_t errlen);
/*
 * The same, with the path resolved and the root opened as @as (NULL: as the
 * daemon): what fails is said as @as would see it by itself; a user (not
 * root) adds only a directory they own (-EPERM).
 */
int projects_add_as(struct vw_projects *t, const char *dir, const char *name,
		    const struct vw_creds *as, char *err, size_t errlen);
/* Is @name acceptable as a project name? NULL, or why not. */
const char *project_name_invalid(const char *name);
/*
 * Pin @p to what @path names now: opened without symlinks (as @as when not
 * NULL), a directory. Sets root_fd, dev, ino, btime_ns, owner. 0 or -errno
 * (nothing changed).
 */
int project_pin(struct vw_project *p, const char *path, const struct vw_creds *as);
/*
 * lstat of @name in @dirfd, a directory of @p's ("": @dirfd itself), never
 * asking a user's FUSE server (creds_statat()). 0 or -errno.
 */
int project_statat(const struct vw_project *p, int dirfd, const char *name, struct stat *st);
/*
 * Pin @p to the directory @fd (O_PATH, taken over) whose fstat is @st.
 * Returns 0, or -EREMOTE (@fd closed) when it is on a user's FUSE file system.
 */
int project_pin_fd(struct vw_project *p, int fd, const struct stat *st);
/* How long a user's path may take to resolve (their FUSE server, say) before it is given up. */
#define VW_RESOLVE_TIMEOUT_MS 1000
/* After a path of a user's did not answer in time, theirs are not resolved for this long. */
#define VW_RESOLVE_BACKOFF_NS (60ull * 1000000000ull)
/* ...and one that answered but took this long counts as one that did not */
#define VW_RESOLVE_SLOW_NS (500ull * 1000000ull)

/* Let go of the root directory (a project removed, or its root lost). */
void project_unpin(struct vw_project *p);
/*
 * Open @rel ("" for the root) below @p's pinned root with @flags, never
 * through a symlink and never out of the root (openat2 RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS; a walk with O_NOFOLLOW without it): a directory
 * renamed or swapped for a symlink since an event named it cannot lead the
 * daemon anywhere else. Returns the fd or -errno (-ELOOP: a symlink).
 */
int project_open(const struct vw_project *p, const char *rel, int flags);

/*
 * Is @p's root the directory a client means by @root_id ("DEV:INO" of its own
 * stat(), decimal)? A client in another mount namespace may name, by the same
 * path, another directory than the daemon sees. NULL: nothing to check, true.
 */
bool project_is(const struct vw_project *p, const char *root_id);
/*
 * lstat() of what is at @p's root path now, its parent reached without a
 * symlink anywhere (-ELOOP otherwise): whether the root is still there, or
 * what appeared in its place, without following a path an owner can bend.
 */
int project_lstat_root_path(const struct vw_project *p, struct stat *st);
/* lstat() of @rel below @p's pinned root, the directories on the way reached as above. */
int project_lstat(const struct vw_project *p, const char *rel, struct stat *st);
struct vw_project *projects_by_id(struct vw_projects *t, uint32_t id);
struct vw_project *projects_by_name(struct vw_projects *t, const char *name);
struct vw_project *projects_by_root(struct vw_projects *t, const char *real_root);
/* Live projects; iterate with: for (i = 0; i < t->n; i++) if (!t->v[i].gone) ... */
size_t projects_live(const struct vw_projects *t);
void projects_free(struct vw_projects *t);

typedef void (*chain_entry_fn)(void *ctx, const struct vw_chain_key *k, const struct vw_chain_val *v);
typedef void (*dev_fn)(void *ctx, uint32_t dev);

/*
 * For every proper ancestor A of the root, emit the chains map entries that
 * lead from A down to the root: key (A, hash of "c1", "c1/c2", ...), value
 * final on the root itself. Returns 0 or -errno.
 */
int project_chain_entries(const struct vw_project *p, chain_entry_fn fn, void *ctx);

typedef void (*mount_fn)(void *ctx, uint32_t dev, const char *mountpoint);

/* Call @fn for every mount strictly below the root (from @mountinfo). Returns 0 or -errno. */
int project_mounts(const struct vw_project *p, const char *mountinfo, mount_fn fn, void *ctx);

/*
 * Emit the kernel dev_t of the root and of every filesystem mounted below it
 * (from @mountinfo, normally /proc/self/mountinfo). Returns 0 or -errno.
 */
int project_devs(const struct vw_project *p, const char *mountinfo, dev_fn fn, void *ctx);

#endif
