/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* decoder.h: validate ring-buffer samples, pair pending changes with their results, decode. */
#ifndef VW_DECODER_H
#define VW_DECODER_H

#include <stddef.h>
#include <stdint.h>

#include "core/record.h"
#include "source/source.h"

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
uint64_t decoder_take_orphans(struct vw_decoder *d, orphan_fn fn, void *ctx);
uint64_t decoder_orphans(const struct vw_decoder *d);	/* how many a take would return */

#endif
