/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * clients_priv.h: what the two protocols of the client sockets share: the
 * connections (clients.c: accepting, limits, budgets, queues) and the code that
 * speaks Watchman on watchman.sock (clients_wm.c). Includers define
 * _GNU_SOURCE first (struct ucred).
 */
#ifndef VW_CLIENTS_PRIV_H
#define VW_CLIENTS_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cjson/cJSON.h>

#include "core/creds.h"
#include "core/log.h"
#include "serve/clients.h"

#define REQUEST_MAX 8192
#define MATCH_MAX 64
#define VW_XSTR(x) #x
#define VW_STR(x) VW_XSTR(x)
#define REQUEST_TIMEOUT_NS (5000ull * 1000 * 1000)	/* to send the request line */
#define REPLY_TIMEOUT_NS (30000ull * 1000 * 1000)	/* to read a reply (not a subscription) */
#define SEND_BATCH (64 * 1024)	/* queued lines are sent at once past this */
#define WM_REQUEST_MAX (4u << 20)	/* one Watchman request (a query names its paths) */

struct client {
	int fd;
	struct vw_clients *c;
	struct ucred cred;
	struct vw_creds creds;	/* the same, with its groups: what the user could do alone */
	char in[REQUEST_MAX + 1];
	size_t inlen;
	bool asked;		/* its request was read: later input is ignored */
	char *out;		/* queued output: out[opos..olen) */
	size_t olen, opos, ocap;
	uint64_t deadline_ns;	/* CLOCK_MONOTONIC: closed if still here then (0: none) */
	bool closing;		/* close once the queue is written */
	bool draining;		/* written and shut: reading theirs to its end */
	bool overflowed;
	bool capped;		/* a reply went past its user's budget (reply_budget) */
	bool over_cap;		/* the next line is said whatever the budget (the error saying so) */
	bool one_shot;		/* a "changes" reply: the connection ends once it is read */
	int uq;			/* its user's slot in vw_clients.uq */
	uint64_t sent;		/* bytes sent so far */
	uint64_t sent_then;	/* ...by the previous tick, */
	bool queued_then;	/* when bytes were queued */
	const struct vw_project *sub;	/* subscribed to */
	char **match;
	size_t nmatch;
	unsigned kinds;		/* the kinds of change it wants (bits of VW_KIND_*); 0: all */
	char last[VW_CURSOR_MAX];	/* the last cursor queued */
	/* watchman.sock: requests one after another on one connection, JSON or BSER */
	bool wm;
	int enc;		/* of its last request: 0 JSON, 1 or 2 BSER v1/v2 */
	uint32_t caps;		/* ...and a BSER v2 request's capabilities, said back */
	char *win;		/* bytes of requests not served yet */
	struct wm_sub *wsubs;	/* its Watchman subscriptions */
	uint64_t wm_wait_ns;	/* since when its next request waits for a watch's crawl (0: not) */
	bool wm_more;		/* more of its requests are buffered: one served a loop turn */
	bool wm_hashed;		/* its waiting request's files were hashed (content.sha1hex) */
	size_t winlen, wincap;
};

struct vw_clients {
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int wfd;		/* watchman.sock (-1: not served) */
	char wpath[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct vw_loop *loop;
	struct vw_projects *t;
	struct vw_changes *changes;
	struct vw_state *state;
	struct vw_clients_ops ops;
	size_t reply_budget;	/* user_reply_mb */
	bool owed;		/* lines queued for subscribers since the last clients_flush() */
	uint64_t stalls;	/* queues found unsent to a writable socket at a tick */
	int nsubs;		/* subscriptions open */
	int nwsubs;		/* Watchman subscriptions open, all connections together */
	int nwwait;		/* Watchman connections whose request waits for a crawl */
	int nwmore;		/* ...with more requests buffered (wm_more) */
	int wfd_more;		/* an eventfd: wakes the loop for them (-1: none) */
	struct wm_hasher *hasher;	/* content.sha1hex */
	struct wm_assert *wstates;	/* states asserted on watches (state-enter) */
	struct client cl[VW_CLIENTS_MAX];
	struct {		/* per user: connections, and bytes queued for them and unsent */
		uint32_t uid, conns;
		size_t bytes;
		uint64_t resolve_after_ns;	/* a path of theirs did not answer: none looked at till then */
	} uq[VW_CLIENTS_MAX];
};

/* clients.c: a connection's queue and its end */
void cl_close(struct client *cl);
/* Write what is queued; close when done and asked to. */
void cl_flush(struct client *cl);
/* Queue @len bytes, and a newline when @nl. @bound: a subscriber's, which may overflow. */
bool cl_queue_bytes(struct client *cl, const char *line, size_t len, bool bound, bool nl);
/* Queue a line (a newline is added). */
bool cl_queue(struct client *cl, const char *line, size_t len, bool bound);
/* One error (a line, or a Watchman reply on watchman.sock), and the connection ends. */
void cl_reply_error(struct client *cl, const char *fmt, ...) VW_PRINTF(2, 3);
/* A reply past its user's budget: taken back, and said instead. */
void cl_over_budget(struct client *cl);

/* clients.c: a connection to client.sock, or to watchman.sock (@wm), on the listening @lfd */
int cl_accept(struct vw_clients *c, int lfd, bool wm);

/* clients.c: who may read what, and paths a user names */
bool cl_readable(const struct client *cl, const struct vw_project *p);
bool cl_may_resolve(const struct client *cl);
/* A path of the client's was resolved (@ret) from @t0 on: slow or timed out, a back-off. */
void cl_resolved(struct client *cl, int ret, uint64_t t0);

/* clients_wm.c: watchman.sock's side of a connection */
/* Input on a watchman.sock connection: each whole request served in turn. 0. */
int wm_input(struct client *cl);
/* @j (consumed) in the encoding of the client's last request. */
void wm_send(struct client *cl, cJSON *j);
/* ...as a unilateral PDU, into the client's bounded queue. false: it did not fit. */
bool wm_send_bound(struct client *cl, cJSON *j);
/* What Watchman's commands see of the daemon and of the client @cl. */
struct wm_env;
struct wm_peer;
void wm_env_peer(struct client *cl, struct wm_env *env, struct wm_peer *peer);

/* wm_subs.c: subscriptions and states. Was @req one of theirs? Its reply (NULL: said). */
bool wm_subs_command(struct client *cl, const cJSON *req, cJSON **reply);
/* The loop's callback for c->wfd_more. */
int wm_on_more(void *ctx, uint32_t events);
/* Requests that waited for a watch's crawl, served again (each loop turn and tick). */
void wm_retry(struct vw_clients *c);
/* The connection ends: its subscriptions go, the states it asserted are left ("abandoned"). */
void wm_close(struct client *cl);
/* Settled lines of @p were told: its subscriptions have news (told at wm_flush()). */
void wm_settled(struct vw_clients *c, const struct vw_project *p);
/* Once a batch is told (and at ticks, for what waited): the subscriptions with news. */
void wm_flush(struct vw_clients *c);
/* @p is no watch any more: its subscriptions are told so ("canceled") and end. */
void wm_project_ended(struct vw_clients *c, const struct vw_project *p);

#endif
