/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * netchange.h: the net change of each path named by a run of change-log
 * lines (what a cursor's answer says): a path created and deleted since is
 * nothing, written twice is one modify, and a directory gone takes what was
 * below it along. Time linear in the lines read and the paths answered.
 */
#ifndef VW_NETCHANGE_H
#define VW_NETCHANGE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/record.h"
#include "store/project.h"
#include "store/state.h"

struct vw_net;

struct vw_net *net_new(void);
void net_free(struct vw_net *s);	/* NULL is a no-op */

/* One settled line, in log order (a changes_since() callback: @ctx is the vw_net). Returns 0. */
int net_line(void *ctx, const char *line, size_t len);

/* @was_dir: a directory, or something of unknown type, went from @path since the cursor. */
typedef void (*net_fn)(void *ctx, enum vw_kind kind, const char *path, const char *type,
		       bool was_dir);
/*
 * Each path's net change, in the order first named: create, delete, modify
 * or attrib (nothing for a path that came and went), with its type (a
 * delete's: what was there, when its line said). What a directory renamed
 * in holds is listed too, from @st's picture of @p (may be NULL: not listed).
 */
void net_each(struct vw_net *s, struct vw_state *st, const struct vw_project *p, net_fn fn,
	      void *ctx);

/*
 * Was a directory renamed away from a name since the cursor? Its delete is
 * one line: the names that were below it are not listed one by one (what a
 * client that keeps a list of files, as Watchman's do, needs told).
 */
bool net_dirs_moved(const struct vw_net *s);

#endif
