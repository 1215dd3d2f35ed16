// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// changes.c: per-project change logs with cursors (see changes.h).
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/changes.h"
#include "core/log.h"
#include "core/util.h"

#define CHANGES_MAGIC "vfswatch-changes 1"

struct log {
	uint32_t id;		/* the project's */
	int fd;			/* -1: in memory (no state dir) */
	char *path;
	uint64_t epoch, first, next;	/* the oldest line kept, the number the next one gets */
	uint64_t size;
	bool dirty;
	bool said;		/* a write failure was logged */
	char *mem;		/* in memory: the same text as the file */
	size_t mlen, mcap;
	char *pend;		/* lines for the file not written yet (changes_flush()) */
	size_t plen, pcap;
	/*
	 * Where every IX_EVERY-th line starts in the text (header included): a
	 * query since a recent cursor reads from there, not the whole log.
	 */
	struct ix {
		uint64_t seq, off;
	} *ix;
	size_t nix, cix;
};

#define IX_EVERY 64

#define PEND_MAX (256 * 1024)	/* written at once past this */

struct vw_changes {
	char *dir;
	bool renew;	/* the daemon did not stop cleanly: every log starts a new epoch */
	uint64_t max;
	struct log *logs;
	size_t n;
};

struct vw_changes *changes_new(const char *dir, uint64_t max_bytes)
{
	struct vw_changes *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	if (dir && !(c->dir = strdup(dir))) {
		free(c);
		return NULL;
	}
	c->max = max_bytes < 4096 ? 4096 : max_bytes;
	return c;
}

static int log_flush(struct log *l);

/* Line @seq starts at byte @off of the log's text. */
static void ix_add(struct log *l, uint64_t seq, uint64_t off)
{
	if (seq % IX_EVERY)
		return;
	if (l->nix == l->cix) {
		size_t cap = l->cix ? l->cix * 2 : 64;
		struct ix *v = reallocarray(l->ix, cap, sizeof(*v));

		if (!v)
			return;	/* a query then reads from an earlier line: slower, as right */
		l->ix = v;
		l->cix = cap;
	}
	l->ix[l->nix++] = (struct ix){ seq, off };
}

/* The text was rewritten from byte @from on (the lines before @first gone), @head bytes of header. */
static void ix_trim(struct log *l, uint64_t first, uint64_t from, uint64_t head)
{
	size_t k = 0;

	for (size_t i = 0; i < l->nix; i++)
		if (l->ix[i].seq >= first && l->ix[i].off >= from)
			l->ix[k++] = (struct ix){ l->ix[i].seq, l->ix[i].off - from + head };
	l->nix = k;
}

/* The offset of the last indexed line at or before line @seq (0: the start of the text). */
static uint64_t ix_find(const struct log *l, uint64_t seq)
{
	size_t lo = 0, hi = l->nix;

	while (lo < hi) {	/* the first entry past @seq */
		size_t mid = (lo + hi) / 2;

		if (l->ix[mid].seq <= seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? l->ix[lo - 1].off : 0;
}

static void log_release(struct log *l)
{
	free(l->ix);
	free(l->pend);
	if (l->fd >= 0)
		close(l->fd);
	free(l->path);
	free(l->mem);
}

void changes_renew(struct vw_changes *c)
{
	c->renew = true;
}

void changes_free(struct vw_changes *c)
{
	if (!c)
		return;
	changes_flush(c);
	for (size_t i = 0; i < c->n; i++)
		log_release(&c->logs[i]);
	free(c->logs);
	free(c->dir);
	free(c);
}

static int header(const struct log *l, char *buf, size_t n)
{
	return snprintf(buf, n, CHANGES_MAGIC " %016" PRIx64 " %" PRIu64 "\n", l->epoch, l->first);
}

/* The text of a log (file or memory) from byte @from on: a new buffer, NUL-terminated. */
static char *slurp_from(const struct log *l, uint64_t from, size_t *len)
{
	struct stat st;
	char *buf;
	size_t got = 0, size;

	if (l->fd < 0) {
		size = from < l->mlen ? l->mlen - (size_t)from : 0;
		if (!(buf = malloc(size + 1)))
			return NULL;
		memcpy(buf, l->mem + (l->mlen - size), size);
		buf[size] = 0;
		*len = size;
		return buf;
	}
	if (fstat(l->fd, &st) < 0)
		return NULL;
	size = (uint64_t)st.st_size > from ? (size_t)((uint64_t)st.st_size - from) : 0;
	if (!(buf = malloc(size + 1)))
		return NULL;
	while (got < size) {
		ssize_t r = pread(l->fd, buf + got, size - got, (off_t)(from + got));

		if (r <= 0)
			break;
		got += (size_t)r;
	}
	buf[got] = 0;
	*len = got;
	return buf;
}

/* The whole text of a log (file or memory): a new buffer, NUL-terminated. */
static char *slurp(const struct log *l, size_t *len)
{
	return slurp_from(l, 0, len);
}

/* Read an existing log: its header, and the number of its last line. false: not a log. */
static bool parse_log(struct log *l, const char *text, size_t len)
{
	const char *nl = memchr(text, '\n', len), *p;
	char magic[32];
	uint64_t epoch, first;

	if (!nl || sscanf(text, "vfswatch-changes %31s %" SCNx64 " %" SCNu64, magic, &epoch,
			  &first) != 3 || strcmp(magic, "1") != 0 || first == 0 ||
	    first > UINT64_MAX / 4)
		return false;
	l->epoch = epoch;
	l->first = first;
	l->next = first;
	l->nix = 0;
	/* every whole line is "<seq> <json>", numbered on from the header's first */
	for (p = nl + 1; p < text + len; p = nl + 1) {
		char *end;

		nl = memchr(p, '\n', (size_t)(text + len - p));
		if (!nl)
			break;	/* a torn last line (a crash mid-write) is dropped */
		if (!isdigit((unsigned char)*p) || strtoull(p, &end, 10) != l->next || *end != ' ' ||
		    end >= nl)
			return false;
		ix_add(l, l->next, (uint64_t)(p - text));
		l->next++;
	}
	l->size = (uint64_t)(nl ? len : (size_t)(p - text));
	return true;
}

static int fresh_log(struct log *l)
{
	char h[96];
	int n;

	if (getrandom(&l->epoch, sizeof(l->epoch), 0) != sizeof(l->epoch))
		l->epoch = now_ns(CLOCK_REALTIME) ^ ((uint64_t)getpid() << 32);
	l->first = l->next = 1;
	l->nix = 0;
	n = header(l, h, sizeof(h));
	l->size = (uint64_t)n;
	if (l->fd < 0) {
		free(l->mem);
		l->mem = strdup(h);
		l->mlen = l->mem ? (size_t)n : 0;
		l->mcap = l->mem ? (size_t)n + 1 : 0;
		return l->mem ? 0 : -ENOMEM;
	}
	if (ftruncate(l->fd, 0) < 0 || pwrite(l->fd, h, (size_t)n, 0) != n)
		return -errno;
	return 0;
}

static struct log *log_of(struct vw_changes *c, const struct vw_project *p)
{
	struct log *l, *v;
	char path[PATH_MAX];
	size_t len = 0;
	char *text;

	for (size_t i = 0; i < c->n; i++)
		if (c->logs[i].id == p->id)
			return &c->logs[i];
	v = reallocarray(c->logs, c->n + 1, sizeof(*v));
	if (!v)
		return NULL;
	c->logs = v;
	l = &c->logs[c->n];
	*l = (struct log){ .id = p->id, .fd = -1 };
	if (c->dir) {
		project_file(p, c->dir, "changes", path, sizeof(path));
		l->path = strdup(path);
		l->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (l->fd < 0)	/* kept in memory, and tried again at every sync */
			log_warnx("changes: %s: %s; cursors of %s last until the daemon stops, or "
				  "the file can be written", path, strerror(errno), p->name);
	}
	c->n++;
	text = l->fd >= 0 ? slurp(l, &len) : NULL;
	if (text && c->renew && parse_log(l, text, len)) {
		/* lines since the last sync may be lost, numbers reused: no cursor of it holds */
		log_info("changes: %s: the daemon did not stop cleanly: a new epoch (clients "
			 "read the project anew)", l->path);
		len = 0;
		free(text);
		text = NULL;
	}
	if (!text || !parse_log(l, text, len)) {
		if (len)
			log_warnx("changes: %s is not a change log; started afresh", l->path);
		if (fresh_log(l) < 0 && l->fd >= 0) {
			close(l->fd);
			l->fd = -1;
			fresh_log(l);
		}
	} else if (l->size < len && ftruncate(l->fd, (off_t)l->size) < 0) {
		log_warnx("changes: %s: %s", l->path, strerror(errno));
	}
	free(text);
	return l;
}

static void cursor_of(const struct log *l, uint64_t seq, char cursor[VW_CURSOR_MAX])
{
	snprintf(cursor, VW_CURSOR_MAX, "%016" PRIx64 ".%" PRIu64, l->epoch, seq);
}

/* Write what is pending to the file. 0 or -errno. */
static int log_flush(struct log *l)
{
	size_t done = 0;

	while (l->fd >= 0 && done < l->plen) {
		ssize_t w = write(l->fd, l->pend + done, l->plen - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			l->plen = 0;
			return w < 0 ? -errno : -EIO;
		}
		done += (size_t)w;
	}
	if (l->plen)
		l->dirty = true;
	l->plen = 0;
	return 0;
}

/* Keep the newest half: rewrite the log from the first line past its middle. */
static int trim(struct vw_changes *c, struct log *l)
{
	size_t len = 0, keep_from;
	char *text, *p, h[96], tmp[PATH_MAX];
	int n, fd, ret = log_flush(l);

	if (ret)
		return ret;
	text = slurp(l, &len);
	if (!text)
		return -ENOMEM;
	p = memchr(text + len / 2, '\n', len - len / 2);
	keep_from = p ? (size_t)(p + 1 - text) : len;
	l->first = keep_from < len ? strtoull(text + keep_from, NULL, 10) : l->next;
	n = header(l, h, sizeof(h));
	ix_trim(l, l->first, keep_from, (uint64_t)n);
	if (l->fd < 0) {
		char *m = malloc((size_t)n + len - keep_from + 1);

		if (m) {
			memcpy(m, h, (size_t)n);
			memcpy(m + n, text + keep_from, len - keep_from);
			free(l->mem);
			l->mem = m;
			l->mlen = (size_t)n + len - keep_from;
			l->mcap = l->mlen + 1;
			l->mem[l->mlen] = 0;
		}
		l->size = l->mlen;
		free(text);
		return 0;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", l->path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, h, (size_t)n) != n ||
	    write(fd, text + keep_from, len - keep_from) != (ssize_t)(len - keep_from) ||
	    fdatasync(fd) < 0 || rename(tmp, l->path) < 0) {
		ret = -errno;
		if (fd >= 0)
			close(fd);
		unlink(tmp);
	} else {
		close(l->fd);
		close(fd);
		l->fd = open(l->path, O_RDWR | O_APPEND | O_CLOEXEC);
		l->size = (uint64_t)n + len - keep_from;
		if (l->fd < 0)
			ret = -errno;
	}
	(void)c;
	free(text);
	return ret;
}

void changes_next(struct vw_changes *c, const struct vw_project *p, char cursor[VW_CURSOR_MAX])
{
	struct log *l = log_of(c, p);

	cursor[0] = 0;
	if (l)
		cursor_of(l, l->next, cursor);
}

int changes_add(struct vw_changes *c, const struct vw_project *p, const char *line, size_t len)
{
	struct log *l = log_of(c, p);
	char **buf;
	size_t *blen, *bcap, need;
	int n, ret = 0;

	if (!l)
		return -ENOMEM;
	/* the file's lines wait in pend (one write a batch); a memory log is its own buffer */
	buf = l->fd >= 0 ? &l->pend : &l->mem;
	blen = l->fd >= 0 ? &l->plen : &l->mlen;
	bcap = l->fd >= 0 ? &l->pcap : &l->mcap;
	need = *blen + len + 24;
	if (need > *bcap) {	/* doubling: a line at a time would copy the log each time */
		size_t cap = *bcap ? *bcap * 2 : 65536;
		char *m;

		while (cap < need)
			cap *= 2;
		m = realloc(*buf, cap);
		if (!m)
			return -ENOMEM;
		*buf = m;
		*bcap = cap;
	}
	ix_add(l, l->next, l->size);	/* where it starts once written */
	n = sprintf(*buf + *blen, "%" PRIu64 " ", l->next);
	memcpy(*buf + *blen + n, line, len);
	(*buf)[*blen + n + len] = '\n';
	(*buf)[*blen + n + len + 1] = 0;
	n += (int)len + 1;
	*blen += (size_t)n;
	l->next++;
	if (l->fd >= 0 && l->plen >= PEND_MAX)
		ret = log_flush(l);
	l->size += (uint64_t)n;
	if (!ret && l->size > c->max)
		ret = trim(c, l);
	if (ret && !l->said) {
		log_warnx("changes: %s: %s; clients asking what changed get a full listing",
			  l->path ? l->path : p->name, strerror(-ret));
		l->said = true;
	}
	return ret;
}

void changes_cursor(struct vw_changes *c, const struct vw_project *p, char cursor[VW_CURSOR_MAX])
{
	struct log *l = log_of(c, p);

	cursor[0] = 0;
	if (l)
		cursor_of(l, l->next - 1, cursor);
}

bool changes_cursor_parse(const char *cursor, uint64_t *epoch, uint64_t *seq)
{
	uint64_t e, n;
	char tail;

	if (!cursor || sscanf(cursor, "%16" SCNx64 ".%" SCNu64 "%c", &e, &n, &tail) != 2 ||
	    strlen(cursor) < 18 || cursor[16] != '.')
		return false;
	if (epoch)
		*epoch = e;
	if (seq)
		*seq = n;
	return true;
}

int changes_since(struct vw_changes *c, const struct vw_project *p, const char *cursor,
		  changes_fn fn, void *ctx)
{
	struct log *l = log_of(c, p);
	uint64_t epoch, seq, from;
	char *text, *q, *nl;
	size_t len = 0;
	int ret = 0;

	if (!l)
		return -ENOMEM;
	if (!changes_cursor_parse(cursor, &epoch, &seq) || epoch != l->epoch ||
	    seq + 1 < l->first || seq >= l->next || l->said)
		return -ESTALE;
	if (seq + 1 == l->next)
		return 0;	/* nothing since */
	if (log_flush(l) < 0)
		return -ESTALE;
	from = ix_find(l, seq + 1);	/* a line at or before the first one wanted */
	text = slurp_from(l, from, &len);
	if (!text)
		return -ENOMEM;
	q = from ? text : memchr(text, '\n', len);	/* from the start: past the header */
	for (q = q ? q + (from ? 0 : 1) : text + len; q < text + len && !ret; q = nl + 1) {
		char *json;
		uint64_t n;

		nl = memchr(q, '\n', (size_t)(text + len - q));
		if (!nl)
			break;
		if (!isdigit((unsigned char)*q))
			continue;	/* not a line of ours (the file was changed under us) */
		n = strtoull(q, &json, 10);
		if (n > seq && *json == ' ' && json < nl)
			ret = fn(ctx, json + 1, (size_t)(nl - json - 1));
	}
	free(text);
	return ret;
}

/* A log kept in memory because its file could not be opened: to the file, if it opens now. */
static void retry_file(struct log *l)
{
	int fd = open(l->path, O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);

	if (fd < 0)
		return;
	if (write(fd, l->mem, l->mlen) != (ssize_t)l->mlen || fdatasync(fd) < 0) {
		close(fd);
		return;
	}
	l->fd = fd;
	free(l->mem);
	l->mem = NULL;
	l->mlen = l->mcap = 0;
	log_info("changes: %s: written again; cursors outlive the daemon again", l->path);
}

void changes_flush(struct vw_changes *c)
{
	for (size_t i = 0; c && i < c->n; i++) {
		struct log *l = &c->logs[i];
		int ret = l->plen ? log_flush(l) : 0;

		if (ret && !l->said) {
			log_warnx("changes: %s: %s; clients asking what changed get a full listing",
				  l->path, strerror(-ret));
			l->said = true;
		}
	}
}

void changes_forget(struct vw_changes *c, const struct vw_project *p)
{
	for (size_t i = 0; c && i < c->n; i++) {
		struct log *l = &c->logs[i];

		if (l->id != p->id)
			continue;
		if (log_flush(l) == 0 && l->fd >= 0 && l->dirty)
			fdatasync(l->fd);	/* what changes_sync() has not synced yet */
		log_release(l);
		c->logs[i] = c->logs[--c->n];
		return;
	}
}

void changes_sync(struct vw_changes *c)
{
	changes_flush(c);
	for (size_t i = 0; c && i < c->n; i++) {
		if (c->logs[i].fd < 0 && c->logs[i].path && c->logs[i].mem)
			retry_file(&c->logs[i]);
		if (c->logs[i].fd >= 0 && c->logs[i].dirty)
			fdatasync(c->logs[i].fd);
		c->logs[i].dirty = false;
	}
}
