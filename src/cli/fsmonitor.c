// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// fsmonitor.c: `vfswatch git-fsmonitor`: git's core.fsmonitor hook (protocol version 2).
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/fsmonitor.h"
#include "cli/request.h"
#include "core/log.h"
#include "core/util.h"
#include "store/changes.h"
#include "store/config.h"

#define LINE_MAX_BYTES (16u << 20)	/* one reply line longer than this: the reply is refused */
#define PATHS_MAX (64u << 20)	/* more paths than this: "/" (git looks at everything) */
#define TIMEOUT_S 30		/* a daemon that does not answer: exit 1, git looks itself */

struct answer {
	char *cursor;		/* the new token (owned) */
	bool everything;	/* "/": the token could not say (fresh, stale, rules that hide) */
	bool unknown;		/* no such project for this user */
	char *error;		/* the daemon's error line (owned), or NULL */
	char *paths;		/* NUL-separated, relative to the work tree */
	size_t len, cap;
};

static int put(struct answer *a, const char *path, bool dir)
{
	size_t n = strlen(path) + (dir ? 2 : 1);

	if (a->len + n > a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 4096;
		char *v;

		while (cap < a->len + n)
			cap *= 2;
		if (!(v = realloc(a->paths, cap)))
			return -ENOMEM;
		a->paths = v;
		a->cap = cap;
	}
	memcpy(a->paths + a->len, path, strlen(path));
	a->len += strlen(path);
	if (dir)
		a->paths[a->len++] = '/';
	a->paths[a->len++] = 0;
	return 0;
}

/* One line of the daemon's reply. */
static int take_line(struct answer *a, const char *line, size_t len)
{
	cJSON *j = cJSON_ParseWithLength(line, len);
	const char *b64 = cJSON_GetStringValue(cJSON_GetObjectItem(j, "path_b64"));
	char *raw = b64 ? base64_decode(b64, NULL) : NULL;	/* a name that is not UTF-8 */
	const char *path = raw ? raw : cJSON_GetStringValue(cJSON_GetObjectItem(j, "path"));
	const char *type = cJSON_GetStringValue(cJSON_GetObjectItem(j, "type"));
	const char *cursor = cJSON_GetStringValue(cJSON_GetObjectItem(j, "cursor"));
	const char *error = cJSON_GetStringValue(cJSON_GetObjectItem(j, "error"));
	int ret = 0;

	if (!j || (b64 && !raw)) {
		cJSON_Delete(j);
		free(raw);
		return -EBADMSG;
	}
	if (error) {
		a->unknown = strncmp(error, "no project ", 11) == 0;
		free(a->error);
		a->error = strdup(error);
	} else if (cursor) {
		free(a->cursor);
		a->cursor = strdup(cursor);
		/* what the log cannot say (yet), or rules that may hide a tracked path: git looks */
		a->everything |= cJSON_IsTrue(cJSON_GetObjectItem(j, "fresh")) ||
				 cJSON_IsTrue(cJSON_GetObjectItem(j, "incomplete")) ||
				 cJSON_IsTrue(cJSON_GetObjectItem(j, "ignores_beyond_git"));
		ret = a->cursor ? 0 : -ENOMEM;
	} else if (path && !cJSON_IsTrue(cJSON_GetObjectItem(j, "fresh")) && !a->everything &&
		   strcmp(path, ".git") != 0 && strncmp(path, ".git/", 5) != 0) {
		/*
		 * git's own directory is git's business. A directory made, deleted,
		 * renamed or changed below a cut path as "dir/" (what is below it
		 * changed too), but one whose metadata alone changed by its name (what
		 * it holds did not); a name where a directory was, both ways.
		 */
		const char *ev = cJSON_GetStringValue(cJSON_GetObjectItem(j, "event"));
		bool dir = type && strcmp(type, "dir") == 0 && !(ev && strcmp(ev, "attrib") == 0);

		ret = put(a, path, dir);
		if (!ret && !dir && cJSON_IsTrue(cJSON_GetObjectItem(j, "was_dir")))
			ret = put(a, path, true);
		if (!ret && a->len > PATHS_MAX)
			a->everything = true;	/* as good as everything, and cheaper to say */
	}
	cJSON_Delete(j);
	free(raw);
	return ret;
}

static int on_line(void *ctx, char *line, size_t len)
{
	return take_line(ctx, line, len);
}

/* Send @req to @sock and read its reply, line by line, into @a. 0 or -errno. */
static int ask(const char *sock, const cJSON *req, struct answer *a)
{
	return client_request(sock, req, TIMEOUT_S * 1000, LINE_MAX_BYTES, on_line, a);
}

static void answer_clear(struct answer *a)
{
	free(a->cursor);
	free(a->error);
	free(a->paths);
	*a = (struct answer){ 0 };
}

/* The changes of the work tree @root since @token (NULL: none, just the cursor). */
static int query(const char *sock, const char *root, const char *id, const char *token,
		 struct answer *a)
{
	cJSON *req = cJSON_CreateObject();
	int ret;

	if (!req)
		return -ENOMEM;
	cJSON_AddStringToObject(req, "cmd", "changes");
	cJSON_AddStringToObject(req, "project", root);
	cJSON_AddStringToObject(req, "root_id", id);	/* the same directory the daemon sees */
	if (token)
		cJSON_AddStringToObject(req, "since", token);
	ret = ask(sock, req, a);
	cJSON_Delete(req);
	return ret;
}

/*
 * The work tree becomes a project of the calling user's: nothing ignored but
 * the VCS's own directory, so that no path git tracks is ever hidden.
 */
static int add_project(const char *sock, const char *root, const char *id, struct answer *a)
{
	cJSON *req = cJSON_CreateObject(), *ign;
	int ret;

	if (!req || !(ign = cJSON_AddArrayToObject(req, "ignore"))) {
		cJSON_Delete(req);
		return -ENOMEM;
	}
	cJSON_AddStringToObject(req, "cmd", "add");
	cJSON_AddStringToObject(req, "root", root);
	cJSON_AddStringToObject(req, "root_id", id);
	cJSON_AddFalseToObject(req, "default_ignores");
	cJSON_AddItemToArray(ign, cJSON_CreateString(".git/"));
	ret = ask(sock, req, a);
	cJSON_Delete(req);
	return ret;
}


static void usage(void)
{
	log_warnx("usage: vfswatch git-fsmonitor [--run-dir DIR] 2 TOKEN  (git runs it as "
		  "core.fsmonitor, with core.fsmonitorHookVersion 2)");
}

int fsmonitor_main(int argc, char **argv)
{
	const char *run_dir = getenv("VFSWATCH_RUN_DIR"), *token;
	char sock[PATH_MAX], root[PATH_MAX], id[64];
	struct stat st;
	struct answer a = { 0 };
	bool everything;
	int i = 0, ret;

	if (!run_dir || !*run_dir)
		run_dir = VW_RUN_DIR_DEFAULT;
	while (i + 1 < argc && strcmp(argv[i], "--run-dir") == 0) {
		run_dir = argv[i + 1];
		i += 2;
	}
	if (argc - i != 2) {
		usage();
		return 2;
	}
	if (strcmp(argv[i], "2") != 0) {
		log_warnx("git-fsmonitor: protocol version %s is not spoken here: set "
			  "core.fsmonitorHookVersion 2", argv[i]);
		return 1;	/* git then looks at everything itself */
	}
	token = argv[i + 1];
	/* git runs the hook at the top of the work tree */
	if (!getcwd(root, sizeof(root)) || stat(".", &st) < 0 ||
	    (size_t)snprintf(sock, sizeof(sock), "%s/client.sock", run_dir) >= sizeof(sock)) {
		log_warn("git-fsmonitor");
		return 1;
	}
	/* which directory this is: the daemon may see another at the same path (its own
	 * mount namespace), and then answers nothing about it */
	snprintf(id, sizeof(id), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	/* a token of ours goes to the daemon (which says whether its log covers it); anything
	 * else (git's empty first token, another tool's) is no token: everything */
	everything = !changes_cursor_parse(token, NULL, NULL);
	ret = query(sock, root, id, everything ? NULL : token, &a);
	if (!ret && a.unknown && st.st_uid != getuid()) {
		/* root running git in a user's tree adds nothing to the user's name */
		log_warnx("git-fsmonitor: %s is no project you may read, and not yours to add: "
			  "git looks at everything itself", root);
		answer_clear(&a);
		return 1;
	}
	if (!ret && a.unknown) {	/* not a project yet: one of this user's from now on */
		answer_clear(&a);
		ret = add_project(sock, root, id, &a);
		if (!ret && a.error) {
			log_warnx("git-fsmonitor: %s: %s", root, a.error);
			ret = -EPERM;
		}
		answer_clear(&a);
		if (!ret)
			ret = query(sock, root, id, NULL, &a);	/* the token: from here on */
		everything = true;
	}
	if (!ret && (a.error || !a.cursor)) {
		log_warnx("git-fsmonitor: %s: %s", root, a.error ? a.error : "no cursor in the reply");
		ret = -EPROTO;
	}
	if (ret) {
		if (ret != -EPERM && ret != -EPROTO)
			log_warnx("git-fsmonitor: %s: %s", sock, strerror(-ret));
		answer_clear(&a);
		return 1;	/* git then looks at everything itself */
	}
	/* the token first: it was taken after every change the paths below cover */
	fwrite(a.cursor, 1, strlen(a.cursor) + 1, stdout);
	if (everything || a.everything)
		fwrite("/", 1, 2, stdout);
	else
		fwrite(a.paths ? a.paths : "", 1, a.len, stdout);
	ret = fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
	answer_clear(&a);
	return ret;
}
