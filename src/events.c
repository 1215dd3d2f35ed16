// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// events.c: map kernel records (project id + relative path) onto every project that holds them.
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "events.h"
#include "ignore.h"
#include "util.h"

/* root + '/' + relative path, both up to VW_PATH_MAX */
#define ABS_MAX (PATH_MAX + VW_PATH_MAX + 2)

/* What each kernel op is called on the stream (renames are worked out per project). */
static const struct {
	const char *event;
	bool dir;
} op_events[] = {
	[VW_OP_MODIFY] = { "modify", false },
	[VW_OP_CREATE] = { "create", false },
	[VW_OP_DELETE] = { "delete", false },
	[VW_OP_TRUNCATE] = { "truncate", false },
	[VW_OP_MKDIR] = { "create", true },
	[VW_OP_RMDIR] = { "delete", true },
};

const char *ftype_name(unsigned int ftype)
{
	switch (ftype) {
	case VW_FT_FILE:
		return "file";
	case VW_FT_DIR:
		return "dir";
	case VW_FT_SYMLINK:
		return "symlink";
	case VW_FT_OTHER:
		return "other";
	default:
		return NULL;
	}
}

/* Build the absolute, normalized path of one side of a record; false when it has none. */
static bool absolute_of(struct vw_projects *t, uint32_t project, const char *rel, size_t len,
			char *buf)
{
	const struct vw_project *p = project ? projects_by_id(t, project) : NULL;
	size_t rl;

	if (!p || !rel)
		return false;
	rl = strlen(p->root);
	memcpy(buf, p->root, rl);
	buf[rl] = '/';
	memcpy(buf + rl + 1, rel, len);
	buf[rl + 1 + len] = 0;
	path_normalize(buf);
	return true;
}

unsigned int ftype_now(const char *abs)
{
	struct stat st;

	if (lstat(abs, &st) < 0)
		return VW_FT_UNKNOWN;
	if (S_ISREG(st.st_mode))
		return VW_FT_FILE;
	if (S_ISDIR(st.st_mode))
		return VW_FT_DIR;
	return S_ISLNK(st.st_mode) ? VW_FT_SYMLINK : VW_FT_OTHER;
}

static const char *below(const char *abs, bool have, const struct vw_project *q)
{
	const char *r = have ? path_below(abs, q->root) : NULL;

	return r && *r ? r : NULL;
}

/* The root directory itself went away or came back: tell the daemon, once per project. */
static int root_itself(const struct vw_project *q, const struct vw_event *ev, const char *nabs,
		       bool have_new, const char *oabs, bool have_old, out_fn fn, void *ctx)
{
	struct vw_out o = { .project = q, .ev = ev, .path = "", .type = "dir" };

	if ((ev->op == VW_OP_RMDIR && have_new && strcmp(nabs, q->root) == 0) ||
	    (ev->op == VW_OP_RENAME && have_old && strcmp(oabs, q->root) == 0))
		o.event = "root_gone";
	else if ((ev->op == VW_OP_MKDIR || ev->op == VW_OP_RENAME) && have_new &&
		 strcmp(nabs, q->root) == 0)
		o.event = "root_back";
	if (!o.event)
		return 0;
	fn(ctx, &o);
	return 1;
}

/* Drop a side that the project ignores; a new ignored directory is reported as such. */
static const char *unless_ignored(const struct vw_project *q, const char *rel, bool is_dir,
				  bool created, out_fn fn, void *ctx, const struct vw_event *ev)
{
	if (!rel || !q->ignore || !ignore_match(q->ignore, rel, is_dir))
		return rel;
	if (created && is_dir) {
		struct vw_out o = { .project = q, .event = "create", .type = "dir", .path = rel,
				    .ev = ev, .ignored = true };

		fn(ctx, &o);
	}
	return NULL;
}

int events_route(struct vw_projects *t, const struct vw_event *ev, out_fn fn, void *ctx)
{
	static char nabs[ABS_MAX], oabs[ABS_MAX];
	unsigned int ftype = ev->ftype;
	bool have_new, have_old;
	int n = 0;

	have_new = absolute_of(t, ev->project, ev->path, ev->path_len, nabs);
	have_old = ev->op == VW_OP_RENAME &&
		   absolute_of(t, ev->old_project, ev->old_path, ev->old_path_len, oabs);
	/* A rename seen by the tracepoint set carries names only: the new name tells the type. */
	if (ftype == VW_FT_UNKNOWN && have_new && ev->op == VW_OP_RENAME)
		ftype = ftype_now(nabs);
	for (size_t i = 0; i < t->n; i++) {
		if (t->v[i].gone)
			continue;
		if (root_itself(&t->v[i], ev, nabs, have_new, oabs, have_old, fn, ctx))
			continue;
		const struct vw_project *q = &t->v[i];
		bool is_dir = ftype == VW_FT_DIR || ev->op == VW_OP_MKDIR || ev->op == VW_OP_RMDIR;
		bool made = ev->op == VW_OP_MKDIR || ev->op == VW_OP_RENAME;
		const char *nrel = unless_ignored(q, below(nabs, have_new, q), is_dir, made, fn, ctx, ev);
		const char *orel = unless_ignored(q, below(oabs, have_old, q), is_dir, false, fn, ctx, ev);
		struct vw_out o = { .project = q, .ev = ev, .type = ftype_name(ftype) };

		o.truncated = (ev->flags & (VW_EVF_TRUNCATED | VW_EVF_OLD_TRUNCATED)) != 0;
		switch (ev->op) {
		case VW_OP_RENAME:
			if (nrel && orel) {
				o.event = "rename";
				o.path = nrel;
				o.old_path = orel;
			} else if (nrel) {
				o.event = "create";	/* moved in from outside this project */
				o.path = nrel;
			} else if (orel) {
				o.event = "delete";	/* moved out */
				o.path = orel;
			}
			break;
		default:
			if (ev->op < sizeof(op_events) / sizeof(op_events[0]) && op_events[ev->op].event) {
				o.event = op_events[ev->op].event;
				if (op_events[ev->op].dir)
					o.type = "dir";
				o.path = nrel;
			}
			break;
		}
		if (!o.event || !o.path)
			continue;
		fn(ctx, &o);
		n++;
	}
	return n;
}
