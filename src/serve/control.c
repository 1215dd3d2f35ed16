// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// control.c: control_accept/read/dispatch: peers checked with SO_PEERCRED, requests bounded.
#define _GNU_SOURCE	/* struct ucred, accept4 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "serve/control.h"
#include "core/log.h"
#include "core/util.h"

#define CTL_CLIENTS 64
#define CTL_CLIENTS_STR "64"
#define CTL_PER_UID 8		/* connections one member of socket_group (not root) may hold */
#define CTL_REQUEST_TIMEOUT_NS (5000ull * 1000 * 1000)	/* to send the request line */

struct client {
	struct vw_control *c;
	int fd;			/* -1: free */
	size_t len;
	char *buf;
	uint64_t deadline_ns;	/* CLOCK_MONOTONIC: timed out then */
	uint32_t uid;
};

struct vw_control {
	int fd;
	long gid;		/* -1: root only */
	char path[108];
	struct vw_loop *loop;
	const struct ctl_verb *verbs;
	void *ctx;
	struct client clients[CTL_CLIENTS];
};

static void client_close(struct client *cl)
{
	if (cl->fd < 0)
		return;
	loop_del(cl->c->loop, cl->fd);
	close(cl->fd);
	cl->fd = -1;
	cl->len = 0;
}

char *json_text(const cJSON *j)
{
	char *s = j ? cJSON_PrintUnformatted(j) : NULL, *ok;

	if (!s || utf8_valid(s, strlen(s)))
		return s;
	ok = utf8_lossy(s, strlen(s));	/* JSON's own syntax is ASCII: it stays JSON */
	cJSON_free(s);
	return ok;
}

/* Write the reply line (best effort: a client that stopped reading just loses it). */
static void reply_send(struct client *cl, cJSON *reply)
{
	char *s = json_text(reply);

	if (s) {
		size_t n = strlen(s);

		s[n] = '\n';	/* the NUL becomes the line end */
		if (send(cl->fd, s, n + 1, MSG_NOSIGNAL) < 0)
			log_debug("control: reply: %s", strerror(errno));
		free(s);
	}
	cJSON_Delete(reply);
}

static void reply_error(struct client *cl, const char *msg)
{
	cJSON *r = cJSON_CreateObject();

	if (r) {
		cJSON_AddFalseToObject(r, "ok");
		cJSON_AddStringToObject(r, "error", msg);
		reply_send(cl, r);
	}
	client_close(cl);
}

static void dispatch(struct client *cl, const char *line)
{
	cJSON *req = cJSON_Parse(line), *reply, *cmd;
	const struct ctl_verb *v;
	char err[512] = "";
	int ret;

	if (!req || !cJSON_IsObject(req)) {
		cJSON_Delete(req);
		reply_error(cl, "request is not a JSON object");
		return;
	}
	cmd = cJSON_GetObjectItemCaseSensitive(req, "cmd");
	if (!cJSON_IsString(cmd)) {
		cJSON_Delete(req);
		reply_error(cl, "request has no \"cmd\" string");
		return;
	}
	for (v = cl->c->verbs; v->name && strcmp(v->name, cmd->valuestring); v++)
		;
	if (!v->name) {
		snprintf(err, sizeof(err), "unknown cmd '%.64s'", cmd->valuestring);
		cJSON_Delete(req);
		reply_error(cl, err);
		return;
	}
	reply = cJSON_CreateObject();
	if (!reply) {
		cJSON_Delete(req);
		reply_error(cl, "out of memory");
		return;
	}
	ret = v->fn(cl->c->ctx, req, reply, err, sizeof(err));
	cJSON_Delete(req);
	if (ret) {
		cJSON_Delete(reply);
		reply_error(cl, err[0] ? err : strerror(-ret));
		return;
	}
	cJSON_AddTrueToObject(reply, "ok");
	reply_send(cl, reply);
	client_close(cl);
}

static int on_client(void *ctx, uint32_t events)
{
	struct client *cl = ctx;
	ssize_t n = read(cl->fd, cl->buf + cl->len, VW_CTL_REQUEST_MAX - cl->len);
	char *nl;

	if (n < 0)
		return errno == EAGAIN ? 0 : (client_close(cl), 0);
	cl->len += n;
	cl->buf[cl->len] = 0;
	nl = memchr(cl->buf, '\n', cl->len);
	if (nl) {
		*nl = 0;
		dispatch(cl, cl->buf);
	} else if (cl->len == VW_CTL_REQUEST_MAX) {
		reply_error(cl, "request too large");
	} else if (n == 0) {
		if (cl->len)
			dispatch(cl, cl->buf);	/* a last line without its newline */
		else
			client_close(cl);
	}
	return 0;
}

/* Is @gid among the groups of process @pid (its primary one was checked already)? */
bool peer_in_group(pid_t pid, long gid)
{
	char path[64], line[4096];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	while (f && !found && fgets(line, sizeof(line), f)) {
		char *tok, *save = NULL;

		if (strncmp(line, "Groups:", 7) != 0)
			continue;
		for (tok = strtok_r(line + 7, " \t\n", &save); tok && !found;
		     tok = strtok_r(NULL, " \t\n", &save))
			found = strtol(tok, NULL, 10) == gid;
	}
	if (f)
		fclose(f);
	return found;
}

static bool peer_allowed(const struct vw_control *c, const struct ucred *cred)
{
	if (cred->uid == 0)
		return true;
	return c->gid >= 0 && ((long)cred->gid == c->gid || peer_in_group(cred->pid, c->gid));
}

static int on_accept(void *ctx, uint32_t events)
{
	struct vw_control *c = ctx;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct client *cl = NULL;
	int fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	int mine = 0;

	if (fd < 0)
		return errno == EAGAIN ? 0 : -errno;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		cred.uid = (uid_t)-1;
	for (int i = 0; i < CTL_CLIENTS; i++) {
		if (c->clients[i].fd < 0 && !cl)
			cl = &c->clients[i];
		mine += c->clients[i].fd >= 0 && c->clients[i].uid == cred.uid;
	}
	/*
	 * Full: the newcomer is served all the same, in the place of the
	 * connection that has waited longest without sending a byte (idle peers
	 * never starve a working one); a group member holds at most CTL_PER_UID.
	 */
	for (int i = 0; i < CTL_CLIENTS && !cl && (cred.uid == 0 || mine < CTL_PER_UID); i++) {
		struct client *o = &c->clients[i];

		if (o->len == 0 && (!cl || o->deadline_ns < cl->deadline_ns))
			cl = o;
	}
	if (cl && cl->fd >= 0) {
		log_info("control: full: closed uid %u's idle connection for uid %u", cl->uid,
			 (unsigned)cred.uid);
		loop_del(c->loop, cl->fd);
		unix_refuse(cl->fd, "{\"ok\":false,\"error\":\"closed before a request: the "
				    "control socket is full\"}\n");
		cl->fd = -1;
	}
	if (!cl || (cred.uid != 0 && mine >= CTL_PER_UID)) {	/* said: the client need not guess */
		unix_refuse(fd, cl ? "{\"ok\":false,\"error\":\"busy: your user holds its "
				     "connections already; try again\"}\n" :
				     "{\"ok\":false,\"error\":\"busy: " CTL_CLIENTS_STR
				     " requests at once; try again\"}\n");
		return 0;
	}
	cl->fd = fd;
	cl->len = 0;
	cl->uid = cred.uid;
	cl->deadline_ns = now_ns(CLOCK_MONOTONIC) + CTL_REQUEST_TIMEOUT_NS;
	if (cred.uid == (uid_t)-1 || !peer_allowed(c, &cred)) {
		log_info("control: refused a client with uid %d", (int)cred.uid);
		reply_error(cl, "permission denied: the control socket is for root and its group");
		return 0;
	}
	if (loop_add(c->loop, fd, on_client, cl) < 0) {
		close(fd);
		cl->fd = -1;
	}
	return 0;
}

int unix_listen(const char *path, mode_t mode, long gid, int backlog)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, ret, e;
	mode_t old;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(path);	/* we hold the instance lock: a socket file here is a dead daemon's */
	old = umask(077);
	ret = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (ret < 0 || (gid >= 0 && chown(path, 0, (gid_t)gid) < 0) || chmod(path, mode) < 0 ||
	    listen(fd, backlog) < 0) {
		e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

void unix_refuse(int fd, const char *line)
{
	size_t n = strlen(line);
	char junk[512];

	if (send(fd, line, n, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)n)
		shutdown(fd, SHUT_WR);
	while (recv(fd, junk, sizeof(junk), MSG_DONTWAIT) > 0)
		;	/* what it sent already: read, so that the close is not a reset */
	close(fd);
}

struct vw_control *control_new(const char *path, long gid, struct vw_loop *loop,
			       const struct ctl_verb *verbs, void *ctx, char *err, size_t errlen)
{
	struct vw_control *c = calloc(1, sizeof(*c));
	int ret;

	if (!c || strlen(path) >= sizeof(c->path)) {
		snprintf(err, errlen, "%s: %s", path, c ? "path too long" : "out of memory");
		free(c);
		return NULL;
	}
	snprintf(c->path, sizeof(c->path), "%s", path);
	c->loop = loop;
	c->gid = gid;
	c->verbs = verbs;
	c->ctx = ctx;
	for (int i = 0; i < CTL_CLIENTS; i++) {
		c->clients[i].fd = -1;
		c->clients[i].c = c;
		c->clients[i].buf = malloc(VW_CTL_REQUEST_MAX + 1);
		if (!c->clients[i].buf) {
			snprintf(err, errlen, "out of memory");
			control_free(c);
			return NULL;
		}
	}
	c->fd = unix_listen(path, gid >= 0 ? 0660 : 0600, gid, 16);
	ret = c->fd < 0 ? c->fd : loop_add(loop, c->fd, on_accept, c);
	if (ret < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(-ret));
		control_free(c);
		return NULL;
	}
	return c;
}

void control_tick(struct vw_control *c, uint64_t now)
{
	for (int i = 0; c && i < CTL_CLIENTS; i++)
		if (c->clients[i].fd >= 0 && now >= c->clients[i].deadline_ns)
			reply_error(&c->clients[i], "no request within 5 s");
}

void control_free(struct vw_control *c)
{
	if (!c)
		return;
	for (int i = 0; i < CTL_CLIENTS; i++) {
		if (c->clients[i].buf)
			client_close(&c->clients[i]);
		free(c->clients[i].buf);
	}
	if (c->fd >= 0) {
		loop_del(c->loop, c->fd);
		close(c->fd);
		unlink(c->path);
	}
	free(c);
}

char *control_call(const char *path, const char *request)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t cap = 1 << 20, len = 0;
	char *buf = NULL;
	ssize_t n;
	int fd, e;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	memcpy(sa.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	/* a daemon that closes early (busy, timed out) is an error reply or EPIPE, never SIGPIPE */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || !(buf = malloc(cap + 1)))
		goto fail;
	if (send(fd, request, strlen(request), MSG_NOSIGNAL) < 0 ||
	    send(fd, "\n", 1, MSG_NOSIGNAL) < 0) {
		if (errno != EPIPE && errno != ECONNRESET)
			goto fail;
		/* it may have said why before closing: read that */
	}
	while ((n = read(fd, buf + len, cap - len)) > 0 && len < cap)
		len += n;
	if (n < 0 && !len)
		goto fail;
	buf[len] = 0;
	close(fd);
	return buf;
fail:
	e = errno;
	free(buf);
	close(fd);
	errno = e;
	return NULL;
}
