// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// request.c: a client's one request to the daemon's client socket, and its reply line by line.
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/request.h"

int client_send_all(int fd, const char *s, size_t len)
{
	while (len) {
		ssize_t n = send(fd, s, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

int client_connect(const char *sock, int ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tmo = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
	int fd, err;

	if (strlen(sock) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, sock, strlen(sock));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if ((ms >= 0 && setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tmo, sizeof(tmo)) < 0) ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = errno == EAGAIN || errno == EINPROGRESS ? ETIMEDOUT : errno;
		close(fd);
		return -err;
	}
	return fd;
}

int client_request(const char *sock, const cJSON *req, int timeout_ms, size_t line_max,
		   reply_line_fn fn, void *ctx)
{
	char *text = cJSON_PrintUnformatted(req), *buf = NULL, *nl;
	size_t len = 0, cap = 0, start = 0;
	int fd, ret = 0;
	ssize_t n;

	if (!text)
		return -ENOMEM;
	fd = client_connect(sock, timeout_ms);
	if (fd < 0) {
		cJSON_free(text);
		return fd;
	}
	if (client_send_all(fd, text, strlen(text)) < 0 || client_send_all(fd, "\n", 1) < 0)
		ret = errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
	while (!ret) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		if (cap - len < 2) {	/* room for the read, and for the NUL of a last line */
			size_t want = cap ? cap * 2 : 65536;
			char *v = cap <= line_max ? realloc(buf, want) : NULL;

			if (!v) {
				ret = cap > line_max ? -EMSGSIZE : -ENOMEM;
				break;
			}
			buf = v;
			cap = want;
		}
		n = poll(&pfd, 1, timeout_ms);
		if (n == 0) {
			ret = -ETIMEDOUT;	/* the daemon said nothing in time */
			break;
		}
		n = n < 0 ? -1 : read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : 0;
			break;
		}
		len += (size_t)n;
		while (!ret && (nl = memchr(buf + start, '\n', len - start))) {
			*nl = 0;
			ret = fn(ctx, buf + start, (size_t)(nl - buf - start));
			start = (size_t)(nl - buf) + 1;
		}
		memmove(buf, buf + start, len - start);	/* keep the unfinished line only */
		len -= start;
		start = 0;
	}
	free(buf);
	cJSON_free(text);
	close(fd);
	return ret > 0 ? 0 : ret;
}
