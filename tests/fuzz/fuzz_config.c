// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// fuzz_config.c: the config file parser on arbitrary bytes: a config or an error message, never both.
#include "fuzz.h"
#include "store/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	char path[128], err[1024] = "";
	struct vw_config *c;

	snprintf(path, sizeof(path), "%s/config.json", fuzz_dir());
	fuzz_write(path, d, n);
	c = config_load(path, err, sizeof(err));
	FUZZ_CHECK(c ? err[0] == 0 : err[0] != 0);
	FUZZ_CHECK(!c || !memchr(d, 0, n));	/* a NUL byte is never a config */
	config_free(c);
	return 0;
}
