/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* fanotify.h: the backend without BPF: filesystem-wide fanotify marks, prefix filter in userspace. */
#ifndef VW_FANOTIFY_H
#define VW_FANOTIFY_H

#include <stddef.h>
#include <stdint.h>

#include "store/project.h"
#include "core/record.h"

struct vw_fan;

/*
 * Mark every filesystem holding a project (roots and mounts below them) with
 * FAN_MARK_FILESYSTEM. The table is borrowed and must outlive the backend.
 * Returns NULL with errno set and a message in @err.
 */
struct vw_fan *fan_new(const struct vw_projects *t, char *err, size_t errlen);
void fan_free(struct vw_fan *f);	/* NULL is a no-op */
/* Mark the filesystems of a project added at run time. Returns 0 or -errno with @err. */
int fan_add_project(struct vw_fan *f, const struct vw_project *p, char *err, size_t errlen);
int fan_fd(const struct vw_fan *f);
/*
 * Read events from @fd (non-blocking; the descriptor is owned from now on)
 * instead of the fanotify group: the fuzzing target feeds recorded events
 * through a pipe.
 */
void fan_use_fd(struct vw_fan *f, int fd);

/*
 * Read what is queued and call @fn for each change under a project (strings
 * valid during the call). Returns 0 or -errno.
 */
int fan_read(struct vw_fan *f, event_fn fn, void *ctx);

/* FAN_Q_OVERFLOW events seen so far, and changes whose directory could no longer be resolved. */
uint64_t fan_overflows(const struct vw_fan *f);
uint64_t fan_unresolved(const struct vw_fan *f);

/* 0 when this kernel can run the backend on @dir's filesystem, else -errno with the reason in @why. */
int fan_probe(const char *dir, char *why, size_t len);

#endif
