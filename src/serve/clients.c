// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// clients.c: the client socket: "changes" and "subscribe" for ordinary users (see clients.h).
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "serve/bser.h"
#include "serve/clients.h"
#include "serve/clients_priv.h"
#include "serve/watchman.h"
#include "pipeline/json_out.h"
#include "serve/control.h"
#include "store/netchange.h"
#include "core/creds.h"
#include "pipeline/route.h"
#include "core/ignore.h"
#include "core/log.h"
#include "core/util.h"

/* Bytes queued for @cl's user: @delta more (or fewer). */
static void uq_add(struct client *cl, ssize_t delta)
{
	cl->c->uq[cl->uq].bytes += (size_t)delta;
}

static void sub_end(struct client *cl)
{
	if (cl->sub)
		cl->c->nsubs--;
	cl->sub = NULL;
}

void cl_close(struct client *cl)
{
	if (cl->fd < 0)
		return;
	loop_del(cl->c->loop, cl->fd);
	close(cl->fd);
	cl->fd = -1;
	uq_add(cl, -(ssize_t)(cl->olen - cl->opos));
	cl->c->uq[cl->uq].conns--;
	free(cl->out);
	cl->out = NULL;
	for (size_t i = 0; i < cl->nmatch; i++)
		free(cl->match[i]);
	free(cl->match);
	cl->match = NULL;
	cl->nmatch = 0;
	free(cl->win);
	cl->win = NULL;
	cl->winlen = cl->wincap = 0;
	sub_end(cl);
	wm_close(cl);
}

/* Write what is queued; close when done and asked to. */
void cl_flush(struct client *cl)
{
	while (cl->opos < cl->olen) {
		ssize_t n = send(cl->fd, cl->out + cl->opos, cl->olen - cl->opos,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			cl_close(cl);	/* gone */
			return;
		}
		cl->opos += (size_t)n;
		cl->sent += (uint64_t)n;
		uq_add(cl, -n);
	}
	if (cl->opos == cl->olen) {
		cl->opos = cl->olen = 0;
		if (cl->ocap > 65536) {	/* a big reply's buffer is not kept once it is read */
			free(cl->out);
			cl->out = NULL;
			cl->ocap = 0;
		}
		if (cl->closing && !cl->draining) {
			/*
			 * Said all: end our side, and read theirs to its end before
			 * closing (unread input would turn the close into a reset
			 * that can destroy the reply before it is read).
			 */
			shutdown(cl->fd, SHUT_WR);
			cl->draining = true;
			sub_end(cl);
			cl->deadline_ns = now_ns(CLOCK_MONOTONIC) + REQUEST_TIMEOUT_NS;
		}
	}
	loop_want_write(cl->c->loop, cl->fd, cl->opos < cl->olen);
}

/*
 * Queue @len bytes, and a newline when @nl (a line). @bound: a subscriber's,
 * which may overflow.
 */
bool cl_queue_bytes(struct client *cl, const char *line, size_t len, bool bound, bool nl)
{
	size_t need;

	len += nl;	/* the newline is counted as one of its bytes */
	need = cl->olen - cl->opos + len;

	if (cl->overflowed || cl->fd < 0 || cl->capped)
		return false;
	if (bound && need > VW_SUB_QUEUE_BYTES)
		return false;
	/*
	 * What a user's replies hold unread is bounded: a reply past it is an
	 * error instead, unless nothing else of theirs is unread (one listing
	 * bigger than the budget at a time: as big as their project's picture).
	 */
	if (!bound && !cl->over_cap && cl->cred.uid != 0 &&
	    cl->c->uq[cl->uq].bytes + len > cl->c->reply_budget &&
	    (!cl->one_shot || cl->c->uq[cl->uq].bytes > cl->olen - cl->opos)) {
		cl->capped = true;
		return false;
	}
	if (cl->opos && cl->olen + len > cl->ocap) {	/* reuse the written part */
		memmove(cl->out, cl->out + cl->opos, cl->olen - cl->opos);
		cl->olen -= cl->opos;
		cl->opos = 0;
	}
	if (cl->olen + len > cl->ocap) {
		size_t cap = cl->ocap ? cl->ocap : 4096;
		char *o;

		while (cap < cl->olen + len)
			cap *= 2;
		o = realloc(cl->out, cap);
		if (!o)
			return false;
		cl->out = o;
		cl->ocap = cap;
	}
	memcpy(cl->out + cl->olen, line, len - nl);
	if (nl)
		cl->out[cl->olen + len - 1] = '\n';
	cl->olen += len;
	uq_add(cl, (ssize_t)len);
	return true;
}

/* Queue a line (a newline is added). @bound: a subscriber's line, which may overflow. */
bool cl_queue(struct client *cl, const char *line, size_t len, bool bound)
{
	return cl_queue_bytes(cl, line, len, bound, true);
}

static void queue_json(struct client *cl, cJSON *j)
{
	char *s = json_text(j);

	if (s)
		cl_queue(cl, s, strlen(s), false);
	free(s);
	cJSON_Delete(j);
}

void cl_reply_error(struct client *cl, const char *fmt, ...)
{
	cJSON *j = cJSON_CreateObject();
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (cl->wm)	/* in Watchman's words and encoding */
		cJSON_AddStringToObject(j, "version", WM_VERSION);
	cJSON_AddStringToObject(j, "error", msg);
	if (cl->wm)
		wm_send(cl, j);
	else
		queue_json(cl, j);
	cl->closing = true;
}

static bool named_user(const char *name, uid_t uid)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	return getpwnam_r(name, &pw, buf, sizeof(buf), &res) == 0 && res && res->pw_uid == uid;
}

static bool named_group(const char *name, const struct vw_creds *creds)
{
	struct group gr, *res = NULL;
	char buf[8192];

	if (getgrnam_r(name, &gr, buf, sizeof(buf), &res) != 0 || !res)
		return false;
	return creds_in_group(creds, res->gr_gid);
}

/*
 * Root, the owner of the project's root directory as it was pinned (never the
 * path looked at again: it may name something else now), and its readers.
 */
bool cl_readable(const struct client *cl, const struct vw_project *p)
{
	if (cl->cred.uid == 0 || p->owner.uid == cl->cred.uid)
		return true;
	for (char **r = p->readers; r && *r; r++)
		if ((*r)[0] == '@' ? named_group(*r + 1, &cl->creds) : named_user(*r, cl->cred.uid))
			return true;
	return false;
}

/*
 * Paths a user names are resolved by a child with their rights, bounded by
 * VW_RESOLVE_TIMEOUT_MS, a wait the loop takes: one that timed out (their FUSE
 * server, a child they stopped) makes the next ones wait VW_RESOLVE_BACKOFF_NS.
 */
bool cl_may_resolve(const struct client *cl)
{
	return cl->cred.uid == 0 || now_ns(CLOCK_MONOTONIC) >= cl->c->uq[cl->uq].resolve_after_ns;
}

void cl_resolved(struct client *cl, int ret, uint64_t t0)
{
	uint64_t now = now_ns(CLOCK_MONOTONIC);

	/* one that took long without timing out counts too: else a path of theirs that answers
	 * just in time stalls the daemon a second a request */
	if ((ret == -ETIMEDOUT || now - t0 > VW_RESOLVE_SLOW_NS) && cl->cred.uid != 0) {
		cl->c->uq[cl->uq].resolve_after_ns = now + VW_RESOLVE_BACKOFF_NS;
		log_warnx("clients: a path of uid %u took over %llu ms to answer: its paths are not "
			  "looked at for a minute", (unsigned)cl->cred.uid,
			  (unsigned long long)(VW_RESOLVE_SLOW_NS / 1000000));
	}
}

/* The project named @what, or whose root @what is (as written), the client may read. */
static const struct vw_project *find_exact(struct client *cl, const char *what)
{
	const struct vw_project *found = NULL;

	/* one path may be the root of several (a lost root and a new project there): the
	 * client's, the one whose root is there now first */
	for (size_t i = 0; i < cl->c->t->n; i++) {
		const struct vw_project *p = &cl->c->t->v[i];

		if (p->gone || (strcmp(p->name, what) != 0 && strcmp(p->root, what) != 0) ||
		    !cl_readable(cl, p))
			continue;
		if (!p->root_lost)
			return p;
		found = found ? found : p;
	}
	return found;
}

/*
 * A project by name or root path, if the client may know of it. A path that
 * names no root as written is resolved as the client would resolve it, by a
 * child with the client's rights (a bounded wait: it may lead into their FUSE).
 */
static const struct vw_project *find(struct client *cl, const char *what)
{
	const struct vw_project *p = find_exact(cl, what);
	uint64_t t0;
	char real[PATH_MAX];
	struct stat st;
	int fd;

	if (p || what[0] != '/' || !cl_may_resolve(cl))
		return p;
	t0 = now_ns(CLOCK_MONOTONIC);
	fd = creds_open_dir_as(&cl->creds, what, true, real, sizeof(real), &st,
			       VW_RESOLVE_TIMEOUT_MS);
	cl_resolved(cl, fd, t0);
	if (fd < 0)
		return NULL;
	close(fd);
	return find_exact(cl, real);
}

static bool matches(char *const *match, size_t n, const char *path)
{
	return path ? globs_match(match, n, path) : !n;
}

/* Does the client want a line of @kind about @path (or @old_path)? */
static bool wanted(const struct client *cl, enum vw_kind kind, const char *path,
		   const char *old_path)
{
	if (cl->kinds && !(cl->kinds & (1u << kind)))
		return false;
	return matches(cl->match, cl->nmatch, path) ||
	       (old_path && cl->nmatch && matches(cl->match, cl->nmatch, old_path));
}

/* A settled line's event, path and old_path (a line that does not parse matches nothing). */
static bool line_wanted(const struct client *cl, const char *line, size_t len)
{
	cJSON *j;
	bool m;

	if (!cl->nmatch && !cl->kinds)
		return true;
	j = cJSON_ParseWithLength(line, len);
	m = j && wanted(cl, kind_parse(cJSON_GetStringValue(cJSON_GetObjectItem(j, "event"))),
			cJSON_GetStringValue(cJSON_GetObjectItem(j, "path")),
			cJSON_GetStringValue(cJSON_GetObjectItem(j, "old_path")));
	cJSON_Delete(j);
	return m;
}

/* --- the net change since a cursor ------------------------------------------------- */

struct net_reply {
	struct client *cl;
	const struct vw_project *p;
};

/* One line of the net change, filtered by what the client wants. */
static void net_one(void *ctx, enum vw_kind kind, const char *path, const char *type,
		    bool was_dir)
{
	struct net_reply *r = ctx;
	cJSON *j;

	if (!wanted(r->cl, kind, path, NULL))
		return;
	j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "event", kind_name(kind));
	cJSON_AddStringToObject(j, "project", r->p->name);
	json_add_name(j, "path", path);
	if (type)	/* a delete's: what was there */
		cJSON_AddStringToObject(j, "type", type);
	if (was_dir && (!type || strcmp(type, "dir") != 0))	/* a directory was here since */
		cJSON_AddTrueToObject(j, "was_dir");
	queue_json(r->cl, j);
}

/* --- requests ---------------------------------------------------------------------- */

struct fresh {
	struct client *cl;
	const struct vw_project *p;
};

static bool fresh_one(void *ctx, const char *rel, const struct vw_state_entry *st)
{
	struct fresh *f = ctx;
	cJSON *j;

	if (!wanted(f->cl, VW_KIND_CREATE, rel, NULL))
		return true;
	j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "event", kind_name(VW_KIND_CREATE));
	cJSON_AddStringToObject(j, "project", f->p->name);
	json_add_name(j, "path", rel);
	cJSON_AddStringToObject(j, "type", ftype_name(ftype_of_mode(st->mode)));
	cJSON_AddBoolToObject(j, "fresh", true);
	queue_json(f->cl, j);
	return true;
}

/* Every path there is now, each a "create" marked "fresh": the cursor could not say. */
static void fresh_listing(struct client *cl, const struct vw_project *p)
{
	struct fresh f = { cl, p };

	state_each(cl->c->state, p, fresh_one, &f);
}

static void cursor_line(struct client *cl, const struct vw_project *p, bool fresh)
{
	cJSON *j = cJSON_CreateObject();
	char cur[VW_CURSOR_MAX];

	changes_cursor(cl->c->changes, p, cur);
	cJSON_AddStringToObject(j, "project", p->name);
	cJSON_AddStringToObject(j, "cursor", cur);
	if (fresh)
		cJSON_AddBoolToObject(j, "fresh", true);
	/*
	 * The log cannot say everything yet: changes were lost and a rescan runs
	 * or is owed (the start-up crawl after a restart too), the root is lost,
	 * or it is on a network file system whose other writers are not seen.
	 */
	if (p->root_lost || p->rescan_owed || p->remote ||
	    (cl->c->state && state_rescanning(cl->c->state, p)))
		cJSON_AddBoolToObject(j, "incomplete", true);
	/* its rules may hide a path git tracks: git's hook cannot trust the answer alone */
	if (!ignore_only_git(p->ignore))
		cJSON_AddBoolToObject(j, "ignores_beyond_git", true);
	queue_json(cl, j);
	snprintf(cl->last, sizeof(cl->last), "%s", cur);
}

static int backlog_line(void *ctx, const char *line, size_t len)
{
	struct client *cl = ctx;

	if (line_wanted(cl, line, len))
		cl_queue(cl, line, len, false);
	return 0;
}

static void serve(struct client *cl, const cJSON *req)
{
	const char *cmd = cJSON_GetStringValue(cJSON_GetObjectItem(req, "cmd"));
	const char *what = cJSON_GetStringValue(cJSON_GetObjectItem(req, "project"));
	const cJSON *since = cJSON_GetObjectItem(req, "since");
	const cJSON *match = cJSON_GetObjectItem(req, "match"), *m;
	const cJSON *kinds = cJSON_GetObjectItem(req, "events");
	const cJSON *root_id = cJSON_GetObjectItem(req, "root_id");
	const struct vw_project *p;
	bool sub;
	int ret;

	if (cmd && (strcmp(cmd, "add") == 0 || strcmp(cmd, "remove") == 0)) {
		clients_verb_fn fn = cmd[0] == 'a' ? cl->c->ops.add : cl->c->ops.remove;
		cJSON *reply = cJSON_CreateObject();
		uint64_t t0 = now_ns(CLOCK_MONOTONIC);
		char err[512] = "";

		if (cmd[0] == 'a' && !cl_may_resolve(cl)) {
			cJSON_Delete(reply);
			cl_reply_error(cl, "add: a path you named did not answer in time: paths you name "
					"are not looked at for a minute");
			return;
		}
		ret = reply && fn ? fn(cl->c->ops.ctx, &cl->creds, req, reply, err, sizeof(err)) :
				    -ENOMEM;
		cl_resolved(cl, ret, t0);
		if (ret < 0) {
			cJSON_Delete(reply);
			cl_reply_error(cl, "%s", err[0] ? err : "out of memory");
			return;
		}
		cJSON_AddTrueToObject(reply, "ok");
		queue_json(cl, reply);
		cl->closing = true;
		return;
	}
	if (!cmd || (strcmp(cmd, "changes") != 0 && strcmp(cmd, "subscribe") != 0)) {
		cl_reply_error(cl, "unknown request: \"cmd\" is \"changes\", \"subscribe\", "
				"\"add\" or \"remove\"");
		return;
	}
	sub = cmd[0] == 's';
	if (!what || !what[0]) {
		cl_reply_error(cl, "%s: \"project\" (a name or a root path) is missing", cmd);
		return;
	}
	if (since && !cJSON_IsString(since)) {
		cl_reply_error(cl, "%s: \"since\" must be a cursor string", cmd);
		return;
	}
	if (match && (!cJSON_IsArray(match) || cJSON_GetArraySize(match) > MATCH_MAX)) {
		cl_reply_error(cl, "%s: \"match\" must be an array of at most %d globs", cmd,
			    MATCH_MAX);
		return;
	}
	cl->match = calloc(MATCH_MAX, sizeof(*cl->match));
	if (!cl->match) {
		cl_reply_error(cl, "out of memory");
		return;
	}
	cJSON_ArrayForEach(m, match) {
		if (!cJSON_IsString(m) || !m->valuestring[0]) {
			cl_reply_error(cl, "%s: \"match\" must hold glob strings", cmd);
			return;
		}
		if (!(cl->match[cl->nmatch] = strdup(m->valuestring))) {
			cl_reply_error(cl, "out of memory");
			return;
		}
		cl->nmatch++;
	}
	if (kinds && !cJSON_IsArray(kinds)) {
		cl_reply_error(cl, "%s: \"events\" must be an array of kinds of change", cmd);
		return;
	}
	cJSON_ArrayForEach(m, kinds) {
		enum vw_kind k = kind_parse(cJSON_GetStringValue(m));

		if (k < VW_KIND_CREATE || k > VW_KIND_RENAME) {
			cl_reply_error(cl, "%s: \"events\": not a kind of change (create, modify, "
					"truncate, attrib, delete, rename)", cmd);
			return;
		}
		cl->kinds |= 1u << k;
	}
	p = find(cl, what);
	if (!p) {	/* the same words whether it exists or not */
		cl_reply_error(cl, "no project '%s' that you may read", what);
		return;
	}
	if (root_id && (!cJSON_IsString(root_id) || !project_is(p, root_id->valuestring))) {
		cl_reply_error(cl, "%s: project '%s' is another directory than the one you named "
				"(\"root_id\" differs: another mount namespace?)", cmd, what);
		return;
	}
	if (cl->c->ops.sync)	/* read your writes: the log holds all of them from here */
		cl->c->ops.sync(cl->c->ops.ctx, p);
	if (!sub) {
		struct vw_net *s = net_new();
		struct net_reply r = { cl, p };

		cl->one_shot = true;	/* it has REPLY_TIMEOUT_NS to be read, then the connection goes */
		if (!s) {
			cl_reply_error(cl, "out of memory");
			return;
		}
		ret = since ? changes_since(cl->c->changes, p, since->valuestring, net_line, s) : 0;
		net_each(s, cl->c->state, p, net_one, &r);
		net_free(s);
		if (ret == -ESTALE)
			fresh_listing(cl, p);
		cursor_line(cl, p, ret == -ESTALE);
		cl->closing = true;
		cl->deadline_ns = now_ns(CLOCK_MONOTONIC) + REPLY_TIMEOUT_NS;
		return;
	}
	ret = since ? changes_since(cl->c->changes, p, since->valuestring, backlog_line, cl) : 0;
	if (ret == -ESTALE)
		fresh_listing(cl, p);
	{
		cJSON *j = cJSON_CreateObject();
		char cur[VW_CURSOR_MAX];

		changes_cursor(cl->c->changes, p, cur);
		cJSON_AddStringToObject(j, "event", "subscribed");
		cJSON_AddStringToObject(j, "project", p->name);
		cJSON_AddStringToObject(j, "cursor", cur);
		if (ret == -ESTALE)
			cJSON_AddBoolToObject(j, "fresh", true);
		queue_json(cl, j);
		snprintf(cl->last, sizeof(cl->last), "%s", cur);
	}
	cl->sub = p;
	cl->c->nsubs++;
	cl->deadline_ns = 0;	/* a subscription lasts; one that does not read overflows */
}

/*
 * A reply that would have taken its user's unread replies past
 * the budget (reply_budget): what was queued of it goes, an error line says why (a
 * reply is whole or not at all; the user reads the others, or asks for less).
 */
void cl_over_budget(struct client *cl)
{
	size_t unsent = cl->olen - cl->opos;

	if (cl->sent == 0) {	/* nothing of it has gone yet: it can still be taken back */
		uq_add(cl, -(ssize_t)unsent);
		cl->olen = cl->opos = 0;
	}
	sub_end(cl);
	cl->capped = false;
	cl->over_cap = true;
	cl_reply_error(cl, "your unread replies hold over %d MiB: read them, or ask for less "
			"(--match, --since), and try again", (int)(cl->c->reply_budget >> 20));
	cl->over_cap = false;
	cl->capped = true;	/* nothing more is queued for it */
	log_info("clients: a reply to uid %u was refused: its unread replies are over budget",
		 (unsigned)cl->cred.uid);
}

static int on_client(void *ctx, uint32_t events)
{
	struct client *cl = ctx;

	if (events & EPOLLOUT)
		cl_flush(cl);
	if (cl->fd < 0 || !(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return 0;
	if (cl->wm)
		return wm_input(cl);
	for (;;) {
		char junk[512];
		ssize_t n = cl->asked ? recv(cl->fd, junk, sizeof(junk), MSG_DONTWAIT) :
					recv(cl->fd, cl->in + cl->inlen, REQUEST_MAX - cl->inlen,
					     MSG_DONTWAIT);
		char *nl;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0) {	/* the client went away (or hung up its side) */
			cl_close(cl);
			return 0;
		}
		if (cl->asked)
			continue;
		cl->inlen += (size_t)n;
		cl->in[cl->inlen] = 0;
		nl = memchr(cl->in, '\n', cl->inlen);
		if (!nl && cl->inlen == REQUEST_MAX) {
			cl->asked = true;
			cl_reply_error(cl, "request too long (at most %d bytes)", REQUEST_MAX);
		} else if (nl) {
			cJSON *req = cJSON_ParseWithLength(cl->in, (size_t)(nl - cl->in));

			cl->asked = true;
			if (!cJSON_IsObject(req))
				cl_reply_error(cl, "malformed request: one JSON object per line");
			else
				serve(cl, req);
			cJSON_Delete(req);
			if (cl->capped)
				cl_over_budget(cl);
		}
		if (cl->asked) {
			cl_flush(cl);
			if (cl->fd < 0)
				return 0;
		}
	}
}

/* Said before closing a connection that will not be served: one error line. */
static void refuse(int fd, const char *msg)
{
	char line[256];

	snprintf(line, sizeof(line), "{\"error\":\"%s\"}\n", msg);
	unix_refuse(fd, line);
}

/*
 * Every slot is taken: make room for a client of @uid by closing a connection
 * that has sent no request yet, of the user holding the most connections
 * (never of @uid itself, unless @uid is root). NULL: none to close.
 */
static struct client *evict_idle(struct vw_clients *c, uint32_t uid)
{
	struct client *victim = NULL;

	for (int i = 0; i < VW_CLIENTS_MAX; i++) {
		struct client *cl = &c->cl[i];

		if (cl->fd < 0 || cl->asked || cl->sub || cl->cred.uid == 0 ||
		    (cl->cred.uid == uid && uid != 0))
			continue;
		if (!victim || c->uq[cl->uq].conns > c->uq[victim->uq].conns)
			victim = cl;
	}
	if (!victim)
		return NULL;
	log_info("clients: full: closed an idle connection of uid %u (it holds %u) for uid %u",
		 (unsigned)victim->cred.uid, c->uq[victim->uq].conns, (unsigned)uid);
	refuse(dup(victim->fd), "closed before a request: the daemon is full, and your user "
				"holds the most idle connections");
	cl_close(victim);
	return victim;
}

/* A connection to client.sock, or to watchman.sock (@wm), each one of the VW_CLIENTS_MAX. */
int cl_accept(struct vw_clients *c, int lfd, bool wm)
{
	socklen_t len = sizeof(struct ucred);
	struct client *cl = NULL;
	int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct ucred cred;
	int q = -1, mine = 0;

	if (fd < 0)
		return errno == EAGAIN || errno == ECONNABORTED ? 0 : -errno;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		refuse(fd, "who is asking? (SO_PEERCRED failed)");
		return 0;
	}
	for (int i = 0; i < VW_CLIENTS_MAX; i++) {
		if (c->uq[i].uid == cred.uid && (c->uq[i].conns || c->uq[i].resolve_after_ns))
			q = i;
		if (c->cl[i].fd >= 0 && c->cl[i].cred.uid == cred.uid)
			mine++;
	}
	if (cred.uid != 0 && mine >= VW_CLIENTS_PER_UID) {
		log_info("clients: uid %d holds %d connections: refused one more", (int)cred.uid,
			 mine);
		refuse(fd, "too many connections from your user (at most " VW_STR(VW_CLIENTS_PER_UID)
			   ")");
		return 0;
	}
	for (int i = 0; i < VW_CLIENTS_MAX && !cl; i++)
		if (c->cl[i].fd < 0)
			cl = &c->cl[i];
	if (!cl && !(cl = evict_idle(c, cred.uid))) {
		refuse(fd, "busy: the daemon serves " VW_STR(VW_CLIENTS_MAX) " clients at once");
		return 0;
	}
	for (int i = 0; i < VW_CLIENTS_MAX && q < 0; i++)
		if (!c->uq[i].conns && !c->uq[i].resolve_after_ns)
			q = i;
	for (int i = 0; i < VW_CLIENTS_MAX && q < 0; i++)
		if (!c->uq[i].conns)
			q = i;
	*cl = (struct client){ .fd = fd, .c = c, .cred = cred, .uq = q, .wm = wm };
	if (!c->uq[q].conns && c->uq[q].uid != cred.uid)
		c->uq[q].resolve_after_ns = 0;
	if (!c->uq[q].conns)
		c->uq[q].bytes = 0;
	c->uq[q].uid = cred.uid;
	c->uq[q].conns++;
	if (creds_of_peer(fd, &cl->creds) < 0) {
		refuse(fd, "who is asking? (SO_PEERGROUPS failed)");
		c->uq[q].conns--;
		cl->fd = -1;
		return 0;
	}
	cl->deadline_ns = now_ns(CLOCK_MONOTONIC) + REQUEST_TIMEOUT_NS;
	if (loop_add(c->loop, fd, on_client, cl) < 0) {
		close(fd);
		cl->fd = -1;
		c->uq[q].conns--;
	}
	return 0;
}

static int on_accept(void *ctx, uint32_t events)
{
	struct vw_clients *c = ctx;

	(void)events;
	return cl_accept(c, c->fd, false);
}

struct vw_clients *clients_new(const char *path, struct vw_loop *loop, struct vw_projects *t,
			       struct vw_changes *changes, struct vw_state *state,
			       const struct vw_clients_ops *ops, char *err, size_t errlen)
{
	struct vw_clients *c = calloc(1, sizeof(*c));
	int ret;

	if (!c || strlen(path) >= sizeof(c->path)) {
		snprintf(err, errlen, "%s: %s", path, c ? "path too long" : "out of memory");
		free(c);
		return NULL;
	}
	c->reply_budget = (size_t)VW_USER_REPLY_MB << 20;
	snprintf(c->path, sizeof(c->path), "%s", path);
	c->loop = loop;
	c->t = t;
	c->changes = changes;
	c->state = state;
	if (ops)
		c->ops = *ops;
	for (int i = 0; i < VW_CLIENTS_MAX; i++)
		c->cl[i].fd = -1;
	c->wfd = c->wfd_more = -1;
	c->fd = unix_listen(path, 0666, -1, 64);
	ret = c->fd < 0 ? c->fd : loop_add(loop, c->fd, on_accept, c);
	if (ret < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(-ret));
		clients_free(c);
		return NULL;
	}
	{
		char dir[sizeof(c->path)], *slash;
		struct stat st;

		snprintf(dir, sizeof(dir), "%s", path);
		slash = strrchr(dir, '/');
		if (slash && slash != dir)
			*slash = 0;
		if (stat(dir, &st) == 0 && (st.st_mode & 0001) == 0)
			log_info("clients: %s is closed to other users (mode %04o): only its owner "
				 "and group can use %s", dir, st.st_mode & 07777, path);
	}
	return c;
}

void clients_set_reply_budget(struct vw_clients *c, size_t bytes)
{
	c->reply_budget = bytes;
}

void clients_free(struct vw_clients *c)
{
	if (!c)
		return;
	for (int i = 0; i < VW_CLIENTS_MAX; i++)
		cl_close(&c->cl[i]);
	if (c->fd >= 0) {
		loop_del(c->loop, c->fd);
		close(c->fd);
		unlink(c->path);
	}
	if (c->wfd >= 0) {
		loop_del(c->loop, c->wfd);
		close(c->wfd);
		unlink(c->wpath);
	}
	if (c->wfd_more >= 0) {
		loop_del(c->loop, c->wfd_more);
		close(c->wfd_more);
	}
	wm_hasher_free(c->hasher);
	free(c);
}

void clients_settled(struct vw_clients *c, const struct vw_project *p, enum vw_kind kind,
		     const char *path, const char *old_path, const char *line, size_t len,
		     const char *cursor)
{
	if (c && c->nwsubs)
		wm_settled(c, p);
	if (!c || !c->nsubs)
		return;	/* the common case costs one test a line */
	for (int i = 0; i < VW_CLIENTS_MAX; i++) {
		struct client *cl = &c->cl[i];

		if (cl->fd < 0 || cl->sub != p || cl->overflowed ||
		    !wanted(cl, kind, path, old_path))
			continue;
		if (!cl_queue(cl, line, len, true)) {
			cJSON *j = cJSON_CreateObject();

			/* it did not keep up: where to resume, then goodbye */
			cJSON_AddStringToObject(j, "event", "overflow");
			cJSON_AddStringToObject(j, "reason", "subscriber_queue");
			cJSON_AddStringToObject(j, "project", p->name);
			cJSON_AddStringToObject(j, "cursor", cl->last);
			queue_json(cl, j);
			cl->overflowed = true;
			cl->closing = true;
			log_info("clients: a subscriber of %s (uid %d) fell behind; told to resume "
				 "from %s", p->name, (int)cl->cred.uid, cl->last);
		} else {
			snprintf(cl->last, sizeof(cl->last), "%s", cursor);
		}
		if (cl->closing || cl->olen - cl->opos >= SEND_BATCH)
			cl_flush(cl);
		else
			c->owed = true;	/* written with the rest of the batch: clients_flush() */
	}
}

void clients_project_ended(struct vw_clients *c, const struct vw_project *p, const char *reason)
{
	if (c && c->nwsubs)
		wm_project_ended(c, p);
	for (int i = 0; c && i < VW_CLIENTS_MAX; i++) {
		struct client *cl = &c->cl[i];
		cJSON *j;

		if (cl->fd < 0 || cl->sub != p || cl->overflowed)
			continue;
		j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "event", "overflow");
		cJSON_AddStringToObject(j, "reason", reason);
		cJSON_AddStringToObject(j, "project", p->name);
		cJSON_AddStringToObject(j, "cursor", cl->last);
		cl->over_cap = true;	/* said whatever the budget */
		queue_json(cl, j);
		cl->over_cap = false;
		cl->overflowed = true;
		cl->closing = true;
		sub_end(cl);
		cl_flush(cl);
	}
}

void clients_flush(struct vw_clients *c)
{
	if (c && c->nwwait)
		wm_retry(c);
	if (c && c->nwsubs)
		wm_flush(c);
	if (!c || !c->owed)
		return;
	c->owed = false;
	for (int i = 0; i < VW_CLIENTS_MAX; i++)
		if (c->cl[i].fd >= 0 && c->cl[i].olen > c->cl[i].opos)
			cl_flush(&c->cl[i]);
}

/*
 * Output queued for a client at two ticks in a row, nothing of it sent in
 * between, and its socket taking data now: cl_flush() asks for EPOLLOUT whenever
 * it leaves bytes behind and clients_flush() runs every loop turn, so this is
 * a writer that stopped looking; said, counted, and sent.
 */
static void queue_check(struct client *cl)
{
	struct pollfd pfd = { .fd = cl->fd, .events = POLLOUT };
	bool queued = cl->olen > cl->opos && !cl->draining;
	bool stalled = queued && cl->queued_then && cl->sent == cl->sent_then &&
		       poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLOUT);

	cl->queued_then = queued;
	cl->sent_then = cl->sent;
	if (!stalled)
		return;
	cl->c->stalls++;
	log_warnx("clients: %zu bytes for uid %u were left unsent on a writable socket: sending",
		  cl->olen - cl->opos, (unsigned)cl->cred.uid);
	cl_flush(cl);
}

uint64_t clients_stalls(const struct vw_clients *c)
{
	return c ? c->stalls : 0;
}

void clients_tick(struct vw_clients *c, uint64_t now)
{
	if (c)	/* content.sha1hex's children past their time */
		wm_hash_tick(c->hasher, now);
	if (c && c->nwwait)	/* requests that waited for a crawl */
		wm_retry(c);
	if (c && c->nwsubs)	/* subscriptions that waited for a VCS's lock to go */
		wm_flush(c);
	for (int i = 0; c && i < VW_CLIENTS_MAX; i++) {
		struct client *cl = &c->cl[i];

		if (cl->fd >= 0)
			queue_check(cl);

		if (cl->fd < 0 || !cl->deadline_ns || now < cl->deadline_ns)
			continue;
		if (!cl->asked) {	/* connected and said nothing: told, then gone */
			cl->asked = true;
			cl_reply_error(cl, "no request within %llu s",
				    (unsigned long long)(REQUEST_TIMEOUT_NS / 1000000000ull));
			cl->deadline_ns = now + REQUEST_TIMEOUT_NS;
			cl_flush(cl);
		} else {
			cl_close(cl);	/* did not read its reply, or not close after it */
		}
	}
}

size_t clients_queued_bytes(const struct vw_clients *c)
{
	size_t n = 0;

	for (int i = 0; c && i < VW_CLIENTS_MAX; i++)
		if (c->cl[i].fd >= 0)
			n += c->cl[i].olen - c->cl[i].opos;
	return n;
}

size_t clients_subscribers(const struct vw_clients *c)
{
	size_t n = 0;

	for (int i = 0; c && i < VW_CLIENTS_MAX; i++)
		n += c->cl[i].fd >= 0 && c->cl[i].sub;
	return n;
}
