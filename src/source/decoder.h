/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* ringbuf.h: validate ring-buffer samples, pair pending changes with their results, decode. */
#ifndef VW_RINGBUF_H
#define VW_RINGBUF_H

#include <stddef.h>
#include <stdint.h>

#include <linux/types.h>
#include "vw_events.h"

/*
 * Userspace-only bits of vw_event.flags (the kernel's VW_EVF_* use the low
 * byte): attribution a backend could not fill, left out of the JSON line.
 */
#define VW_EVU_NO_TID		0x1000
#define VW_EVU_NO_UID		0x2000
#define VW_EVU_NO_COMM		0x4000
#define VW_EVU_NO_CGROUP	0x8000
#define VW_EVU_NO_PID		0x0800	/* a rescan: no writer is known */

/* A decoded change; the strings point into the sample and live only during the callback. */
struct vw_event {
	uint64_t ts_ns;		/* CLOCK_BOOTTIME */
	uint64_t cgroup_id;
	uint64_t ino;
	uint64_t anchor_ino, old_anchor_ino;	/* cut paths: where the kept names start */
	uint32_t dev, pid, tgid, uid;
	uint32_t pgid;		/* 0 when the backend does not know it */
	uint32_t project, old_project;
	uint16_t op, ftype, flags;
	char comm[VW_COMM_LEN + 1];
	const char *path;	/* NULL when project is NONE */
	size_t path_len;	/* bytes, no NUL */
	const char *old_path;	/* renames: NULL when old_project is NONE */
	size_t old_path_len;
};

typedef void (*event_fn)(void *ctx, const struct vw_event *ev);

struct vw_decoder;

struct vw_decoder *decoder_new(event_fn fn, void *ctx);
void decoder_free(struct vw_decoder *d);

/*
 * ring_buffer_sample_fn: always returns 0 (a negative return would abort the
 * drain); malformed samples are counted and skipped.
 */
int decoder_sample(void *decoder, void *data, size_t size);

uint64_t decoder_bad_samples(const struct vw_decoder *d);
/* Records read so far, good or bad: the kernel's count of records sent, once caught up. */
uint64_t decoder_samples(const struct vw_decoder *d);

/*
 * Pending changes whose result never came since the last call (their thread
 * began another change, or too many waited): whether they happened is not
 * known. Calls @fn once per project they were in (VW_PROJECT_NONE: too many
 * to name, every project) and returns how many changes.
 */
typedef void (*orphan_fn)(void *ctx, uint32_t project);
uint64_t decoder_take_orphans(struct vw_decoder *d, orphan_fn fn, void *ctx);
uint64_t decoder_orphans(const struct vw_decoder *d);	/* how many a take would return */

#endif
