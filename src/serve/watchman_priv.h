/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* watchman_priv.h: what Watchman's commands (watchman.c) and its query (wm_query.c) share. */
#ifndef VW_WATCHMAN_PRIV_H
#define VW_WATCHMAN_PRIV_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "core/log.h"
#include "serve/watchman.h"

/* A reply: an object with "version". */
cJSON *wm_reply_new(void);
/* An error reply, in Watchman's shape. */
cJSON *wm_error(const char *fmt, ...) VW_PRINTF(1, 2);
/* "unable to resolve root P: directory P is not watched" (the words clients look for). */
cJSON *wm_not_watched(const char *path);
/* The string argument @i of a request, or NULL. */
const char *wm_arg(const cJSON *req, int i);
/* The watch (a project the client may read) whose root is exactly @path. */
const struct vw_project *wm_watch_root(const struct wm_env *env, const struct wm_peer *peer,
				       const char *path);
/* @p's clock now: "c:" and its cursor. */
void wm_clock_of(const struct wm_env *env, const struct vw_project *p, char *out, size_t len);
/* The sync point, unless @spec asks for none ("sync_timeout": 0). */
void wm_maybe_sync(const struct wm_peer *peer, const struct vw_project *p, const cJSON *spec);

/*
 * Can @p's picture and change log answer a query exactly (no crawl of it
 * under way, no rescan owed, its root there)? Until then a query waits, as
 * Watchman's wait for its crawl: WM_NOT_READY is answered, and the request is
 * served again later (clients_wm.c).
 */
bool wm_ready(const struct wm_env *env, const struct vw_project *p);
extern cJSON wm_not_ready;
#define WM_NOT_READY (&wm_not_ready)

/* wm_query.c: ["query", root, spec] */
cJSON *wm_cmd_query(const struct wm_env *env, const struct wm_peer *peer, const cJSON *req);
/* The query @spec of the watch @p (after its sync point when @sync): a reply. */
cJSON *wm_run_query(const struct wm_env *env, const struct wm_peer *peer,
		    const struct vw_project *p, const cJSON *spec, bool sync);

#endif
