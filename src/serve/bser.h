/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * bser.h: Watchman's binary serialization, BSER v1 and v2, to and from cJSON
 * values: what Watchman's clients (pywatchman, fb-watchman, Rust, Go) speak on
 * its socket. A PDU is a magic (00 01, or 00 02 and a 32-bit capability word),
 * an encoded integer length, then one value. Integers are little-endian, as on
 * every host vfswatch runs on (Watchman writes its host's order).
 *
 * An integer beyond a double's 53 bits travels in cJSON as a cJSON_Raw item
 * holding its decimal digits (bser_int()): printed as JSON it is exact, and
 * encoded as BSER it is an int64.
 */
#ifndef VW_BSER_H
#define VW_BSER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#define BSER_MAX_DEPTH 64	/* nesting a decoded PDU may have */

/* An exact 64-bit integer as a cJSON item (a number when a double holds it exactly). */
cJSON *bser_int(int64_t v);

/*
 * @v as one PDU of @version (1 or 2; v2 carries @caps). Returns a malloc'd
 * buffer of *@len bytes, or NULL: out of memory, or a value BSER cannot hold
 * (nesting deeper than BSER_MAX_DEPTH).
 */
char *bser_encode(const cJSON *v, int version, uint32_t caps, size_t *len);

/*
 * The length of the PDU that starts @buf (@n bytes so far): > 0 its whole
 * length (header included), 0 when more bytes are needed to tell, -EBADMSG
 * when it is not a BSER PDU (or a length no PDU may have, above @max).
 * *@version is set to 1 or 2 once known.
 */
ssize_t bser_pdu_len(const void *buf, size_t n, size_t max, int *version);

/*
 * The value of the complete PDU @buf (@n bytes, as bser_pdu_len() measured).
 * NULL with the reason in @err when it is malformed: a truncated value, an
 * unknown type, a string holding a NUL byte, nesting past BSER_MAX_DEPTH,
 * bytes left over.
 */
cJSON *bser_decode(const void *buf, size_t n, char *err, size_t errlen);

#endif
