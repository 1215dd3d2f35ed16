/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * watchman.h: Watchman's commands (version, list-capabilities, get-sockname,
 * watch-project, watch, watch-list, watch-del, clock, query, get-config,
 * shutdown-server; subscribe, unsubscribe, flush-subscriptions, state-enter
 * and state-leave keep state on a connection: wm_subs.c), answered from vfswatch's
 * projects, picture and change log, for the clients people already run
 * (pywatchman, fb-watchman, jest-haste-map, Mercurial's fsmonitor).
 *
 * A Watchman clock is a vfswatch cursor, "c:" in front: it survives restarts
 * of the daemon. A clock the change log cannot answer exactly gets the whole
 * tree with "is_fresh_instance": true, as Watchman answers a clock of another
 * server instance. A watch is a project; a user watches only what they could
 * add on client.sock, and sees only what they may read.
 */
#ifndef VW_WATCHMAN_H
#define VW_WATCHMAN_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "core/creds.h"
#include "store/changes.h"
#include "store/project.h"
#include "store/state.h"
#include "serve/wm_hash.h"

/* The version said: Watchman's, of the commands and fields this server answers as it does. */
#define WM_VERSION "2023.09.04.00"

/* What the asking client may do, as the socket server decides it (clients.c). */
struct wm_peer {
	const struct vw_creds *creds;
	void *ctx;
	/* May the client read @p? */
	bool (*readable)(void *ctx, const struct vw_project *p);
	/*
	 * The real path of the directory @path as the client resolves it (with
	 * its rights, bounded in time), into @real. 0 or -errno.
	 */
	int (*resolve)(void *ctx, const char *path, char *real, size_t len);
	/* client.sock's "add" and "remove" requests, as this client. 0 or -errno with @err. */
	int (*add)(void *ctx, const cJSON *req, cJSON *reply, char *err, size_t errlen);
	int (*remove)(void *ctx, const cJSON *req, cJSON *reply, char *err, size_t errlen);
	/* A query's sync point (read your writes); may be NULL. */
	void (*sync)(void *ctx, const struct vw_project *p);
	/*
	 * content.sha1hex: hash these files of @p as the client (a child running
	 * as them), the request served again once the answers are in. 0 (or
	 * -EBUSY: a job of theirs runs), else -errno. May be NULL: not offered.
	 */
	int (*hash)(void *ctx, const struct vw_project *p, char *const *rels,
		    const struct wm_hash_key *keys, size_t n);
	bool hashed;	/* this request's files were hashed already: what is missing, errors */
};

struct wm_env {
	struct vw_projects *t;
	struct vw_changes *changes;
	struct vw_state *state;
	const char *sockname;	/* watchman.sock's path */
	struct wm_hasher *hasher;	/* content.sha1hex's cache (NULL: none) */
};

/*
 * The reply to one request (a JSON array: the command and its arguments), an
 * object with "version", or with "error" when the request cannot be served.
 * NULL only when out of memory.
 */
cJSON *watchman_command(const struct wm_env *env, const struct wm_peer *peer, const cJSON *req);

#endif
