// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// fuzz_state.c: a project's snapshot and journal files, truncated, corrupted or hostile, loaded.
//
// Input: a flags byte, a little-endian u16 length of the snapshot, the snapshot, the journal.
// Flag 1 gives the snapshot a right magic and checksum, flag 2 the journal a right magic,
// generation and record checksums, so that most inputs reach the records behind them. Whatever
// the files hold, loading either succeeds or says the snapshot is damaged (and sets it aside);
// what loaded is a table of names the daemon can walk and save again.
#include <zlib.h>
#include "fuzz.h"
#include "store/project.h"
#include "store/state.h"

static bool walk(void *ctx, const char *rel, const struct vw_state_entry *e)
{
	size_t *n = ctx;

	FUZZ_CHECK(rel && rel[0]);
	(*n)++;
	return true;
}

static void put_crc(uint8_t *at, const uint8_t *from, size_t len)
{
	uint32_t crc = (uint32_t)crc32(0, from, (uInt)len);

	memcpy(at, &crc, 4);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct vw_project p = { .id = 1, .name = "p", .root = "/nowhere/p" };
	char snap[256], jrnl[256];
	uint8_t *s, *j;
	size_t slen, jlen, walked = 0;
	struct vw_state *st;
	int ret;

	if (n < 3)
		return 0;
	slen = (size_t)(d[1] | d[2] << 8);
	if (slen > n - 3)
		slen = n - 3;
	jlen = n - 3 - slen;
	s = malloc(slen + 1);
	j = malloc(jlen + 1);
	FUZZ_CHECK(s && j);
	memcpy(s, d + 3, slen);
	memcpy(j, d + 3 + slen, jlen);
	if ((d[0] & 1) && slen >= 28) {
		memcpy(s, "VWSNAP2\n", 8);
		put_crc(s + slen - 4, s, slen - 4);
	}
	if ((d[0] & 2) && jlen >= 20 && slen >= 16) {
		memcpy(j, "VWJRNL2\n", 8);
		memcpy(j + 8, s + 8, 8);	/* the snapshot's generation */
		put_crc(j + 16, j, 16);
		for (size_t off = 20; jlen - off >= 8;) {
			uint32_t plen;

			memcpy(&plen, j + off, 4);
			if (plen == 0 || plen > jlen - off - 8)
				break;
			put_crc(j + off + 4, j + off + 8, plen);
			off += 8 + plen;
		}
	}
	project_file(&p, fuzz_dir(), "snap", snap, sizeof(snap));
	project_file(&p, fuzz_dir(), "journal", jrnl, sizeof(jrnl));
	fuzz_write(snap, s, slen);
	fuzz_write(jrnl, j, jlen);
	FUZZ_CHECK((st = state_new(fuzz_dir())));
	ret = state_load(st, &p);
	FUZZ_CHECK(ret == 0 || ret == 1 || ret == -VW_STATE_EDAMAGED);
	state_each(st, &p, walk, &walked);
	state_free(st);
	unlink(snap);
	unlink(jrnl);
	free(s);
	free(j);
	return 0;
}
