// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// fuzz_control.c: the control socket (ctl.sock) served arbitrary bytes, through a real socket.
//
// Whatever is sent, the answer is at most one line, a JSON object with "ok", and the server
// keeps no connection once it has answered.
#include "fuzz.h"
#include "serve/control.h"

static int verb_echo(void *ctx, const struct cJSON *req, struct cJSON *reply, char *err,
		     size_t errlen)
{
	const cJSON *root = cJSON_GetObjectItemCaseSensitive(req, "root");

	if (root && !cJSON_IsString(root)) {
		snprintf(err, errlen, "\"root\" must be a string");
		return -EINVAL;
	}
	cJSON_AddStringToObject(reply, "root", root ? root->valuestring : "");
	return 0;
}

static int verb_fail(void *ctx, const struct cJSON *req, struct cJSON *reply, char *err,
		     size_t errlen)
{
	return -ENOENT;	/* no message: the server says strerror() */
}

static const struct ctl_verb verbs[] = {
	{ "add", verb_echo },
	{ "status", verb_echo },
	{ "remove", verb_fail },
	{ NULL, NULL },
};

static struct vw_loop *loop;
static struct vw_control *ctl;
static char path[128];

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	size_t len;
	char *out;

	if (!ctl) {
		char err[256];

		snprintf(path, sizeof(path), "%s/ctl.sock", fuzz_dir());
		FUZZ_CHECK((loop = loop_new()));
		ctl = control_new(path, -1, loop, verbs, NULL, err, sizeof(err));
		FUZZ_CHECK(ctl);
	}
	out = fuzz_exchange(loop, path, d, n, &len);
	FUZZ_CHECK(fuzz_json_lines(out, len) <= 1);
	if (len) {
		cJSON *j = cJSON_Parse(out);

		FUZZ_CHECK(cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(j, "ok")));
		cJSON_Delete(j);
	}
	free(out);
	return 0;
}
