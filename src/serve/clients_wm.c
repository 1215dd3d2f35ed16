// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// clients_wm.c: watchman.sock's side of a client connection: requests in JSON or BSER, one after
// another, each answered (serve/watchman.c) in the encoding it came in.
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"
#include "serve/bser.h"
#include "serve/clients_priv.h"
#include "serve/control.h"
#include "serve/watchman.h"
#include "serve/watchman_priv.h"

#define WM_READY_WAIT_NS (120000ull * 1000 * 1000)	/* a request waits for a crawl at most */

static bool wm_readable(void *ctx, const struct vw_project *p)
{
	return cl_readable(ctx, p);
}

static int wm_resolve(void *ctx, const char *path, char *real, size_t len)
{
	struct client *cl = ctx;
	struct stat st;
	uint64_t t0;
	int fd;

	if (!cl_may_resolve(cl))
		return -ETIMEDOUT;
	t0 = now_ns(CLOCK_MONOTONIC);
	fd = creds_open_dir_as(&cl->creds, path, true, real, len, &st, VW_RESOLVE_TIMEOUT_MS);
	cl_resolved(cl, fd, t0);
	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

static int wm_verb(struct client *cl, clients_verb_fn fn, const cJSON *req, cJSON *reply,
		   char *err, size_t errlen)
{
	uint64_t t0;
	int ret;

	if (!fn) {
		snprintf(err, errlen, "the daemon adds no projects for clients");
		return -EPERM;
	}
	if (!cl_may_resolve(cl)) {
		snprintf(err, errlen, "a path you named did not answer in time: paths you name are "
				      "not looked at for a minute");
		return -ETIMEDOUT;
	}
	t0 = now_ns(CLOCK_MONOTONIC);
	ret = fn(cl->c->ops.ctx, &cl->creds, req, reply, err, errlen);
	cl_resolved(cl, ret, t0);
	return ret;
}

static int wm_add(void *ctx, const cJSON *req, cJSON *reply, char *err, size_t errlen)
{
	struct client *cl = ctx;

	return wm_verb(cl, cl->c->ops.add, req, reply, err, errlen);
}

static int wm_remove(void *ctx, const cJSON *req, cJSON *reply, char *err, size_t errlen)
{
	struct client *cl = ctx;

	return wm_verb(cl, cl->c->ops.remove, req, reply, err, errlen);
}

static void wm_sync(void *ctx, const struct vw_project *p)
{
	struct client *cl = ctx;

	if (cl->c->ops.sync)
		cl->c->ops.sync(cl->c->ops.ctx, p);
}

/* @j (consumed) in the client's encoding; @bound: into a subscriber's bounded queue. */
static bool send_as(struct client *cl, cJSON *j, bool bound)
{
	bool ok = false;
	size_t len;
	char *b;

	if (!j)
		return false;
	if (cl->enc) {
		b = bser_encode(j, cl->enc, cl->caps, &len);
		if (b)
			ok = cl_queue_bytes(cl, b, len, bound, false);
	} else {
		b = json_text(j);
		if (b)
			ok = cl_queue(cl, b, strlen(b), bound);
	}
	free(b);
	cJSON_Delete(j);
	return ok;
}

/* A reply in the encoding of the client's last request. */
void wm_send(struct client *cl, cJSON *j)
{
	send_as(cl, j, false);
}

bool wm_send_bound(struct client *cl, cJSON *j)
{
	return send_as(cl, j, true);
}

/* The hashes of a request's files are in: it is served again (wm_retry()). */
static void wm_hashed(void *ctx)
{
	struct client *cl = ctx;

	cl->wm_hashed = true;
}

static int wm_hash(void *ctx, const struct vw_project *p, char *const *rels,
		   const struct wm_hash_key *keys, size_t n)
{
	struct client *cl = ctx;

	if (wm_hash_running(cl->c->hasher, cl))
		return -EBUSY;
	return wm_hash_start(cl->c->hasher, &cl->creds, p, rels, keys, n, wm_hashed, cl);
}

void wm_env_peer(struct client *cl, struct wm_env *env, struct wm_peer *peer)
{
	*env = (struct wm_env){ .t = cl->c->t, .changes = cl->c->changes, .state = cl->c->state,
				.sockname = cl->c->wpath, .hasher = cl->c->hasher };
	*peer = (struct wm_peer){ .creds = &cl->creds, .ctx = cl, .readable = wm_readable,
				  .resolve = wm_resolve, .add = wm_add, .remove = wm_remove,
				  .sync = wm_sync, .hash = cl->c->hasher ? wm_hash : NULL,
				  .hashed = cl->wm_hashed };
}

/*
 * Serve @req; false when it waits for a watch's crawl (served again by
 * wm_retry(), at most WM_READY_WAIT_NS, then told to come back).
 */
static bool wm_serve(struct client *cl, const cJSON *req)
{
	struct wm_env env;
	struct wm_peer peer;
	cJSON *r = NULL;
	bool subs = wm_subs_command(cl, req, &r);	/* they keep state on the connection */

	if (!subs) {
		wm_env_peer(cl, &env, &peer);
		r = watchman_command(&env, &peer, req);
	}
	if (r == WM_NOT_READY) {
		uint64_t now = now_ns(CLOCK_MONOTONIC);

		if (!cl->wm_wait_ns) {
			cl->wm_wait_ns = now;
			cl->c->nwwait++;
		}
		if (now - cl->wm_wait_ns < WM_READY_WAIT_NS)
			return false;
		r = wm_error("the watch is still being crawled after %llu s: try again later",
			     (unsigned long long)(WM_READY_WAIT_NS / 1000000000ull));
	}
	if (cl->wm_wait_ns) {
		cl->wm_wait_ns = 0;
		cl->c->nwwait--;
	}
	cl->wm_hashed = false;	/* the next request's files are hashed anew */
	if (subs && !r)
		return true;	/* said already */
	if (!r) {	/* out of memory: said as well as it can be */
		r = cJSON_CreateObject();
		if (r)
			cJSON_AddStringToObject(r, "error", "out of memory");
	}
	wm_send(cl, r);
	return true;
}

/* A request that cannot be read: said, and the connection ends (as Watchman does). */
static void wm_refuse(struct client *cl, const char *msg)
{
	cJSON *j = cJSON_CreateObject();

	cJSON_AddStringToObject(j, "version", WM_VERSION);
	cJSON_AddStringToObject(j, "error", msg);
	wm_send(cl, j);
	cl->closing = true;
	cl->winlen = 0;
}

/* More of @cl's requests wait in its buffer: served one a loop turn (c->wfd_more wakes it). */
static void more_owed(struct client *cl, bool owed)
{
	uint64_t one = 1;

	if (owed == cl->wm_more)
		return;
	cl->wm_more = owed;
	cl->c->nwmore += owed ? 1 : -1;
	if (owed && write(cl->c->wfd_more, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("clients: watchman.sock's wake-up");
}

/*
 * Serve the first whole request in cl->win: a BSER PDU (00 01, 00 02) or a
 * JSON line. One a turn of the loop, whatever a client sent at once: the
 * kernel's queue and the other clients are served between two of its requests.
 */
static void wm_requests(struct client *cl)
{
	size_t off = 0;
	bool served = false;

	while (off < cl->winlen && !cl->closing && cl->fd >= 0 && !served) {
		const char *b = cl->win + off;
		size_t left = cl->winlen - off, used;
		char err[256];
		cJSON *req;

		if (b[0] == 0) {
			int version = 0;
			ssize_t len = bser_pdu_len(b, left, WM_REQUEST_MAX, &version);

			if (len < 0) {
				wm_refuse(cl, "invalid BSER: not a PDU, or longer than a request may be");
				return;
			}
			if (!len || (size_t)len > left)
				break;	/* the rest is still to come */
			cl->enc = version;
			cl->caps = 0;
			if (version == 2)
				memcpy(&cl->caps, b + 2, 4);
			used = (size_t)len;
			req = bser_decode(b, used, err, sizeof(err));
			if (!req) {
				char msg[300];

				snprintf(msg, sizeof(msg), "invalid BSER: %s", err);
				wm_refuse(cl, msg);
				return;
			}
		} else {
			const char *nl = memchr(b, '\n', left);

			if (!nl)
				break;
			cl->enc = 0;
			used = (size_t)(nl - b) + 1;
			req = cJSON_ParseWithLength(b, used - 1);
			if (!req) {
				wm_refuse(cl, "invalid json: one JSON array per line");
				return;
			}
		}
		cl->asked = true;
		if (!wm_serve(cl, req)) {	/* it waits: kept, and served again later */
			cJSON_Delete(req);
			break;
		}
		off += used;
		served = true;
		cJSON_Delete(req);
		if (cl->capped)
			cl_over_budget(cl);
	}
	if (cl->closing || cl->fd < 0) {
		more_owed(cl, false);
		return;
	}
	memmove(cl->win, cl->win + off, cl->winlen - off);
	cl->winlen -= off;
	if (!cl->winlen && cl->wincap > 65536) {	/* a big request's buffer is not kept */
		free(cl->win);
		cl->win = NULL;
		cl->wincap = 0;
	}
	more_owed(cl, served && cl->winlen && !cl->wm_wait_ns);
	/*
	 * Half a request must be whole within REQUEST_TIMEOUT_NS of when it began
	 * (not of its last byte); a connection between requests may idle.
	 */
	if (!cl->asked || (cl->winlen && !cl->wm_wait_ns && !cl->wm_more)) {
		if (!cl->deadline_ns)
			cl->deadline_ns = now_ns(CLOCK_MONOTONIC) + REQUEST_TIMEOUT_NS;
	} else {
		cl->deadline_ns = 0;
	}
}

/* The wake-up for requests a client sent at once: one each, then the loop turns again. */
int wm_on_more(void *ctx, uint32_t events)
{
	struct vw_clients *c = ctx;
	uint64_t n;

	(void)events;
	if (read(c->wfd_more, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return 0;
	for (int i = 0; i < VW_CLIENTS_MAX && c->nwmore; i++) {
		struct client *cl = &c->cl[i];

		if (cl->fd < 0 || !cl->wm_more)
			continue;
		more_owed(cl, false);
		wm_requests(cl);
		if (cl->fd >= 0)
			cl_flush(cl);
	}
	return 0;
}

void wm_retry(struct vw_clients *c)
{
	for (int i = 0; i < VW_CLIENTS_MAX && c->nwwait; i++) {
		struct client *cl = &c->cl[i];

		if (cl->fd < 0 || !cl->wm_wait_ns || wm_hash_running(c->hasher, cl))
			continue;	/* (its files are being hashed: served once they are) */
		wm_requests(cl);
		if (cl->fd >= 0)
			cl_flush(cl);
	}
}

int wm_input(struct client *cl)
{
	for (;;) {
		ssize_t n;

		if (cl->closing) {	/* said all it will: what more comes is read and dropped */
			char junk[512];

			n = recv(cl->fd, junk, sizeof(junk), MSG_DONTWAIT);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN)
				break;
			if (n <= 0) {
				cl_close(cl);
				return 0;
			}
			continue;
		}
		if (cl->winlen == cl->wincap) {
			size_t cap = cl->wincap ? cl->wincap * 2 : 4096;
			char *v = cap <= WM_REQUEST_MAX ? realloc(cl->win, cap) : NULL;

			if (!v) {
				wm_refuse(cl, "request too long (at most 4 MiB)");
				break;
			}
			cl->win = v;
			cl->wincap = cap;
		}
		n = recv(cl->fd, cl->win + cl->winlen, cl->wincap - cl->winlen, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {	/* the client went away (or hung up its side) */
			cl_close(cl);
			return 0;
		}
		cl->winlen += (size_t)n;
		if (!cl->wm_more && !cl->wm_wait_ns)	/* else its turn comes */
			wm_requests(cl);
		if (cl->fd < 0)
			return 0;
	}
	cl_flush(cl);
	return 0;
}

static int on_accept_wm(void *ctx, uint32_t events)
{
	struct vw_clients *c = ctx;

	(void)events;
	return cl_accept(c, c->wfd, true);
}

int clients_listen_watchman(struct vw_clients *c, const char *path, char *err, size_t errlen)
{
	int ret;

	if (strlen(path) >= sizeof(c->wpath)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -ENAMETOOLONG;
	}
	snprintf(c->wpath, sizeof(c->wpath), "%s", path);
	if (!(c->hasher = wm_hasher_new(c->loop))) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	c->wfd_more = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (c->wfd_more < 0 || loop_add(c->loop, c->wfd_more, wm_on_more, c) < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		if (c->wfd_more >= 0)
			close(c->wfd_more);
		c->wfd_more = -1;
		return -errno;
	}
	c->wfd = unix_listen(path, 0666, -1, 64);
	ret = c->wfd < 0 ? c->wfd : loop_add(c->loop, c->wfd, on_accept_wm, c);
	if (ret < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(-ret));
		if (c->wfd >= 0)
			close(c->wfd);
		c->wfd = -1;
	}
	return ret;
}
