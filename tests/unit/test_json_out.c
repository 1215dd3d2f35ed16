// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// test_json_out.c: every line parses as JSON; names that are not UTF-8 are recoverable.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <linux/types.h>

#include <cjson/cJSON.h>

#include "pipeline/json_out.h"
#include "core/util.h"

/* Run @fn writing into memory and parse the single line it produced. */
static cJSON *one_line(char *buf, size_t size, FILE *f)
{
	char *nl;

	fflush(f);
	nl = strchr(buf, '\n');
	assert_non_null(nl);
	assert_int_equal(nl[1], 0);	/* exactly one line */
	assert_true(utf8_valid(buf, strlen(buf)));
	return cJSON_Parse(buf);
}

static const char *str(cJSON *o, const char *k)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double num(cJSON *o, const char *k)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	assert_true(cJSON_IsNumber(v));
	return v->valuedouble;
}

static void change_line_has_the_documented_fields(void **state)
{
	char buf[4096] = "";
	FILE *f = fmemopen(buf, sizeof(buf), "w");
	struct vw_project p = { .id = 1, .name = "api", .root = "/srv/api" };
	struct vw_event ev = { .pid = 11, .tgid = 10, .uid = 1000, .cgroup_id = 77, .comm = "vim" };
	struct vw_out o = { .project = &p, .kind = VW_KIND_RENAME, .type = "file", .path = "new\nline",
			    .old_path = "old", .ev = &ev };
	cJSON *j;

	assert_int_equal(json_out_change(f, &o), 0);
	j = one_line(buf, sizeof(buf), f);
	assert_non_null(j);
	assert_int_equal(num(j, "v"), 1);
	assert_string_equal(str(j, "event"), "rename");
	assert_string_equal(str(j, "project"), "api");
	assert_string_equal(str(j, "root"), "/srv/api");
	assert_string_equal(str(j, "path"), "new\nline");
	assert_string_equal(str(j, "old_path"), "old");
	assert_string_equal(str(j, "type"), "file");
	assert_string_equal(str(j, "comm"), "vim");
	assert_string_equal(str(j, "source"), "kernel");
	assert_int_equal(num(j, "pid"), 10);
	assert_int_equal(num(j, "tid"), 11);
	assert_int_equal(num(j, "uid"), 1000);
	assert_int_equal(num(j, "cgroup"), 77);
	assert_non_null(str(j, "time"));
	assert_null(cJSON_GetObjectItemCaseSensitive(j, "path_b64"));
	assert_null(cJSON_GetObjectItemCaseSensitive(j, "truncated"));
	cJSON_Delete(j);
	fclose(f);
}

static void invalid_utf8_gets_replacement_text_and_exact_base64(void **state)
{
	char buf[4096] = "";
	FILE *f = fmemopen(buf, sizeof(buf), "w");
	struct vw_project p = { .id = 1, .name = "api", .root = "/srv/api" };
	struct vw_event ev = { .comm = "bad\xff" };
	struct vw_out o = { .project = &p, .kind = VW_KIND_CREATE, .path = "a\xff\xfe", .ev = &ev,
			    .truncated = true };
	cJSON *j;

	assert_int_equal(json_out_change(f, &o), 0);
	j = one_line(buf, sizeof(buf), f);
	assert_non_null(j);
	assert_string_equal(str(j, "path"), "a\xef\xbf\xbd\xef\xbf\xbd");
	assert_string_equal(str(j, "path_b64"), "Yf/+");	/* base64 of 61 ff fe */
	assert_string_equal(str(j, "comm_b64"), "YmFk/w==");
	assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "truncated")));
	assert_null(cJSON_GetObjectItemCaseSensitive(j, "type"));
	cJSON_Delete(j);
	fclose(f);
}

static void ready_and_overflow_lines(void **state)
{
	char buf[4096] = "";
	FILE *f = fmemopen(buf, sizeof(buf), "w");
	struct vw_project v[2] = { { .id = 1, .name = "a", .root = "/a" },
				   { .id = 2, .name = "b", .root = "/b" } };
	struct vw_projects t = { .v = v, .n = 2 };
	cJSON *j, *arr;

	assert_int_equal(json_out_ready(f, "tracepoint", &t, 99), 0);
	j = one_line(buf, sizeof(buf), f);
	assert_string_equal(str(j, "event"), "ready");
	assert_string_equal(str(j, "backend"), "tracepoint");
	arr = cJSON_GetObjectItemCaseSensitive(j, "projects");
	assert_int_equal(cJSON_GetArraySize(arr), 2);
	assert_string_equal(str(cJSON_GetArrayItem(arr, 1), "root"), "/b");
	cJSON_Delete(j);
	rewind(f);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(json_out_overflow(f, "ringbuf_full", 12), 0);
	j = one_line(buf, sizeof(buf), f);
	assert_string_equal(str(j, "event"), "overflow");
	assert_int_equal(num(j, "lost"), 12);
	cJSON_Delete(j);
	fclose(f);
}

/* Names of arbitrary bytes: every line is UTF-8 JSON and gives the exact bytes back. */
static void arbitrary_names_round_trip(void **state)
{
	static const char *const pieces[] = { "a", "Z", "/", ".", " ", "\"", "\\", "\n", "\t",
					       "\x01", "\x1f", "\x7f", "\xc3\xa9", "\xe2\x82\xac",
					       "\xf0\x9f\x98\x80", "\xff", "\xc3", "\xe2\x82",
					       "\xed\xa0\x80", "\xc0\xaf", "\u2028" };
	size_t size = 1 << 16;
	char *buf = malloc(size), name[256];
	struct vw_project p = { .id = 1, .name = "api", .root = "/srv/api" };
	struct vw_event ev = { .comm = "c" };
	unsigned seed = 12345;

	assert_non_null(buf);
	for (int iter = 0; iter < 3000; iter++) {
		size_t len = 0, n = (seed = seed * 1103515245 + 12345) >> 16 & 31;
		FILE *f;
		cJSON *j;

		for (size_t k = 0; k < n; k++) {
			const char *pc = pieces[((seed = seed * 1103515245 + 12345) >> 16) %
						(sizeof(pieces) / sizeof(pieces[0]))];

			if (len + strlen(pc) >= sizeof(name))
				break;
			memcpy(name + len, pc, strlen(pc));
			len += strlen(pc);
		}
		name[len] = 0;
		if (!len)
			continue;
		memset(buf, 0, size);
		f = fmemopen(buf, size, "w");
		struct vw_out o = { .project = &p, .kind = VW_KIND_MODIFY, .path = name, .ev = &ev };

		assert_int_equal(json_out_change(f, &o), 0);
		j = one_line(buf, size, f);
		assert_non_null(j);
		if (utf8_valid(name, len)) {
			assert_string_equal(str(j, "path"), name);
			assert_null(cJSON_GetObjectItemCaseSensitive(j, "path_b64"));
		} else {
			char *lossy = utf8_lossy(name, len);
			char *b64 = base64_encode((const unsigned char *)name, len);

			assert_string_equal(str(j, "path"), lossy);
			assert_string_equal(str(j, "path_b64"), b64);
			free(lossy);
			free(b64);
		}
		cJSON_Delete(j);
		fclose(f);
	}
	free(buf);
}

/* Numbers are written exactly, beyond what a double holds. */
static void settled_line_numbers_are_exact(void **state)
{
	char buf[4096] = "";
	FILE *f = fmemopen(buf, sizeof(buf), "w");
	struct vw_project p = { .id = 1, .name = "api", .root = "/srv/api" };
	struct vw_event ev = { .tgid = 7, .cgroup_id = 18446744073709551615ull, .comm = "cc" };
	struct vw_settled st = { .project = &p, .kind = VW_KIND_MODIFY, .path = "x", .writes = 3,
				 .batch = 1ull << 60, .batch_size = 2, .ev = &ev, .by = "lint" };
	cJSON *j;

	assert_int_equal(json_out_settled(f, &st), 0);
	j = one_line(buf, sizeof(buf), f);
	assert_non_null(j);
	assert_non_null(strstr(buf, "\"cgroup\":18446744073709551615,"));
	assert_non_null(strstr(buf, "\"batch\":1152921504606846976,"));
	assert_int_equal(num(j, "writes"), 3);
	assert_int_equal(num(j, "batch_size"), 2);
	assert_string_equal(str(j, "by"), "lint");
	assert_string_equal(str(j, "source"), "kernel");
	cJSON_Delete(j);
	fclose(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(change_line_has_the_documented_fields),
		cmocka_unit_test(invalid_utf8_gets_replacement_text_and_exact_base64),
		cmocka_unit_test(ready_and_overflow_lines),
		cmocka_unit_test(arbitrary_names_round_trip),
		cmocka_unit_test(settled_line_numbers_are_exact),
	};

	return cmocka_run_group_tests_name("json_out", tests, NULL, NULL);
}
