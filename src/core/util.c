// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// util.c: small pure helpers shared by the daemon and its unit tests.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "core/util.h"
#include "vw_events.h"

int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (*end)
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

const char *errstr(int err)
{
	static char buf[256];

	libbpf_strerror(err, buf, sizeof(buf));
	return buf;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
	uint32_t cp;
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates, beyond U+10FFFF */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

bool utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n;

	while (i < len) {
		if (p[i] == 0)
			return false;	/* NUL cannot be in a path; treat as invalid */
		n = utf8_seq(p + i, len - i);
		if (!n)
			return false;
		i += n;
	}
	return true;
}

char *utf8_lossy(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	char *out = malloc(len * 3 + 1), *o = out;
	size_t i = 0, n;

	if (!out)
		return NULL;
	while (i < len) {
		n = p[i] ? utf8_seq(p + i, len - i) : 0;
		if (n) {
			memcpy(o, p + i, n);
			o += n;
			i += n;
		} else {
			memcpy(o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	*o = 0;
	return out;
}

char *base64_encode(const unsigned char *s, size_t len)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
	size_t i;

	if (!out)
		return NULL;
	for (i = 0; i + 2 < len; i += 3) {
		*o++ = tab[s[i] >> 2];
		*o++ = tab[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
		*o++ = tab[((s[i + 1] & 15) << 2) | (s[i + 2] >> 6)];
		*o++ = tab[s[i + 2] & 63];
	}
	if (i < len) {
		*o++ = tab[s[i] >> 2];
		if (i + 1 < len) {
			*o++ = tab[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
			*o++ = tab[(s[i + 1] & 15) << 2];
		} else {
			*o++ = tab[(s[i] & 3) << 4];
			*o++ = '=';
		}
		*o++ = '=';
	}
	*o = 0;
	return out;
}

char *base64_decode(const char *s, size_t *len)
{
	size_t n = strlen(s), o = 0;
	uint32_t acc = 0;
	int bits = 0;
	char *out = malloc(n / 4 * 3 + 3);

	if (!out || n % 4) {
		free(out);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		const char c = s[i];
		int v = c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26 :
			c >= '0' && c <= '9' ? c - '0' + 52 : c == '+' ? 62 : c == '/' ? 63 : -1;

		if (c == '=' && i + 2 >= n && (i + 1 == n || s[i + 1] == '='))
			break;	/* padding, at the end only */
		if (v < 0) {
			free(out);
			return NULL;
		}
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)(acc >> bits & 0xff);
		}
	}
	out[o] = 0;
	if (len)
		*len = o;
	return out;
}

size_t path_normalize(char *path)
{
	char *r = path, *w = path + 1;	/* output: "/" then "seg/seg/..." */

	path[0] = '/';
	while (*r) {
		char *seg;
		size_t n;

		while (*r == '/')
			r++;
		if (!*r)
			break;
		seg = r;
		while (*r && *r != '/')
			r++;
		n = r - seg;
		if (n == 1 && seg[0] == '.')
			continue;
		if (n == 2 && seg[0] == '.' && seg[1] == '.') {
			while (w > path + 1 && w[-1] != '/')
				w--;
			if (w > path + 1)
				w--;	/* the separator before the dropped segment */
			continue;
		}
		/* In place is safe: at least one '/' precedes seg, so w < seg here. */
		if (w > path + 1)
			*w++ = '/';
		memmove(w, seg, n);
		w += n;
	}
	*w = 0;
	return w - path;
}

const char *path_below(const char *path, const char *root)
{
	size_t n = strlen(root);

	if (n == 1 && root[0] == '/')
		return path[0] == '/' ? path + 1 : NULL;
	if (strncmp(path, root, n) != 0)
		return NULL;
	if (path[n] == 0)
		return path + n;
	if (path[n] == '/')
		return path + n + 1;
	return NULL;
}

uint32_t kernel_dev(dev_t dev)
{
	return (uint32_t)((major(dev) << 20) | minor(dev));
}

uint64_t vw_hash_component(uint64_t h, const char *comp, size_t len, bool first)
{
	size_t i;

	if (!first)
		h = (h ^ (unsigned char)VW_HASH_SEP) * VW_HASH_PRIME;
	for (i = 0; i < len; i++)
		h = (h ^ (unsigned char)comp[i]) * VW_HASH_PRIME;
	return h;
}

uint64_t vw_path_key(uint32_t project, const char *path)
{
	uint64_t h = vw_hash_component(VW_HASH_INIT, (const char *)&project, sizeof(project), true);

	h = vw_hash_component(h, path, strlen(path), false);
	return h == 0 || h == UINT64_MAX ? 1 : h;
}

uint64_t now_ns(int clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

void format_boot_ns(uint64_t boot_ns, char *buf, size_t size)
{
	static time_t last_sec = -1;	/* the date and time of day only change once a second */
	static char last[32];
	uint64_t wall = now_ns(CLOCK_REALTIME) - now_ns(CLOCK_BOOTTIME) + boot_ns;
	time_t sec = wall / 1000000000ull;
	unsigned us = (unsigned)(wall % 1000000000ull / 1000);
	size_t n;
	struct tm tm;

	if (sec != last_sec) {
		gmtime_r(&sec, &tm);
		strftime(last, sizeof(last), "%Y-%m-%dT%H:%M:%S", &tm);
		last_sec = sec;
	}
	n = strlen(last);
	if (size < n + 8) {	/* callers pass 32 bytes or more */
		if (size)
			*buf = 0;
		return;
	}
	memcpy(buf, last, n);
	buf[n++] = '.';
	for (int i = 5; i >= 0; i--, us /= 10)
		buf[n + i] = (char)('0' + us % 10);
	buf[n + 6] = 'Z';
	buf[n + 7] = 0;
}

FILE *fopen_private(const char *path, bool append)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (append ? O_APPEND : O_TRUNC),
		      0600);
	FILE *f = fd >= 0 ? fdopen(fd, append ? "a" : "w") : NULL;

	if (fd >= 0 && !f)
		close(fd);
	return f;
}

int make_dir_private(const char *dir)
{
	char buf[PATH_MAX];

	if (snprintf(buf, sizeof(buf), "%s", dir) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *q = buf + 1; *q; q++) {
		if (*q != '/')
			continue;
		*q = 0;
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*q = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Read a whole file; NULL with errno set on failure. */
unsigned char *read_whole_file(const char *path, size_t *len)
{
	unsigned char *buf = NULL;
	size_t cap = 0, n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	for (;;) {
		ssize_t r;

		if (n == cap) {
			unsigned char *v = realloc(buf, cap ? cap * 2 : 65536);

			if (!v) {
				free(buf);
				close(fd);
				errno = ENOMEM;
				return NULL;
			}
			buf = v;
			cap = cap ? cap * 2 : 65536;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;

			free(buf);
			close(fd);
			errno = e;
			return NULL;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	*len = n;
	return buf;
}
