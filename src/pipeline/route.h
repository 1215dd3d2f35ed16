/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* route.h: turn a decoded kernel change into user-visible changes, one per project it touches. */
#ifndef VW_ROUTE_H
#define VW_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "store/project.h"
#include "core/record.h"

/*
 * Deliver @ev to every project whose root holds the changed path (nested
 * roots each get it), unless that project's ignore rules match it. A rename
 * seen from a project that holds only one side (or one side not ignored)
 * becomes a create or a delete. A directory created under an ignore rule is
 * passed with o.ignored set, so that it can be excluded in the kernel.
 * Returns how many changes were delivered (ignored ones not counted).
 */
int route_event(struct vw_projects *t, const struct vw_event *ev, out_fn fn, void *ctx);


#endif
