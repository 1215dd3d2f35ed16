// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// wm_query.c: Watchman's "query": its generators (since, suffix, glob, path), its expression
// terms and its fields, answered from the picture and the change log.
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/creds.h"
#include "core/ignore.h"
#include "core/util.h"
#include "serve/bser.h"
#include "serve/watchman.h"
#include "serve/watchman_priv.h"
#include "store/netchange.h"

/* One file a query looks at. */
struct wm_file {
	const char *name;	/* relative to the root */
	bool exists, is_new;
	bool have_st;		/* the picture knows it: the fields below */
	struct vw_state_entry st;	/* of a deleted file: only the type bits of st.mode */
	bool changed;		/* changed since the query's clock (the since generator) */
};

struct wm_query {
	const struct wm_env *env;
	const struct wm_peer *peer;
	const struct vw_project *p;
	const cJSON *expr;
	const cJSON *fields;
	char *const *suffixes;	/* the suffix generator ("": none) */
	size_t nsuffix;
	const cJSON *globs, *paths;	/* the glob and path generators */
	bool glob_dots;
	char relroot[PATH_MAX];	/* relative_root, "" for none */
	size_t relroot_len;
	cJSON *files;
	char err[512];
	size_t n;
	bool by_time;		/* "since" a time: only what changed at or after since_s */
	int64_t since_s;
	/* content.sha1hex not in the cache: hashed as the client, then asked again */
	char **miss;
	struct wm_hash_key *miss_keys;
	size_t nmiss, cmiss;
	bool oom;
};

static const char *base_of(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

static char type_char(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return 'f';
	case S_IFDIR: return 'd';
	case S_IFLNK: return 'l';
	case S_IFBLK: return 'b';
	case S_IFCHR: return 'c';
	case S_IFIFO: return 'p';
	case S_IFSOCK: return 's';
	default: return '?';
	}
}

static bool str_eq(const char *a, const char *b, bool icase)
{
	return icase ? strcasecmp(a, b) == 0 : strcmp(a, b) == 0;
}

/* A pattern of "match"/"imatch" against @s: '*' and '?' never cross '/', '**' does. */
static bool pattern_match(const char *pat, const char *s, bool wholename, bool icase, bool dots)
{
	char lp[PATH_MAX], ls[PATH_MAX];

	if (icase) {
		size_t i;

		for (i = 0; pat[i] && i < sizeof(lp) - 1; i++)
			lp[i] = (char)tolower((unsigned char)pat[i]);
		lp[i] = 0;
		for (i = 0; s[i] && i < sizeof(ls) - 1; i++)
			ls[i] = (char)tolower((unsigned char)s[i]);
		ls[i] = 0;
		pat = lp;
		s = ls;
	}
	if (!wholename)
		return fnmatch(pat, s, dots ? 0 : FNM_PERIOD) == 0;
	if (!dots) {	/* a component starting with '.' is matched only by a literal '.' */
		for (const char *c = s; c; c = strchr(c, '/')) {
			c += *c == '/';
			if (*c == '.' && !strstr(pat, "/.") && pat[0] != '.')
				return false;
		}
	}
	return glob_match(pat, s);
}

static bool has_suffix(const char *name, const char *suffix)
{
	const char *dot = strrchr(base_of(name), '.');

	return dot && strcasecmp(dot + 1, suffix) == 0;
}

/* A name or a list of names: does @s equal one? */
static bool name_in(const cJSON *names, const char *s, bool icase)
{
	const cJSON *n;

	if (cJSON_IsString(names))
		return str_eq(names->valuestring, s, icase);
	cJSON_ArrayForEach(n, names)
		if (cJSON_IsString(n) && str_eq(n->valuestring, s, icase))
			return true;
	return false;
}

static bool compare(int64_t a, const char *op, int64_t b)
{
	if (!strcmp(op, "eq")) return a == b;
	if (!strcmp(op, "ne")) return a != b;
	if (!strcmp(op, "gt")) return a > b;
	if (!strcmp(op, "ge")) return a >= b;
	if (!strcmp(op, "lt")) return a < b;
	if (!strcmp(op, "le")) return a <= b;
	return false;
}

static bool valid_op(const char *op)
{
	static const char *const ops[] = { "eq", "ne", "gt", "ge", "lt", "le" };

	for (size_t i = 0; op && i < 6; i++)
		if (!strcmp(op, ops[i]))
			return true;
	return false;
}

#define WM_PATTERN_MAX 1024	/* bytes of one pattern */
#define WM_PATTERN_STARS 32	/* '*' in one pattern: each may try every split of a name */

/* A pattern the matcher can take: bounded in length and in stars (time and stack). */
static bool pattern_ok(struct wm_query *q, const char *pat)
{
	size_t stars = 0;

	for (const char *c = pat; *c; c++)
		stars += *c == '*';
	if (strlen(pat) <= WM_PATTERN_MAX && stars <= WM_PATTERN_STARS)
		return true;
	snprintf(q->err, sizeof(q->err), "a pattern may be at most %d bytes with %d '*'",
		 WM_PATTERN_MAX, WM_PATTERN_STARS);
	return false;
}

/* A JSON number as an int64, clamped (a double past the range is no undefined cast). */
static int64_t to_i64(double d)
{
	if (!(d >= -9.2e18))
		return d != d ? 0 : INT64_MIN;
	if (d >= 9.2e18)
		return INT64_MAX;
	return (int64_t)d;
}

/*
 * Is @e a well-formed expression? Checked once before any file is looked at,
 * so that an unknown term is an error as Watchman gives it, whatever the tree.
 */
static bool expr_check(struct wm_query *q, const cJSON *e, int depth)
{
	const char *term = cJSON_IsString(e) ? e->valuestring :
			   cJSON_GetStringValue(cJSON_GetArrayItem(e, 0));
	int n = cJSON_IsArray(e) ? cJSON_GetArraySize(e) : 1;
	const cJSON *a1 = cJSON_GetArrayItem(e, 1);

	if (depth > 64) {
		snprintf(q->err, sizeof(q->err), "expression nested too deeply");
		return false;
	}
	if (!term) {
		snprintf(q->err, sizeof(q->err), "expected array or string for an expression");
		return false;
	}
	if (!strcmp(term, "true") || !strcmp(term, "false") || !strcmp(term, "exists") ||
	    !strcmp(term, "empty"))
		return true;
	if (!strcmp(term, "allof") || !strcmp(term, "anyof")) {
		for (int i = 1; i < n; i++)
			if (!expr_check(q, cJSON_GetArrayItem(e, i), depth + 1))
				return false;
		if (n < 2) {
			snprintf(q->err, sizeof(q->err), "must have at least one parameter for %s",
				 term);
			return false;
		}
		return true;
	}
	if (!strcmp(term, "not")) {
		if (n != 2) {
			snprintf(q->err, sizeof(q->err), "\"not\" term has 1 parameter");
			return false;
		}
		return expr_check(q, a1, depth + 1);
	}
	if (!strcmp(term, "suffix") || !strcmp(term, "name") || !strcmp(term, "iname")) {
		const cJSON *s;

		if (cJSON_IsString(a1))
			return true;
		if (!cJSON_IsArray(a1))
			goto bad;
		cJSON_ArrayForEach(s, a1)
			if (!cJSON_IsString(s))
				goto bad;
		return true;
	}
	if (!strcmp(term, "match") || !strcmp(term, "imatch") || !strcmp(term, "dirname") ||
	    !strcmp(term, "idirname") || !strcmp(term, "type")) {
		if (!cJSON_IsString(a1))
			goto bad;
		if (!strcmp(term, "type") && (strlen(a1->valuestring) != 1 ||
					      !strchr("bcdfplsD", a1->valuestring[0]))) {
			snprintf(q->err, sizeof(q->err), "invalid type string '%.32s'",
				 a1->valuestring);
			return false;
		}
		return (strcmp(term, "match") && strcmp(term, "imatch")) ||
		       pattern_ok(q, a1->valuestring);
	}
	if (!strcmp(term, "size")) {
		if (!valid_op(cJSON_GetStringValue(a1)) ||
		    !cJSON_IsNumber(cJSON_GetArrayItem(e, 2)))
			goto bad;
		return true;
	}
	if (!strcmp(term, "since")) {
		if (!cJSON_IsString(a1) && !cJSON_IsNumber(a1))
			goto bad;
		return true;
	}
	snprintf(q->err, sizeof(q->err), "unknown expression term '%s'", term);
	return false;
bad:
	snprintf(q->err, sizeof(q->err), "invalid parameters for the \"%s\" term", term);
	return false;
}

static bool expr_eval(struct wm_query *q, const cJSON *e, const struct wm_file *f)
{
	const char *term = cJSON_IsString(e) ? e->valuestring :
			   cJSON_GetStringValue(cJSON_GetArrayItem(e, 0));
	const cJSON *a1 = cJSON_GetArrayItem(e, 1), *a2 = cJSON_GetArrayItem(e, 2), *c;
	const char *scope = cJSON_GetStringValue(a2);
	bool whole = scope && !strcmp(scope, "wholename");
	const char *subject = whole ? f->name : base_of(f->name);

	if (!strcmp(term, "true"))
		return true;
	if (!strcmp(term, "false"))
		return false;
	if (!strcmp(term, "allof") || !strcmp(term, "anyof")) {
		bool any = term[1] == 'n';
		int i = 0;

		cJSON_ArrayForEach(c, e) {
			if (i++ == 0)
				continue;
			if (expr_eval(q, c, f) == any)
				return any;
		}
		return !any;
	}
	if (!strcmp(term, "not"))
		return !expr_eval(q, a1, f);
	if (!strcmp(term, "exists"))
		return f->exists;
	if (!strcmp(term, "empty"))
		return f->exists && f->have_st && (S_ISREG(f->st.mode) || S_ISDIR(f->st.mode)) &&
		       f->st.size == 0;
	if (!strcmp(term, "suffix")) {
		if (cJSON_IsString(a1))
			return has_suffix(f->name, a1->valuestring);
		cJSON_ArrayForEach(c, a1)
			if (has_suffix(f->name, c->valuestring))
				return true;
		return false;
	}
	if (!strcmp(term, "name") || !strcmp(term, "iname"))
		return name_in(a1, subject, term[0] == 'i');
	if (!strcmp(term, "match") || !strcmp(term, "imatch")) {
		const cJSON *flags = cJSON_GetArrayItem(e, cJSON_IsObject(a2) ? 2 : 3);
		bool dots = cJSON_IsTrue(cJSON_GetObjectItem(flags, "includedotfiles"));

		return pattern_match(a1->valuestring, subject, whole, term[0] == 'i', dots);
	}
	if (!strcmp(term, "dirname") || !strcmp(term, "idirname")) {
		size_t dl = strlen(a1->valuestring);
		const cJSON *depth = cJSON_IsArray(a2) ? a2 : NULL;
		int64_t d = 0;
		const char *rest;

		if (dl == 0) {
			rest = f->name;
		} else {
			if (strlen(f->name) <= dl || f->name[dl] != '/' ||
			    (term[0] == 'i' ? strncasecmp(f->name, a1->valuestring, dl) :
					      strncmp(f->name, a1->valuestring, dl)))
				return false;
			rest = f->name + dl + 1;
		}
		for (const char *s = rest; (s = strchr(s, '/')); s++)
			d++;
		if (depth)	/* ["depth", op, n]: the levels below the directory */
			return compare(d, cJSON_GetStringValue(cJSON_GetArrayItem(depth, 1)) ?
					  cJSON_GetStringValue(cJSON_GetArrayItem(depth, 1)) : "",
				       to_i64(cJSON_GetNumberValue(cJSON_GetArrayItem(depth, 2))));
		return true;
	}
	if (!strcmp(term, "type")) {	/* a deleted file's too: what was there */
		char t = a1->valuestring[0];

		if (t == 'D' || !(f->st.mode & S_IFMT))	/* Solaris doors: never here */
			return false;
		return type_char(f->st.mode) == t;
	}
	if (!strcmp(term, "size")) {
		if (!f->exists || !f->have_st)
			return false;
		return compare((int64_t)f->st.size, a1->valuestring, to_i64(cJSON_GetNumberValue(a2)));
	}
	if (!strcmp(term, "since")) {
		const char *field = scope ? scope : "mtime";

		if (cJSON_IsString(a1))	/* a clock: changed since it (the since generator's) */
			return f->changed;
		if (!f->have_st)
			return false;
		return (!strcmp(field, "ctime") || !strcmp(field, "cclock") ? f->st.ctime_ns :
										  f->st.mtime_ns) /
			       1000000000 > to_i64(a1->valuedouble);
	}
	return false;
}

/* --- fields -------------------------------------------------------------------------------- */

static const char *const known_fields[] = {
	"name", "exists", "new", "type", "size", "mode", "mtime", "mtime_ms", "mtime_us",
	"mtime_ns", "mtime_f", "ctime", "ctime_ms", "ctime_us", "ctime_ns", "ctime_f", "ino",
	"dev", "nlink", "uid", "gid", "symlink_target", "content.sha1hex",
};

static bool field_known(const char *name)
{
	for (size_t i = 0; i < sizeof(known_fields) / sizeof(known_fields[0]); i++)
		if (!strcmp(known_fields[i], name))
			return true;
	return false;
}

/*
 * lstat of a file of the project, below its pinned root: no symlink followed on
 * the way (a directory swapped for a link leads nowhere), no user's FUSE asked.
 */
static bool lstat_in(const struct vw_project *p, const char *rel, struct stat *st)
{
	return project_lstat(p, rel, st) == 0;
}

/* A symlink's target, read below the pinned root without following any other link. */
static bool link_target(const struct vw_project *p, const char *rel, char *out, size_t len)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(rel, '/');
	int dfd;
	ssize_t n;

	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - rel) : 0, rel);
	dfd = creds_open_nofollow(p->root_fd, dir, O_PATH | O_DIRECTORY, true);
	if (dfd < 0)
		return false;
	n = readlinkat(dfd, slash ? slash + 1 : rel, out, len - 1);
	close(dfd);
	if (n < 0)
		return false;
	out[n] = 0;
	return true;
}

/* A file to hash, for the request asked again once it is. */
static void miss_add(struct wm_query *q, const char *rel, const struct wm_hash_key *k)
{
	if (q->nmiss == q->cmiss) {
		size_t cap = q->cmiss ? q->cmiss * 2 : 64;
		char **v = reallocarray(q->miss, cap, sizeof(*v));
		struct wm_hash_key *kv = v ? reallocarray(q->miss_keys, cap, sizeof(*kv)) : NULL;

		if (v)
			q->miss = v;
		if (!v || !kv) {
			q->oom = true;
			return;
		}
		q->miss_keys = kv;
		q->cmiss = cap;
	}
	if (!(q->miss[q->nmiss] = strdup(rel))) {
		q->oom = true;
		return;
	}
	q->miss_keys[q->nmiss++] = *k;
}

/*
 * content.sha1hex: from the cache, by what the picture says of the file (a
 * newer write is another key). null for what is no regular file, as Watchman;
 * {"error": …} when it could not be read (by the client: never as root).
 */
static cJSON *sha1_field(struct wm_query *q, const struct wm_file *f)
{
	struct wm_hash_key k = { .dev = q->p->st_dev, .ino = f->st.ino, .size = f->st.size,
				 .mtime_ns = f->st.mtime_ns };
	char hex[41], err[128] = "";
	cJSON *e;

	if (!S_ISREG(f->st.mode))
		return cJSON_CreateNull();
	if (q->env->hasher && wm_hash_get(q->env->hasher, &k, hex, err, sizeof(err)) == 1) {
		if (!err[0])
			return cJSON_CreateString(hex);
	} else if (q->env->hasher && q->peer->hash && !q->peer->hashed) {
		miss_add(q, f->name, &k);
		return cJSON_CreateNull();	/* a placeholder: the answer waits for the hash */
	} else {
		snprintf(err, sizeof(err), "%s", q->peer->hashed ? "changed while it was hashed" :
					   "not hashed here");
	}
	e = cJSON_CreateObject();
	if (e)
		cJSON_AddStringToObject(e, "error", err);
	return e;
}

static cJSON *time_field(int64_t ns, const char *unit)
{
	if (!strcmp(unit, ""))
		return bser_int(ns / 1000000000);
	if (!strcmp(unit, "_ms"))
		return bser_int(ns / 1000000);
	if (!strcmp(unit, "_us"))
		return bser_int(ns / 1000);
	if (!strcmp(unit, "_ns"))
		return bser_int(ns);
	return cJSON_CreateNumber((double)ns / 1e9);	/* _f */
}

/* @f's value of @field, or NULL when it has none (a deleted file's size). */
static cJSON *field_value(struct wm_query *q, const struct wm_file *f, const char *field,
			  const char *name, struct stat *st, int *have)
{
	if (!strcmp(field, "name"))
		return cJSON_CreateString(name);
	if (!strcmp(field, "exists"))
		return cJSON_CreateBool(f->exists);
	if (!strcmp(field, "new"))
		return cJSON_CreateBool(f->is_new);
	if ((f->st.mode & S_IFMT) && !strcmp(field, "type")) {	/* a deleted file's too */
		char t[2] = { type_char(f->st.mode), 0 };

		return cJSON_CreateString(t);
	}
	if ((f->st.mode & S_IFMT) && !strcmp(field, "mode") && !f->have_st)
		return bser_int(f->st.mode & S_IFMT);	/* what was there (Mercurial reads it) */
	if (!f->exists || !f->have_st)
		return NULL;
	if (!strcmp(field, "size"))
		return bser_int((int64_t)f->st.size);
	if (!strcmp(field, "mode"))
		return bser_int(f->st.mode);
	if (!strncmp(field, "mtime", 5))
		return time_field(f->st.mtime_ns, field + 5);
	if (!strncmp(field, "ctime", 5))
		return time_field(f->st.ctime_ns, field + 5);
	if (!strcmp(field, "ino"))
		return bser_int((int64_t)f->st.ino);
	if (!strcmp(field, "content.sha1hex"))
		return sha1_field(q, f);
	if (!strcmp(field, "symlink_target")) {
		char target[PATH_MAX];

		if (!S_ISLNK(f->st.mode))
			return cJSON_CreateNull();	/* as Watchman: null for what is no link */
		if (!link_target(q->p, f->name, target, sizeof(target)))
			return NULL;
		return cJSON_CreateString(target);
	}
	/* the rest the picture does not keep: one lstat, shared by the fields of a file */
	if (!*have)
		*have = lstat_in(q->p, f->name, st) ? 1 : -1;
	if (*have < 0)
		return NULL;
	if (!strcmp(field, "dev"))
		return bser_int((int64_t)st->st_dev);
	if (!strcmp(field, "nlink"))
		return bser_int((int64_t)st->st_nlink);
	if (!strcmp(field, "uid"))
		return bser_int(st->st_uid);
	if (!strcmp(field, "gid"))
		return bser_int(st->st_gid);
	return NULL;
}

/* The query's generators other than since: is @name one of theirs? */
static bool generated(const struct wm_query *q, const char *name)
{
	const cJSON *g;
	bool any = false;

	if (q->nsuffix) {
		any = true;
		for (size_t i = 0; i < q->nsuffix; i++)
			if (has_suffix(name, q->suffixes[i]))
				return true;
	}
	if (q->globs) {
		any = true;
		cJSON_ArrayForEach(g, q->globs)
			if (cJSON_IsString(g) &&
			    pattern_match(g->valuestring, name, true, false, q->glob_dots))
				return true;
	}
	if (q->paths) {
		any = true;
		cJSON_ArrayForEach(g, q->paths) {
			const char *dir = cJSON_IsString(g) ? g->valuestring :
					  cJSON_GetStringValue(cJSON_GetObjectItem(g, "path"));
			const cJSON *depth = cJSON_GetObjectItem(g, "depth");
			const char *below;
			int64_t d = 0;

			if (!dir || !(below = dir[0] ? path_below(name, dir) : name) || !*below)
				continue;	/* not below it (the directory itself is not generated) */
			for (const char *s = below; (s = strchr(s, '/')); s++)
				d++;
			if (!cJSON_IsNumber(depth) || depth->valuedouble < 0 ||
			    d <= to_i64(depth->valuedouble))
				return true;
		}
	}
	return !any;
}

/* One candidate: generators, relative_root, the expression; then its fields. */
static void consider(struct wm_query *q, struct wm_file *f)
{
	const char *name = f->name;
	struct stat st;
	int have = 0;
	const cJSON *fl;
	cJSON *o;

	if (q->relroot_len) {
		if (strncmp(name, q->relroot, q->relroot_len) != 0 || name[q->relroot_len] != '/')
			return;
		name += q->relroot_len + 1;
	}
	if (!generated(q, name))
		return;
	if (q->expr && !expr_eval(q, q->expr, f))
		return;
	q->n++;
	if (cJSON_GetArraySize(q->fields) == 1) {	/* one field: the values themselves */
		o = field_value(q, f, cJSON_GetArrayItem(q->fields, 0)->valuestring, name, &st,
				&have);
		cJSON_AddItemToArray(q->files, o ? o : cJSON_CreateNull());
		return;
	}
	o = cJSON_CreateObject();
	if (!o)
		return;
	cJSON_ArrayForEach(fl, q->fields) {
		cJSON *v = field_value(q, f, fl->valuestring, name, &st, &have);

		if (v)
			cJSON_AddItemToObject(o, fl->valuestring, v);
	}
	cJSON_AddItemToArray(q->files, o);
}

static bool every_file(void *ctx, const char *rel, const struct vw_state_entry *e)
{
	struct wm_query *q = ctx;
	/* a fresh instance: everything is new to the client */
	struct wm_file f = { .name = rel, .exists = true, .is_new = !q->by_time, .have_st = true,
			     .st = *e };

	if (q->by_time && (e->ctime_ns > e->mtime_ns ? e->ctime_ns : e->mtime_ns) / 1000000000 <
				  q->since_s)
		return true;

	consider(q, &f);
	return true;
}

/* A path's net change since the clock. */
static void changed_file(void *ctx, enum vw_kind kind, const char *path, const char *type,
			 bool was_dir)
{
	struct wm_query *q = ctx;
	struct wm_file f = { .name = path, .changed = true };

	(void)was_dir;
	f.exists = kind != VW_KIND_DELETE;
	f.is_new = kind == VW_KIND_CREATE || kind == VW_KIND_RENAME;	/* a name new since */
	if (f.exists)
		f.have_st = state_lookup(q->env->state, q->p, path, &f.st);
	else if (type)	/* what was there */
		f.st.mode = !strcmp(type, "dir") ? S_IFDIR : !strcmp(type, "symlink") ? S_IFLNK :
			    !strcmp(type, "file") ? S_IFREG : 0;
	consider(q, &f);
}

static const char *const default_fields[] = { "name", "exists", "new", "size", "mode" };

cJSON *wm_cmd_query(const struct wm_env *env, const struct wm_peer *peer, const cJSON *req)
{
	const struct vw_project *p = wm_watch_root(env, peer, wm_arg(req, 1));

	if (!p)
		return wm_not_watched(wm_arg(req, 1));
	return wm_run_query(env, peer, p, cJSON_GetArrayItem(req, 2), true);
}

cJSON *wm_run_query(const struct wm_env *env, const struct wm_peer *peer,
		    const struct vw_project *p, const cJSON *spec, bool sync)
{
	const cJSON *f;
	const cJSON *since, *rel, *suffix;
	struct wm_query q = { .env = env, .peer = peer, .p = p };
	char clock[VW_CURSOR_MAX + 8], *sfx[64];
	cJSON *r = NULL, *fields = NULL;
	bool fresh = true;
	int ret = 0;

	if (!cJSON_IsObject(spec))
		return wm_error("query: the query specification must be an object");
	if (!wm_ready(env, p))	/* a crawl runs: asked again later, no sync meanwhile */
		return WM_NOT_READY;
	if (sync)	/* a loss the sync finds makes a rescan owed: waited for too */
		wm_maybe_sync(peer, p, spec);
	if (!wm_ready(env, p))
		return WM_NOT_READY;
	q.expr = cJSON_GetObjectItem(spec, "expression");
	if (q.expr && !expr_check(&q, q.expr, 0))
		return wm_error("failed to parse query: %s", q.err);
	f = cJSON_GetObjectItem(spec, "fields");
	if (f && (!cJSON_IsArray(f) || !cJSON_GetArraySize(f)))
		return wm_error("failed to parse query: \"fields\" must be a non-empty array");
	if (!f) {
		fields = cJSON_CreateStringArray(default_fields, 5);
		if (!fields)
			return NULL;
		f = fields;
	}
	{
		const cJSON *x;

		cJSON_ArrayForEach(x, f) {
			const cJSON *y;

			if (!cJSON_IsString(x) || !field_known(x->valuestring)) {
				cJSON_Delete(fields);
				return wm_error("failed to parse query: unknown field name '%.64s'",
						cJSON_IsString(x) ? x->valuestring : "?");
			}
			for (y = f->child; y != x; y = y->next)	/* each field once */
				if (!strcmp(y->valuestring, x->valuestring)) {
					cJSON_Delete(fields);
					return wm_error("failed to parse query: field '%s' named twice",
							x->valuestring);
				}
		}
	}
	q.fields = f;
	suffix = cJSON_GetObjectItem(spec, "suffix");
	if (cJSON_IsString(suffix)) {
		sfx[q.nsuffix++] = suffix->valuestring;
	} else if (cJSON_IsArray(suffix)) {
		const cJSON *s;

		cJSON_ArrayForEach(s, suffix)
			if (cJSON_IsString(s) && q.nsuffix < 64)
				sfx[q.nsuffix++] = s->valuestring;
	}
	q.suffixes = sfx;
	q.globs = cJSON_GetObjectItem(spec, "glob");
	q.glob_dots = cJSON_IsTrue(cJSON_GetObjectItem(spec, "glob_includedotfiles"));
	q.paths = cJSON_GetObjectItem(spec, "path");
	if ((q.globs && !cJSON_IsArray(q.globs)) || (q.paths && !cJSON_IsArray(q.paths))) {
		cJSON_Delete(fields);
		return wm_error("failed to parse query: \"glob\" and \"path\" must be arrays");
	}
	{
		const cJSON *g;

		cJSON_ArrayForEach(g, q.globs)
			if (cJSON_IsString(g) && !pattern_ok(&q, g->valuestring)) {
				cJSON_Delete(fields);
				return wm_error("failed to parse query: %s", q.err);
			}
	}
	rel = cJSON_GetObjectItem(spec, "relative_root");
	if (cJSON_GetStringValue(rel) && rel->valuestring[0]) {
		snprintf(q.relroot, sizeof(q.relroot), "%s", rel->valuestring);
		q.relroot_len = strlen(q.relroot);
		while (q.relroot_len && q.relroot[q.relroot_len - 1] == '/')
			q.relroot[--q.relroot_len] = 0;
	}
	r = wm_reply_new();
	q.files = r ? cJSON_CreateArray() : NULL;
	if (!q.files) {
		cJSON_Delete(r);
		cJSON_Delete(fields);
		return NULL;
	}
	since = cJSON_GetObjectItem(spec, "since");
	wm_clock_of(env, q.p, clock, sizeof(clock));	/* where the next query starts */
	if (cJSON_IsString(since) && !strncmp(since->valuestring, "c:", 2) &&
	    changes_cursor_parse(since->valuestring + 2, NULL, NULL)) {
		/* a clock of ours: the net change since it, if the log still covers it */
		struct vw_net *net = net_new();

		ret = net ? changes_since(env->changes, q.p, since->valuestring + 2, net_line, net) :
			    -ENOMEM;
		/*
		 * A directory renamed away: the files that were below it are gone from
		 * their names, and a Watchman client is told each such name. Those names
		 * are not in the log: the whole tree, fresh, as for a clock that cannot
		 * say (the client rebuilds its list, and misses nothing).
		 */
		fresh = ret != 0 || net_dirs_moved(net);
		if (!fresh)
			net_each(net, env->state, q.p, changed_file, &q);
		net_free(net);
	} else if (cJSON_IsNumber(since)) {	/* a time: what changed at or after it */
		q.since_s = to_i64(since->valuedouble);
		q.by_time = true;
		fresh = false;
		state_each(env->state, q.p, every_file, &q);
	} else if (since && !cJSON_IsNull(since) && !cJSON_IsString(since)) {
		cJSON_Delete(r);
		cJSON_Delete(q.files);
		cJSON_Delete(fields);
		return wm_error("failed to parse query: invalid value for 'since'");
	}
	/* another server's clock, "c:0:0", a named cursor: the whole tree, as for a clock of
	 * another Watchman instance */
	if (fresh && !cJSON_IsTrue(cJSON_GetObjectItem(spec, "empty_on_fresh_instance")))
		state_each(env->state, q.p, every_file, &q);
	cJSON_AddStringToObject(r, "clock", clock);
	cJSON_AddBoolToObject(r, "is_fresh_instance", fresh);
	cJSON_AddItemToObject(r, "files", q.files);
	cJSON_Delete(fields);
	if (q.nmiss && !q.oom) {	/* the files are hashed, then the request is asked again */
		int hr = peer->hash(peer->ctx, p, q.miss, q.miss_keys, q.nmiss);

		cJSON_Delete(r);
		r = !hr || hr == -EBUSY ? WM_NOT_READY :
		    wm_error("content.sha1hex: the files could not be hashed: %s", strerror(-hr));
	}
	for (size_t i = 0; i < q.nmiss; i++)
		free(q.miss[i]);
	free(q.miss);
	free(q.miss_keys);
	if (q.oom && r != WM_NOT_READY) {
		cJSON_Delete(r);
		r = wm_error("out of memory");
	}
	return r;
}

