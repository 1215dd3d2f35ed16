/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* request.h: a client's one request to the daemon's client socket, and its reply line by line. */
#ifndef VW_REQUEST_H
#define VW_REQUEST_H

#include <stddef.h>

#include <cjson/cJSON.h>

/*
 * A connection to the socket @sock; connecting and sending give up after @ms
 * (-1: no limit). The fd, or -errno (-ECONNREFUSED, -ENOENT: no daemon).
 */
int client_connect(const char *sock, int ms);
/* All of @len bytes of @s, whatever a short write leaves. 0, or -1 with errno set. */
int client_send_all(int fd, const char *s, size_t len);

/* One reply line (without its newline, NUL-terminated): 0 goes on, > 0 stops, < 0 is -errno. */
typedef int (*reply_line_fn)(void *ctx, char *line, size_t len);

/*
 * Send @req (one JSON line) to the socket @sock and hand each line of the
 * reply to @fn, until the daemon closes the connection or @fn stops. A step
 * (connecting, sending, the next bytes of the reply) that takes longer than
 * @timeout_ms fails with -ETIMEDOUT (-1: no limit); a line longer than
 * @line_max with -EMSGSIZE. Returns 0, @fn's error, or -errno (-ECONNREFUSED,
 * -ENOENT: no daemon; @sock too long: -ENAMETOOLONG).
 */
int client_request(const char *sock, const cJSON *req, int timeout_ms, size_t line_max,
		   reply_line_fn fn, void *ctx);

#endif
