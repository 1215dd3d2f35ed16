/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * fuzz.h: what the libFuzzer targets share: a scratch directory, files written
 * from an input, a request sent through a real socket server, and the check
 * every output line must pass (one JSON object, valid UTF-8, no raw newline).
 * A failed check aborts, which libFuzzer keeps as a crashing input.
 */
#ifndef VW_FUZZ_H
#define VW_FUZZ_H

#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>
#include <wchar.h>
#include <cjson/cJSON.h>

#include "core/log.h"
#include "core/loop.h"

#define FUZZ_CHECK(cond)                                                                   \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "fuzz check failed: %s (%s:%d)\n", #cond, __FILE__, \
				__LINE__);                                                 \
			abort();                                                           \
		}                                                                          \
	} while (0)

/* A scratch directory for this process, made once (removed by nothing: it is /tmp). */
static inline const char *fuzz_dir(void)
{
	static char dir[64];

	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/vw-fuzz-XXXXXX");
		FUZZ_CHECK(mkdtemp(dir));
		setlocale(LC_ALL, "C.UTF-8");
		log_init(0);
	}
	return dir;
}

static inline void fuzz_write(const char *path, const uint8_t *d, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(write(fd, d, n) == (ssize_t)n);
	close(fd);
}

/* Valid UTF-8 by the C library's decoder (not the project's own). */
static inline bool fuzz_utf8(const char *s)
{
	mbstate_t st;

	memset(&st, 0, sizeof(st));
	return mbsrtowcs(NULL, &s, 0, &st) != (size_t)-1;
}

/* Each line of @buf is one JSON object in valid UTF-8; returns how many lines. */
static inline size_t fuzz_json_lines(const char *buf, size_t len)
{
	size_t lines = 0;

	FUZZ_CHECK(len == 0 || buf[len - 1] == '\n');
	while (len) {
		const char *nl = memchr(buf, '\n', len);
		size_t l = (size_t)(nl - buf);
		char *line = strndup(buf, l);
		const char *end = NULL;
		cJSON *j;

		FUZZ_CHECK(line && strlen(line) == l);	/* no NUL inside a line */
		FUZZ_CHECK(fuzz_utf8(line));
		j = cJSON_ParseWithOpts(line, &end, true);
		FUZZ_CHECK(cJSON_IsObject(j));
		cJSON_Delete(j);
		free(line);
		lines++;
		len -= l + 1;
		buf = nl + 1;
	}
	return lines;
}

/*
 * Send @d to the Unix socket server at @path that @loop serves, as a client
 * would (then shut the writing side), and collect what it answers until it
 * closes; a connection it keeps (a subscription) is closed by the client after
 * a quiet spell. Returns the answer (malloc'd, NUL-ended) and its length.
 */
/*
 * Send @d to the socket at @path as the peer @uid (0: as we are; another: the
 * connection is made with that uid and gid, this thread's own credentials
 * switched around connect() and back, so the server sees two kinds of peer),
 * serve it, and return what it answered.
 */
static inline char *fuzz_exchange_as(struct vw_loop *loop, const char *path, uint32_t uid,
				     const uint8_t *d, size_t n, size_t *outlen)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	size_t cap = 4096, len = 0, sent = 0;
	char *out = malloc(cap);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), quiet = 0;
	bool shut = false;

	FUZZ_CHECK(out && fd >= 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (uid && getuid() == 0) {	/* the saved uid stays 0: we can come back */
		FUZZ_CHECK(syscall(SYS_setresgid, uid, uid, 0) == 0);
		FUZZ_CHECK(syscall(SYS_setresuid, uid, uid, 0) == 0);
	}
	FUZZ_CHECK(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	if (uid && getuid() == uid) {
		FUZZ_CHECK(syscall(SYS_setresuid, 0, 0, 0) == 0);
		FUZZ_CHECK(syscall(SYS_setresgid, 0, 0, 0) == 0);
	}
	for (int round = 0; round < 10000; round++) {
		ssize_t got;

		if (sent < n) {
			ssize_t w = send(fd, d + sent, n - sent, MSG_NOSIGNAL);

			if (w > 0)
				sent += (size_t)w;
			else if (w < 0 && errno != EAGAIN)
				sent = n;	/* the server closed: what it said is read below */
		}
		if (sent == n && !shut) {
			shutdown(fd, SHUT_WR);
			shut = true;
		}
		FUZZ_CHECK(loop_run_once(loop, 1000000) == 0);
		if (len + 1024 >= cap)
			FUZZ_CHECK((out = realloc(out, cap *= 2)));
		got = recv(fd, out + len, cap - len - 1, MSG_DONTWAIT);
		if (got == 0 || (got < 0 && errno != EAGAIN))
			break;
		if (got > 0) {
			len += (size_t)got;
			quiet = 0;
		} else if (shut && ++quiet > 20) {
			break;	/* a kept connection (a subscription) */
		}
	}
	close(fd);
	for (int i = 0; i < 3; i++)	/* the server sees the close */
		loop_run_once(loop, 0);
	out[len] = 0;
	*outlen = len;
	return out;
}

static inline char *fuzz_exchange(struct vw_loop *loop, const char *path, const uint8_t *d,
				  size_t n, size_t *outlen)
{
	return fuzz_exchange_as(loop, path, 0, d, n, outlen);
}

#endif
