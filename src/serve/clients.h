/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * clients.h: the client socket (<run_dir>/client.sock, mode 0666) for
 * ordinary users. A client sends one JSON request line and reads JSON lines:
 *   {"cmd":"changes","project":P,"since":C,"match":[G...]}  the net change
 *       since cursor C (or a full listing marked "fresh"), then {"cursor":...}
 *   {"cmd":"subscribe","project":P,"since":C,"match":[G...]}  the lines since
 *       C, {"event":"subscribed",...}, then every new settled line
 * A project is readable by root, the owner of its root directory (as it was
 * when the project was added) and its config's "readers"; to anyone else it
 * does not exist. A subscriber that
 * does not read gets, once its queue is full, an "overflow" line with the
 * last cursor it was sent, and is disconnected: it resumes from that cursor.
 */
#ifndef VW_CLIENTS_H
#define VW_CLIENTS_H

#include <stddef.h>
#include <stdint.h>

#include "store/changes.h"
#include "core/loop.h"
#include "store/project.h"
#include "store/state.h"

#define VW_CLIENTS_MAX 256
#define VW_CLIENTS_PER_UID 32		/* connections one user (not root) may hold */
#define VW_SUB_QUEUE_BYTES (1 << 20)	/* a subscriber's unread lines */
#define VW_USER_REPLY_MB 64	/* a user's unread replies, all connections together (default) */

struct vw_clients;
struct cJSON;

/*
 * What a user may ask of the daemon itself: add a project of a directory they
 * own, remove one they added. Fill @reply, or return -errno with a message.
 */
struct vw_creds;
typedef int (*clients_verb_fn)(void *ctx, const struct vw_creds *who, const struct cJSON *req,
			       struct cJSON *reply, char *err, size_t errlen);

/*
 * A query's sync point: bring @p up to this moment (what the kernel queued is
 * read, what is pending for @p settled and numbered in its change log), so
 * that an answer includes every change whose system call returned before the
 * request was read (README "Read your writes").
 */
typedef void (*clients_sync_fn)(void *ctx, const struct vw_project *p);

struct vw_clients_ops {
	clients_verb_fn add, remove;
	clients_sync_fn sync;	/* may be NULL: answers from the change log alone */
	void *ctx;
};

struct vw_clients *clients_new(const char *path, struct vw_loop *loop, struct vw_projects *t,
			       struct vw_changes *changes, struct vw_state *state,
			       const struct vw_clients_ops *ops, char *err, size_t errlen);
/*
 * What a user's unread replies may hold, all their connections together
 * (user_reply_mb): a reply past it is refused with an error line, unless it
 * is a "changes" reply and the only one of theirs unread (a listing bigger
 * than the budget is served, one at a time; a subscription's backlog must fit).
 */
void clients_set_reply_budget(struct vw_clients *c, size_t bytes);
/*
 * Serve Watchman's protocol on @path too (mode 0666, the same users, limits and
 * rights as client.sock; serve/watchman.h). 0 or -errno with a message in @err.
 */
int clients_listen_watchman(struct vw_clients *c, const char *path, char *err, size_t errlen);
void clients_free(struct vw_clients *c);	/* closes clients, removes the socket file */

/* A settled line of @p (JSON, no newline) about @path and @old_path: to its subscribers. */
void clients_settled(struct vw_clients *c, const struct vw_project *p, enum vw_kind kind,
		     const char *path, const char *old_path, const char *line, size_t len,
		     const char *cursor);

/* Periodic: connections past their time (no request within 5 s, a reply unread for 30 s) go. */
void clients_tick(struct vw_clients *c, uint64_t now_ns);

/*
 * @p's stream ends for its subscribers: the project was removed
 * ("project_removed"), or its root is a new directory ("root_replaced"). Each
 * gets an "overflow" line with @reason and the last cursor it was sent, and is
 * disconnected; resuming from that cursor gives what there is to know (a full
 * listing, "fresh", for a new identity).
 */
void clients_project_ended(struct vw_clients *c, const struct vw_project *p, const char *reason);

/* Send what clients_settled() queued (once per batch: one write per subscriber). */
void clients_flush(struct vw_clients *c);

size_t clients_subscribers(const struct vw_clients *c);
/* Bytes queued for clients and not yet read by them. */
/* Client queues found unsent to a writable socket at a tick (each said and sent then). */
uint64_t clients_stalls(const struct vw_clients *c);
size_t clients_queued_bytes(const struct vw_clients *c);

#endif
