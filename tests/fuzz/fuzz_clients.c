// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// fuzz_clients.c: the client socket (client.sock) served arbitrary bytes, through a real socket.
//
// Two projects with a change log of a few lines and a state table behind them, one root's and
// one of uid 2001's; the first byte picks the peer (root, uid 2001 or uid 2002, connected with
// that uid). Whatever is sent (changes, subscribe with any cursor, match and events, add,
// remove, or garbage), every line of the answer is a JSON object in valid UTF-8, and no line
// about a project goes to a peer that may not read it.
#include "fuzz.h"
#include "store/changes.h"
#include "serve/clients.h"
#include "store/project.h"
#include "store/state.h"

#define USER_A 2001	/* owns the project "mine" */
#define USER_B 2002	/* owns nothing */

static struct vw_loop *loop;
static struct vw_clients *cl;
static struct vw_projects projects;
static struct vw_changes *changes;
static struct vw_state *state;
static char path[128];

static int user_add(void *ctx, const struct vw_creds *who, const struct cJSON *req,
		    struct cJSON *reply,
		    char *err, size_t errlen)
{
	const char *root = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "root"));

	if (!root || root[0] != '/') {
		snprintf(err, errlen, "add: \"root\" must be an absolute path");
		return -EINVAL;
	}
	cJSON_AddStringToObject(reply, "root", root);
	return 0;
}

static int user_remove(void *ctx, const struct vw_creds *who, const struct cJSON *req,
		       struct cJSON *reply,
		       char *err, size_t errlen)
{
	return -ENOENT;	/* no message: the server says something */
}

static const struct vw_clients_ops ops = { .add = user_add, .remove = user_remove };

static void setup(void)
{
	static const char *const lines[] = {
		"{\"event\":\"create\",\"type\":\"file\",\"path\":\"a\"}",
		"{\"event\":\"modify\",\"type\":\"file\",\"path\":\"a\"}",
		"{\"event\":\"rename\",\"type\":\"dir\",\"path\":\"d2\",\"old_path\":\"d\"}",
		"{\"event\":\"delete\",\"type\":\"file\",\"path\":\"d2/x\"}",
		"not json at all",
		"{\"event\":\"create\",\"path\":\"\\u00e9\\n\"}",
	};
	char root[128], err[256], cur[VW_CURSOR_MAX];
	struct vw_project *p;

	FUZZ_CHECK(chmod(fuzz_dir(), 0755) == 0);
	snprintf(root, sizeof(root), "%s/proj", fuzz_dir());
	FUZZ_CHECK(mkdir(root, 0755) == 0 || errno == EEXIST);
	FUZZ_CHECK(projects_add(&projects, root, "proj", err, sizeof(err)) == 0);
	snprintf(root, sizeof(root), "%s/mine", fuzz_dir());
	FUZZ_CHECK(mkdir(root, 0755) == 0 || errno == EEXIST);
	FUZZ_CHECK(getuid() != 0 || chown(root, USER_A, USER_A) == 0);
	FUZZ_CHECK(projects_add(&projects, root, "mine", err, sizeof(err)) == 0);
	snprintf(path, sizeof(path), "%s/client.sock", fuzz_dir());
	FUZZ_CHECK((changes = changes_new(NULL, 1 << 20)));
	FUZZ_CHECK((state = state_new(NULL)));
	for (size_t k = 0; k < projects.n; k++) {
		p = &projects.v[k];
		FUZZ_CHECK(state_load(state, p) == 0);
		state_end_rescan(state, p, true, NULL, NULL);
		for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
			changes_next(changes, p, cur);
			FUZZ_CHECK(changes_add(changes, p, lines[i], strlen(lines[i])) == 0);
		}
	}
	FUZZ_CHECK((loop = loop_new()));
	cl = clients_new(path, loop, &projects, changes, state, &ops, err, sizeof(err));
	FUZZ_CHECK(cl);
}

/* No line about a project (its changes, its cursor) reaches a peer that may not read it. */
static void only_readable(const char *out, uint32_t uid)
{
	for (const char *l = out; *l;) {
		const char *nl = strchr(l, '\n');
		size_t n = nl ? (size_t)(nl - l) : strlen(l);
		cJSON *j = cJSON_ParseWithLength(l, n);
		const char *proj = cJSON_GetStringValue(cJSON_GetObjectItem(j, "project"));

		/* an error line may repeat the name asked for; nothing else may name a project */
		if (proj && !cJSON_GetObjectItem(j, "error"))
			FUZZ_CHECK(uid == 0 || (uid == USER_A && strcmp(proj, "mine") == 0));
		cJSON_Delete(j);
		l += n + (nl != NULL);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	static const uint32_t peers[] = { 0, USER_A, USER_B };
	uint32_t uid;
	size_t len;
	char *out;

	if (!cl)
		setup();
	if (n == 0)
		return 0;
	uid = getuid() == 0 ? peers[d[0] % 3] : 0;
	out = fuzz_exchange_as(loop, path, uid, d + 1, n - 1, &len);
	fuzz_json_lines(out, len);
	only_readable(out, uid);
	free(out);
	return 0;
}
