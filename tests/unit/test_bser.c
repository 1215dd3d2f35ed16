// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// test_bser.c: Watchman's BSER v1/v2: exact bytes, round trips, templates, and malformed PDUs.
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "serve/bser.h"

/* Decode @n bytes; the value printed as JSON (caller frees), or NULL with @err. */
static char *decoded(const void *b, size_t n, char *err, size_t errlen)
{
	cJSON *v = bser_decode(b, n, err, errlen);
	char *s = v ? cJSON_PrintUnformatted(v) : NULL;

	cJSON_Delete(v);
	return s;
}

static void v1_bytes_are_watchmans(void **state)
{
	/* ["Hello", 42]: array of 2, a byte string of 5, an int8 */
	static const unsigned char want[] = { 0x00, 0x01, 0x03, 0x0d, 0x00, 0x03, 0x02,
					      0x02, 0x03, 0x05, 'H', 'e', 'l', 'l', 'o',
					      0x03, 0x2a };
	cJSON *v = cJSON_Parse("[\"Hello\", 42]");
	size_t len = 0;
	char *b = bser_encode(v, 1, 0, &len);
	int version = 0;

	assert_non_null(b);
	assert_int_equal(len, sizeof(want));
	assert_memory_equal(b, want, sizeof(want));
	assert_int_equal(bser_pdu_len(b, len, 1 << 20, &version), (ssize_t)len);
	assert_int_equal(version, 1);
	free(b);
	cJSON_Delete(v);
}

static void v2_carries_capabilities_and_strings_are_bytes(void **state)
{
	cJSON *v = cJSON_CreateArray();
	size_t len = 0;
	char *b, err[128];
	uint32_t caps;
	int version = 0;
	char *s;

	cJSON_AddItemToArray(v, cJSON_CreateString("caf\xc3\xa9"));
	cJSON_AddItemToArray(v, cJSON_CreateString("bad\xff"));	/* a file name, not UTF-8 */
	b = bser_encode(v, 2, 0x5, &len);
	assert_non_null(b);
	assert_int_equal((unsigned char)b[0], 0);
	assert_int_equal((unsigned char)b[1], 2);
	memcpy(&caps, b + 2, 4);
	assert_int_equal(caps, 0x5);
	assert_int_equal(bser_pdu_len(b, len, 1 << 20, &version), (ssize_t)len);
	assert_int_equal(version, 2);
	/* after the header (6 + int8 length 2) and the array's 3 bytes: byte strings, as
	 * Watchman writes names (fb-watchman decodes no 0x0d) */
	assert_int_equal((unsigned char)b[8 + 3], 0x02);
	assert_int_equal((unsigned char)b[8 + 3 + 3 + 5], 0x02);
	s = decoded(b, len, err, sizeof(err));
	assert_non_null(s);
	assert_string_equal(s, "[\"caf\xc3\xa9\",\"bad\xff\"]");
	free(s);
	free(b);
	cJSON_Delete(v);
}

static void a_utf8_string_decodes_like_a_byte_string(void **state)
{
	static const unsigned char pdu[] = { 0x00, 0x02, 0, 0, 0, 0, 0x03, 0x05,
					     0x0d, 0x03, 0x02, 'h', 'i' };
	char err[128], *s = decoded(pdu, sizeof(pdu), err, sizeof(err));

	assert_non_null(s);
	assert_string_equal(s, "\"hi\"");
	free(s);
}

static void every_type_survives_a_round_trip(void **state)
{
	const char *json = "{\"a\":[1,-1,127,128,-129,32767,32768,-2147483649,2.5,true,false,"
			   "null],\"s\":\"\",\"o\":{\"x\":{\"y\":[]}}}";
	cJSON *v = cJSON_Parse(json);
	char err[128], *b, *s;
	size_t len;

	assert_non_null(v);
	/* an exact integer beyond a double's 53 bits: nanosecond times, inode numbers */
	cJSON_AddItemToObject(v, "ns", bser_int(1733580000123456789LL));
	for (int version = 1; version <= 2; version++) {
		b = bser_encode(v, version, 0, &len);
		assert_non_null(b);
		s = decoded(b, len, err, sizeof(err));
		assert_non_null(s);
		assert_string_equal(s, "{\"a\":[1,-1,127,128,-129,32767,32768,-2147483649,2.5,true,"
				       "false,null],\"s\":\"\",\"o\":{\"x\":{\"y\":[]}},"
				       "\"ns\":1733580000123456789}");
		free(s);
		free(b);
	}
	cJSON_Delete(v);
}

static void templates_decode_to_objects_and_skip_leaves_a_key_out(void **state)
{
	/* template ["name","size"], 2 objects: {"name":"a","size":1}, {"name":"b"} */
	static const unsigned char pdu[] = {
		0x00, 0x01, 0x03, 31,
		0x0b, 0x00, 0x03, 0x02, 0x02, 0x03, 0x04, 'n', 'a', 'm', 'e',
		0x02, 0x03, 0x04, 's', 'i', 'z', 'e', 0x03, 0x02,
		0x02, 0x03, 0x01, 'a', 0x03, 0x01,
		0x02, 0x03, 0x01, 'b', 0x0c,
	};
	char err[128], *s;

	s = decoded(pdu, sizeof(pdu) - 9, err, sizeof(err));	/* its length says 31 */
	assert_null(s);
	s = decoded(pdu, sizeof(pdu), err, sizeof(err));
	assert_non_null(s);
	assert_string_equal(s, "[{\"name\":\"a\",\"size\":1},{\"name\":\"b\"}]");
	free(s);
}

static void the_length_is_told_from_the_first_bytes(void **state)
{
	static const unsigned char head[] = { 0x00, 0x01, 0x05, 0x10, 0x00, 0x00, 0x00 };
	static const unsigned char v2[] = { 0x00, 0x02, 0, 0, 0, 0, 0x03, 0x07 };
	int version = 0;

	assert_int_equal(bser_pdu_len(head, 1, 1 << 20, &version), 0);
	assert_int_equal(bser_pdu_len(head, 4, 1 << 20, &version), 0);	/* int32 cut short */
	assert_int_equal(bser_pdu_len(head, 7, 1 << 20, &version), 7 + 16);
	assert_int_equal(bser_pdu_len(head, 7, 8, &version), -EBADMSG);	/* past the limit */
	assert_int_equal(bser_pdu_len(v2, 5, 1 << 20, &version), 0);
	assert_int_equal(bser_pdu_len(v2, sizeof(v2), 1 << 20, &version), 8 + 7);
	assert_int_equal(version, 2);
	assert_int_equal(bser_pdu_len("{\"x\"", 4, 1 << 20, &version), -EBADMSG);	/* JSON */
	assert_int_equal(bser_pdu_len("[", 1, 1 << 20, &version), -EBADMSG);
	assert_int_equal(bser_pdu_len("\x00\x07", 2, 1 << 20, &version), -EBADMSG);
}

static void malformed_pdus_are_refused_with_a_reason(void **state)
{
	static const struct {
		const char *bytes;
		size_t len;
		const char *why;
	} bad[] = {
		{ "\x00\x01\x03\x02\x00\x03", 6, "truncated" },			/* array, no count */
		{ "\x00\x01\x03\x01\x0e", 5, "unknown type" },
		{ "\x00\x01\x03\x03\x00\x05\x7f", 7, "truncated" },		/* int32 cut */
		{ "\x00\x01\x03\x03\x00\x03\x7f", 7, "more than the PDU holds" },
		{ "\x00\x01\x03\x05\x02\x03\x02\x61\x00", 9, "NUL" },
		{ "\x00\x01\x03\x02\x08\x08", 6, "left over" },
		{ "\x00\x01\x03\x03\x08", 5, "length" },
		{ "\x00\x01\x03\x04\x01\x03\x01\x02", 8, "truncated" },	/* a key cut short */
		{ "\x00\x01\x03\x05\x01\x03\x01\x08\x08", 9, "a string was expected" },
		{ "\x00\x01\x03\x09\x07\x00\x00\x00\x00\x00\x00\xf0\x7f", 13, "not finite" },
		{ "\x00\x01\x03\x04\x0b\x00\x03\x01", 8, "more than the PDU" },	/* template */
		/* a template with no keys: objects of no bytes, a memory bomb in a few bytes */
		{ "\x00\x01\x03\x06\x0b\x00\x03\x00\x03\x7f", 10, "non-empty key set" },
	};
	char err[128], *s;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		s = decoded(bad[i].bytes, bad[i].len, err, sizeof(err));
		if (s)
			fail_msg("case %zu decoded as %s", i, s);
		if (!strstr(err, bad[i].why))
			fail_msg("case %zu: \"%s\" does not say \"%s\"", i, err, bad[i].why);
	}
}

static void nesting_is_bounded_both_ways(void **state)
{
	unsigned char pdu[5 + 3 * 200];
	cJSON *v = cJSON_CreateArray(), *c = v;
	int16_t body = 3 * 200;
	char err[128], *s;
	size_t len;

	/* 200 arrays, each holding the next: decoding stops at BSER_MAX_DEPTH */
	pdu[0] = 0x00, pdu[1] = 0x01, pdu[2] = 0x04;
	memcpy(pdu + 3, &body, 2);
	for (int i = 0; i < 200; i++) {
		pdu[5 + 3 * i] = 0x00;
		pdu[5 + 3 * i + 1] = 0x03;
		pdu[5 + 3 * i + 2] = i == 199 ? 0 : 1;	/* the last holds nothing */
	}
	s = decoded(pdu, sizeof(pdu), err, sizeof(err));
	assert_null(s);
	assert_non_null(strstr(err, "nested deeper"));
	for (int i = 0; i < 100; i++) {
		cJSON *n = cJSON_CreateArray();

		cJSON_AddItemToArray(c, n);
		c = n;
	}
	assert_null(bser_encode(v, 1, 0, &len));	/* deeper than a PDU may be */
	cJSON_Delete(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(v1_bytes_are_watchmans),
		cmocka_unit_test(v2_carries_capabilities_and_strings_are_bytes),
		cmocka_unit_test(a_utf8_string_decodes_like_a_byte_string),
		cmocka_unit_test(every_type_survives_a_round_trip),
		cmocka_unit_test(templates_decode_to_objects_and_skip_leaves_a_key_out),
		cmocka_unit_test(the_length_is_told_from_the_first_bytes),
		cmocka_unit_test(malformed_pdus_are_refused_with_a_reason),
		cmocka_unit_test(nesting_is_bounded_both_ways),
	};

	return cmocka_run_group_tests_name("bser", tests, NULL, NULL);
}
