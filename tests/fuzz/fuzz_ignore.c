// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// fuzz_ignore.c: ignore rules compiled from arbitrary lines, matched against arbitrary paths.
//
// Input: rule lines, a NUL byte, then paths one per line. Each path is matched as a file and as
// a directory, and against each rule as a plain glob; nothing may crash or take unbounded time.
#include "fuzz.h"
#include "core/ignore.h"

#define RULES_MAX 64
#define PATHS_MAX 64

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	char *text = malloc(n + 1), *paths, *rules[RULES_MAX], *line, *save = NULL;
	struct vw_ignore *ig = ignore_new();
	size_t nrules = 0, npaths = 0;

	fuzz_dir();
	FUZZ_CHECK(text && ig);
	memcpy(text, d, n);
	text[n] = 0;
	paths = strlen(text) < n ? text + strlen(text) + 1 : NULL;
	for (line = strtok_r(text, "\n", &save); line && nrules < RULES_MAX;
	     line = strtok_r(NULL, "\n", &save)) {
		int ret = ignore_add(ig, line);

		FUZZ_CHECK(ret == 0 || ret < 0);
		rules[nrules++] = line;
	}
	FUZZ_CHECK(ignore_count(ig) <= nrules);
	save = NULL;
	for (line = paths ? strtok_r(paths, "\n", &save) : NULL; line && npaths < PATHS_MAX;
	     line = strtok_r(NULL, "\n", &save), npaths++) {
		bool as_file = ignore_match(ig, line, false);

		(void)as_file;
		ignore_match(ig, line, true);
		for (size_t i = 0; i < nrules; i++)
			glob_match(rules[i], line);
		globs_match(rules, nrules, line);
	}
	ignore_free(ig);
	free(text);
	return 0;
}
