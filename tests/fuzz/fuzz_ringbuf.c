// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// fuzz_ringbuf.c: ring buffer samples (sizes, kinds, offsets, paths) decoded, routed, written.
//
// Input: samples, each a little-endian u16 length then its bytes; a length with the top bit set
// gets its header's size field made to agree (so that most samples reach the checks past it).
// Every sample goes through the decoder, the router of two projects (one nested in the other),
// and the raw JSON writer; each line written must be one JSON object in valid UTF-8.
#include "fuzz_route.h"
#include "store/project.h"
#include "source/decoder.h"

static struct vw_projects projects;
static struct vw_decoder *dec;
static struct fuzz_route route;

static void setup(void)
{
	char root[128], err[256];

	snprintf(root, sizeof(root), "%s/one", fuzz_dir());
	FUZZ_CHECK(mkdir(root, 0755) == 0 || errno == EEXIST);
	FUZZ_CHECK(projects_add(&projects, root, "one", err, sizeof(err)) == 0);
	snprintf(root, sizeof(root), "%s/one/two", fuzz_dir());
	FUZZ_CHECK(mkdir(root, 0755) == 0 || errno == EEXIST);
	FUZZ_CHECK(projects_add(&projects, root, "two", err, sizeof(err)) == 0);
	FUZZ_CHECK((dec = decoder_new(fuzz_route_event, &route)));
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	static uint64_t sample[(sizeof(struct vw_change) + 64) / 8];	/* 8-aligned, as libbpf's */

	if (!dec)
		setup();
	fuzz_route_begin(&route, &projects);
	while (n >= 2) {
		uint16_t len = (uint16_t)(d[0] | d[1] << 8);
		bool seal = len & 0x8000;

		len &= 0x7fff;
		d += 2;
		n -= 2;
		if (len > n)
			len = (uint16_t)n;
		if (len > sizeof(sample))
			len = sizeof(sample);
		memcpy(sample, d, len);
		if (seal && len >= sizeof(struct vw_ev_hdr))
			((struct vw_ev_hdr *)sample)->size = len;
		decoder_sample(dec, sample, len);
		d += len;
		n -= len;
	}
	fuzz_route_end(&route);
	return 0;
}
