// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// bser.c: Watchman's binary serialization (BSER v1 and v2) to and from cJSON values.
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "serve/bser.h"

enum {
	T_ARRAY = 0x00,
	T_OBJECT = 0x01,
	T_BYTES = 0x02,		/* a string of bytes (v1's only string) */
	T_INT8 = 0x03,
	T_INT16 = 0x04,
	T_INT32 = 0x05,
	T_INT64 = 0x06,
	T_REAL = 0x07,
	T_TRUE = 0x08,
	T_FALSE = 0x09,
	T_NULL = 0x0a,
	T_TEMPLATE = 0x0b,	/* an array of objects: the keys once, then the values */
	T_SKIP = 0x0c,		/* in a template: this object has no such key */
	T_UTF8 = 0x0d,		/* v2: a string known to be UTF-8 */
};

/* --- encoding ------------------------------------------------------------------------------ */

struct out {
	char *buf;
	size_t len, cap;
	bool failed;
	int version;
};

static void put(struct out *o, const void *p, size_t n)
{
	if (o->failed)
		return;
	if (o->len + n > o->cap) {
		size_t cap = o->cap ? o->cap : 256;
		char *v;

		while (cap < o->len + n)
			cap *= 2;
		if (!(v = realloc(o->buf, cap))) {
			o->failed = true;
			return;
		}
		o->buf = v;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, p, n);
	o->len += n;
}

static void put_byte(struct out *o, uint8_t b)
{
	put(o, &b, 1);
}

/* An integer in the smallest of the four widths that holds it. */
static void put_int(struct out *o, int64_t v)
{
	if (v >= INT8_MIN && v <= INT8_MAX) {
		int8_t x = (int8_t)v;

		put_byte(o, T_INT8);
		put(o, &x, 1);
	} else if (v >= INT16_MIN && v <= INT16_MAX) {
		int16_t x = (int16_t)v;

		put_byte(o, T_INT16);
		put(o, &x, 2);
	} else if (v >= INT32_MIN && v <= INT32_MAX) {
		int32_t x = (int32_t)v;

		put_byte(o, T_INT32);
		put(o, &x, 4);
	} else {
		put_byte(o, T_INT64);
		put(o, &v, 8);
	}
}

/*
 * Every string a byte string, in v2 too, as Watchman writes file names, keys
 * and messages: the one string every client decodes (fb-watchman knows no
 * 0x0d, and pywatchman gives a 0x0d as text where it was asked for bytes).
 */
static void put_string(struct out *o, const char *s)
{
	size_t n = strlen(s);

	put_byte(o, T_BYTES);
	put_int(o, (int64_t)n);
	put(o, s, n);
}

/* Is @text (a cJSON_Raw) a decimal integer that fits an int64? */
static bool raw_int(const char *text, int64_t *v)
{
	char *end;

	if (!text || !*text)
		return false;
	errno = 0;
	*v = strtoll(text, &end, 10);
	return !*end && !errno;
}

static void put_value(struct out *o, const cJSON *v, int depth)
{
	const cJSON *c;
	int64_t i;

	if (depth > BSER_MAX_DEPTH) {
		o->failed = true;
		return;
	}
	if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
		put_byte(o, cJSON_IsArray(v) ? T_ARRAY : T_OBJECT);
		put_int(o, cJSON_GetArraySize(v));
		cJSON_ArrayForEach(c, v) {
			if (cJSON_IsObject(v))
				put_string(o, c->string ? c->string : "");
			put_value(o, c, depth + 1);
		}
	} else if (cJSON_IsString(v)) {
		put_string(o, v->valuestring);
	} else if (cJSON_IsRaw(v) && raw_int(v->valuestring, &i)) {
		put_int(o, i);
	} else if (cJSON_IsNumber(v)) {
		double d = v->valuedouble;

		if (d == floor(d) && d >= -9007199254740992.0 && d <= 9007199254740992.0 &&
		    !(d == 0 && signbit(d))) {	/* -0.0 stays a real */
			put_int(o, (int64_t)d);
		} else {
			put_byte(o, T_REAL);
			put(o, &d, 8);
		}
	} else if (cJSON_IsTrue(v)) {
		put_byte(o, T_TRUE);
	} else if (cJSON_IsFalse(v)) {
		put_byte(o, T_FALSE);
	} else {
		put_byte(o, T_NULL);	/* null, and what BSER has no word for */
	}
}

char *bser_encode(const cJSON *v, int version, uint32_t caps, size_t *len)
{
	struct out body = { .version = version }, pdu = { .version = version };
	static const char magic1[2] = { 0, 1 }, magic2[2] = { 0, 2 };

	put_value(&body, v, 0);
	if (body.failed) {
		free(body.buf);
		return NULL;
	}
	put(&pdu, version >= 2 ? magic2 : magic1, 2);
	if (version >= 2)
		put(&pdu, &caps, 4);
	put_int(&pdu, (int64_t)body.len);
	put(&pdu, body.buf, body.len);
	free(body.buf);
	if (pdu.failed) {
		free(pdu.buf);
		return NULL;
	}
	*len = pdu.len;
	return pdu.buf;
}

cJSON *bser_int(int64_t v)
{
	char text[24];

	if (v >= -9007199254740992LL && v <= 9007199254740992LL)
		return cJSON_CreateNumber((double)v);
	snprintf(text, sizeof(text), "%" PRId64, v);
	return cJSON_CreateRaw(text);
}

/* --- decoding ------------------------------------------------------------------------------ */

struct in {
	const uint8_t *p, *end;
	char *err;
	size_t errlen;
	size_t nodes, max_nodes;	/* values made, and how many the PDU's size allows */
};

static bool fail(struct in *in, const char *fmt, ...) VW_PRINTF(2, 3);
static bool fail(struct in *in, const char *fmt, ...)
{
	va_list ap;

	if (in->err[0])
		return false;	/* the first reason is the one told */
	va_start(ap, fmt);
	vsnprintf(in->err, in->errlen, fmt, ap);
	va_end(ap);
	return false;
}

/* One more value: a PDU of n bytes makes at most 2n (no value takes less than half a byte). */
static bool node(struct in *in)
{
	if (++in->nodes <= in->max_nodes)
		return true;
	return fail(in, "more values than a PDU of its size holds");
}

/* An integer value (the tag and its bytes). */
static bool get_int(struct in *in, int64_t *v)
{
	static const size_t width[] = { [T_INT8] = 1, [T_INT16] = 2, [T_INT32] = 4, [T_INT64] = 8 };
	uint8_t tag;
	size_t w;

	if (in->p >= in->end)
		return fail(in, "truncated integer");
	tag = *in->p++;
	if (tag < T_INT8 || tag > T_INT64)
		return fail(in, "an integer was expected, not type 0x%02x", tag);
	w = width[tag];
	if ((size_t)(in->end - in->p) < w)
		return fail(in, "truncated integer");
	switch (tag) {
	case T_INT8: { int8_t x; memcpy(&x, in->p, 1); *v = x; break; }
	case T_INT16: { int16_t x; memcpy(&x, in->p, 2); *v = x; break; }
	case T_INT32: { int32_t x; memcpy(&x, in->p, 4); *v = x; break; }
	default: { int64_t x; memcpy(&x, in->p, 8); *v = x; break; }
	}
	in->p += w;
	return true;
}

/*
 * A count (of items, of bytes) that the rest of the PDU can hold: every item
 * takes at least one byte, so no count makes a huge allocation.
 */
static bool get_count(struct in *in, size_t *n, const char *what)
{
	int64_t v;

	if (!get_int(in, &v))
		return false;
	if (v < 0 || (uint64_t)v > (uint64_t)(in->end - in->p))
		return fail(in, "%s of %" PRId64 " is more than the PDU holds", what, v);
	*n = (size_t)v;
	return true;
}

/* A string (either kind) as a NUL-terminated copy; a NUL inside is refused. */
static char *get_string(struct in *in)
{
	size_t n;
	uint8_t tag;
	char *s;

	if (in->p >= in->end) {
		fail(in, "truncated string");
		return NULL;
	}
	tag = *in->p++;
	if (tag != T_BYTES && tag != T_UTF8) {
		fail(in, "a string was expected, not type 0x%02x", tag);
		return NULL;
	}
	if (!get_count(in, &n, "a string"))
		return NULL;
	if (memchr(in->p, 0, n)) {
		fail(in, "a string holds a NUL byte");
		return NULL;
	}
	if (!(s = malloc(n + 1))) {
		fail(in, "out of memory");
		return NULL;
	}
	memcpy(s, in->p, n);
	s[n] = 0;
	in->p += n;
	return s;
}

static cJSON *get_value(struct in *in, int depth);

static cJSON *new_string(struct in *in, char *s)
{
	cJSON *v = s ? cJSON_CreateString(s) : NULL;

	if (s && !v)
		fail(in, "out of memory");
	free(s);
	return v;
}

/* Add @item to @parent (under @key for an object); frees both on failure. */
static bool attach(struct in *in, cJSON *parent, const char *key, cJSON *item)
{
	if (!item)
		return false;
	if (key ? !cJSON_AddItemToObject(parent, key, item) : !cJSON_AddItemToArray(parent, item)) {
		cJSON_Delete(item);
		return fail(in, "out of memory");
	}
	return true;
}

static cJSON *get_template(struct in *in, int depth)
{
	cJSON *keys, *arr = NULL;
	size_t nkeys = 0, n;
	const cJSON *k;

	keys = get_value(in, depth + 1);
	if (!keys)
		return NULL;
	if (!cJSON_IsArray(keys)) {
		fail(in, "a template's keys are not an array");
		goto out;
	}
	cJSON_ArrayForEach(k, keys) {
		if (!cJSON_IsString(k)) {
			fail(in, "a template's key is not a string");
			goto out;
		}
		nkeys++;
	}
	if (!nkeys) {	/* its objects would take no bytes at all: as Watchman, refused */
		fail(in, "templates require a non-empty key set");
		goto out;
	}
	if (!get_count(in, &n, "a template's object count"))
		goto out;
	if (n > (size_t)(in->end - in->p) / nkeys) {
		fail(in, "a template's objects are more than the PDU holds");
		goto out;
	}
	if (!(arr = cJSON_CreateArray())) {
		fail(in, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		cJSON *obj = node(in) ? cJSON_CreateObject() : NULL;

		if (!attach(in, arr, NULL, obj))
			goto bad;
		cJSON_ArrayForEach(k, keys) {
			if (in->p < in->end && *in->p == T_SKIP) {
				in->p++;	/* this object has no such key */
				continue;
			}
			if (!attach(in, obj, k->valuestring, get_value(in, depth + 2)))
				goto bad;
		}
	}
	goto out;
bad:
	cJSON_Delete(arr);
	arr = NULL;
out:
	cJSON_Delete(keys);
	return arr;
}

static cJSON *get_value(struct in *in, int depth)
{
	cJSON *v = NULL;
	size_t n;
	int64_t i;
	double d;
	char text[24];

	if (depth > BSER_MAX_DEPTH) {
		fail(in, "nested deeper than %d", BSER_MAX_DEPTH);
		return NULL;
	}
	if (in->p >= in->end) {
		fail(in, "truncated value");
		return NULL;
	}
	if (!node(in))
		return NULL;
	switch (*in->p) {
	case T_ARRAY:
	case T_OBJECT: {
		bool obj = *in->p++ == T_OBJECT;

		if (!get_count(in, &n, obj ? "an object" : "an array"))
			return NULL;
		if (!(v = obj ? cJSON_CreateObject() : cJSON_CreateArray())) {
			fail(in, "out of memory");
			return NULL;
		}
		for (size_t k = 0; k < n; k++) {
			char *key = obj ? get_string(in) : NULL;
			bool ok = (!obj || key) && attach(in, v, key, get_value(in, depth + 1));

			free(key);
			if (!ok) {
				cJSON_Delete(v);
				return NULL;
			}
		}
		return v;
	}
	case T_BYTES:
	case T_UTF8:
		return new_string(in, get_string(in));
	case T_INT8:
	case T_INT16:
	case T_INT32:
	case T_INT64:
		if (!get_int(in, &i))
			return NULL;
		v = bser_int(i);
		break;
	case T_REAL:
		in->p++;
		if (in->end - in->p < 8) {
			fail(in, "truncated real");
			return NULL;
		}
		memcpy(&d, in->p, 8);
		in->p += 8;
		if (!isfinite(d)) {	/* JSON has no word for it */
			fail(in, "a real that is not finite");
			return NULL;
		}
		v = cJSON_CreateNumber(d);
		break;
	case T_TRUE:
	case T_FALSE:
		v = cJSON_CreateBool(*in->p++ == T_TRUE);
		break;
	case T_NULL:
		in->p++;
		v = cJSON_CreateNull();
		break;
	case T_TEMPLATE:
		in->p++;
		return get_template(in, depth);
	default:
		snprintf(text, sizeof(text), "0x%02x", *in->p);
		fail(in, "unknown type %s", text);
		return NULL;
	}
	if (!v)
		fail(in, "out of memory");
	return v;
}

ssize_t bser_pdu_len(const void *buf, size_t n, size_t max, int *version)
{
	const uint8_t *b = buf;
	struct in in;
	char err[64] = "";
	size_t head;
	int64_t len;

	if (n < 2)
		return n && b[0] != 0 ? -EBADMSG : 0;
	if (b[0] != 0 || (b[1] != 1 && b[1] != 2))
		return -EBADMSG;
	*version = b[1];
	head = b[1] == 2 ? 6 : 2;	/* v2: the capability word follows the magic */
	if (n < head + 1)
		return 0;
	in = (struct in){ .p = b + head, .end = b + n, .err = err, .errlen = sizeof(err) };
	if (b[head] < T_INT8 || b[head] > T_INT64)
		return -EBADMSG;
	if (!get_int(&in, &len))
		return 0;	/* its length's bytes are still to come */
	if (len < 0 || (uint64_t)len > max)
		return -EBADMSG;
	return (ssize_t)((size_t)(in.p - b) + (size_t)len);
}

cJSON *bser_decode(const void *buf, size_t n, char *err, size_t errlen)
{
	const uint8_t *b = buf;
	struct in in = { .err = err, .errlen = errlen };
	size_t head;
	int64_t len;
	cJSON *v;

	err[0] = 0;
	if (n < 3 || b[0] != 0 || (b[1] != 1 && b[1] != 2)) {
		snprintf(err, errlen, "not a BSER PDU");
		return NULL;
	}
	head = b[1] == 2 ? 6 : 2;
	in.p = b + head;
	in.end = b + n;
	in.max_nodes = 2 * n + 16;
	if (n <= head || !get_int(&in, &len)) {
		fail(&in, "truncated PDU header");
		return NULL;
	}
	if (len < 0 || (uint64_t)len != (uint64_t)(in.end - in.p)) {
		fail(&in, "the PDU's length (%" PRId64 ") is not what follows it", len);
		return NULL;
	}
	v = get_value(&in, 0);
	if (v && in.p != in.end) {
		cJSON_Delete(v);
		fail(&in, "bytes left over after the value");
		return NULL;
	}
	return v;
}
