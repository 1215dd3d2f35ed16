// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// fuzz_json.c: the JSON writer on arbitrary names, read back by a JSON parser.
//
// Input: a path, a NUL byte, an old path. Both are written as a settled rename line and as a
// raw change line; each must be one JSON object in valid UTF-8 whose "path" and "old_path" give
// the exact bytes back: the text itself, or "<key>_b64" when the name is not UTF-8.
#include <resolv.h>
#include "fuzz.h"
#include "pipeline/debounce.h"
#include "pipeline/route.h"
#include "pipeline/json_out.h"
#include "store/project.h"

/* The bytes a line says a name has. */
static void name_back(const cJSON *j, const char *key, const char *want)
{
	char b64key[32];
	const cJSON *b = (snprintf(b64key, sizeof(b64key), "%s_b64", key),
			  cJSON_GetObjectItemCaseSensitive(j, b64key));
	const char *text = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, key));

	FUZZ_CHECK(text);
	if (!b) {
		FUZZ_CHECK(strcmp(text, want) == 0);
		return;
	}
	FUZZ_CHECK(cJSON_IsString(b));
	{
		size_t cap = strlen(b->valuestring);
		unsigned char *raw = malloc(cap + 1);
		int got = raw ? b64_pton(b->valuestring, raw, cap + 1) : -1;

		FUZZ_CHECK(got >= 0 && (size_t)got == strlen(want));
		FUZZ_CHECK(memcmp(raw, want, (size_t)got) == 0);
		free(raw);
	}
}

static void check(const char *buf, size_t len, const char *path, const char *old)
{
	cJSON *j;

	FUZZ_CHECK(fuzz_json_lines(buf, len) == 1);
	j = cJSON_Parse(buf);
	name_back(j, "path", path);
	name_back(j, "old_path", old);
	cJSON_Delete(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct vw_project p = { .id = 1, .name = "p", .root = "/p" };
	struct vw_event ev = { .pid = 1, .tgid = 1 };
	char *path = malloc(n + 2), *old, *buf = NULL;
	size_t len = 0;
	FILE *f;

	fuzz_dir();
	FUZZ_CHECK(path);
	memcpy(path, d, n);
	path[n] = path[n + 1] = 0;
	old = path + strlen(path) + 1;
	memcpy(ev.comm, path, strnlen(path, VW_COMM_LEN));

	struct vw_settled s = { .project = &p, .kind = VW_KIND_RENAME, .type = "file", .path = path,
				.old_path = old, .ev = &ev, .cursor = "0.1" };
	FUZZ_CHECK((f = open_memstream(&buf, &len)));
	FUZZ_CHECK(json_out_settled(f, &s) == 0);
	FUZZ_CHECK(fclose(f) == 0);
	check(buf, len, path, old);
	free(buf);

	struct vw_out o = { .project = &p, .kind = VW_KIND_RENAME, .type = "file", .path = path,
			    .old_path = old, .ev = &ev };
	FUZZ_CHECK((f = open_memstream(&buf, &len)));
	FUZZ_CHECK(json_out_change(f, &o) == 0);
	FUZZ_CHECK(fclose(f) == 0);
	check(buf, len, path, old);
	free(buf);
	free(path);
	return 0;
}
