// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// project.c: validate and hold project roots; derive the roots/chains/devs kernel map entries.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "store/config.h"
#include "core/ignore.h"
#include "core/mounts.h"
#include "store/project.h"
#include "core/util.h"

#define VW_XSTR(x) #x
#define VW_STR(x) VW_XSTR(x)

static struct vw_project *take_slot(struct vw_projects *t, uint32_t *id);

static int name_taken(const struct vw_projects *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (!t->v[i].gone && strcmp(t->v[i].name, name) == 0)
			return 1;
	return 0;
}

/* The root's base name made a valid, unused project name. */
static char *unique_name(const struct vw_projects *t, const char *root)
{
	const char *base = strrchr(root, '/');
	char buf[VW_PROJECT_NAME_MAX + 1], clean[VW_PROJECT_NAME_MAX - 7];
	size_t n = 0;

	base = (base && base[1]) ? base + 1 : "root";
	for (; *base && n < sizeof(clean) - 1; base++)
		clean[n++] = (unsigned char)*base < 0x20 || *base == 0x7f ? '_' : *base;
	clean[n] = 0;
	if (!strcmp(clean, ".") || !strcmp(clean, ".."))
		strcpy(clean, "root");
	snprintf(buf, sizeof(buf), "%s", clean);
	for (int k = 2; name_taken(t, buf); k++)
		snprintf(buf, sizeof(buf), "%s-%d", clean, k);
	return strdup(buf);
}

const char *project_name_invalid(const char *name)
{
	if (!*name)
		return "empty";
	if (strlen(name) > VW_PROJECT_NAME_MAX)
		return "longer than " VW_STR(VW_PROJECT_NAME_MAX) " bytes";
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return "a directory name (\".\" or \"..\")";
	for (const char *c = name; *c; c++)
		if (*c == '/' || (unsigned char)*c < 0x20 || *c == 0x7f)
			return *c == '/' ? "holding a '/'" : "holding a control character";
	return NULL;
}

/*
 * Kernel interfaces shown as files (procfs, sysfs, ...): what changes there is
 * not written through files, so nothing would ever be told. -EINVAL with a
 * message, or 0.
 */
static int pseudo_fs(int fd, const char *real, char *err, size_t errlen)
{
	static const struct {
		long magic;
		const char *name;
	} pseudo[] = {
		{ 0x9fa0, "proc" },	      { 0x62656572, "sysfs" },	  { 0xcafe4a11, "bpf" },
		{ 0x74726163, "tracefs" },    { 0x64626720, "debugfs" },  { 0x27e0eb, "cgroup" },
		{ 0x63677270, "cgroup2" },    { 0x73636673, "securityfs" }, { 0x1cd1, "devpts" },
		{ 0x6165676c, "pstore" },     { 0x62656570, "configfs" }, { 0xde5e81e4, "efivarfs" },
		{ 0x65735543, "fusectl" },    { 0x19800202, "mqueue" },   { 0x6e736673, "nsfs" },
		{ 0xf97cff8c, "selinuxfs" },
	};
	struct statfs sf;

	if (fstatfs(fd, &sf) < 0)
		return 0;	/* stat() worked: let the backend say what it can do */
	for (size_t i = 0; i < sizeof(pseudo) / sizeof(pseudo[0]); i++)
		if ((long)sf.f_type == pseudo[i].magic) {
			snprintf(err, errlen, "%s: on %s, a kernel interface shown as files: its "
				 "changes are not file writes, none would be told", real,
				 pseudo[i].name);
			return -EINVAL;
		}
	return 0;
}

int project_pin(struct vw_project *p, const char *path, const struct vw_creds *as)
{
	char real[PATH_MAX];
	struct stat st;
	/* as a user: in a child, so that a path into their FUSE server that never answers
	 * costs a bounded wait (their own view, their own rights) */
	int fd = as && as->uid ? creds_open_dir_as(as, path, false, real, sizeof(real), &st,
						   VW_RESOLVE_TIMEOUT_MS) :
				 creds_open_dir(path, &st);

	if (fd < 0)
		return fd;
	return project_pin_fd(p, fd, &st);
}

int project_pin_fd(struct vw_project *p, int fd, const struct stat *st)
{
	struct statx stx;
	uint32_t uid;

	enum vw_mount_kind kind = mounts_kind(st->st_dev, &uid);

	if (kind == VW_MOUNT_USER_FUSE) {	/* looked at by the child as it was, or mounted since */
		close(fd);
		return -EREMOTE;
	}
	project_unpin(p);
	p->root_fd = fd;
	p->st_dev = st->st_dev;
	p->dev = kernel_dev(st->st_dev);
	p->ino = st->st_ino;
	p->remote = kind != VW_MOUNT_LOCAL;
	p->btime_ns = 0;
	if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_BTIME, &stx) == 0 &&
	    (stx.stx_mask & STATX_BTIME))
		p->btime_ns = (uint64_t)stx.stx_btime.tv_sec * 1000000000ull + stx.stx_btime.tv_nsec;
	creds_of_user(st->st_uid, st->st_gid, &p->owner);
	return 0;
}

void project_unpin(struct vw_project *p)
{
	if (p->root_fd > 0)
		close(p->root_fd);
	p->root_fd = -1;
}

int project_open(const struct vw_project *p, const char *rel, int flags)
{
	if (p->root_fd < 0)
		return -ENOENT;
	return creds_open_nofollow(p->root_fd, rel, flags, true);
}

int project_lstat_root_path(const struct vw_project *p, struct stat *st)
{
	const char *slash = strrchr(p->root, '/');
	char parent[PATH_MAX];
	struct stat pst;
	int fd, ret;

	if (!slash || (size_t)(slash - p->root) >= sizeof(parent))
		return -EINVAL;
	memcpy(parent, p->root, (size_t)(slash - p->root));
	parent[slash > p->root ? slash - p->root : 1] = 0;
	if (slash == p->root)
		strcpy(parent, "/");
	fd = creds_open_dir(parent, &pst);
	if (fd < 0)
		return fd;
	ret = creds_statat(fd, slash + 1, (dev_t)-1, false, st);
	close(fd);
	return ret;
}

int project_lstat(const struct vw_project *p, const char *rel, struct stat *st)
{
	const char *slash = strrchr(rel, '/');
	char dir[PATH_MAX];
	int fd, ret;

	if (!*rel || !slash)
		return project_statat(p, p->root_fd, rel, st);
	if ((size_t)(slash - rel) >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, rel, (size_t)(slash - rel));
	dir[slash - rel] = 0;
	fd = project_open(p, dir, O_PATH | O_DIRECTORY);
	if (fd < 0)
		return fd;
	ret = project_statat(p, fd, slash + 1, st);
	close(fd);
	return ret;
}

int project_statat(const struct vw_project *p, int dirfd, const char *name, struct stat *st)
{
	return creds_statat(dirfd, name, p->st_dev, p->remote, st);
}

int projects_add(struct vw_projects *t, const char *dir, const char *name, char *err, size_t errlen)
{
	return projects_add_as(t, dir, name, NULL, err, errlen);
}

int projects_add_as(struct vw_projects *t, const char *dir, const char *name,
		    const struct vw_creds *as, char *err, size_t errlen)
{
	bool as_user = as && as->uid;
	struct vw_project *p;
	char real[PATH_MAX];
	const char *why;
	struct stat st;
	int e, fd = -1;

	if (!dir || !*dir) {
		snprintf(err, errlen, "empty directory name");
		return -EINVAL;
	}
	if (name && (why = project_name_invalid(name))) {
		snprintf(err, errlen, "project name '%.*s' is invalid: %s", VW_PROJECT_NAME_MAX, name, why);
		return -EINVAL;
	}
	/*
	 * The path as the one asking sees it, resolved and opened by a child as
	 * them (an error says no more than they could learn; their FUSE server
	 * costs a bounded wait): the directory comes back as an fd. Root's paths
	 * (the config) too: a user's FUSE mount above one costs a bounded wait.
	 */
	fd = creds_open_dir_as(as ? as : &(struct vw_creds){ 0 }, dir, true, real, sizeof(real), &st,
			       VW_RESOLVE_TIMEOUT_MS);
	if (fd < 0 && fd != -ELOOP && fd != -ENOTDIR && fd != -EREMOTE) {
		snprintf(err, errlen, "%s: %s%s", dir, fd == -ETIMEDOUT ?
			 "no answer within " VW_STR(VW_RESOLVE_TIMEOUT_MS) " ms (a file system "
			 "that does not answer?)" : strerror(-fd),
			 fd == -ETIMEDOUT && as_user ? "; paths you name are not looked at for a "
						       "minute" : "");
		return fd;
	}
	if (strcmp(real, "/") == 0) {
		snprintf(err, errlen, "%s: refusing the whole file system (every change on the host "
			 "would be told); watch the project directories", dir);
		return -EINVAL;
	}
	if (!t->v) {
		t->v = calloc(VW_PROJECTS_MAX, sizeof(*t->v));
		if (!t->v) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		t->cap = VW_PROJECTS_MAX;
	}
	p = &(struct vw_project){ .root_fd = -1 };	/* into the table once it is whole */
	e = fd >= 0 ? project_pin_fd(p, fd, &st) : fd;
	if (e) {
		snprintf(err, errlen, "%s: %s", dir,
			 e == -ELOOP ? "a component of the path is a symlink now (it was replaced "
				       "while it was looked at)" :
			 e == -EREMOTE ? "on a FUSE file system an ordinary user mounted: vfswatch "
					 "never looks into one (its server could hold the daemon)" :
			 e == -ENOTDIR ? "not a directory" : strerror(-e));
		return e;
	}
	e = pseudo_fs(p->root_fd, real, err, errlen);
	if (!e && as && as->uid != 0 && p->owner.uid != as->uid) {
		snprintf(err, errlen, "add: %.256s is not yours: a user adds directories they own",
			 real);
		e = -EPERM;
	}
	for (size_t i = 0; !e && i < t->n; i++) {
		if (!t->v[i].gone && t->v[i].ino == p->ino && t->v[i].dev == p->dev) {
			snprintf(err, errlen, "%s: already watched as project '%s' (%s)", dir,
				 t->v[i].name, t->v[i].root);
			e = -EEXIST;
		}
	}
	if (!e && name && name_taken(t, name)) {
		snprintf(err, errlen, "project name '%s' is already in use", name);
		e = -EBUSY;
	}
	if (!e) {
		p->root = strdup(real);
		p->name = name ? strdup(name) : unique_name(t, real);
		if (!p->root || !p->name) {
			free(p->root);
			free(p->name);
			snprintf(err, errlen, "out of memory");
			e = -ENOMEM;
		}
	}
	if (!e && !(t->last = take_slot(t, &p->id))) {
		snprintf(err, errlen, "%s: more than %d projects in one daemon", dir, VW_PROJECTS_MAX);
		e = -ENOSPC;
	}
	if (e) {
		free(p->root);
		free(p->name);
		project_unpin(p);
		return e;
	}
	p->added_by = as ? as->uid : 0;
	*t->last = *p;
	return 0;
}

/* What a removed project held, handed back: its slot is free for another. */
static void release(struct vw_project *p)
{
	free(p->name);
	free(p->root);
	project_unpin(p);
	ignore_free(p->ignore);
	analyzers_free(p->analyzers, p->nanalyzers);
	for (char **r = p->readers; r && *r; r++)
		free(*r);
	free(p->readers);
	*p = (struct vw_project){ .gone = true, .reclaimable = true, .root_fd = -1 };
}

/*
 * A slot for a new project, and its id: ids only grow (a record still in the
 * ring names an old one), and id k lives in slot (k - 1) % VW_PROJECTS_MAX, so
 * the next id whose slot is unused, or held by a removed project that nothing
 * refers to any more (reclaimable), is taken. NULL: every slot is in use.
 */
static struct vw_project *take_slot(struct vw_projects *t, uint32_t *id)
{
	for (uint32_t k = 1; k <= VW_PROJECTS_MAX; k++) {
		uint32_t cand = t->next_id + k;
		size_t slot = (cand - 1) % VW_PROJECTS_MAX;
		struct vw_project *p = &t->v[slot];

		if (slot < t->n && !(p->gone && p->reclaimable))
			continue;
		for (; t->n <= slot; t->n++)	/* never used: free, and skipped by every loop */
			t->v[t->n] = (struct vw_project){ .gone = true, .reclaimable = true,
							  .root_fd = -1 };
		release(p);
		t->next_id = cand;
		*id = cand;
		return p;
	}
	return NULL;
}

struct vw_project *projects_by_id(struct vw_projects *t, uint32_t id)
{
	struct vw_project *p;

	if (id == 0 || !t->v)
		return NULL;
	p = &t->v[(id - 1) % VW_PROJECTS_MAX];
	return (size_t)((id - 1) % VW_PROJECTS_MAX) < t->n && p->id == id && !p->gone ? p : NULL;
}

struct vw_project *projects_by_name(struct vw_projects *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (!t->v[i].gone && strcmp(t->v[i].name, name) == 0)
			return &t->v[i];
	return NULL;
}

struct vw_project *projects_by_root(struct vw_projects *t, const char *real_root)
{
	for (size_t i = 0; i < t->n; i++)
		if (!t->v[i].gone && strcmp(t->v[i].root, real_root) == 0)
			return &t->v[i];
	return NULL;
}

size_t projects_live(const struct vw_projects *t)
{
	size_t n = 0;

	for (size_t i = 0; i < t->n; i++)
		n += !t->v[i].gone;
	return n;
}

void projects_free(struct vw_projects *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		release(&t->v[i]);
	free(t->v);
	memset(t, 0, sizeof(*t));
}

int project_chain_entries(const struct vw_project *p, chain_entry_fn fn, void *ctx)
{
	const char *root = p->root;
	size_t len = strlen(root);

	/* Each '/' ends an ancestor: "/" at 0, "/a" at the next one, ... */
	for (size_t a = 0; a < len; a++) {
		char anc[PATH_MAX];
		struct vw_chain_key key = {};
		struct vw_chain_val val = {};
		struct stat st;
		uint64_t h = VW_HASH_INIT;
		bool first = true;
		size_t c;
		int fd;

		if (root[a] != '/')
			continue;
		memcpy(anc, root, a ? a : 1);
		anc[a ? a : 1] = 0;
		/* never through a symlink, never into a user's FUSE mount (a later swap) */
		fd = creds_open_dir(anc, &st);
		if (fd < 0)
			return fd;
		close(fd);
		key.dev = kernel_dev(st.st_dev);
		key.ino = st.st_ino;
		/* components after the ancestor, one entry per prefix */
		c = a + 1;
		while (c < len) {
			size_t e = c;

			while (e < len && root[e] != '/')
				e++;
			h = vw_hash_component(h, root + c, e - c, first);
			first = false;
			key.hash = h;
			val.final = e >= len;
			val.project = val.final ? p->id : VW_PROJECT_NONE;
			fn(ctx, &key, &val);
			c = e + 1;
		}
	}
	return 0;
}

/* Undo mountinfo's octal escapes (\040 for space, ...) in place. */
static void unescape_octal(char *s)
{
	char *w = s;

	for (char *r = s; *r; r++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 3;
		} else {
			*w++ = *r;
		}
	}
	*w = 0;
}

int project_mounts(const struct vw_project *p, const char *mountinfo, mount_fn fn, void *ctx)
{
	FILE *f = fopen(mountinfo, "re");
	char *line = NULL;
	size_t cap = 0;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		unsigned int maj, min;
		char mpoint[PATH_MAX];
		const char *below;

		enum vw_mount_kind kind;
		uint32_t uid;
		dev_t dev;

		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &maj, &min, mpoint) != 3)
			continue;
		/* a user's FUSE file system is no part of a project (mounts.h) */
		if (mounts_parse_line(line, &dev, &kind, &uid) == 0 && kind == VW_MOUNT_USER_FUSE)
			continue;
		unescape_octal(mpoint);
		below = path_below(mpoint, p->root);
		if (below && *below)
			fn(ctx, (maj << 20) | min, mpoint);
	}
	free(line);
	fclose(f);
	return 0;
}

struct devs_ctx {
	dev_fn fn;
	void *ctx;
};

static void dev_of_mount(void *ctx, uint32_t dev, const char *mountpoint)
{
	struct devs_ctx *c = ctx;

	c->fn(c->ctx, dev);
}

int project_devs(const struct vw_project *p, const char *mountinfo, dev_fn fn, void *ctx)
{
	struct devs_ctx c = { .fn = fn, .ctx = ctx };

	fn(ctx, p->dev);
	return project_mounts(p, mountinfo, dev_of_mount, &c);
}

void project_count(struct vw_project *p, enum vw_kind kind)
{
	p->changes++;
	p->events[(unsigned int)kind < VW_KINDS ? kind : VW_KIND_NONE]++;
}

#define INSTANCE_LEN 16	/* hex digits */

void project_file(const struct vw_project *p, const char *dir, const char *ext, char *buf,
		  size_t n)
{
	snprintf(buf, n, "%s/%s-%s.%s", dir, p->name, p->instance[0] ? p->instance : "unbound", ext);
}

bool project_file_parts(const char *file, size_t *name_len, const char **ext)
{
	/* the last '-': neither an instance nor an extension holds one */
	const char *dash = strrchr(file, '-');

	if (!dash || dash == file || strspn(dash + 1, "0123456789abcdef") != INSTANCE_LEN ||
	    dash[1 + INSTANCE_LEN] != '.')
		return false;
	if (name_len)
		*name_len = (size_t)(dash - file);
	*ext = dash + 2 + INSTANCE_LEN;
	return true;
}

/* What an identity file holds: every part of the identity, nothing else. */
static int identity_text(const struct vw_project *p, char *buf, size_t n)
{
	return snprintf(buf, n, "vfswatch project identity 1\nroot %s\ndev %u\nino %llu\n"
			"btime %llu\nowner %u\n", p->root, p->dev, (unsigned long long)p->ino,
			(unsigned long long)p->btime_ns, p->owner.uid);
}

/* Does the identity file @name in @dfd hold exactly @want? */
static bool identity_is(int dfd, const char *name, const char *want, size_t len)
{
	char got[PATH_MAX + 256];
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	ssize_t r = -1;

	if (fd < 0)
		return false;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size == len)
		r = read(fd, got, sizeof(got));
	close(fd);
	return r == (ssize_t)len && memcmp(got, want, len) == 0;
}

int project_bind_files(struct vw_project *p, const char *dir)
{
	char want[PATH_MAX + 256];
	int len = identity_text(p, want, sizeof(want)), dfd;
	uint64_t r;
	DIR *d;
	struct dirent *de;

	p->instance[0] = 0;
	if (len < 0 || (size_t)len >= sizeof(want))
		return -ENAMETOOLONG;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (dfd >= 0 && !d)
		close(dfd);
	/* <name>-<instance>.id holding this identity: its files are those of that instance */
	while (d && !p->instance[0] && (de = readdir(d))) {
		const char *ext;
		size_t nl;

		if (project_file_parts(de->d_name, &nl, &ext) && strcmp(ext, "id") == 0 &&
		    nl == strlen(p->name) && strncmp(de->d_name, p->name, nl) == 0 &&
		    identity_is(dirfd(d), de->d_name, want, (size_t)len))
			snprintf(p->instance, sizeof(p->instance), "%.*s", INSTANCE_LEN,
				 de->d_name + nl + 1);
	}
	if (d)
		closedir(d);
	if (p->instance[0])
		return 0;
	/* a new instance: a random id no other identity's files can be named by */
	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r = now_ns(CLOCK_REALTIME) ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)p;
	snprintf(p->instance, sizeof(p->instance), "%016llx", (unsigned long long)r);
	return project_write_identity(p, dir);
}

int project_write_identity(const struct vw_project *p, const char *dir)
{
	char want[PATH_MAX + 256], path[PATH_MAX];
	int len = identity_text(p, want, sizeof(want)), fd, e = 0;

	if (len < 0 || (size_t)len >= sizeof(want))
		return -ENAMETOOLONG;
	project_file(p, dir, "id", path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST)	/* written before: its time says it is in use */
		return utimensat(AT_FDCWD, path, NULL, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
	if (fd < 0)
		return -errno;
	if (write(fd, want, (size_t)len) != len)
		e = errno ? -errno : -EIO;
	if (fsync(fd) < 0 && !e)
		e = -errno;
	close(fd);
	if (e)
		unlink(path);
	return e;
}

bool project_is(const struct vw_project *p, const char *root_id)
{
	unsigned long long dev, ino;
	int end = 0;

	if (!root_id)
		return true;
	return sscanf(root_id, "%llu:%llu%n", &dev, &ino, &end) == 2 && !root_id[end] &&
	       root_id[0] >= '0' && root_id[0] <= '9' && dev == (unsigned long long)p->st_dev &&
	       ino == p->ino;
}
