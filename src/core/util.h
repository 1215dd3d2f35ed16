/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* util.h: small helpers: number parsing, UTF-8 checks, base64, lexical paths, hashing, private files. */
#ifndef VW_UTIL_H
#define VW_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* Parse a whole decimal string into [min, max]. Returns 0 or -EINVAL / -ERANGE. */
int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Text for a negative errno or libbpf error code; static buffer. */
const char *errstr(int err);

bool utf8_valid(const char *s, size_t len);

/*
 * Copy @len bytes of @s into a new NUL-terminated string where every invalid
 * UTF-8 sequence becomes U+FFFD. Returns NULL with errno set on ENOMEM.
 */
char *utf8_lossy(const char *s, size_t len);

/* Standard base64 (RFC 4648) of @len bytes; returns a new string or NULL. */
char *base64_encode(const unsigned char *s, size_t len);
/* Its inverse: a new NUL-terminated buffer, its length in *@len (may be NULL); NULL if malformed. */
char *base64_decode(const char *s, size_t *len);

/*
 * Lexically normalize an absolute path in place: collapse "//", drop ".",
 * apply ".." (never above "/"), drop a trailing '/'. Returns the new length.
 */
size_t path_normalize(char *path);

/*
 * If @path lies at or below the directory @root (both normalized, absolute),
 * return the part below it ("" for the root itself), else NULL.
 */
const char *path_below(const char *path, const char *root);

/* The kernel's dev_t (MKDEV: major << 20 | minor) of a userspace st_dev. */
uint32_t kernel_dev(dev_t dev);

/* FNV-1a step and the component hash used by the chains map (see vw_events.h). */
uint64_t vw_hash_component(uint64_t h, const char *comp, size_t len, bool first);

/*
 * Key of (project, relative path) in the path-hash tables (index, fingerprints):
 * never 0 or UINT64_MAX, which those tables keep for empty and removed slots.
 */
uint64_t vw_path_key(uint32_t project, const char *path);

/*
 * fopen() for writing a file of the daemon's own (state, dead letters): mode
 * 0600 whatever the umask, never through a symlink; @append, else truncated.
 */
FILE *fopen_private(const char *path, bool append);

/* CLOCK_BOOTTIME nanoseconds as a wall-clock ISO 8601 UTC string with microseconds. */
void format_boot_ns(uint64_t boot_ns, char *buf, size_t size);
uint64_t now_ns(int clock);

/* mkdir -p @dir: 0755 for the parents it makes, 0700 for @dir. 0 or -errno. */
int make_dir_private(const char *dir);

/* Read a whole file into a new buffer (*@len bytes); NULL with errno set on failure. */
unsigned char *read_whole_file(const char *path, size_t *len);

#endif
