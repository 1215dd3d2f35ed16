// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// netchange.c: the net change of each path a run of change-log lines names.
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/util.h"
#include "store/netchange.h"

/*
 * The net change of each path named since the cursor, in time linear in the
 * lines read and the paths answered: a directory gone marks only itself
 * (gone_at), and what was below it is judged at the end, by its ancestors
 * (a path touched before its ancestor went is gone with it).
 */
struct net {
	char *path;
	char *type;
	bool before, now, content, moved_in;
	bool was_dir;		/* a directory (or what, unknown) went from here since the cursor */
	size_t order;
	size_t touched;		/* the line that last named it */
	size_t gone_at;		/* the line that removed it and what was below it (0: none) */
};

struct vw_net {
	struct net *v;
	size_t n, cap;		/* open addressing; cap a power of two */
	size_t seen;		/* order counter */
	size_t line;		/* lines read, from 1 */
	size_t dirs_moved;	/* directories (or what, unknown) renamed away from a name */
};

static struct net *net_get(struct vw_net *s, const char *path, bool add)
{
	uint64_t h;
	size_t i;

	if (add && (s->n + 1) * 2 > s->cap) {
		struct vw_net g = { .cap = s->cap ? s->cap * 2 : 256, .seen = s->seen };

		g.v = calloc(g.cap, sizeof(*g.v));
		if (!g.v)
			return NULL;
		for (size_t k = 0; k < s->cap; k++) {
			if (!s->v[k].path)
				continue;
			h = vw_hash_component(VW_HASH_INIT, s->v[k].path, strlen(s->v[k].path), true);
			for (i = h & (g.cap - 1); g.v[i].path; i = (i + 1) & (g.cap - 1))
				;
			g.v[i] = s->v[k];
			g.n++;
		}
		free(s->v);
		*s = g;
	}
	if (!s->cap)
		return NULL;
	h = vw_hash_component(VW_HASH_INIT, path, strlen(path), true);
	for (i = h & (s->cap - 1); s->v[i].path; i = (i + 1) & (s->cap - 1))
		if (strcmp(s->v[i].path, path) == 0)
			return &s->v[i];
	if (!add || !(s->v[i].path = strdup(path)))
		return NULL;
	s->v[i].order = s->seen++;
	s->n++;
	return &s->v[i];
}

/* First sight of a path: was it there at the cursor? */
static struct net *net_touch(struct vw_net *s, const char *path, bool before)
{
	struct net *e = net_get(s, path, false);

	if (!e && (e = net_get(s, path, true)))
		e->before = e->now = before;
	if (e)
		e->touched = s->line;
	return e;
}

static void net_type(struct net *e, const char *type)
{
	free(e->type);
	e->type = type ? strdup(type) : NULL;
}

/* @path and everything below it is gone (a @type other than a directory has nothing below). */
static void net_gone(struct vw_net *s, const char *path, const char *type)
{
	struct net *e = net_touch(s, path, true);

	if (!e)
		return;
	e->now = false;
	if (type)	/* what it was: a directory's delete is told as one */
		net_type(e, type);
	if (!type || !strcmp(type, "dir"))
		e->was_dir = true;
	if (!type || !strcmp(type, "dir"))
		e->gone_at = s->line;	/* what is below: judged at the end (net_settle()) */
}

/* Is there an ancestor of @path in the set for which @pred(ancestor, @arg) holds? */
static bool net_any_above(struct vw_net *s, const char *path,
			  bool (*pred)(const struct net *a, size_t arg), size_t arg)
{
	char buf[PATH_MAX];
	size_t l = strlen(path);

	if (l >= sizeof(buf))
		return false;
	memcpy(buf, path, l + 1);
	for (char *slash = strrchr(buf, '/'); slash; slash = strrchr(buf, '/')) {
		const struct net *a;

		*slash = 0;
		a = net_get(s, buf, false);
		if (a && pred(a, arg))
			return true;
	}
	return false;
}

/* Did @a go after line @touched (when the path below it was last named)? Then that went too. */
static bool gone_after(const struct net *a, size_t touched)
{
	return a->gone_at > touched;
}

/* A directory renamed in, and there now. */
static bool moved_in_dir(const struct net *a, size_t unused)
{
	(void)unused;
	return a->moved_in && a->now && a->type && strcmp(a->type, "dir") == 0;
}

/* Paths below a directory gone since they were last named: gone too. */
static void net_settle(struct vw_net *s)
{
	for (size_t i = 0; i < s->cap; i++)
		if (s->v[i].path && s->v[i].now && strchr(s->v[i].path, '/') &&
		    net_any_above(s, s->v[i].path, gone_after, s->v[i].touched))
			s->v[i].now = false;
}

/* The bytes of @key, a base64 name of the line @j (NULL when it has none). */
static char *exact(const cJSON *j, const char *key)
{
	const char *b64 = j ? cJSON_GetStringValue(cJSON_GetObjectItem(j, key)) : NULL;

	return b64 ? base64_decode(b64, NULL) : NULL;
}

int net_line(void *ctx, const char *line, size_t len)
{
	struct vw_net *s = ctx;
	cJSON *j = cJSON_ParseWithLength(line, len);
	enum vw_kind ev = kind_parse(j ? cJSON_GetStringValue(cJSON_GetObjectItem(j, "event")) : NULL);
	/* a name that is not UTF-8: its exact bytes (json_add_name()), never the lossy text */
	char *path_raw = exact(j, "path_b64"), *old_raw = exact(j, "old_path_b64");
	const char *path = path_raw ? path_raw :
			   j ? cJSON_GetStringValue(cJSON_GetObjectItem(j, "path")) : NULL;
	const char *old = old_raw ? old_raw :
			  j ? cJSON_GetStringValue(cJSON_GetObjectItem(j, "old_path")) : NULL;
	const char *type = j ? cJSON_GetStringValue(cJSON_GetObjectItem(j, "type")) : NULL;
	struct net *e;

	if (!ev || !path) {
		cJSON_Delete(j);
		free(path_raw);
		free(old_raw);
		return 0;
	}
	s->line++;
	if (ev == VW_KIND_DELETE) {
		net_gone(s, path, type);
	} else if (ev == VW_KIND_RENAME && old) {
		net_gone(s, old, type);
		if (!type || !strcmp(type, "dir"))
			s->dirs_moved++;
		net_gone(s, path, NULL);	/* what was here is replaced: of any type */
		if ((e = net_touch(s, path, true))) {
			e->now = true;
			e->moved_in = true;
			e->content = true;
			net_type(e, type);
		}
	} else if ((e = net_touch(s, path, ev != VW_KIND_CREATE))) {
		if (ev == VW_KIND_CREATE && e->now)
			e->content = true;	/* replaced */
		e->now = true;
		if (ev != VW_KIND_ATTRIB)
			e->content = true;
		net_type(e, type);
	}
	cJSON_Delete(j);
	free(path_raw);
	free(old_raw);
	return 0;
}

struct listing {
	struct vw_net *s;
};

/* What the directories renamed in hold now: new paths too (one pass over the picture). */
static bool list_under(void *ctx, const char *rel, const struct vw_state_entry *st)
{
	struct listing *l = ctx;
	struct net *e;

	if (!strchr(rel, '/') || net_get(l->s, rel, false) ||
	    !net_any_above(l->s, rel, moved_in_dir, 0))
		return true;
	e = net_get(l->s, rel, true);
	if (e) {
		e->before = false;
		e->now = true;
		e->type = strdup(ftype_name(ftype_of_mode(st->mode)));
	}
	return true;
}

static int by_order(const void *a, const void *b)
{
	const struct net *x = *(struct net *const *)a, *y = *(struct net *const *)b;

	return x->order < y->order ? -1 : x->order > y->order;
}

/* The net change of each path, in the order first named (see netchange.h). */
void net_each(struct vw_net *s, struct vw_state *st, const struct vw_project *p, net_fn fn,
	      void *ctx)
{
	struct net **o;
	struct listing l = { s };
	bool moved_in = false;
	size_t n = 0;

	net_settle(s);
	for (size_t i = 0; i < s->cap && !moved_in; i++)	/* renamed-in directories? */
		moved_in = s->v[i].path && s->v[i].moved_in && s->v[i].now && s->v[i].type &&
			   strcmp(s->v[i].type, "dir") == 0;
	if (moved_in && st)
		state_each(st, p, list_under, &l);
	o = calloc(s->n ? s->n : 1, sizeof(*o));
	for (size_t i = 0; o && i < s->cap; i++)
		if (s->v[i].path)
			o[n++] = &s->v[i];
	if (o)
		qsort(o, n, sizeof(*o), by_order);
	for (size_t i = 0; o && i < n; i++) {
		const struct net *e = o[i];
		enum vw_kind kind = !e->before && e->now ? VW_KIND_CREATE :
				    e->before && !e->now ? VW_KIND_DELETE :
				    e->before && e->now ? (e->content ? VW_KIND_MODIFY : VW_KIND_ATTRIB) :
							  VW_KIND_NONE;

		if (kind)
			fn(ctx, kind, e->path, e->type, e->was_dir);
	}
	free(o);
}

bool net_dirs_moved(const struct vw_net *s)
{
	return s->dirs_moved != 0;
}

struct vw_net *net_new(void)
{
	return calloc(1, sizeof(struct vw_net));
}

void net_free(struct vw_net *s)
{
	for (size_t i = 0; s && i < s->cap; i++) {
		free(s->v[i].path);
		free(s->v[i].type);
	}
	if (s)
		free(s->v);
	free(s);
}
