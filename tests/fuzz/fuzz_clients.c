// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// fuzz_clients.c: the client socket (client.sock) served arbitrary bytes, through a real socket.
//
// One project with a change log of a few lines and a state table behind it; whatever is sent
// (changes, subscribe with any cursor, match and events, add, remove, or garbage), every line
// of the answer is a JSON object in valid UTF-8.
#include "fuzz.h"
#include "changes.h"
#include "clients.h"
#include "project.h"
#include "state.h"

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

	snprintf(root, sizeof(root), "%s/proj", fuzz_dir());
	FUZZ_CHECK(mkdir(root, 0755) == 0 || errno == EEXIST);
	snprintf(path, sizeof(path), "%s/client.sock", fuzz_dir());
	FUZZ_CHECK(projects_add(&projects, root, "proj", err, sizeof(err)) == 0);
	p = &projects.v[0];
	FUZZ_CHECK((changes = changes_new(NULL, 1 << 20)));
	FUZZ_CHECK((state = state_new(NULL)));
	FUZZ_CHECK(state_load(state, p) == 0);
	state_end_rescan(state, p, true, NULL, NULL);
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		changes_next(changes, p, cur);
		FUZZ_CHECK(changes_add(changes, p, lines[i], strlen(lines[i])) == 0);
	}
	FUZZ_CHECK((loop = loop_new()));
	cl = clients_new(path, loop, &projects, changes, state, &ops, err, sizeof(err));
	FUZZ_CHECK(cl);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	size_t len;
	char *out;

	if (!cl)
		setup();
	out = fuzz_exchange(loop, path, d, n, &len);
	fuzz_json_lines(out, len);
	free(out);
	return 0;
}
