// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// ignore.c: gitignore-style matching: last matching rule wins, ignored directories hide their insides.
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/ignore.h"

#define IGNORE_FILE_MAX (1024 * 1024)	/* bytes of a .gitignore read */
#define VW_IGNORE_FILE_MAX_TEXT "1 MiB"

const char *const vw_default_ignores[] = {
	".git/", ".hg/", ".svn/", "node_modules/", "__pycache__/", "build/", "dist/",
	"*.swp", "*.swo", "*.swx", "*~", ".#*", "#*#", NULL,
};

struct rule {
	char *pat;
	bool negate;	/* "!pat": un-ignore */
	bool dir_only;	/* "pat/": directories only */
	bool anchored;	/* has a '/' before its end: matched against the whole relative path */
};

struct vw_ignore {
	struct rule *r;
	size_t n, cap;
};

struct vw_ignore *ignore_new(void)
{
	return calloc(1, sizeof(struct vw_ignore));
}

void ignore_free(struct vw_ignore *ig)
{
	if (!ig)
		return;
	for (size_t i = 0; i < ig->n; i++)
		free(ig->r[i].pat);
	free(ig->r);
	free(ig);
}

size_t ignore_count(const struct vw_ignore *ig)
{
	return ig->n;
}

bool ignore_only_git(const struct vw_ignore *ig)
{
	for (size_t i = 0; ig && i < ig->n; i++)
		if (ig->r[i].negate || strcmp(ig->r[i].pat, ".git") != 0)
			return false;
	return true;
}

int ignore_add(struct vw_ignore *ig, const char *line)
{
	struct rule r = {};
	size_t len;
	char *p;

	while (*line == ' ' || *line == '\t')
		line++;
	if (!*line || *line == '#' || *line == '\n')
		return 0;
	if (*line == '!') {
		r.negate = true;
		line++;
	} else if (line[0] == '\\' && (line[1] == '!' || line[1] == '#')) {
		line++;
	}
	p = strdup(line);
	if (!p)
		return -ENOMEM;
	len = strcspn(p, "\r\n");
	while (len && (p[len - 1] == ' ' || p[len - 1] == '\t') && (len < 2 || p[len - 2] != '\\'))
		len--;	/* trailing blanks, unless escaped */
	p[len] = 0;
	if (len && p[len - 1] == '/') {
		r.dir_only = true;
		p[--len] = 0;
	}
	r.anchored = strchr(p, '/') != NULL;
	if (p[0] == '/')
		memmove(p, p + 1, len--);
	if (!*p) {
		free(p);
		return 0;
	}
	r.pat = p;
	if (ig->n == ig->cap) {
		size_t cap = ig->cap ? ig->cap * 2 : 16;
		struct rule *v = reallocarray(ig->r, cap, sizeof(*v));

		if (!v) {
			free(p);
			return -ENOMEM;
		}
		ig->r = v;
		ig->cap = cap;
	}
	ig->r[ig->n++] = r;
	return 0;
}

/*
 * The file is a user's (a .gitignore in their project), read by root: never
 * followed through a symlink, never a fifo or a device (a fifo would block the
 * daemon, /dev/zero would never end), never more than IGNORE_FILE_MAX.
 */
int ignore_add_file(struct vw_ignore *ig, const char *path)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);

	return ignore_add_fd(ig, fd < 0 ? -errno : fd);
}

int ignore_add_fd(struct vw_ignore *ig, int fd)
{
	char *buf = NULL, *line, *save = NULL;
	struct stat st;
	ssize_t n = 0;
	int ret = 0;

	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;	/* ELOOP: a symlink */
	if (fstat(fd, &st) < 0)
		ret = -errno;
	else if (!S_ISREG(st.st_mode))
		ret = -EINVAL;
	else if (st.st_size > IGNORE_FILE_MAX)
		ret = -EFBIG;
	else if (!(buf = malloc((size_t)st.st_size + 1)))
		ret = -ENOMEM;
	else if ((n = read(fd, buf, (size_t)st.st_size)) < 0)
		ret = -errno;
	close(fd);
	if (!ret) {
		buf[n] = 0;
		for (line = strtok_r(buf, "\n", &save); line && !ret;
		     line = strtok_r(NULL, "\n", &save))
			ret = ignore_add(ig, line);
	}
	free(buf);
	return ret;
}

const char *ignore_file_error(int err)
{
	switch (err) {
	case -ELOOP:
		return "a symlink (not followed)";
	case -EREMOTE:
		return "on a FUSE file system a user mounted (never looked into)";
	case -EINVAL:
		return "not a regular file";
	case -EFBIG:
		return "larger than " VW_IGNORE_FILE_MAX_TEXT;
	default:
		return strerror(-err);
	}
}

/* One bracket expression at *pp against c; advances *pp past it. Returns 1, 0, or -1 (not a class). */
static int class_match(const char **pp, char c)
{
	const char *p = *pp, *end = p + 1;
	char cls[64], one[2] = { c, 0 };
	size_t n;

	if (*end == '!' || *end == '^')
		end++;
	if (*end == ']')
		end++;
	end = strchr(end, ']');
	if (!end || (n = end - p + 1) >= sizeof(cls))
		return -1;
	memcpy(cls, p, n);
	cls[n] = 0;
	if (cls[1] == '^')
		cls[1] = '!';
	*pp = end + 1;
	return c != '/' && fnmatch(cls, one, 0) == 0;
}

/*
 * Where a star may stop is a choice, and with several stars the choices
 * multiply: "*a*a*a*a*b" against a long run of "a"s would take exponential
 * time. Whether the rest of the pattern from a star matches the rest of the
 * name depends only on those two places, so a pattern with two stars or more
 * remembers each (star, place in the name) that failed and never tries it
 * again: at most stars x name length tries.
 */
struct glob_memo {
	const char *p0, *s0;
	size_t slen;
	uint16_t *star;		/* star[p - p0]: the number of that star */
	unsigned char *failed;	/* bit (star, s - s0) */
};

/* The bit of (the star at @p, the place @s in the name). */
static size_t memo_bit(const struct glob_memo *m, const char *p, const char *s)
{
	return (size_t)m->star[p - m->p0] * (m->slen + 1) + (size_t)(s - m->s0);
}

static bool memo_failed(const struct glob_memo *m, const char *p, const char *s)
{
	size_t bit;

	if (!m)
		return false;
	bit = memo_bit(m, p, s);
	return m->failed[bit / 8] & (1u << (bit % 8));
}

/* Remember that the star at @p fails from @s on; returns false, the verdict. */
static bool memo_fail(const struct glob_memo *m, const char *p, const char *s)
{
	size_t bit;

	if (m) {
		bit = memo_bit(m, p, s);
		m->failed[bit / 8] |= (unsigned char)(1u << (bit % 8));
	}
	return false;
}

static bool glob_at(const struct glob_memo *m, const char *p, const char *s)
{
	for (;;) {
		if (p[0] == '*' && memo_failed(m, p, s))
			return false;
		if (p[0] == '*' && p[1] == '*') {
			const char *star = p;

			p += 2;
			if (*p == '/')
				p++;	/* "**" + "/" : zero or more whole directories */
			if (!*p)
				return true;
			for (const char *t = s;; t++) {
				if (glob_at(m, p, t))
					return true;
				t = strchr(t, '/');
				if (!t)
					return memo_fail(m, star, s);
			}
		}
		if (*p == '*') {
			const char *star = p, *from = s;

			p++;
			for (;; s++) {
				if (glob_at(m, p, s))
					return true;
				if (!*s || *s == '/')
					return memo_fail(m, star, from);
			}
		}
		if (!*p)
			return !*s;
		if (!*s)
			return false;
		if (*p == '?') {
			if (*s == '/')
				return false;
		} else if (*p == '[') {
			const char *q = p;
			int c = class_match(&q, *s);

			if (c >= 0) {
				if (!c)
					return false;
				p = q;
				s++;
				continue;
			}
			if (*s != '[')
				return false;
		} else {
			if (*p == '\\' && p[1])
				p++;
			if (*p != *s)
				return false;
		}
		p++;
		s++;
	}
}

bool glob_match(const char *p, const char *s)
{
	uint16_t star_buf[128];
	unsigned char failed_buf[256];
	size_t plen = strlen(p), stars = 0, bytes;
	struct glob_memo m;
	bool ok;

	for (size_t i = 0; i < plen; i++)
		stars += p[i] == '*';
	if (stars < 2 || stars > UINT16_MAX)
		return glob_at(NULL, p, s);
	m.p0 = p;
	m.s0 = s;
	m.slen = strlen(s);
	bytes = stars * (m.slen + 1) / 8 + 1;
	/* the usual pattern and name fit on the stack: no allocation per match */
	m.star = plen < 128 ? star_buf : malloc((plen + 1) * sizeof(*m.star));
	m.failed = bytes <= sizeof(failed_buf) ? memset(failed_buf, 0, bytes) : calloc(bytes, 1);
	if (m.star && m.failed) {
		for (size_t i = 0, k = 0; i <= plen; i++)
			m.star[i] = (uint16_t)(p[i] == '*' ? k++ : k);
		ok = glob_at(&m, p, s);
	} else {
		ok = glob_at(NULL, p, s);	/* slow, but right */
	}
	if (m.star != star_buf)
		free(m.star);
	if (m.failed != failed_buf)
		free(m.failed);
	return ok;
}

/* The verdict of the rules for one path (not its parents): 1 ignore, 0 keep, -1 no rule matched. */
static int verdict(const struct vw_ignore *ig, const char *rel, bool is_dir)
{
	const char *base = strrchr(rel, '/');

	base = base ? base + 1 : rel;
	for (size_t i = ig->n; i-- > 0;) {
		const struct rule *r = &ig->r[i];

		if (r->dir_only && !is_dir)
			continue;
		if (glob_match(r->pat, r->anchored ? rel : base))
			return !r->negate;
	}
	return -1;
}

bool ignore_match(const struct vw_ignore *ig, const char *rel, bool is_dir)
{
	char buf[PATH_MAX];
	size_t len = strlen(rel);

	if (!ig || !ig->n || len >= sizeof(buf))
		return false;
	memcpy(buf, rel, len + 1);
	/* parents first: "a", "a/b", ... */
	for (char *slash = strchr(buf, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = 0;
		if (verdict(ig, buf, true) == 1)
			return true;
		*slash = '/';
	}
	return verdict(ig, buf, is_dir) == 1;
}

bool globs_match(char *const *pats, size_t n, const char *rel)
{
	const char *base = strrchr(rel, '/');

	base = base ? base + 1 : rel;
	for (size_t i = 0; i < n; i++)
		if (glob_match(pats[i], strchr(pats[i], '/') ? rel : base))
			return true;
	return !n;
}
