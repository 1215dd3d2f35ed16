// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// watchman.c: Watchman's commands answered from projects, the picture and the change log.
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/creds.h"
#include "core/ignore.h"
#include "core/log.h"
#include "core/util.h"
#include "serve/bser.h"
#include "serve/watchman.h"
#include "serve/watchman_priv.h"
#include "store/netchange.h"

#define WM_ROOT_FILES_MAX 4
#define WM_CONFIG_MAX (64 * 1024)	/* bytes of a .watchmanconfig read */

/* The capabilities this server has, as Watchman names them. */
static const char *const capabilities[] = {
	"bser-v2", "clock-sync-timeout", "cmd-clock", "cmd-get-config", "cmd-get-sockname",
	"cmd-list-capabilities", "cmd-query", "cmd-shutdown-server", "cmd-state-enter",
	"cmd-state-leave", "cmd-subscribe", "cmd-unsubscribe", "cmd-flush-subscriptions",
	"cmd-version", "cmd-watch", "cmd-watch-del", "cmd-watch-list", "cmd-watch-project",
	"dedup_results", "field-ctime", "field-ctime_ms", "field-ctime_ns",
	"field-content.sha1hex", "field-dev", "field-exists", "field-gid", "field-ino",
	"field-mode", "field-mtime", "field-mtime_ms", "field-mtime_ns", "field-name", "field-new",
	"field-nlink", "field-size", "field-symlink_target", "field-type", "field-uid",
	"glob_generator", "relative_root", "suffix-set", "term-allof", "term-anyof",
	"term-dirname", "term-empty", "term-exists", "term-false", "term-idirname", "term-imatch",
	"term-iname", "term-match", "term-name", "term-not", "term-since", "term-size",
	"term-suffix", "term-true", "term-type", "wildmatch", "wildmatch-multislash",
};

static bool has_capability(const char *name)
{
	for (size_t i = 0; i < sizeof(capabilities) / sizeof(capabilities[0]); i++)
		if (strcmp(capabilities[i], name) == 0)
			return true;
	return false;
}

cJSON *wm_reply_new(void)
{
	cJSON *r = cJSON_CreateObject();

	if (r)
		cJSON_AddStringToObject(r, "version", WM_VERSION);
	return r;
}

cJSON *wm_error(const char *fmt, ...)
{
	cJSON *r = wm_reply_new();
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (r)
		cJSON_AddStringToObject(r, "error", msg);
	return r;
}

const char *wm_arg(const cJSON *req, int i)
{
	return cJSON_GetStringValue(cJSON_GetArrayItem(req, i));
}

/* The words clients look for ("unable to resolve root": Mercurial then sends "watch"). */
cJSON *wm_not_watched(const char *path)
{
	if (!path)
		return wm_error("wrong number of arguments: the root of a watch is missing");
	return wm_error("unable to resolve root %s: directory %s is not watched", path, path);
}

/* --- watches ------------------------------------------------------------------------------- */

/*
 * The readable project whose root is @path or holds it (the innermost), with
 * the part of @path below its root in *@rel ("" for the root itself).
 */
static const struct vw_project *watch_of(const struct wm_env *env, const struct wm_peer *peer,
					 const char *path, const char **rel)
{
	const struct vw_project *best = NULL;
	const char *best_rel = NULL;

	for (size_t i = 0; i < env->t->n; i++) {
		const struct vw_project *p = &env->t->v[i];
		const char *below;

		if (p->gone || p->root_lost || !(below = path_below(path, p->root)) ||
		    !peer->readable(peer->ctx, p))
			continue;
		if (!best || strlen(p->root) > strlen(best->root)) {
			best = p;
			best_rel = below;
		}
	}
	*rel = best_rel;
	return best;
}

/* The watch whose root is exactly @path (as written, or as the client resolves it). */
const struct vw_project *wm_watch_root(const struct wm_env *env, const struct wm_peer *peer,
					   const char *path)
{
	char real[PATH_MAX];
	const struct vw_project *p;
	const char *rel;

	if (!path || path[0] != '/')
		return NULL;
	p = watch_of(env, peer, path, &rel);
	if (p && !*rel)
		return p;
	if (peer->resolve(peer->ctx, path, real, sizeof(real)) < 0)
		return NULL;
	p = watch_of(env, peer, real, &rel);
	return p && !*rel ? p : NULL;
}

#define WM_ROOT_DEPTH 128	/* directories a root's discovery walks up at most */

/*
 * Does the directory @dfd hold @name, owned by the client (@uid) or by root?
 * Looked at as the daemon, following no symlink and asking no user's FUSE
 * server; a marker another user left (a .watchmanconfig in /tmp) is not the
 * client's project.
 */
static bool dir_has(int dfd, const char *name, uid_t uid)
{
	struct stat st;

	return creds_statat(dfd, name, (dev_t)-1, false, &st) == 0 &&
	       (st.st_uid == uid || st.st_uid == 0);
}

/*
 * Watchman's root for @real (resolved), as its default root_files say: for
 * each of .watchmanconfig, .hg, .git, .svn in turn, the nearest directory at
 * or above @real that holds it; else @real itself. Each directory of the way
 * is opened once, from "/" down, never through a symlink or a user's FUSE.
 */
static void project_root_of(const char *real, uid_t uid, char *root, size_t len)
{
	static const char *const root_files[] = { ".watchmanconfig", ".hg", ".git", ".svn" };
	int fds[WM_ROOT_DEPTH + 1];
	size_t ends[WM_ROOT_DEPTH + 1], n = 0;
	char comp[NAME_MAX + 1];
	const char *c = real;
	struct stat st;

	snprintf(root, len, "%s", real);
	if ((fds[0] = creds_open_dir("/", &st)) < 0)
		return;
	ends[0] = 1;
	while (*c) {
		const char *e;
		int fd;

		while (*c == '/')
			c++;
		if (!*c)
			break;
		e = strchrnul(c, '/');
		if ((size_t)(e - c) > NAME_MAX || n == WM_ROOT_DEPTH)
			goto out;	/* deeper than looked at: the path itself */
		snprintf(comp, sizeof(comp), "%.*s", (int)(e - c), c);
		fd = creds_open_nofollow(fds[n], comp, O_PATH | O_DIRECTORY, true);
		if (fd < 0)
			goto out;
		fds[++n] = fd;
		ends[n] = (size_t)(e - real);
		c = e;
	}
	for (size_t f = 0; f < sizeof(root_files) / sizeof(root_files[0]); f++)
		for (size_t i = n + 1; i-- > 0;)
			if (dir_has(fds[i], root_files[f], uid)) {
				snprintf(root, len, "%.*s", (int)ends[i], real);
				goto out;
			}
out:
	for (size_t i = 0; i <= n; i++)
		close(fds[i]);
}

/* Watch @root (resolved) for the client: its project, added for it when there is none. */
static const struct vw_project *watch_add(const struct wm_env *env, const struct wm_peer *peer,
					  const char *root, char *err, size_t errlen)
{
	cJSON *req = cJSON_CreateObject(), *reply = cJSON_CreateObject(), *ign;
	const struct vw_project *p;
	const char *rel;
	int ret;

	p = watch_of(env, peer, root, &rel);
	if (p && !*rel) {
		cJSON_Delete(req);
		cJSON_Delete(reply);
		return p;
	}
	if (!req || !reply || !(ign = cJSON_AddArrayToObject(req, "ignore"))) {
		snprintf(err, errlen, "out of memory");
		cJSON_Delete(req);
		cJSON_Delete(reply);
		return NULL;
	}
	cJSON_AddStringToObject(req, "cmd", "add");
	cJSON_AddStringToObject(req, "root", root);
	/* what Watchman leaves out by default (ignore_vcs): below the VCS's own directories */
	cJSON_AddFalseToObject(req, "default_ignores");
	cJSON_AddItemToArray(ign, cJSON_CreateString(".git/"));
	cJSON_AddItemToArray(ign, cJSON_CreateString(".hg/"));
	cJSON_AddItemToArray(ign, cJSON_CreateString(".svn/"));
	ret = peer->add(peer->ctx, req, reply, err, errlen);
	cJSON_Delete(req);
	cJSON_Delete(reply);
	if (ret < 0)
		return NULL;
	p = watch_of(env, peer, root, &rel);
	if (!p || *rel) {
		snprintf(err, errlen, "the directory was added but is not watched");
		return NULL;
	}
	return p;
}

static cJSON *cmd_watch(const struct wm_env *env, const struct wm_peer *peer, const cJSON *req,
			bool project)
{
	const char *path = wm_arg(req, 1), *rel = NULL;
	char real[PATH_MAX], root[PATH_MAX], err[512] = "";
	const struct vw_project *p;
	cJSON *r;
	int ret;

	if (!path || path[0] != '/')
		return wm_error("wrong number of arguments to '%s': an absolute path is needed",
				project ? "watch-project" : "watch");
	ret = peer->resolve(peer->ctx, path, real, sizeof(real));
	if (ret < 0)
		return wm_error("unable to resolve root %s: %s", path, strerror(-ret));
	if (!strcmp(real, "/"))
		return wm_error("unable to resolve root %s: cannot watch \"/\"", path);
	/* a watch that holds it already serves it (watch-project) */
	p = project ? watch_of(env, peer, real, &rel) : NULL;
	if (!p) {
		if (project)
			project_root_of(real, peer->creds->uid, root, sizeof(root));
		else
			snprintf(root, sizeof(root), "%s", real);
		p = watch_add(env, peer, root, err, sizeof(err));
		if (!p)
			return wm_error("unable to resolve root %s: %s", path, err);
		rel = path_below(real, p->root);
	}
	r = wm_reply_new();
	if (!r)
		return NULL;
	cJSON_AddStringToObject(r, "watch", p->root);
	cJSON_AddStringToObject(r, "watcher", "vfswatch");
	if (project && rel && *rel)
		cJSON_AddStringToObject(r, "relative_path", rel);
	return r;
}

static cJSON *cmd_watch_list(const struct wm_env *env, const struct wm_peer *peer)
{
	cJSON *r = wm_reply_new(), *roots = r ? cJSON_AddArrayToObject(r, "roots") : NULL;

	for (size_t i = 0; roots && i < env->t->n; i++) {
		const struct vw_project *p = &env->t->v[i];

		if (!p->gone && peer->readable(peer->ctx, p))
			cJSON_AddItemToArray(roots, cJSON_CreateString(p->root));
	}
	return r;
}

static cJSON *cmd_watch_del(const struct wm_env *env, const struct wm_peer *peer,
			    const cJSON *req)
{
	const struct vw_project *p = wm_watch_root(env, peer, wm_arg(req, 1));
	cJSON *rm, *reply, *r;
	char err[512] = "", root[PATH_MAX];
	int ret;

	if (!p)
		return wm_not_watched(wm_arg(req, 1));
	snprintf(root, sizeof(root), "%s", p->root);
	rm = cJSON_CreateObject();
	reply = cJSON_CreateObject();
	if (!rm || !reply) {
		cJSON_Delete(rm);
		cJSON_Delete(reply);
		return NULL;
	}
	cJSON_AddStringToObject(rm, "cmd", "remove");
	cJSON_AddStringToObject(rm, "name", p->name);
	ret = peer->remove(peer->ctx, rm, reply, err, sizeof(err));
	cJSON_Delete(rm);
	cJSON_Delete(reply);
	if (ret < 0)
		return wm_error("watch-del %s: %s", root, err);
	r = wm_reply_new();
	if (r) {
		cJSON_AddBoolToObject(r, "watch-del", true);
		cJSON_AddStringToObject(r, "root", root);
	}
	return r;
}

cJSON wm_not_ready;

bool wm_ready(const struct wm_env *env, const struct vw_project *p)
{
	return !p->rescan_owed && !p->root_lost && !(env->state && state_rescanning(env->state, p));
}

/* --- clocks ------------------------------------------------------------------------------- */

void wm_clock_of(const struct wm_env *env, const struct vw_project *p, char *out, size_t len)
{
	char cur[VW_CURSOR_MAX];

	changes_cursor(env->changes, p, cur);
	snprintf(out, len, "c:%s", cur);
}

/* The sync point, unless the request asks for none ("sync_timeout": 0). */
void wm_maybe_sync(const struct wm_peer *peer, const struct vw_project *p, const cJSON *spec)
{
	const cJSON *t = cJSON_GetObjectItem(spec, "sync_timeout");

	if (peer->sync && !(cJSON_IsNumber(t) && t->valuedouble == 0))
		peer->sync(peer->ctx, p);
}

static cJSON *cmd_clock(const struct wm_env *env, const struct wm_peer *peer, const cJSON *req)
{
	const struct vw_project *p = wm_watch_root(env, peer, wm_arg(req, 1));
	char clock[VW_CURSOR_MAX + 8];
	cJSON *r;

	if (!p)
		return wm_not_watched(wm_arg(req, 1));
	wm_maybe_sync(peer, p, cJSON_GetArrayItem(req, 2));
	wm_clock_of(env, p, clock, sizeof(clock));
	r = wm_reply_new();
	if (r)
		cJSON_AddStringToObject(r, "clock", clock);
	return r;
}

/* --- the rest ----------------------------------------------------------------------------- */

static cJSON *cmd_version(const cJSON *req)
{
	const cJSON *spec = cJSON_GetArrayItem(req, 1), *c;
	cJSON *r = wm_reply_new(), *caps = NULL;
	char missing[1024] = "";

	if (!r || !cJSON_IsObject(spec))
		return r;
	caps = cJSON_AddObjectToObject(r, "capabilities");
	cJSON_ArrayForEach(c, cJSON_GetObjectItem(spec, "optional"))
		if (cJSON_IsString(c))
			cJSON_AddBoolToObject(caps, c->valuestring, has_capability(c->valuestring));
	cJSON_ArrayForEach(c, cJSON_GetObjectItem(spec, "required")) {
		if (!cJSON_IsString(c))
			continue;
		cJSON_AddBoolToObject(caps, c->valuestring, has_capability(c->valuestring));
		if (!has_capability(c->valuestring)) {
			size_t n = strlen(missing);

			snprintf(missing + n, sizeof(missing) - n, "%s%s", n ? ", " : "",
				 c->valuestring);
		}
	}
	if (missing[0]) {	/* in Watchman's words */
		char msg[1200];

		snprintf(msg, sizeof(msg), "client required capabilities [%s] not supported by "
			 "this server", missing);
		cJSON_AddStringToObject(r, "error", msg);
	}
	if (!cJSON_GetArraySize(caps))	/* only when some were asked about */
		cJSON_DeleteItemFromObject(r, "capabilities");
	return r;
}

static cJSON *cmd_list_capabilities(void)
{
	cJSON *r = wm_reply_new();

	if (r)
		cJSON_AddItemToObject(r, "capabilities",
				      cJSON_CreateStringArray(capabilities, sizeof(capabilities) /
										 sizeof(capabilities[0])));
	return r;
}

/* .watchmanconfig of the root, as its owner left it (a regular file, never a fifo). */
static cJSON *cmd_get_config(const struct wm_env *env, const struct wm_peer *peer,
			     const cJSON *req)
{
	const struct vw_project *p = wm_watch_root(env, peer, wm_arg(req, 1));
	cJSON *r, *cfg = NULL;
	struct stat st;
	char *text = NULL;
	ssize_t n = -1;
	int fd;

	if (!p)
		return wm_not_watched(wm_arg(req, 1));
	fd = creds_open_nofollow(p->root_fd, ".watchmanconfig", O_RDONLY | O_NONBLOCK, true);
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size < WM_CONFIG_MAX &&
	    /* the owner's own config, to them (and root); to its readers only if any user may
	     * read it */
	    (((st.st_uid == p->owner.uid && (st.st_mode & S_IRUSR) &&
	       peer->creds->uid == st.st_uid) || peer->creds->uid == 0) ||
	     (st.st_mode & S_IROTH)) &&
	    (text = malloc((size_t)st.st_size + 1)))
		n = read(fd, text, (size_t)st.st_size);
	if (fd >= 0)
		close(fd);
	if (n >= 0) {
		text[n] = 0;
		cfg = cJSON_Parse(text);
	}
	free(text);
	if (!cJSON_IsObject(cfg)) {
		cJSON_Delete(cfg);
		cfg = cJSON_CreateObject();
	}
	r = wm_reply_new();
	if (r)
		cJSON_AddItemToObject(r, "config", cfg);
	else
		cJSON_Delete(cfg);
	return r;
}

cJSON *watchman_command(const struct wm_env *env, const struct wm_peer *peer, const cJSON *req)
{
	const char *cmd = wm_arg(req, 0);
	cJSON *r;

	if (!cJSON_IsArray(req) || !cmd)
		return wm_error("invalid command (expected an array with some elements!)");
	if (!strcmp(cmd, "version"))
		return cmd_version(req);
	if (!strcmp(cmd, "list-capabilities"))
		return cmd_list_capabilities();
	if (!strcmp(cmd, "get-sockname")) {
		r = wm_reply_new();
		if (r) {
			cJSON_AddStringToObject(r, "sockname", env->sockname);
			cJSON_AddStringToObject(r, "unix_domain", env->sockname);
		}
		return r;
	}
	if (!strcmp(cmd, "watch-project") || !strcmp(cmd, "watch"))
		return cmd_watch(env, peer, req, cmd[5] == '-');
	if (!strcmp(cmd, "watch-list"))
		return cmd_watch_list(env, peer);
	if (!strcmp(cmd, "watch-del"))
		return cmd_watch_del(env, peer, req);
	if (!strcmp(cmd, "clock"))
		return cmd_clock(env, peer, req);
	if (!strcmp(cmd, "query"))
		return wm_cmd_query(env, peer, req);
	if (!strcmp(cmd, "get-config"))
		return cmd_get_config(env, peer, req);
	if (!strcmp(cmd, "shutdown-server"))
		return wm_error("shutdown-server: vfswatch serves every user of this host: it is "
				"stopped by its service manager (systemctl stop vfswatch), never by "
				"a client");
	return wm_error("unknown command %s", cmd);
}
