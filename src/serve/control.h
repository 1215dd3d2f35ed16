/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* control.h: the root-only Unix control socket: one JSON request line, one JSON reply line. */
#ifndef VW_CONTROL_H
#define VW_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/loop.h"

#define VW_CTL_REQUEST_MAX (64 * 1024)	/* a longer request is refused */

struct cJSON;

/*
 * A verb handler: read the request, add fields to the reply. Returns 0, or
 * -errno with a message for the client in @err (the reply then says ok:false).
 */
typedef int (*ctl_verb_fn)(void *ctx, const struct cJSON *req, struct cJSON *reply, char *err,
			   size_t errlen);

struct ctl_verb {
	const char *name;
	ctl_verb_fn fn;
};

struct vw_control;

/*
 * Listen on @path and serve through @loop; @verbs ends with a NULL name. The
 * socket is root's, mode 0600; with @gid >= 0 it is group @gid's, mode 0660,
 * and peers whose primary or supplementary groups hold @gid are served too.
 */
struct vw_control *control_new(const char *path, long gid, struct vw_loop *loop,
			       const struct ctl_verb *verbs, void *ctx, char *err, size_t errlen);
void control_free(struct vw_control *c);	/* closes clients, removes the socket file */
/* Periodic: a client that sent no request within 5 s is told so and closed. */
void control_tick(struct vw_control *c, uint64_t now_ns);

/*
 * A listening Unix stream socket at @path (a stale socket file there is
 * removed), mode @mode, group @gid (>= 0) or root's; non-blocking. Returns
 * the fd or -errno.
 */
int unix_listen(const char *path, mode_t mode, long gid, int backlog);

/*
 * A connection that will not be served: @line (one whole line) is said, what
 * the peer sent already is read (so the close is not a reset), and it is closed.
 */
void unix_refuse(int fd, const char *line);

/* Do @pid's supplementary groups (or its primary one, in /proc) hold @gid? */
bool peer_in_group(pid_t pid, long gid);

/*
 * @j as one line of JSON in valid UTF-8 (malloc'd, no newline): what a reply
 * repeats of a request, or names, that is not UTF-8 becomes U+FFFD.
 */
char *json_text(const struct cJSON *j);

/* Client side: send one request, return the reply (a new string) or NULL with errno set. */
char *control_call(const char *path, const char *request);

#endif
