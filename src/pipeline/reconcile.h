/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* reconcile.h: what a settled batch reports, from its dirty paths, the file system and the model. */
#ifndef VW_RECONCILE_H
#define VW_RECONCILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "pipeline/debounce.h"
#include "store/state.h"

/*
 * Report the batch @v (@n dirty paths of @p) as settled lines through @fn,
 * each with batch id @batch. The model @st holds the tree as the stream has
 * described it so far; each path is compared with what lstat() finds now:
 *
 *  - gone: delete; new: create (a directory with one more create per entry
 *    below it, "source":"scan", so a moved-in tree is described whole);
 *  - a new name holding the inode a gone name had: rename, replacing the
 *    target, when neither side sits below another changed name (otherwise
 *    the delete and the create, which always replay correctly);
 *  - a name whose inode changed (atomic save, swap, exchange): modify, or
 *    delete then create when the type changed or it is a directory;
 *  - the same inode: modify or truncate after writes, attrib after metadata
 *    changes, nothing otherwise.
 *
 * Lines come in replay order: renames, deletes, creates (parents first),
 * then modifies and attribs. @fn is expected to update @st with each line
 * (the daemon's on_settled does). @unchanged may drop a modify whose content
 * is the same (NULL: never). Returns the lines emitted; with @may_defer,
 * VW_RECONCILE_AGAIN (nothing emitted, nothing updated) when a second look at
 * the paths, after the lines are decided, finds one changed since the first.
 */
size_t reconcile_batch(struct vw_state *st, const struct vw_project *p, const struct vw_dirty *v,
		       size_t n, uint64_t batch, bool may_defer, settled_fn fn, void *fctx,
		       unchanged_fn unchanged, void *uctx);

/*
 * Call @fn for every entry below directory @rel of @p's root (parents first,
 * paths relative to the root, @p's ignore rules applied), through directory
 * descriptors, so a directory renamed while it is walked is still walked
 * whole, under the name it had when the walk began. @fn returns 0, or a
 * negative errno to stop. Returns 0 or that errno; *vanished is set when an
 * entry or directory disappeared during the walk (a change is on its way).
 */
typedef int (*walk_fn)(void *ctx, const char *rel, const struct stat *st);
int walk_below(const struct vw_project *p, const char *rel, walk_fn fn, void *ctx, bool *vanished);

#endif
