// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// fuzz_changes.c: a project's change log file, truncated, corrupted or hostile, then used.
//
// Input: a byte choosing the sequence number of a cursor, then the file. The log is opened,
// asked for the lines after that cursor (in its own epoch), appended to until it is trimmed,
// and asked again; every line handed out is one line (no newline inside), and a cursor it
// does not know is refused, never answered in part.
#include "fuzz.h"
#include "store/changes.h"
#include "store/project.h"

static int one_line(void *ctx, const char *line, size_t len)
{
	size_t *n = ctx;

	FUZZ_CHECK(!memchr(line, '\n', len));
	(*n)++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct vw_project p = { .id = 1, .name = "p", .root = "/nowhere/p" };
	char path[256], now[VW_CURSOR_MAX], cur[VW_CURSOR_MAX + 24];
	struct vw_changes *c;
	size_t lines = 0;
	int ret;

	if (n < 1)
		return 0;
	project_file(&p, fuzz_dir(), "changes", path, sizeof(path));
	fuzz_write(path, d + 1, n - 1);
	FUZZ_CHECK((c = changes_new(fuzz_dir(), 4096)));
	changes_cursor(c, &p, now);
	FUZZ_CHECK(strlen(now) > 17 && now[16] == '.');
	snprintf(cur, sizeof(cur), "%.16s.%u", now, d[0]);
	ret = changes_since(c, &p, cur, one_line, &lines);
	FUZZ_CHECK(ret == 0 || ret == -ESTALE);
	for (int i = 0; i < 64; i++) {
		char line[] = "{\"event\":\"modify\",\"path\":\"some/file/name\"}";

		changes_next(c, &p, now);
		FUZZ_CHECK(changes_add(c, &p, line, sizeof(line) - 1) == 0);
	}
	changes_flush(c);
	ret = changes_since(c, &p, cur, one_line, &lines);
	FUZZ_CHECK(ret == 0 || ret == -ESTALE);
	ret = changes_since(c, &p, now, one_line, &lines);
	FUZZ_CHECK(ret == 0);	/* the last line's own cursor: nothing since */
	changes_free(c);
	unlink(path);
	return 0;
}
