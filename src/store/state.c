// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// state.c: pictures as path-keyed hash tables per project; a checksummed snapshot and a journal on disk.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "core/log.h"
#include "store/pathtable.h"
#include "store/state.h"
#include "core/util.h"
#include "vw_events.h"

/*
 * Snapshot file: "VWSNAP2\n", u64 generation, u64 record count, the records
 * (struct snap_rec + path bytes), then the CRC-32 of everything before it.
 * Journal file: "VWJRNL2\n", u64 generation of the snapshot it follows, u32
 * CRC-32 of those 16 bytes; then records, each u32 payload length, u32 CRC-32
 * of the payload, payload (u8 op, then the op's fields). A record is written
 * with one write(2): a crash leaves whole records and at most one torn one at
 * the end, which the CRC finds; replay stops there.
 */
#define SNAP_MAGIC "VWSNAP2\n"
#define JRNL_MAGIC "VWJRNL2\n"
#define JOURNAL_COMPACT (4u << 20)	/* rewrite the snapshot when the journal is this big... */
#define SYNC_NS (1000ull * 1000 * 1000)	/* journals reach the disk within a second */
#define RETRY_NS (10ull * SYNC_NS)	/* a broken state dir is tried again this often */

enum { J_PUT = 1, J_DROP, J_MOVE, J_RESET };

struct snap_rec {
	uint64_t ino, size;
	int64_t mtime, ctime;
	uint32_t mode;
	uint32_t len;
};

struct proj_state {
	const struct vw_project *p;
	struct table now;	/* what the stream has told (and the crawl, while it runs, found) */
	struct table before;	/* what a running crawl is compared with */
	bool rescanning;	/* a crawl is filling @now */
	bool has_before;	/* @before is a real baseline (not a first start) */
	bool starting;		/* the crawl is the start-up one: what it has not reached is as at ready */
	int jfd;		/* the journal, open for appending; -1: none */
	uint64_t gen;		/* generation of the snapshot on disk */
	size_t jbytes, snap_bytes;
	bool jdirty;		/* appended since the last fsync */
	bool save_wanted;	/* a new snapshot, at the next commit */
	unsigned char *jbuf;	/* records of lines not yet out: written at the next commit */
	size_t jlen, jcap;
	int err;		/* its files failed: its catch-up after a restart is off (only its) */
	bool said;		/* that was logged (once, not at every retry) */
	char *errmsg;		/* owned */
};

struct vw_state {
	char *dir;
	struct proj_state *ps;
	size_t n, cap;
	int err;		/* the state dir itself failed: catch-up after a restart is off */
	bool said;		/* that was logged (once, not at every retry) */
	char errmsg[PATH_MAX + 128];
	uint64_t last_sync, last_retry;
};

/* ---- the state dir --------------------------------------------------------------- */

/*
 * A write failed: of the state dir (@ps NULL: every project's catch-up is off)
 * or of one project's files (only its catch-up is off). Tried again every
 * RETRY_NS.
 */
static void set_error(struct vw_state *s, struct proj_state *ps, int err, const char *what,
		      const char *path)
{
	bool *said = ps ? &ps->said : &s->said;

	if (!*said)
		log_warnx("state: %s %s: %s; changes made %swhile the daemon is down will not be "
			  "caught up until it works again", what, path, strerror(err),
			  ps ? "in this project " : "");
	*said = true;
	if (ps) {
		char *m = NULL;

		ps->err = err;
		if (asprintf(&m, "%s %s: %s", what, path, strerror(err)) >= 0) {
			free(ps->errmsg);
			ps->errmsg = m;
		}
		return;
	}
	s->err = err;
	snprintf(s->errmsg, sizeof(s->errmsg), "%s %s: %s", what, path, strerror(err));
}

/* <dir>/<name>-<hash of the root>.<ext>: the name for people, the hash for uniqueness. */
static void file_path(const struct vw_state *s, const struct vw_project *p, const char *ext,
		      char *buf, size_t n)
{
	project_file(p, s->dir, ext, buf, n);
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (w == 0)
			return -ENOSPC;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static void sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

static void journal_close(struct proj_state *ps)
{
	if (ps->jfd >= 0)
		close(ps->jfd);
	ps->jfd = -1;
	ps->jdirty = false;
}

static int save_one(struct vw_state *s, struct proj_state *ps);

/* Append one record to @ps's journal: what the stream told, so a restart knows it. */
static void journal_add(struct vw_state *s, struct proj_state *ps, int op, const char *a,
			const char *b, const struct vw_state_entry *e)
{
	unsigned char buf[16 + 1 + sizeof(struct snap_rec) + 2 * (2 + PATH_MAX)];
	size_t n = 8, la = a ? strlen(a) : 0, lb = b ? strlen(b) : 0;
	uint32_t len, crc;
	uint16_t l16;

	if (!s->dir || ps->jfd < 0 || la >= PATH_MAX || lb >= PATH_MAX)
		return;
	buf[n++] = (unsigned char)op;
	if (op == J_PUT) {
		struct snap_rec h = { e->ino, e->size, e->mtime_ns, e->ctime_ns, e->mode, 0 };

		memcpy(buf + n, &h, sizeof(h));
		n += sizeof(h);
	}
	if (a) {
		l16 = (uint16_t)la;
		memcpy(buf + n, &l16, 2);
		memcpy(buf + n + 2, a, la);
		n += 2 + la;
	}
	if (b) {
		l16 = (uint16_t)lb;
		memcpy(buf + n, &l16, 2);
		memcpy(buf + n + 2, b, lb);
		n += 2 + lb;
	}
	len = (uint32_t)(n - 8);
	crc = (uint32_t)crc32(0, buf + 8, len);
	memcpy(buf, &len, 4);
	memcpy(buf + 4, &crc, 4);
	/* kept until the lines it stands for are out (state_commit) */
	if (ps->jlen + n > ps->jcap) {
		size_t cap = ps->jcap ? ps->jcap * 2 : 65536;
		unsigned char *v;

		while (cap < ps->jlen + n)
			cap *= 2;
		v = realloc(ps->jbuf, cap);
		if (!v) {
			ps->save_wanted = true;	/* the snapshot will hold it */
			return;
		}
		ps->jbuf = v;
		ps->jcap = cap;
	}
	memcpy(ps->jbuf + ps->jlen, buf, n);
	ps->jlen += n;
}

/* The lines are out: their journal records go to disk (one write), and snapshots wanted. */
static void commit_one(struct vw_state *s, struct proj_state *ps)
{
	int ret;

	if (ps->jlen && ps->jfd >= 0) {
		ret = write_all(ps->jfd, ps->jbuf, ps->jlen);
		if (ret) {
			char path[PATH_MAX];

			file_path(s, ps->p, "journal", path, sizeof(path));
			set_error(s, ps, -ret, "write", path);
			journal_close(ps);	/* a torn record ends it; a save starts it afresh */
		} else {
			ps->jbytes += ps->jlen;
			ps->jdirty = true;
		}
	}
	ps->jlen = 0;
	if (ps->jcap > 65536) {	/* a burst's buffer is not kept at its peak */
		free(ps->jbuf);
		ps->jbuf = NULL;
		ps->jcap = 0;
	}
	/* a long journal is folded into a new snapshot (not while a crawl fills the picture) */
	if (ps->jbytes > JOURNAL_COMPACT && ps->jbytes > ps->snap_bytes / 2)
		ps->save_wanted = true;
	if (ps->save_wanted && !ps->rescanning && !ps->p->gone) {
		ps->save_wanted = false;
		save_one(s, ps);
	}
}

void state_commit(struct vw_state *s)
{
	for (size_t i = 0; s && s->dir && i < s->n; i++)
		commit_one(s, &s->ps[i]);
}

/* A fresh journal for generation @gen, put in place atomically. */
static int journal_start(struct vw_state *s, struct proj_state *ps, uint64_t gen)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	unsigned char h[20];
	uint32_t crc;
	int fd, ret;

	journal_close(ps);
	file_path(s, ps->p, "journal", path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	memcpy(h, JRNL_MAGIC, 8);
	memcpy(h + 8, &gen, 8);
	crc = (uint32_t)crc32(0, h, 16);
	memcpy(h + 16, &crc, 4);
	ret = write_all(fd, h, sizeof(h));
	if (!ret && fsync(fd) < 0)
		ret = -errno;
	if (!ret && rename(tmp, path) < 0)
		ret = -errno;
	if (ret) {
		close(fd);
		unlink(tmp);
		return ret;
	}
	ps->jfd = fd;
	ps->jbytes = sizeof(h);
	return 0;
}

/* Write @ps's picture as its snapshot, then start its journal afresh. */
static int save_one(struct vw_state *s, struct proj_state *ps)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	uint64_t gen = ps->gen + 1, count = ps->now.n;
	uLong crc = crc32(0, Z_NULL, 0);
	size_t bytes = 0;
	FILE *f;
	int ret = 0;

	if (!s->dir)
		return 0;
	ret = make_dir_private(s->dir);
	if (ret) {
		set_error(s, NULL, -ret, "create", s->dir);
		return ret;
	}
	/* the identity first: files without it are nobody's after a restart */
	ret = project_write_identity(ps->p, s->dir);
	if (ret) {
		file_path(s, ps->p, "id", path, sizeof(path));
		set_error(s, ps, -ret, "write", path);
		return ret;
	}
	file_path(s, ps->p, "snap", path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen_private(tmp, false);
	if (!f) {
		ret = -errno;
		set_error(s, ps, -ret, "write", tmp);
		return ret;
	}
#define PUT(ptr, len) do { fwrite((ptr), 1, (len), f); crc = crc32(crc, (const Bytef *)(ptr), (uInt)(len)); bytes += (len); } while (0)
	PUT(SNAP_MAGIC, 8);
	PUT(&gen, 8);
	PUT(&count, 8);
	for (size_t b = 0; b < ps->now.nb; b++) {
		for (struct rec *r = ps->now.b[b]; r; r = r->next) {
			struct snap_rec h = { r->ino, r->size, r->mtime_ns, r->ctime_ns, r->mode,
					      (uint32_t)strlen(r->path) };

			PUT(&h, sizeof(h));
			PUT(r->path, h.len);
		}
	}
#undef PUT
	{
		uint32_t c = (uint32_t)crc;

		fwrite(&c, 4, 1, f);
	}
	if (fflush(f) == EOF || ferror(f) || fsync(fileno(f)) < 0)
		ret = errno ? -errno : -EIO;
	if (fclose(f) == EOF && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path) < 0)
		ret = -errno;
	if (ret) {
		unlink(tmp);
		set_error(s, ps, -ret, "write", path);
		return ret;
	}
	ps->gen = gen;
	ps->snap_bytes = bytes;
	ps->jlen = 0;		/* what it held is in the snapshot */
	ret = journal_start(s, ps, gen);
	sync_dir(s->dir);
	if (ret) {
		file_path(s, ps->p, "journal", path, sizeof(path));
		set_error(s, ps, -ret, "write", path);
	} else if (ps->err) {
		log_info("state: %s: its files can be written again: its catch-up after a restart "
			 "is on", ps->p->name);
		ps->err = 0;
		ps->said = false;
	}
	return ret;
}

static struct vw_state_entry entry_of_snap(const struct snap_rec *h)
{
	return (struct vw_state_entry){ h->ino, h->size, h->mtime, h->ctime, h->mode, false };
}

/* Parse a snapshot into @t; false when it fails any check. */
static bool snap_parse(const unsigned char *buf, size_t len, struct table *t, uint64_t *gen)
{
	uint64_t count, seen = 0;
	uint32_t crc;
	size_t off = 24;

	if (len < 28 || memcmp(buf, SNAP_MAGIC, 8) != 0)
		return false;
	memcpy(&crc, buf + len - 4, 4);
	if (crc != (uint32_t)crc32(0, buf, (uInt)(len - 4)))
		return false;
	memcpy(gen, buf + 8, 8);
	memcpy(&count, buf + 16, 8);
	len -= 4;
	while (off < len) {
		struct snap_rec h;
		struct vw_state_entry e;
		char name[PATH_MAX];

		if (len - off < sizeof(h))
			return false;
		memcpy(&h, buf + off, sizeof(h));
		off += sizeof(h);
		if (h.len == 0 || h.len >= sizeof(name) || len - off < h.len)
			return false;
		memcpy(name, buf + off, h.len);
		name[h.len] = 0;
		off += h.len;
		if (memchr(name, 0, h.len))
			return false;
		e = entry_of_snap(&h);
		table_put(t, name, &e);
		seen++;
	}
	return seen == count;
}

static bool get_name(const unsigned char *p, size_t len, size_t *off, char *out)
{
	uint16_t l;

	if (len - *off < 2)
		return false;
	memcpy(&l, p + *off, 2);
	*off += 2;
	if (l == 0 || l >= PATH_MAX || len - *off < l || memchr(p + *off, 0, l))
		return false;
	memcpy(out, p + *off, l);
	out[l] = 0;
	*off += l;
	return true;
}

/* Replay the journal of generation @gen into @t; returns the bytes of whole records. */
static size_t journal_replay(const unsigned char *buf, size_t len, uint64_t gen, struct table *t)
{
	size_t off = 20;
	uint64_t jgen;
	uint32_t crc;

	if (len < 20 || memcmp(buf, JRNL_MAGIC, 8) != 0)
		return 0;
	memcpy(&jgen, buf + 8, 8);
	memcpy(&crc, buf + 16, 4);
	if (crc != (uint32_t)crc32(0, buf, 16) || jgen != gen)
		return 0;	/* another generation's: the snapshot already holds it */
	while (len - off >= 8) {
		uint32_t plen, pcrc;
		const unsigned char *p = buf + off + 8;
		char a[PATH_MAX], b[PATH_MAX];
		size_t o = 1;

		memcpy(&plen, buf + off, 4);
		memcpy(&pcrc, buf + off + 4, 4);
		if (plen == 0 || plen > len - off - 8 || pcrc != (uint32_t)crc32(0, p, plen))
			break;	/* the torn end of a crash */
		switch (p[0]) {
		case J_PUT: {
			struct snap_rec h;
			struct vw_state_entry e;

			if (plen < 1 + sizeof(h))
				return off;
			memcpy(&h, p + 1, sizeof(h));
			o += sizeof(h);
			if (!get_name(p, plen, &o, a))
				return off;
			e = entry_of_snap(&h);
			table_put(t, a, &e);
			break;
		}
		case J_DROP:
			if (!get_name(p, plen, &o, a))
				return off;
			table_del(t, a, true);
			break;
		case J_MOVE:
			if (!get_name(p, plen, &o, a) || !get_name(p, plen, &o, b))
				return off;
			table_move(t, a, b);
			break;
		case J_RESET:
			table_clear(t);
			break;
		default:
			return off;
		}
		off += 8 + plen;
	}
	return off;
}

/* ---- the pictures ---------------------------------------------------------------- */

struct vw_state *state_new(const char *dir)
{
	struct vw_state *s = calloc(1, sizeof(*s));

	if (!s || (dir && !(s->dir = strdup(dir)))) {
		free(s);
		return NULL;
	}
	if (dir) {
		int ret = make_dir_private(dir);

		if (ret)
			set_error(s, NULL, -ret, "create", dir);
	}
	return s;
}

static void ps_release(struct proj_state *ps)
{
	if (ps->jfd >= 0)
		fdatasync(ps->jfd);
	journal_close(ps);
	free(ps->jbuf);
	free(ps->errmsg);
	table_clear(&ps->now);
	table_clear(&ps->before);
}

void state_forget(struct vw_state *s, const struct vw_project *p)
{
	for (size_t i = 0; s && i < s->n; i++) {
		if (s->ps[i].p != p)
			continue;
		if (s->dir)
			commit_one(s, &s->ps[i]);
		ps_release(&s->ps[i]);
		s->ps[i] = s->ps[--s->n];
		return;
	}
}

void state_free(struct vw_state *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		ps_release(&s->ps[i]);
	free(s->ps);
	free(s->dir);
	free(s);
}

static struct proj_state *ps_of(struct vw_state *s, const struct vw_project *p)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->ps[i].p == p)
			return &s->ps[i];
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct proj_state *v = reallocarray(s->ps, cap, sizeof(*v));

		if (!v)
			return NULL;
		s->ps = v;
		s->cap = cap;
	}
	memset(&s->ps[s->n], 0, sizeof(s->ps[0]));
	s->ps[s->n].p = p;
	s->ps[s->n].jfd = -1;
	return &s->ps[s->n++];
}

int state_load(struct vw_state *s, const struct vw_project *p)
{
	struct proj_state *ps = ps_of(s, p);
	char path[PATH_MAX], jpath[PATH_MAX], aside[PATH_MAX + 16];
	unsigned char *buf, *jbuf;
	size_t len, jlen = 0, whole;
	uint64_t gen = 0;
	int ret;

	if (!ps)
		return -ENOMEM;
	table_clear(&ps->now);
	table_clear(&ps->before);
	ps->rescanning = true;	/* the start-up crawl is its rescan */
	ps->starting = true;
	ps->has_before = false;
	if (!s->dir)
		return 0;
	file_path(s, p, "snap", path, sizeof(path));
	file_path(s, p, "journal", jpath, sizeof(jpath));
	buf = read_whole_file(path, &len);
	if (!buf)
		return errno == ENOENT ? 0 : -errno;
	if (!snap_parse(buf, len, &ps->before, &gen)) {
		free(buf);
		table_clear(&ps->before);
		snprintf(aside, sizeof(aside), "%s.damaged", path);
		rename(path, aside);	/* kept for a post-mortem; the crawl rebuilds it */
		unlink(jpath);
		return -VW_STATE_EDAMAGED;
	}
	free(buf);
	ps->gen = gen;
	ps->snap_bytes = len;
	ps->has_before = true;
	jbuf = read_whole_file(jpath, &jlen);
	if (jbuf) {
		whole = journal_replay(jbuf, jlen, gen, &ps->before);
		free(jbuf);
		/* go on appending after the last whole record of this generation */
		if (whole && (ps->jfd = open(jpath, O_WRONLY | O_APPEND | O_CLOEXEC)) >= 0 &&
		    ftruncate(ps->jfd, (off_t)whole) == 0)
			ps->jbytes = whole;
		else
			journal_close(ps);
	}
	if (ps->jfd < 0 && (ret = journal_start(s, ps, gen)) < 0)
		set_error(s, ps, -ret, "write", jpath);
	return 1;
}

void state_begin_rescan(struct vw_state *s, const struct vw_project *p)
{
	struct proj_state *ps = ps_of(s, p);

	if (!ps || ps->rescanning)
		return;
	table_clear(&ps->before);
	ps->before = ps->now;
	memset(&ps->now, 0, sizeof(ps->now));
	ps->rescanning = true;
	ps->has_before = true;
}

bool state_rescanning(struct vw_state *s, const struct vw_project *p)
{
	struct proj_state *ps = ps_of(s, p);

	return ps && ps->rescanning;
}

static bool same_type(uint32_t a, uint32_t b)
{
	return (a & S_IFMT) == (b & S_IFMT);
}

void state_crawled(struct vw_state *s, const struct vw_project *p, const char *rel,
		   const struct stat *st, bool direct, rescan_fn fn, void *ctx)
{
	struct proj_state *ps = ps_of(s, p);
	struct vw_rescan_change c = { .project = p, .path = rel };
	struct vw_state_entry e;
	struct rec *known, *r;
	enum vw_kind ev = VW_KIND_NONE;
	bool retype = false;

	if (!ps || !ps->rescanning || !*rel)
		return;
	known = table_get(&ps->now, rel);
	if (!known && ps->has_before)
		known = table_get(&ps->before, rel);
	if (!st) {	/* changes pending: their line tells it; until then it is as it was */
		if (known && !table_get(&ps->now, rel))
			put_copy(&ps->now, rel, known);
		return;
	}
	entry_of(st, &e);
	if (ps->has_before) {
		if (!known) {
			ev = VW_KIND_CREATE;
		} else if (!same_type(known->mode, e.mode)) {
			ev = VW_KIND_CREATE;
			retype = true;
		} else if (!S_ISDIR(e.mode) && (known->ino != e.ino || known->size != e.size ||
						 known->mtime_ns != e.mtime_ns)) {
			ev = VW_KIND_MODIFY;
		} else if ((known->mode & 07777) != (e.mode & 07777) ||
			   (!S_ISDIR(e.mode) && known->ctime_ns != e.ctime_ns)) {
			ev = VW_KIND_ATTRIB;	/* a directory's ctime moves with its entries */
		}
	}
	if (!ev) {
		table_put(&ps->now, rel, &e);
		return;
	}
	if (!direct) {
		/* its line is still to come: until then the picture holds what was told */
		if (known && known != table_get(&ps->now, rel))
			put_copy(&ps->now, rel, known);
	} else {
		if (retype) {	/* what was there is gone, with all below it */
			table_del(&ps->now, rel, true);
			journal_add(s, ps, J_DROP, rel, NULL, NULL);
		}
		if ((r = table_put(&ps->now, rel, &e)))
			r->said = true;
		journal_add(s, ps, J_PUT, rel, NULL, &e);
	}
	if (retype) {
		c.kind = VW_KIND_DELETE;
		c.mode = known->mode;
		fn(ctx, &c);
	}
	c.kind = ev;
	c.mode = e.mode;
	fn(ctx, &c);
}

static int cmp_path(const void *a, const void *b)
{
	const struct rec *const *x = a, *const *y = b;
	const unsigned char *p = (const unsigned char *)(*x)->path;
	const unsigned char *q = (const unsigned char *)(*y)->path;

	/* '/' first: what is below a directory comes right after it ("d", "d/x", "d-x") */
	for (; *p && *p == *q; p++, q++)
		;
	return (*p == '/' ? 1 : *p ? *p + 1 : 0) - (*q == '/' ? 1 : *q ? *q + 1 : 0);
}

size_t state_end_rescan(struct vw_state *s, const struct vw_project *p, bool direct,
			rescan_fn fn, void *ctx)
{
	struct proj_state *ps = ps_of(s, p);
	struct vw_rescan_change c = { .project = p, .kind = VW_KIND_DELETE };
	struct rec **gone = NULL;
	size_t n = 0, changes = 0;

	if (!ps || !ps->rescanning)
		return 0;
	if (ps->has_before && ps->before.n)
		gone = calloc(ps->before.n, sizeof(*gone));
	for (size_t b = 0; gone && b < ps->before.nb; b++)
		for (struct rec *o = ps->before.b[b]; o; o = o->next)
			if (!table_get(&ps->now, o->path))
				gone[n++] = o;
	/* in path order, a directory comes before what was in it: one line for each top */
	if (n)
		qsort(gone, n, sizeof(*gone), cmp_path);
	for (size_t i = 0, top = SIZE_MAX; i < n; i++) {
		bool under = top != SIZE_MAX &&
			     table_below(gone[i]->path, gone[top]->path, strlen(gone[top]->path));

		if (!direct)	/* told to exist until its line says otherwise */
			put_copy(&ps->now, gone[i]->path, gone[i]);
		if (under)
			continue;
		top = i;
		c.path = gone[i]->path;
		c.mode = gone[i]->mode;
		if (direct)
			journal_add(s, ps, J_DROP, c.path, NULL, NULL);
		fn(ctx, &c);
		changes++;
	}
	free(gone);
	table_clear(&ps->before);
	ps->rescanning = false;
	ps->starting = false;
	ps->has_before = true;
	ps->save_wanted = true;
	return changes;
}

/* What a line told: into the picture, and (while a crawl compares) into what it compares with. */
static void told_put(struct vw_state *s, struct proj_state *ps, const char *rel,
		     const struct vw_state_entry *e)
{
	struct rec *r = table_put(&ps->now, rel, e);

	if (r)
		r->said = true;
	if (ps->rescanning)
		table_put(&ps->before, rel, e);
	journal_add(s, ps, J_PUT, rel, NULL, e);
}

void state_put_said(struct vw_state *s, const struct vw_project *p, const char *rel,
		    const struct stat *st)
{
	struct proj_state *ps = ps_of(s, p);
	struct vw_state_entry e;

	if (!ps || !*rel || !st)
		return;
	entry_of(st, &e);
	told_put(s, ps, rel, &e);
}

void state_put_unknown(struct vw_state *s, const struct vw_project *p, const char *rel,
		       bool is_dir)
{
	struct proj_state *ps = ps_of(s, p);
	/* no inode 0 and no mtime -1 on disk: whatever is found there later differs */
	struct vw_state_entry e = { .mtime_ns = -1, .ctime_ns = -1,
				    .mode = is_dir ? S_IFDIR : S_IFREG };

	if (ps && *rel)
		told_put(s, ps, rel, &e);
}

bool state_lookup(struct vw_state *s, const struct vw_project *p, const char *rel,
		  struct vw_state_entry *out)
{
	struct proj_state *ps = ps_of(s, p);
	struct rec *r = ps && *rel ? table_get(&ps->now, rel) : NULL;

	/* while a rescan refills the picture, what it has not reached is as it was */
	if (!r && ps && *rel && ps->rescanning)
		r = table_get(&ps->before, rel);
	if (!r)
		return false;
	*out = entry_of_rec(r);
	return true;
}

void state_each(struct vw_state *s, const struct vw_project *p, state_each_fn fn, void *ctx)
{
	struct proj_state *ps = ps_of(s, p);

	if (!ps)
		return;
	for (size_t i = 0; i < ps->now.nb; i++)
		for (struct rec *r = ps->now.b[i]; r; r = r->next) {
			struct vw_state_entry e = entry_of_rec(r);

			if (!fn(ctx, r->path, &e))
				return;
		}
}

bool state_complete(struct vw_state *s, const struct vw_project *p)
{
	struct proj_state *ps = ps_of(s, p);

	return ps && (!ps->rescanning || ps->has_before);
}

bool state_starting(struct vw_state *s, const struct vw_project *p)
{
	struct proj_state *ps = ps_of(s, p);

	return ps && ps->starting;
}

bool state_judges(struct vw_state *s, const struct vw_project *p, const char *rel)
{
	struct proj_state *ps = ps_of(s, p);

	if (!ps || !ps->starting || !*rel)
		return true;
	return table_get(&ps->now, rel) || (ps->has_before && table_get(&ps->before, rel));
}

size_t state_count(struct vw_state *s, const struct vw_project *p)
{
	struct proj_state *ps = ps_of(s, p);

	return ps ? ps->now.n : 0;
}

void state_move_tree(struct vw_state *s, const struct vw_project *p, const char *from,
		     const char *to)
{
	struct proj_state *ps = ps_of(s, p);

	if (!ps || !*from || !*to)
		return;
	table_move(&ps->now, from, to);
	if (ps->rescanning)
		table_move(&ps->before, from, to);
	journal_add(s, ps, J_MOVE, from, to, NULL);
}

void state_reset(struct vw_state *s, const struct vw_project *p)
{
	struct proj_state *ps = ps_of(s, p);

	if (!ps)
		return;
	table_clear(&ps->now);
	table_clear(&ps->before);
	ps->rescanning = true;	/* the crawl of the new tree fills it; nothing to compare with */
	ps->starting = true;
	ps->has_before = false;
	journal_add(s, ps, J_RESET, NULL, NULL, NULL);
}

void state_drop_tree(struct vw_state *s, const struct vw_project *p, const char *rel)
{
	struct proj_state *ps = ps_of(s, p);

	if (!ps || !*rel)
		return;
	table_del(&ps->now, rel, true);
	if (ps->rescanning)
		table_del(&ps->before, rel, true);
	journal_add(s, ps, J_DROP, rel, NULL, NULL);
}

int state_save(struct vw_state *s)
{
	int ret = 0;

	if (!s->dir)
		return 0;	/* in memory only */
	for (size_t i = 0; i < s->n; i++) {
		/* a project still being rescanned has a partial picture: its journal covers it */
		if (s->ps[i].p->gone || s->ps[i].rescanning) {
			commit_one(s, &s->ps[i]);
			continue;
		}
		int r = save_one(s, &s->ps[i]);

		if (r && !ret)
			ret = r;
	}
	return ret;
}

static bool state_tick_errs(const struct vw_state *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->ps[i].err && !s->ps[i].p->gone)
			return true;
	return s->err != 0;
}

void state_tick(struct vw_state *s, uint64_t now)
{
	if (!s || !s->dir)
		return;
	if (now - s->last_sync >= SYNC_NS) {
		s->last_sync = now;
		for (size_t i = 0; i < s->n; i++) {
			if (s->ps[i].jfd >= 0 && s->ps[i].jdirty && fdatasync(s->ps[i].jfd) == 0)
				s->ps[i].jdirty = false;
		}
	}
	if (state_tick_errs(s) && now - s->last_retry >= RETRY_NS) {
		int saved = s->err;

		s->last_retry = now;
		s->err = 0;
		/* every project's files while the dir was failing; else only the failing ones' */
		for (size_t i = 0; i < s->n && !s->err; i++)
			if (!s->ps[i].p->gone && !s->ps[i].rescanning && (saved || s->ps[i].err))
				save_one(s, &s->ps[i]);
		for (size_t i = 0; i < s->n && !s->err; i++)
			if (!s->ps[i].p->gone && s->ps[i].jfd < 0 && s->ps[i].has_before)
				journal_start(s, &s->ps[i], s->ps[i].gen);
		if (!s->err && saved) {
			log_info("state: %s works again: catch-up after a restart is on", s->dir);
			s->said = false;
		}
	}
}


bool state_tick_due(const struct vw_state *s)
{
	if (!s || !s->dir)
		return false;
	for (size_t i = 0; i < s->n; i++)
		if (s->ps[i].jfd >= 0 && s->ps[i].jdirty)
			return true;
	return state_tick_errs(s);
}

const char *state_error(const struct vw_state *s)
{
	if (s && s->err)
		return s->errmsg;
	for (size_t i = 0; s && i < s->n; i++)
		if (s->ps[i].err && !s->ps[i].p->gone)
			return s->ps[i].errmsg ? s->ps[i].errmsg : strerror(s->ps[i].err);
	return NULL;
}

const char *state_project_error(struct vw_state *s, const struct vw_project *p)
{
	struct proj_state *ps = s && !s->err ? ps_of(s, p) : NULL;

	if (s && s->err)
		return s->errmsg;
	return ps && ps->err ? (ps->errmsg ? ps->errmsg : strerror(ps->err)) : NULL;
}
