/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* events.h: turn a decoded kernel change into user-visible changes, one per project it touches. */
#ifndef VW_EVENTS_ROUTE_H
#define VW_EVENTS_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "store/project.h"
#include "source/decoder.h"

/* One change as a user of one project sees it; borrowed pointers, valid during the callback. */
struct vw_out {
	const struct vw_project *project;
	const char *event;	/* "create" "modify" "delete" "truncate" "rename" "attrib";
				 * "root_gone" / "root_back": the root directory itself */
	const char *type;	/* "file" "dir" "symlink" "other", or NULL when unknown */
	const char *path;	/* relative to the project root, NUL-terminated */
	const char *old_path;	/* renames only */
	bool truncated;		/* the kernel had to cut the path */
	bool exchange;		/* renames: RENAME_EXCHANGE, both names swapped contents */
	bool type_late;		/* type read from the name after the fact: a later change may show */
	const char *source;	/* "kernel" (NULL), "fanotify", or "rescan" (a crawl found it) */
	const char *link_from;	/* a hard link's create: the name it was made from (this project) */
	bool ignored;		/* a directory created under an ignore rule: not a change to report */
	const struct vw_event *ev;	/* attribution */
};

typedef void (*out_fn)(void *ctx, const struct vw_out *o);

/*
 * Deliver @ev to every project whose root holds the changed path (nested
 * roots each get it), unless that project's ignore rules match it. A rename
 * seen from a project that holds only one side (or one side not ignored)
 * becomes a create or a delete. A directory created under an ignore rule is
 * passed with o.ignored set, so that it can be excluded in the kernel.
 * Returns how many changes were delivered (ignored ones not counted).
 */
int events_route(struct vw_projects *t, const struct vw_event *ev, out_fn fn, void *ctx);

const char *ftype_name(unsigned int ftype);

/* enum vw_ftype of an lstat() mode. */
unsigned int ftype_of_mode(unsigned int mode);

/* Attribution of a change no process is known for (rescans, a root described anew). */
extern const struct vw_event vw_no_writer;

struct vw_project;
/*
 * enum vw_ftype of what sits at @abs now, for changes the kernel side could
 * not type: looked at below @p's pinned root (VW_FT_UNKNOWN when @abs is not
 * below it).
 */
unsigned int ftype_now(const struct vw_project *p, const char *abs);
/*
 * The same for a path the fanotify backend read from the kernel (absolute:
 * reached without symlinks, never into a user's FUSE mount).
 */
unsigned int ftype_at(const char *abs);

#endif
