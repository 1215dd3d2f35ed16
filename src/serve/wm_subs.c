// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// wm_subs.c: Watchman's subscriptions and states on watchman.sock connections: subscribe,
// unsubscribe, flush-subscriptions, state-enter, state-leave, and the unilateral PDUs they send.
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "serve/clients_priv.h"
#include "serve/watchman.h"
#include "serve/watchman_priv.h"
#include "store/project.h"

#define WM_SUBS_PER_USER 64	/* subscriptions one user (not root) holds, all connections */
#define WM_STATES_PER_USER 32	/* states one user (not root) asserts at once */
#define WM_SPEC_MAX (64 * 1024)	/* bytes of a subscription's query, as JSON */

struct wm_sub {
	struct wm_sub *next;
	char *name;
	const struct vw_project *p;
	cJSON *spec;		/* its query: no generator but since, "since" the last clock told */
	const cJSON *defer, *drop;	/* state names (in spec), or NULL */
	bool defer_vcs;
	bool news;		/* lines of its watch were told since it last looked */
};

struct wm_assert {
	struct wm_assert *next;
	const struct vw_project *p;
	char *name;
	struct client *owner;
};

static void sub_free(struct wm_sub *s)
{
	free(s->name);
	cJSON_Delete(s->spec);
	free(s);
}

/* Is state @name asserted on @p? */
static struct wm_assert *asserted(struct vw_clients *c, const struct vw_project *p,
				  const char *name)
{
	for (struct wm_assert *a = c->wstates; a; a = a->next)
		if (a->p == p && !strcmp(a->name, name))
			return a;
	return NULL;
}

/* Is one of the states named in @names asserted on @p? */
static bool any_asserted(struct vw_clients *c, const struct vw_project *p, const cJSON *names)
{
	const cJSON *n;

	cJSON_ArrayForEach(n, names)
		if (cJSON_IsString(n) && asserted(c, p, n->valuestring))
			return true;
	return false;
}

static bool vcs_busy(const struct vw_project *p)
{
	struct stat st;

	return project_lstat(p, ".git/index.lock", &st) == 0 ||
	       project_lstat(p, ".hg/wlock", &st) == 0;
}

/*
 * A unilateral PDU of @s's from the query result @r (consumed), queued as a
 * subscriber's lines are: a client that does not read overflows its queue and
 * is told so, then disconnected (it resubscribes since its last clock).
 */
static void sub_tell(struct client *cl, struct wm_sub *s, cJSON *r)
{
	cJSON_AddStringToObject(r, "subscription", s->name);
	cJSON_AddStringToObject(r, "root", s->p->root);
	cJSON_AddTrueToObject(r, "unilateral");
	if (!wm_send_bound(cl, r) && !cl->closing) {
		cl_reply_error(cl, "subscription %s: your unread notifications hold over %d KiB: "
				   "read them, and subscribe again since your last clock", s->name,
			       VW_SUB_QUEUE_BYTES >> 10);
		log_info("clients: a Watchman subscriber of %s (uid %u) fell behind", s->p->name,
			 (unsigned)cl->cred.uid);
	}
	cl->c->owed = true;	/* written with the batch (clients_flush()) */
}

/*
 * What changed for @s since its clock: told when there is something (or the
 * clock could not say), and its clock moves on. @tell false: moved on
 * without telling (a "drop" state was asserted meanwhile). Returns whether a
 * PDU was sent.
 */
static bool sub_run(struct client *cl, struct wm_sub *s, bool tell)
{
	struct wm_env env;
	struct wm_peer peer;
	const cJSON *files, *clock;
	cJSON *r;
	bool fresh, sent = false;

	wm_env_peer(cl, &env, &peer);
	r = wm_run_query(&env, &peer, s->p, s->spec, false);
	if (r == WM_NOT_READY)
		return false;	/* a crawl runs: its news is told once it is over */
	s->news = false;
	if (!r)
		return false;
	clock = cJSON_GetObjectItem(r, "clock");
	if (cJSON_GetObjectItem(r, "error") || !cJSON_IsString(clock)) {
		cJSON_Delete(r);
		return false;
	}
	cJSON_ReplaceItemInObject(s->spec, "since", cJSON_CreateString(clock->valuestring));
	files = cJSON_GetObjectItem(r, "files");
	fresh = cJSON_IsTrue(cJSON_GetObjectItem(r, "is_fresh_instance"));
	if (tell && (fresh || cJSON_GetArraySize(files))) {
		sub_tell(cl, s, r);
		sent = true;
	} else {
		cJSON_Delete(r);
	}
	return sent;
}

/* Does @s wait (a state it defers to, or a VCS's lock)? */
static bool sub_waits(struct vw_clients *c, const struct wm_sub *s)
{
	return any_asserted(c, s->p, s->defer) || (s->defer_vcs && vcs_busy(s->p));
}

void wm_settled(struct vw_clients *c, const struct vw_project *p)
{
	for (int i = 0; i < VW_CLIENTS_MAX; i++)
		for (struct wm_sub *s = c->cl[i].fd >= 0 ? c->cl[i].wsubs : NULL; s; s = s->next)
			if (s->p == p)
				s->news = true;
}

void wm_flush(struct vw_clients *c)
{
	for (int i = 0; i < VW_CLIENTS_MAX; i++) {
		struct client *cl = &c->cl[i];

		for (struct wm_sub *s = cl->fd >= 0 ? cl->wsubs : NULL; s && !cl->closing;
		     s = s->next) {
			if (!s->news || sub_waits(c, s))
				continue;
			sub_run(cl, s, !any_asserted(c, s->p, s->drop));
		}
	}	/* written by clients_flush() after: nothing here closes a connection */
}

/* Every subscriber of @p is told that state @name was entered or left. */
static void states_tell(struct vw_clients *c, const struct vw_project *p, const char *verb,
			const char *name, const cJSON *metadata, bool abandoned)
{
	struct wm_env env;
	struct wm_peer peer;
	char clock[VW_CURSOR_MAX + 8];

	for (int i = 0; i < VW_CLIENTS_MAX; i++) {
		struct client *cl = &c->cl[i];

		for (struct wm_sub *s = cl->fd >= 0 ? cl->wsubs : NULL; s; s = s->next) {
			cJSON *r;

			if (s->p != p || !(r = wm_reply_new()))
				continue;
			wm_env_peer(cl, &env, &peer);
			wm_clock_of(&env, p, clock, sizeof(clock));
			cJSON_AddStringToObject(r, "clock", clock);
			cJSON_AddStringToObject(r, verb, name);
			if (metadata)
				cJSON_AddItemToObject(r, "metadata", cJSON_Duplicate(metadata, true));
			if (abandoned)
				cJSON_AddTrueToObject(r, "abandoned");
			sub_tell(cl, s, r);
		}
	}
}

/* State @a is left: said, then what deferred to it is told, what dropped during it is not. */
static void state_left(struct vw_clients *c, struct wm_assert *a, const cJSON *metadata,
		       bool abandoned)
{
	const struct vw_project *p = a->p;
	struct wm_assert **pp;

	for (pp = &c->wstates; *pp && *pp != a; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = a->next;
	states_tell(c, p, "state-leave", a->name, metadata, abandoned);
	for (int i = 0; i < VW_CLIENTS_MAX; i++) {
		struct client *cl = &c->cl[i];

		for (struct wm_sub *s = cl->fd >= 0 ? cl->wsubs : NULL; s; s = s->next) {
			const cJSON *n;
			bool dropped = false;

			if (s->p != p)
				continue;
			cJSON_ArrayForEach(n, s->drop)
				dropped |= cJSON_IsString(n) && !strcmp(n->valuestring, a->name);
			if (dropped)	/* the changes made during the state are not told */
				sub_run(cl, s, false);
			else if (!sub_waits(c, s))
				s->news = true;
		}
	}
	free(a->name);
	free(a);	/* what waited is told at the end of this loop turn (clients_flush()) */
}

static struct wm_assert *owned_by(struct vw_clients *c, const struct client *cl)
{
	for (struct wm_assert *a = c->wstates; a; a = a->next)
		if (a->owner == cl)
			return a;
	return NULL;
}

/* Subscriptions of @uid's connections, or states asserted by them. */
static size_t held_by(struct vw_clients *c, uid_t uid, bool states)
{
	size_t n = 0;

	if (states) {
		for (struct wm_assert *a = c->wstates; a; a = a->next)
			n += a->owner->cred.uid == uid;
		return n;
	}
	for (int i = 0; i < VW_CLIENTS_MAX; i++)
		for (struct wm_sub *s = c->cl[i].fd >= 0 && c->cl[i].cred.uid == uid ?
					c->cl[i].wsubs : NULL; s; s = s->next)
			n++;
	return n;
}

void wm_close(struct client *cl)
{
	struct vw_clients *c = cl->c;

	if (cl->wm_wait_ns) {
		cl->wm_wait_ns = 0;
		c->nwwait--;
	}
	while (cl->wsubs) {
		struct wm_sub *s = cl->wsubs;

		cl->wsubs = s->next;
		sub_free(s);
		c->nwsubs--;
	}
	if (cl->wm_more) {
		cl->wm_more = false;
		c->nwmore--;
	}
	wm_hash_forget(c->hasher, cl);	/* its job, if any, goes with it */
	/* left with their asserter: told as abandoned (state_left() closes nothing) */
	for (struct wm_assert *a; (a = owned_by(c, cl));)
		state_left(c, a, NULL, true);
}

void wm_project_ended(struct vw_clients *c, const struct vw_project *p)
{
	for (int i = 0; i < VW_CLIENTS_MAX; i++) {
		struct client *cl = &c->cl[i];

		for (struct wm_sub **pp = &cl->wsubs; cl->fd >= 0 && *pp;) {
			struct wm_sub *s = *pp;
			cJSON *r;

			if (s->p != p) {
				pp = &s->next;
				continue;
			}
			if ((r = wm_reply_new())) {
				cJSON_AddTrueToObject(r, "canceled");
				sub_tell(cl, s, r);
			}
			*pp = s->next;
			sub_free(s);
			c->nwsubs--;
		}
	}
	for (struct wm_assert *a = c->wstates, *n, **pp = &c->wstates; a; a = n) {
		n = a->next;
		if (a->p == p) {
			*pp = n;
			free(a->name);
			free(a);
		} else {
			pp = &a->next;
		}
	}
}

/* ["subscribe", root, name, spec]: the reply, then what the query finds now. */
static cJSON *subscribe(struct client *cl, const cJSON *req)
{
	struct wm_env env;
	struct wm_peer peer;
	const char *name = wm_arg(req, 2);
	const cJSON *spec = cJSON_GetArrayItem(req, 3), *vcs;
	const struct vw_project *p;
	struct wm_sub *s, **pp;
	size_t mine = 0;
	cJSON *first, *r;

	wm_env_peer(cl, &env, &peer);
	if (!(p = wm_watch_root(&env, &peer, wm_arg(req, 1))))
		return wm_not_watched(wm_arg(req, 1));
	if (!name || !cJSON_IsObject(spec))
		return wm_error("wrong number of arguments for subscribe: root, name and a query");
	for (pp = &cl->wsubs; *pp; pp = &(*pp)->next)
		if (!strcmp((*pp)->name, name))
			break;
	mine = held_by(cl->c, cl->cred.uid, false);
	if (!*pp && cl->cred.uid != 0 && mine >= WM_SUBS_PER_USER)
		return wm_error("subscribe: you hold %zu subscriptions, the most one user may",
				mine);
	{
		char *text = cJSON_PrintUnformatted(spec);
		size_t n = text ? strlen(text) : SIZE_MAX;

		cJSON_free(text);
		if (n > WM_SPEC_MAX)
			return wm_error("subscribe: a subscription's query may be at most %d KiB",
					WM_SPEC_MAX >> 10);
	}
	s = calloc(1, sizeof(*s));
	if (!s || !(s->name = strdup(name)) || !(s->spec = cJSON_Duplicate(spec, true))) {
		if (s)
			sub_free(s);
		return wm_error("out of memory");
	}
	/* a subscription's query generates by time only: the expression filters */
	cJSON_DeleteItemFromObject(s->spec, "suffix");
	cJSON_DeleteItemFromObject(s->spec, "glob");
	cJSON_DeleteItemFromObject(s->spec, "path");
	s->p = p;
	s->defer = cJSON_GetObjectItem(s->spec, "defer");
	s->drop = cJSON_GetObjectItem(s->spec, "drop");
	vcs = cJSON_GetObjectItem(s->spec, "defer_vcs");
	s->defer_vcs = !cJSON_IsFalse(vcs);
	first = wm_run_query(&env, &peer, p, s->spec, true);
	if (first == WM_NOT_READY) {	/* asked again once the crawl is over */
		sub_free(s);
		return first;
	}
	if (!first || cJSON_GetObjectItem(first, "error")) {
		sub_free(s);
		return first ? first : wm_error("out of memory");
	}
	if (!cJSON_GetObjectItem(s->spec, "since"))
		cJSON_AddNullToObject(s->spec, "since");
	cJSON_ReplaceItemInObject(s->spec, "since",
				  cJSON_CreateString(cJSON_GetStringValue(
					  cJSON_GetObjectItem(first, "clock"))));
	if (*pp) {	/* the same name again: it replaces the old one */
		struct wm_sub *old = *pp;

		s->next = old->next;
		sub_free(old);
		*pp = s;
	} else {
		*pp = s;
		cl->c->nwsubs++;
	}
	r = wm_reply_new();
	if (r) {
		cJSON_AddStringToObject(r, "subscribe", name);
		cJSON_AddStringToObject(r, "clock",
					cJSON_GetStringValue(cJSON_GetObjectItem(first, "clock")));
		wm_send(cl, r);
	}
	if (cJSON_IsTrue(cJSON_GetObjectItem(first, "is_fresh_instance")) ||
	    cJSON_GetArraySize(cJSON_GetObjectItem(first, "files")))
		sub_tell(cl, s, first);
	else
		cJSON_Delete(first);
	return NULL;	/* said already */
}

static cJSON *unsubscribe(struct client *cl, const cJSON *req)
{
	const char *name = wm_arg(req, 2);
	bool deleted = false;
	cJSON *r;

	for (struct wm_sub **pp = &cl->wsubs; name && *pp; pp = &(*pp)->next) {
		struct wm_sub *s = *pp;

		if (!strcmp(s->name, name)) {
			*pp = s->next;
			sub_free(s);
			cl->c->nwsubs--;
			deleted = true;
			break;
		}
	}
	if (!name)
		return wm_error("expected 2nd parameter to be subscription name");
	r = wm_reply_new();
	if (r) {
		cJSON_AddStringToObject(r, "unsubscribe", name);
		cJSON_AddBoolToObject(r, "deleted", deleted);
	}
	return r;
}

/* ["flush-subscriptions", root, {sync_timeout, subscriptions}]: what is pending, told now. */
static cJSON *flush_subscriptions(struct client *cl, const cJSON *req)
{
	struct wm_env env;
	struct wm_peer peer;
	const cJSON *opts = cJSON_GetArrayItem(req, 2);
	const cJSON *names = cJSON_GetObjectItem(opts, "subscriptions");
	const struct vw_project *p;
	cJSON *r = wm_reply_new(), *synced, *none, *dropped;

	wm_env_peer(cl, &env, &peer);
	if (!(p = wm_watch_root(&env, &peer, wm_arg(req, 1)))) {
		cJSON_Delete(r);
		return wm_not_watched(wm_arg(req, 1));
	}
	if (!r)
		return NULL;
	wm_maybe_sync(&peer, p, opts);
	synced = cJSON_AddArrayToObject(r, "synced");
	none = cJSON_AddArrayToObject(r, "no_sync_needed");
	dropped = cJSON_AddArrayToObject(r, "dropped");
	for (struct wm_sub *s = cl->wsubs; s; s = s->next) {
		bool named = !names;
		const cJSON *n;
		bool drop;

		cJSON_ArrayForEach(n, names)
			named |= cJSON_IsString(n) && !strcmp(n->valuestring, s->name);
		if (s->p != p || !named)
			continue;
		drop = any_asserted(cl->c, p, s->drop);
		if (drop) {
			sub_run(cl, s, false);
			cJSON_AddItemToArray(dropped, cJSON_CreateString(s->name));
		} else if (sub_run(cl, s, true)) {
			cJSON_AddItemToArray(synced, cJSON_CreateString(s->name));
		} else {
			cJSON_AddItemToArray(none, cJSON_CreateString(s->name));
		}
	}
	return r;
}

/* ["state-enter"|"state-leave", root, name | {name, metadata}] */
static cJSON *state(struct client *cl, const cJSON *req, bool enter)
{
	struct wm_env env;
	struct wm_peer peer;
	const cJSON *a = cJSON_GetArrayItem(req, 2);
	const char *name = cJSON_IsString(a) ? a->valuestring :
			   cJSON_GetStringValue(cJSON_GetObjectItem(a, "name"));
	const cJSON *metadata = cJSON_GetObjectItem(a, "metadata");
	const char *verb = enter ? "state-enter" : "state-leave";
	const struct vw_project *p;
	struct wm_assert *as;
	size_t n = 0;
	cJSON *r;

	wm_env_peer(cl, &env, &peer);
	if (!(p = wm_watch_root(&env, &peer, wm_arg(req, 1))))
		return wm_not_watched(wm_arg(req, 1));
	if (!name)
		return wm_error("%s: the state's name is missing", verb);
	/* a state holds back or drops what the watch's subscribers are told: its owner's */
	if (cl->cred.uid != 0 && cl->cred.uid != p->owner.uid)
		return wm_error("%s: only the owner of %s asserts states on it", verb, p->root);
	wm_maybe_sync(&peer, p, a);
	as = asserted(cl->c, p, name);
	if (enter) {
		n = held_by(cl->c, cl->cred.uid, true);
		if (as)
			return wm_error("state %s is already asserted", name);
		if (cl->cred.uid != 0 && n >= WM_STATES_PER_USER)
			return wm_error("state-enter: you assert %zu states, the most one user may",
					n);
		as = calloc(1, sizeof(*as));
		if (!as || !(as->name = strdup(name))) {
			free(as);
			return NULL;
		}
		as->p = p;
		as->owner = cl;
		as->next = cl->c->wstates;
		cl->c->wstates = as;
		states_tell(cl->c, p, verb, name, metadata, false);
	} else {
		if (!as)
			return wm_error("state %s is not asserted", name);
		state_left(cl->c, as, metadata, false);
	}
	r = wm_reply_new();
	if (r) {
		cJSON_AddStringToObject(r, "root", p->root);
		cJSON_AddStringToObject(r, verb, name);
	}
	return r;
}

bool wm_subs_command(struct client *cl, const cJSON *req, cJSON **reply)
{
	const char *cmd = wm_arg(req, 0);

	if (!cmd)
		return false;
	if (!strcmp(cmd, "subscribe"))
		*reply = subscribe(cl, req);
	else if (!strcmp(cmd, "unsubscribe"))
		*reply = unsubscribe(cl, req);
	else if (!strcmp(cmd, "flush-subscriptions"))
		*reply = flush_subscriptions(cl, req);
	else if (!strcmp(cmd, "state-enter") || !strcmp(cmd, "state-leave"))
		*reply = state(cl, req, cmd[6] == 'e');
	else
		return false;
	return true;
}
