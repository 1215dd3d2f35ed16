// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// fuzz_bser.c: BSER decoding of arbitrary bytes: a value or a reason, never a crash; what decodes
// encodes again (v1 and v2) to a PDU that decodes to the same value.
#include "fuzz.h"
#include "serve/bser.h"

static char *printed(const cJSON *v)
{
	char *s = cJSON_PrintUnformatted(v);

	FUZZ_CHECK(s);
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	char err[256];
	int version = 0;
	ssize_t len = bser_pdu_len(d, n, 1 << 20, &version);
	cJSON *v;
	char *want;

	FUZZ_CHECK(len >= 0 || len == -EBADMSG);
	v = bser_decode(d, n, err, sizeof(err));
	FUZZ_CHECK(v ? true : err[0] != 0);
	if (v)	/* a whole PDU decodes only when its header measures exactly it */
		FUZZ_CHECK(len == (ssize_t)n && (version == 1 || version == 2));
	if (!v)
		return 0;
	want = printed(v);
	for (int ver = 1; ver <= 2; ver++) {
		size_t elen;
		char *b = bser_encode(v, ver, 0, &elen), *got;
		cJSON *again;

		FUZZ_CHECK(b);
		FUZZ_CHECK(bser_pdu_len(b, elen, 1 << 30, &version) == (ssize_t)elen);
		again = bser_decode(b, elen, err, sizeof(err));
		FUZZ_CHECK(again);
		got = printed(again);
		FUZZ_CHECK(strcmp(got, want) == 0);
		cJSON_free(got);
		cJSON_Delete(again);
		free(b);
	}
	cJSON_free(want);
	cJSON_Delete(v);
	return 0;
}
