// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// test_util.c: number parsing, UTF-8, base64, lexical paths and the chain hash.
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include <stdio.h>
#include <sys/sysmacros.h>
#include <linux/types.h>

#include "core/util.h"
#include "vw_events.h"

static void parse_u64_accepts_only_whole_numbers_in_range(void **state)
{
	uint64_t v = 0;

	assert_int_equal(parse_u64("42", 1, 100, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(parse_u64("0", 1, 100, &v), -ERANGE);
	assert_int_equal(parse_u64("101", 1, 100, &v), -ERANGE);
	assert_int_equal(parse_u64("", 0, 100, &v), -EINVAL);
	assert_int_equal(parse_u64("12x", 0, 100, &v), -EINVAL);
	assert_int_equal(parse_u64("-1", 0, UINT64_MAX, &v), -EINVAL);
	assert_int_equal(parse_u64(" 1", 0, 100, &v), -EINVAL);
	assert_int_equal(parse_u64("99999999999999999999999", 0, UINT64_MAX, &v), -ERANGE);
}

static void utf8_validation_rejects_bad_sequences(void **state)
{
	assert_true(utf8_valid("plain", 5));
	assert_true(utf8_valid("\xc3\xbc\xe2\x9c\x93", 5));	/* ü ✓ */
	assert_false(utf8_valid("\xff", 1));
	assert_false(utf8_valid("\xc0\xaf", 2));	/* overlong '/' */
	assert_false(utf8_valid("\xed\xa0\x80", 3));	/* surrogate */
	assert_false(utf8_valid("\xe2\x9c", 2));	/* cut short */
}

static void utf8_lossy_replaces_each_bad_byte(void **state)
{
	char *s = utf8_lossy("a\xff" "b\xc3\xbc", 5);

	assert_string_equal(s, "a\xef\xbf\xbd" "b\xc3\xbc");
	free(s);
}

static void base64_matches_rfc4648_vectors(void **state)
{
	static const char *in[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	static const char *out[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
	char *s;
	size_t n;

	for (size_t i = 0; i < 7; i++) {
		s = base64_encode((const unsigned char *)in[i], strlen(in[i]));

		assert_string_equal(s, out[i]);
		free(s);
		s = base64_decode(out[i], &n);
		assert_non_null(s);
		assert_int_equal(n, strlen(in[i]));
		assert_string_equal(s, in[i]);
		free(s);
	}
	/* bytes that are not UTF-8 come back as they were; malformed text is refused */
	s = base64_decode("YmFk/wpuYW1l", &n);
	assert_int_equal(n, 9);
	assert_memory_equal(s, "bad\xff\nname", 9);
	free(s);
	assert_null(base64_decode("Zm9", NULL));
	assert_null(base64_decode("Zm9*", NULL));
	assert_null(base64_decode("Z=9v", NULL));
}

static void check_norm(const char *in, const char *want)
{
	char buf[256];

	snprintf(buf, sizeof(buf), "%s", in);
	path_normalize(buf);
	assert_string_equal(buf, want);
}

static void path_normalize_is_lexical_and_in_place(void **state)
{
	check_norm("/", "/");
	check_norm("/a", "/a");
	check_norm("/a/b/", "/a/b");
	check_norm("//a//b", "/a/b");
	check_norm("/a/./b/.", "/a/b");
	check_norm("/a/b/../c", "/a/c");
	check_norm("/a/../../..", "/");
	check_norm("/srv/proj/../proj/./x", "/srv/proj/x");
	check_norm("/a/..b/c..", "/a/..b/c..");
	check_norm("/a/b/c/../..", "/a");
}

static void path_below_needs_a_component_boundary(void **state)
{
	assert_string_equal(path_below("/srv/api/x/y", "/srv/api"), "x/y");
	assert_string_equal(path_below("/srv/api", "/srv/api"), "");
	assert_null(path_below("/srv/api2/x", "/srv/api"));
	assert_null(path_below("/srv", "/srv/api"));
	assert_string_equal(path_below("/etc/x", "/"), "etc/x");
}

static void chain_hash_is_fnv1a_with_separators(void **state)
{
	uint64_t h = VW_HASH_INIT;

	/* FNV-1a 64 of "a" is the published 0xaf63dc4c8601ec8c */
	assert_true(vw_hash_component(h, "a", 1, true) == 0xaf63dc4c8601ec8cULL);
	/* "a" then "b" hashes as the bytes "a/b" */
	h = vw_hash_component(vw_hash_component(VW_HASH_INIT, "a", 1, true), "b", 1, false);
	assert_true(h == vw_hash_component(VW_HASH_INIT, "a/b", 3, true));
}

static void kernel_dev_uses_the_kernel_encoding(void **state)
{
	/* userspace makedev(8, 1) = 0x801; the kernel's MKDEV(8, 1) = 8 << 20 | 1 */
	assert_int_equal(kernel_dev(0x801), (8u << 20) | 1);
	assert_int_equal(kernel_dev(makedev(0x12, 0x34567)), (0x12u << 20) | 0x34567);
}

/* RFC 3339 UTC with microseconds; the same second's cached text is reused correctly. */
static void boot_time_formats_as_rfc3339_utc(void **state)
{
	uint64_t boot = now_ns(CLOCK_BOOTTIME), off = now_ns(CLOCK_REALTIME) - boot;
	char a[64], b[64], want[64];
	time_t sec;
	struct tm tm;

	for (uint64_t step = 0; step < 5; step++) {
		uint64_t t = boot + step * 400000000ull + 123456000ull;

		format_boot_ns(t, a, sizeof(a));
		format_boot_ns(t, b, sizeof(b));
		assert_string_equal(a, b);
		assert_int_equal(strlen(a), 27);
		assert_int_equal(a[19], '.');
		assert_int_equal(a[26], 'Z');
		sec = (time_t)((t + off) / 1000000000ull);
		gmtime_r(&sec, &tm);
		strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%S", &tm);
		assert_memory_equal(a, want, 19);	/* the wall clock may move by a few us */
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parse_u64_accepts_only_whole_numbers_in_range),
		cmocka_unit_test(utf8_validation_rejects_bad_sequences),
		cmocka_unit_test(utf8_lossy_replaces_each_bad_byte),
		cmocka_unit_test(base64_matches_rfc4648_vectors),
		cmocka_unit_test(path_normalize_is_lexical_and_in_place),
		cmocka_unit_test(path_below_needs_a_component_boundary),
		cmocka_unit_test(chain_hash_is_fnv1a_with_separators),
		cmocka_unit_test(kernel_dev_uses_the_kernel_encoding),
		cmocka_unit_test(boot_time_formats_as_rfc3339_utc),
	};

	return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}
