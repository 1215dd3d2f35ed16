// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// fanotify.c: FAN_MARK_FILESYSTEM + FAN_REPORT_DFID_NAME; directory handles resolved to paths.
#define _GNU_SOURCE	/* open_by_handle_at, struct file_handle, O_PATH */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "core/caps.h"
#include "core/creds.h"
#include "core/record.h"
#include "source/fanotify.h"
#include "source/liveness.h"
#include "source/source.h"
#include "core/log.h"
#include "core/util.h"

#define FAN_MAX_FS 64		/* filesystems marked */
#define FAN_CACHE 4096		/* directory handle -> last known path */
#define FAN_BUF (256 * 1024)	/* what one round of reads takes in */
#define FAN_READ_MIN 4096	/* room left for another read (an event is < 1 KiB) */
#define FAN_NAMING_ROUNDS 4	/* times names are resolved again for events read meanwhile */
#define FAN_REC_MAX (FAN_BUF / sizeof(struct fanotify_event_metadata))
#define FAN_HANDLE_MAX 128	/* bytes of a file handle we keep (MAX_HANDLE_SZ) */

#ifndef FAN_REPORT_TARGET_FID
#define FAN_REPORT_TARGET_FID 0x00001000
#endif
#ifndef FAN_RENAME
#define FAN_RENAME 0x10000000
#define FAN_EVENT_INFO_TYPE_OLD_DFID_NAME 10
#define FAN_EVENT_INFO_TYPE_NEW_DFID_NAME 12
#endif

/* What is marked; FAN_RENAME (5.17+) gives both names of a move in one event. */
#define FAN_BASE_MASK (FAN_MODIFY | FAN_ATTRIB | FAN_CREATE | FAN_DELETE | FAN_ONDIR)

struct fs_mark {
	fsid_t fsid;
	int mount_fd;		/* any directory on that filesystem, for open_by_handle_at */
};

/*
 * A file handle and its filesystem, copied out of an event: info records are
 * only 4-byte aligned (or less, in a hostile buffer), the structs want more.
 */
struct fan_handle {
	fsid_t fsid;
	struct file_handle h;
	unsigned char bytes[FAN_HANDLE_MAX];	/* h.f_handle runs on into these */
};

struct dir_cache {
	uint64_t key;		/* hash of fsid + handle; 0 = empty */
	char *path;
	bool cut;		/* too long to name: path is its deepest ancestor that can be */
};

/*
 * One event of a read. Its directory handles are resolved when the buffer is
 * read, so its names are where things are then, not where they were when it
 * happened: a directory renamed later in the same read had the event under
 * its old name. rewind_names() takes each event's directories back through
 * the directory renames that follow it in the read, last first (the name in
 * the directory is the one it had), as the tracepoint backend would have
 * named it; the debounce then replays those renames in order.
 */
struct fan_rec {
	struct fanotify_event_metadata md;	/* a copy: events are only 4-byte aligned */
	const char *raw;	/* the event in the read buffer (its info records) */
	char *now, *onow;	/* the names as resolved at read time */
	bool cut, ocut;		/* a directory too long to name: now, onow are below an ancestor */
	char *dir, *odir;	/* the directories' paths, taken back to when it happened */
	const char *name, *oname;	/* in the read buffer */
	char *path, *old;	/* the names when it happened (NULL: not resolved) */
	bool dir_move;		/* a directory renamed: names below it moved */
	bool exchange;		/* the first of the two renames of a RENAME_EXCHANGE */
	bool skip;		/* the second of them, told by the first */
	struct fan_handle obj;	/* FAN_EVENT_INFO_TYPE_FID: the object itself */
	bool has_obj;
};

struct vw_fan {
	int fd;
	const struct vw_projects *t;
	struct fs_mark fs[FAN_MAX_FS];
	int nfs;
	bool rename_event;	/* FAN_RENAME marked (else MOVED_FROM/MOVED_TO) */
	struct dir_cache cache[FAN_CACHE];
	uint64_t overflows, unresolved;
	pid_t self;
	char *buf;
	struct fan_rec *recs;	/* one per event a read can hold */
	size_t *moves;
};

/*
 * enum vw_ftype of what sits at @abs, a path read from the kernel (absolute:
 * reached without symlinks, never into a user's FUSE mount).
 */
static unsigned int ftype_at(const char *abs)
{
	const char *slash = strrchr(abs, '/');
	char dir[PATH_MAX];
	struct stat st;
	int fd, ret;

	/* never through a symlink, never into a user's FUSE mount; a type is known without asking */
	if (!slash || (size_t)(slash - abs) >= sizeof(dir))
		return VW_FT_UNKNOWN;
	snprintf(dir, sizeof(dir), "%.*s", slash == abs ? 1 : (int)(slash - abs), abs);
	fd = creds_open_nofollow(AT_FDCWD, dir, O_PATH | O_DIRECTORY, false);
	if (fd < 0)
		return VW_FT_UNKNOWN;
	ret = creds_statat(fd, slash + 1, (dev_t)-1, false, &st);
	close(fd);
	return ret < 0 ? VW_FT_UNKNOWN : ftype_of_mode(st.st_mode);
}

static bool fsid_eq(const fsid_t *a, const fsid_t *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

/*
 * Mark the file system of @path, looked up from @dirfd (a project's pinned
 * root and ".": no second lookup of its path, which may lead elsewhere now).
 */
static int mark_fs(struct vw_fan *f, int dirfd, const char *path, char *err, size_t errlen)
{
	const char *at = dirfd == AT_FDCWD ? path : ".";
	uint64_t mask = FAN_BASE_MASK | (f->rename_event ? FAN_RENAME : FAN_MOVED_FROM | FAN_MOVED_TO);
	struct statfs sfs;
	int ret;

	if ((dirfd == AT_FDCWD ? statfs(path, &sfs) : fstatfs(dirfd, &sfs)) < 0) {
		ret = -errno;
		snprintf(err, errlen, "statfs %s: %s", path, strerror(-ret));
		return ret;
	}
	for (int i = 0; i < f->nfs; i++)
		if (fsid_eq(&f->fs[i].fsid, &sfs.f_fsid))
			return 0;
	if (f->nfs == FAN_MAX_FS) {
		snprintf(err, errlen, "more than %d filesystems to mark", FAN_MAX_FS);
		return -ENOSPC;
	}
	if (fanotify_mark(f->fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, mask, dirfd, at) < 0) {
		ret = -errno;
		if (ret == -EINVAL && f->rename_event && f->nfs == 0) {
			/* before 5.17: no FAN_RENAME; pair MOVED_FROM/MOVED_TO instead */
			f->rename_event = false;
			return mark_fs(f, dirfd, path, err, errlen);
		}
		snprintf(err, errlen, "fanotify_mark %s: %s%s", path, strerror(-ret),
			 ret == -EOPNOTSUPP || ret == -EXDEV || ret == -ENODEV ?
				 " (this filesystem cannot report file handles, as overlayfs before "
				 "6.6, tmpfs on older kernels (no fsid) and some network filesystems: "
				 "use --backend tracepoint or fentry)" :
				 "");
		return ret;
	}
	f->fs[f->nfs].fsid = sfs.f_fsid;
	f->fs[f->nfs].mount_fd = openat(dirfd, at, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (f->fs[f->nfs].mount_fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "open %s: %s", path, strerror(-ret));
		return ret;
	}
	f->nfs++;
	return 0;
}

struct mount_ctx {
	struct vw_fan *f;
	char *err;
	size_t errlen;
	int ret;
};

static void mark_mount(void *ctx, uint32_t dev, const char *mountpoint)
{
	struct mount_ctx *m = ctx;

	if (!m->ret)
		m->ret = mark_fs(m->f, AT_FDCWD, mountpoint, m->err, m->errlen);
}

struct vw_fan *fan_new(const struct vw_projects *t, char *err, size_t errlen)
{
	struct vw_fan *f = calloc(1, sizeof(*f));
	int ret = -ENOMEM;

	if (!f || !(f->buf = malloc(FAN_BUF)) ||
	    !(f->recs = calloc(FAN_REC_MAX, sizeof(*f->recs))) ||
	    !(f->moves = calloc(FAN_REC_MAX, sizeof(*f->moves)))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	f->t = t;
	f->self = getpid();
	f->rename_event = true;
	/*
	 * The object's own handle too (5.9+): a write through an unlinked file is
	 * told apart; and that of what a create, delete or rename names (5.17+):
	 * the two renames of an exchange move two objects.
	 */
	f->fd = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_DFID_NAME | FAN_REPORT_FID |
			      FAN_REPORT_TARGET_FID | FAN_CLOEXEC | FAN_NONBLOCK,
			      O_RDONLY | O_CLOEXEC | O_LARGEFILE);
	if (f->fd < 0 && errno == EINVAL)
		f->fd = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_DFID_NAME | FAN_REPORT_FID |
				      FAN_CLOEXEC | FAN_NONBLOCK, O_RDONLY | O_CLOEXEC | O_LARGEFILE);
	if (f->fd < 0 && errno == EINVAL)
		f->fd = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_DFID_NAME | FAN_CLOEXEC |
				      FAN_NONBLOCK, O_RDONLY | O_CLOEXEC | O_LARGEFILE);
	if (f->fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "fanotify_init(FAN_REPORT_DFID_NAME): %s", strerror(-ret));
		goto fail;
	}
	for (size_t i = 0; i < t->n; i++) {
		ret = fan_add_project(f, &t->v[i], err, errlen);
		if (ret)
			goto fail;
	}
	return f;
fail:
	fan_free(f);
	errno = -ret;
	return NULL;
}

int fan_add_project(struct vw_fan *f, const struct vw_project *p, char *err, size_t errlen)
{
	struct mount_ctx m = { .f = f, .err = err, .errlen = errlen };
	int ret = mark_fs(f, p->root_fd, p->root, err, errlen);

	if (!ret)
		ret = project_mounts(p, "/proc/self/mountinfo", mark_mount, &m);
	return ret ? ret : m.ret;
}

void fan_free(struct vw_fan *f)
{
	if (!f)
		return;
	for (int i = 0; i < f->nfs; i++)
		close(f->fs[i].mount_fd);
	for (int i = 0; i < FAN_CACHE; i++)
		free(f->cache[i].path);
	if (f->fd > 0)
		close(f->fd);
	free(f->buf);
	free(f->recs);
	free(f->moves);
	free(f);
}

void fan_use_fd(struct vw_fan *f, int fd)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = fd;
}

int fan_fd(const struct vw_fan *f)
{
	return f->fd;
}

uint64_t fan_overflows(const struct vw_fan *f)
{
	return f->overflows;
}

uint64_t fan_unresolved(const struct vw_fan *f)
{
	return f->unresolved;
}

static uint64_t handle_key(const fsid_t *fsid, const struct file_handle *fh)
{
	uint64_t h = vw_hash_component(VW_HASH_INIT, (const char *)fsid, sizeof(*fsid), true);

	h = vw_hash_component(h, (const char *)&fh->handle_type, sizeof(fh->handle_type), true);
	h = vw_hash_component(h, (const char *)fh->f_handle, fh->handle_bytes, true);
	return h ? h : 1;
}

static void cache_clear(struct vw_fan *f)
{
	for (int i = 0; i < FAN_CACHE; i++) {
		free(f->cache[i].path);
		f->cache[i].path = NULL;
		f->cache[i].key = 0;
	}
}

/*
 * The current path of a directory handle. A deleted directory keeps the path
 * it had (the kernel's " (deleted)" suffix is dropped), and a handle that no
 * longer opens falls back to the last path seen for it, which is what "rm -r"
 * needs: by the time its events are read the directories are gone.
 */
static const char *dir_path(struct vw_fan *f, struct fan_handle *hd, bool *cut)
{
	bool up = false;
	const fsid_t *fsid = &hd->fsid;
	struct file_handle *fh = &hd->h;
	struct dir_cache *c;
	char link[64], path[PATH_MAX];
	uint64_t key;
	ssize_t n;
	int mfd = -1, dfd;

	if (fh->handle_bytes > FAN_HANDLE_MAX)
		return NULL;
	key = handle_key(fsid, fh);
	c = &f->cache[key % FAN_CACHE];
	for (int i = 0; i < f->nfs; i++)
		if (fsid_eq(&f->fs[i].fsid, fsid))
			mfd = f->fs[i].mount_fd;
	dfd = mfd < 0 ? -1 : open_by_handle_at(mfd, fh, O_PATH | O_CLOEXEC);
	if (dfd < 0)
		return c->key == key ? (*cut = c->cut, c->path) : NULL;
	for (int level = 0;; level++) {
		int pfd;

		snprintf(link, sizeof(link), "/proc/self/fd/%d", dfd);
		n = readlink(link, path, sizeof(path) - 1);
		/* at most PATH_MAX / 2 steps up (each drops "/x" or more): deeper is not named */
		if (n > 0 || errno != ENAMETOOLONG || level == PATH_MAX / 2)
			break;
		/* longer than a path can be: the deepest ancestor that can be named */
		pfd = openat(dfd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
		close(dfd);
		if (pfd < 0)
			return NULL;
		dfd = pfd;
		up = true;
	}
	close(dfd);
	if (n <= 0)
		return c->key == key ? (*cut = c->cut, c->path) : NULL;
	path[n] = 0;
	if (n > 10 && strcmp(path + n - 10, " (deleted)") == 0) {
		if (c->key == key)
			return *cut = c->cut, c->path;
		path[n - 10] = 0;
	}
	if (c->key != key || strcmp(c->path, path) != 0) {
		char *p = strdup(path);

		if (!p)
			return NULL;
		free(c->path);
		c->path = p;
		c->key = key;
	}
	c->cut = up;
	*cut = up;
	return c->path;
}

/* pid's comm and real uid from /proc; false when the process is already gone. */
static bool proc_attr(pid_t pid, char *comm, size_t len, uint32_t *uid)
{
	char path[64], line[256];
	bool got_uid = false;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	fp = fopen(path, "re");
	if (!fp)
		return false;
	comm[0] = 0;
	while (fgets(line, sizeof(line), fp)) {
		if (strncmp(line, "Name:\t", 6) == 0) {
			size_t l = strcspn(line + 6, "\n");

			if (l >= len)
				l = len - 1;
			memcpy(comm, line + 6, l);
			comm[l] = 0;
		} else if (sscanf(line, "Uid:\t%u", uid) == 1) {
			got_uid = true;
			break;
		}
	}
	fclose(fp);
	return got_uid && comm[0];
}

/* Put an absolute path into ev as (project, relative path); false when under no project. */
static bool locate(const struct vw_fan *f, const char *abs, uint32_t *project, const char **rel)
{
	for (size_t i = 0; i < f->t->n; i++) {
		const char *r = f->t->v[i].gone ? NULL : path_below(abs, f->t->v[i].root);

		if (r && *r) {
			*project = f->t->v[i].id;
			*rel = r;
			return true;
		}
	}
	return false;
}

struct fan_names {
	const char *dir, *name;		/* FAN_EVENT_INFO_TYPE_DFID_NAME or NEW_DFID_NAME */
	const char *odir, *oname;	/* OLD_DFID_NAME */
	const struct fan_handle *obj;	/* FAN_EVENT_INFO_TYPE_FID: the object itself */
	struct fan_handle objbuf;
	bool cut, ocut;
	char dbuf[PATH_MAX], odbuf[PATH_MAX];	/* own copies: the cache slot may be reused */
};

/* A copy of a directory's path: both sides of a rename may share a cache slot. */
static const char *keep(char *buf, const char *path)
{
	if (!path || snprintf(buf, PATH_MAX, "%s", path) >= PATH_MAX)
		return NULL;
	return buf;
}

/*
 * Walk the info records of one event; resolve each directory handle. Every
 * length is checked against the event's, and a name must end inside its record.
 */
static void parse_info(struct vw_fan *f, const char *raw, const struct fanotify_event_metadata *md,
		       struct fan_names *n)
{
	const size_t fixed = sizeof(struct fanotify_event_info_fid) + sizeof(struct file_handle);
	const char *p = raw + md->metadata_len, *end = raw + md->event_len;

	if (md->metadata_len < FAN_EVENT_METADATA_LEN || md->metadata_len > md->event_len)
		return;
	while ((size_t)(end - p) >= sizeof(struct fanotify_event_info_header)) {
		struct fanotify_event_info_header h;
		struct fan_handle fh;
		const char *name, *dir;
		size_t rest;

		memcpy(&h, p, sizeof(h));
		if (h.len < fixed || h.len > (size_t)(end - p))
			break;
		memcpy(&fh.fsid, p + offsetof(struct fanotify_event_info_fid, fsid), sizeof(fh.fsid));
		memcpy(&fh.h, p + sizeof(struct fanotify_event_info_fid), sizeof(fh.h));
		if (fh.h.handle_bytes > FAN_HANDLE_MAX || fh.h.handle_bytes > h.len - fixed) {
			p += h.len;
			continue;
		}
		memcpy(fh.h.f_handle, p + fixed, fh.h.handle_bytes);
		name = p + fixed + fh.h.handle_bytes;
		rest = (size_t)(p + h.len - name);
		if (!rest || !memchr(name, 0, rest))
			name = NULL;
		if (h.info_type == FAN_EVENT_INFO_TYPE_DFID_NAME ||
		    h.info_type == FAN_EVENT_INFO_TYPE_NEW_DFID_NAME) {
			dir = dir_path(f, &fh, &n->cut);
			n->dir = keep(n->dbuf, dir);
			n->name = name;
		} else if (h.info_type == FAN_EVENT_INFO_TYPE_OLD_DFID_NAME) {
			dir = dir_path(f, &fh, &n->ocut);
			n->odir = keep(n->odbuf, dir);
			n->oname = name;
		} else if (h.info_type == FAN_EVENT_INFO_TYPE_FID) {
			n->objbuf = fh;
			n->obj = &n->objbuf;
		}
		p += h.len;
	}
}

/*
 * fanotify merges events on the same name while they wait in the queue, so one
 * record can carry several changes, and the mask does not keep their order.
 * Creates come before writes; a create and a delete together are ordered by
 * what is there now: a name that exists was deleted and made again (a
 * replace, as git checkout does), one that does not was a temporary file.
 */
struct fan_op {
	uint64_t mask;
	uint16_t op, dir_op;
};

static const struct fan_op fan_ops_created_last[] = {
	{ FAN_RENAME, VW_OP_RENAME, VW_OP_RENAME },
	{ FAN_DELETE | FAN_MOVED_FROM, VW_OP_DELETE, VW_OP_RMDIR },
	{ FAN_CREATE | FAN_MOVED_TO, VW_OP_CREATE, VW_OP_MKDIR },
	{ FAN_MODIFY, VW_OP_MODIFY, VW_OP_MODIFY },
	{ FAN_ATTRIB, VW_OP_ATTRIB, VW_OP_ATTRIB },
};

static const struct fan_op fan_ops_deleted_last[] = {
	{ FAN_RENAME, VW_OP_RENAME, VW_OP_RENAME },
	{ FAN_CREATE | FAN_MOVED_TO, VW_OP_CREATE, VW_OP_MKDIR },
	{ FAN_MODIFY, VW_OP_MODIFY, VW_OP_MODIFY },
	{ FAN_ATTRIB, VW_OP_ATTRIB, VW_OP_ATTRIB },
	{ FAN_DELETE | FAN_MOVED_FROM, VW_OP_DELETE, VW_OP_RMDIR },
};

#define FAN_OPS 5

/*
 * True when the event's object has no name left: a file held open, unlinked,
 * then written or chmod'ed through its descriptor. The event still carries the
 * name it had, which now names nothing (or another file), so it is not
 * reported; its delete was. A handle that no longer opens is gone as well.
 */
static bool object_unlinked(const struct vw_fan *f, const struct fan_names *n, uint64_t *ino)
{
	struct fan_handle h;
	struct stat st;
	int mfd = -1, fd;
	bool gone;

	if (!n->obj)
		return false;
	h = *n->obj;	/* open_by_handle_at() wants it writable */
	for (int i = 0; i < f->nfs; i++)
		if (fsid_eq(&f->fs[i].fsid, &h.fsid))
			mfd = f->fs[i].mount_fd;
	if (mfd < 0)
		return false;
	fd = open_by_handle_at(mfd, &h.h, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return errno == ESTALE;
	gone = fstat(fd, &st) == 0 && st.st_nlink == 0;
	if (!gone)
		*ino = st.st_ino;	/* its other names hear of the change too */
	close(fd);
	return gone;
}


static char *join(const char *dir, const char *name)
{
	char *p;

	if (!dir || !name || asprintf(&p, "%s/%s", dir, name) < 0)
		return NULL;
	return p;
}

/* @path when it is @from or below it: the same place under @to (NULL otherwise). */
static char *moved_back(const char *path, const char *from, const char *to)
{
	size_t l = strlen(from);
	char *p;

	if (!path || strncmp(path, from, l) != 0 || (path[l] && path[l] != '/'))
		return NULL;
	if (asprintf(&p, "%s%s", to, path + l) < 0)
		return NULL;
	return p;
}

/* Undo the later directory rename @m on the name *@path (an exchange swaps both ways). */
static void undo_move(char **path, const struct fan_rec *m)
{
	char *back = moved_back(*path, m->path, m->old);

	if (!back && m->exchange)
		back = moved_back(*path, m->old, m->path);
	if (back) {
		free(*path);
		*path = back;
	}
}

static void rewind_names(struct fan_rec *r, size_t n, size_t *moves)
{
	size_t m = 0;	/* moves[0..m): the directory renames after the record at hand, last first */

	for (size_t i = n; i-- > 0;) {
		for (size_t k = 0; k < m; k++) {	/* the names were resolved after the last */
			const struct fan_rec *mv = &r[moves[k]];

			if (r[i].dir)
				undo_move(&r[i].dir, mv);
			if (r[i].odir)
				undo_move(&r[i].odir, mv);
		}
		r[i].path = join(r[i].dir, r[i].name);
		if (r[i].md.mask & FAN_RENAME)
			r[i].old = join(r[i].odir, r[i].oname);
		if (r[i].dir_move && !r[i].skip && r[i].path && r[i].old)
			moves[m++] = i;
	}
}

/* Do two events carry the handles of two different objects (false: the same, or not known)? */
static bool other_objects(const struct fan_rec *a, const struct fan_rec *b)
{
	return a->has_obj && b->has_obj &&
	       (!fsid_eq(&a->obj.fsid, &b->obj.fsid) || a->obj.h.handle_type != b->obj.h.handle_type ||
		a->obj.h.handle_bytes != b->obj.h.handle_bytes ||
		memcmp(a->obj.h.f_handle, b->obj.h.f_handle, a->obj.h.handle_bytes) != 0);
}

/*
 * The kernel tells a RENAME_EXCHANGE as two renames, A to B then B to A, one
 * after the other from the same process. Told in order they would cancel out:
 * they are one exchange. Two plain renames back and forth move the same object
 * (without the objects' handles, before 5.9: they leave nothing at B).
 */
static void pair_exchanges(struct fan_rec *r, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++) {
		struct fan_rec *a = &r[i], *b = &r[i + 1];

		if (!(a->md.mask & FAN_RENAME) || !(b->md.mask & FAN_RENAME) ||
		    a->md.pid != b->md.pid || !a->now || !a->onow || !b->now || !b->onow ||
		    strcmp(a->now, b->onow) != 0 || strcmp(a->onow, b->now) != 0)
			continue;
		if (a->has_obj && b->has_obj ? !other_objects(a, b) :
		    ftype_at(a->now) == VW_FT_UNKNOWN || ftype_at(a->onow) == VW_FT_UNKNOWN)
			continue;
		a->exchange = true;
		a->dir_move = a->dir_move || b->dir_move;
		b->skip = true;
		i++;
	}
}

static void deliver(struct vw_fan *f, const struct fan_rec *r, event_fn fn, void *ctx)
{
	const struct fanotify_event_metadata *md = &r->md;
	struct vw_event ev = { .pid = md->pid, .tgid = md->pid };
	struct fan_names n = { .obj = r->has_obj ? &r->obj : NULL };
	const struct fan_op *ops;
	bool have, ohave = false;

	ev.ts_ns = now_ns(CLOCK_BOOTTIME);
	ev.flags = VW_EVU_NO_TID | VW_EVU_NO_CGROUP;
	if (r->exchange)
		ev.flags |= VW_EVF_EXCHANGE;
	if (r->cut)	/* told as a change of the ancestor (route_event()) */
		ev.flags |= VW_EVF_TRUNCATED;
	if (r->ocut)
		ev.flags |= VW_EVF_OLD_TRUNCATED;
	/*
	 * A change of content or metadata: the inode it went to, for the file's
	 * other names (merged with its create too: a new hard link written through).
	 */
	if ((md->mask & (FAN_MODIFY | FAN_ATTRIB)) && object_unlinked(f, &n, &ev.ino) &&
	    !(md->mask & ~(FAN_MODIFY | FAN_ATTRIB | FAN_ONDIR)))
		return;
	if (!r->path && !((md->mask & FAN_RENAME) && r->old)) {
		f->unresolved++;
		return;
	}
	/*
	 * A rename into a directory that is gone by now (its handle is stale):
	 * what moved left its old name, and went where nothing can be named.
	 */
	have = r->path && locate(f, r->path, &ev.project, &ev.path);
	if ((md->mask & FAN_RENAME) && r->old)
		ohave = locate(f, r->old, &ev.old_project, &ev.old_path);
	else if ((md->mask & FAN_RENAME) && !r->odir && r->oname)
		f->unresolved++;	/* the old directory is gone: report the new side */
	if (!have && !ohave)
		return;
	if (!have)
		ev.project = VW_PROJECT_NONE, ev.path = NULL;
	ev.path_len = ev.path ? strlen(ev.path) : 0;
	ev.old_path_len = ev.old_path ? strlen(ev.old_path) : 0;
	if (!proc_attr(md->pid, ev.comm, sizeof(ev.comm), &ev.uid))
		ev.flags |= VW_EVU_NO_COMM | VW_EVU_NO_UID;
	ops = fan_ops_deleted_last;
	if ((md->mask & (FAN_CREATE | FAN_MOVED_TO)) && (md->mask & (FAN_DELETE | FAN_MOVED_FROM)) &&
	    r->now && ftype_at(r->now) != VW_FT_UNKNOWN)
		ops = fan_ops_created_last;
	for (size_t i = 0; i < FAN_OPS; i++) {
		if (!(md->mask & ops[i].mask))
			continue;
		ev.op = (md->mask & FAN_ONDIR) ? ops[i].dir_op : ops[i].op;
		if (r->exchange && ev.op == VW_OP_RENAME)
			ev.ftype = VW_FT_UNKNOWN;	/* two objects: typed as it is found, late */
		else if (md->mask & FAN_ONDIR)
			ev.ftype = VW_FT_DIR;
		else if (ev.op == VW_OP_MODIFY)
			ev.ftype = VW_FT_FILE;
		else if (ev.op == VW_OP_CREATE || ev.op == VW_OP_RENAME || ev.op == VW_OP_ATTRIB)
			ev.ftype = have && r->now ? ftype_at(r->now) : VW_FT_UNKNOWN;
		else
			ev.ftype = VW_FT_UNKNOWN;
		fn(ctx, &ev);
	}
}

/* An event read: false when it is not to be told at all. */
static bool accept(struct vw_fan *f, const char *raw, struct fan_rec *r)
{
	const struct fanotify_event_metadata *md = &r->md;

	*r = (struct fan_rec){ .raw = raw };
	memcpy(&r->md, raw, sizeof(r->md));
	if (md->vers != FANOTIFY_METADATA_VERSION) {
		f->unresolved++;
		return false;
	}
	if (md->fd >= 0)
		close(md->fd);
	if (md->mask & FAN_Q_OVERFLOW) {
		f->overflows++;
		return false;
	}
	return md->pid != f->self;	/* never feed our own writes back */
}

static void rec_free(struct fan_rec *r)
{
	free(r->now);
	free(r->onow);
	free(r->dir);
	free(r->odir);
	free(r->path);
	free(r->old);
	*r = (struct fan_rec){ .md = r->md, .raw = r->raw };
}

/* Resolve an event's directory handles to the paths they have now. */
static void resolve(struct vw_fan *f, struct fan_rec *r)
{
	const struct fanotify_event_metadata *md = &r->md;
	struct fan_names n;

	rec_free(r);
	n.dir = n.name = n.odir = n.oname = NULL;	/* the buffers need no clearing */
	n.obj = NULL;
	n.cut = n.ocut = false;
	parse_info(f, r->raw, md, &n);
	r->has_obj = n.obj != NULL;
	r->cut = n.cut;
	r->ocut = n.ocut;
	if (n.obj)
		r->obj = *n.obj;
	r->name = n.name;
	r->dir = n.dir && n.name ? strdup(n.dir) : NULL;
	r->now = join(n.dir, n.name);
	if (md->mask & FAN_RENAME) {
		r->oname = n.oname;
		r->odir = n.odir && n.oname ? strdup(n.odir) : NULL;
		r->onow = join(n.odir, n.oname);
	}
	r->dir_move = (md->mask & FAN_ONDIR) && (md->mask & FAN_RENAME) && r->now && r->onow;
	if ((md->mask & FAN_ONDIR) && (md->mask & (FAN_RENAME | FAN_MOVED_FROM | FAN_MOVED_TO)))
		cache_clear(f);	/* paths below a moved directory changed */
}

/* Read what is queued into f->buf from @len on; the bytes read (0: none, or an error in *err). */
static size_t take(struct vw_fan *f, size_t len, int *err)
{
	size_t start = len;

	while (FAN_BUF - len >= FAN_READ_MIN) {
		ssize_t got = read(f->fd, f->buf + len, FAN_BUF - len);

		if (got <= 0) {
			*err = got < 0 && errno != EAGAIN ? -errno : 0;
			break;
		}
		len += got;
	}
	return len - start;
}

/* The events in f->buf[from, to) that are to be told, as records from f->recs[n] on. */
static size_t accept_all(struct vw_fan *f, size_t from, size_t to, size_t n)
{
	struct fanotify_event_metadata m;

	/* read through a copy: the kernel aligns events to 4 bytes, the struct wants 8 */
	while (from + FAN_EVENT_METADATA_LEN <= to) {
		memcpy(&m, f->buf + from, sizeof(m));
		if (m.event_len < FAN_EVENT_METADATA_LEN || m.event_len > to - from)
			break;
		if (accept(f, f->buf + from, &f->recs[n]))
			n++;
		from += m.event_len;
	}
	return n;
}

/* Does a record from @from on move a directory (the paths below it change)? */
static bool moves_dirs(const struct fan_rec *r, size_t from, size_t n)
{
	for (size_t i = from; i < n; i++)
		if ((r[i].md.mask & FAN_ONDIR) &&
		    (r[i].md.mask & (FAN_RENAME | FAN_MOVED_FROM | FAN_MOVED_TO)))
			return true;
	return false;
}

/*
 * Read what is queued, resolve the names, and read again: a directory rename
 * read meanwhile may have moved a directory while its path was being
 * resolved, so then everything read is resolved again (a few rounds at most).
 * Once no directory moved, every rename made before the names were resolved
 * has been read, and rewind_names() takes each event back through the ones
 * after it.
 */
int fan_read(struct vw_fan *f, event_fn fn, void *ctx)
{
	for (;;) {
		int err = 0, again = 0;
		size_t len = take(f, 0, &err), n, named = 0;

		if (!len)
			return err;
		n = accept_all(f, 0, len, 0);
		for (;;) {
			size_t more, was = n;

			for (size_t i = named; i < n; i++)
				resolve(f, &f->recs[i]);
			named = n;
			if (err || FAN_BUF - len < FAN_READ_MIN)
				break;
			more = take(f, len, &err);
			if (!more)
				break;
			n = accept_all(f, len, len + more, n);
			len += more;
			if (again < FAN_NAMING_ROUNDS && moves_dirs(f->recs, was, n)) {
				again++;
				named = 0;
			}
		}
		pair_exchanges(f->recs, n);
		rewind_names(f->recs, n, f->moves);
		for (size_t i = 0; i < n; i++) {
			if (!f->recs[i].skip)
				deliver(f, &f->recs[i], fn, ctx);
			rec_free(&f->recs[i]);
		}
		if (err)
			return err;
		if (FAN_BUF - len >= FAN_READ_MIN)
			return 0;	/* the queue was empty */
	}
}

int fan_probe(const char *dir, char *why, size_t len)
{
	int fd = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_DFID_NAME | FAN_CLOEXEC, O_RDONLY);
	int ret = 0;

	if (fd < 0) {
		ret = -errno;
		snprintf(why, len, "fanotify_init(FAN_REPORT_DFID_NAME): %s", strerror(-ret));
		return ret;
	}
	if (fanotify_mark(fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_BASE_MASK, AT_FDCWD, dir) < 0) {
		ret = -errno;
		snprintf(why, len, "fanotify_mark(FAN_MARK_FILESYSTEM, %s): %s", dir, strerror(-ret));
	}
	close(fd);
	return ret;
}

/* --- the source interface (source.h) ----------------------------------------------- */

struct fan_source {
	struct vw_source s;	/* first: the daemon holds a pointer to it */
	struct vw_source_opts o;
	struct vw_fan *fan;
	uint64_t reads;		/* reads of the queue */
	struct vw_liveness live;
};

static struct fan_source *fan_of(const struct vw_source *s)
{
	return (struct fan_source *)s;
}

static void fan_stop(struct vw_source *s)
{
	if (!s)
		return;
	fan_free(fan_of(s)->fan);
	free(s);
}

static struct vw_source *fan_start(const struct vw_source_opts *o, char *err, size_t errlen)
{
	struct fan_source *f = calloc(1, sizeof(*f));

	if (!f) {
		snprintf(err, errlen, "%s", strerror(ENOMEM));
		return NULL;
	}
	f->s = (struct vw_source){ .ops = &vw_source_fanotify, .backend = VW_BACKEND_FANOTIFY,
				   .lost_reason = "fanotify_queue", .names_late = true,
				   .losses_in_read = true, .polls_roots = true };
	f->o = *o;
	f->fan = fan_new(o->projects, err, errlen);
	if (!f->fan) {
		free(f);
		return NULL;
	}
	return &f->s;
}

static void fan_detach(struct vw_source *s)
{
	/* marks stay until the group is closed: what is queued is read at stop */
}

static int fan_source_fd(const struct vw_source *s)
{
	return fan_fd(fan_of(s)->fan);
}

/* Read the queue (the kernel wakes us for every event it queues: level-triggered). */
static int fan_source_read(struct vw_source *s, enum vw_read why)
{
	struct fan_source *f = fan_of(s);
	int ret;

	source_read_delay(&f->o);
	f->reads++;
	ret = fan_read(f->fan, f->o.fn, f->o.ctx);
	if (ret < 0)
		log_warnx("fanotify: read: %s", strerror(-ret));
	return ret;
}

static int fan_source_add(struct vw_source *s, const struct vw_project *p, char *err,
			  size_t errlen)
{
	return fan_add_project(fan_of(s)->fan, p, err, errlen);
}

static int fan_counters(const struct vw_source *s, struct vw_source_counters *c)
{
	const struct fan_source *f = fan_of(s);

	*c = (struct vw_source_counters){ .lost = f->fan->overflows,
					  .unresolved = f->fan->unresolved,
					  .stalls = f->live.stalls };
	return 0;
}

/* Events queued at two ticks in a row with no read between them (liveness.h). */
static bool fan_stalled(struct vw_source *s, uint64_t tick_ns, uint64_t *behind)
{
	struct fan_source *f = fan_of(s);
	int queued = 0;

	*behind = 0;
	return ioctl(fan_fd(f->fan), FIONREAD, &queued) == 0 &&
	       liveness_queue_check(&f->live, queued > 0 ? (uint64_t)queued : 0, f->reads);
}

/* Marking the file systems of projects added later needs CAP_SYS_ADMIN. */
static uint64_t fan_caps(const struct vw_source *s, uint64_t keep)
{
	return keep | VW_CAP(CAP_SYS_ADMIN);
}

const struct vw_source_ops vw_source_fanotify = {
	.name = "fanotify",
	.start = fan_start,
	.detach = fan_detach,
	.stop = fan_stop,
	.fd = fan_source_fd,
	.read = fan_source_read,
	.add_project = fan_source_add,
	.counters = fan_counters,
	.stalled = fan_stalled,
	.caps = fan_caps,
};
