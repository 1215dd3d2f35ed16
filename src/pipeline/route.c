// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// route.c: map kernel records (project id + relative path) onto every project that holds them.
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pipeline/route.h"
#include "core/ignore.h"
#include "core/util.h"

/* root + '/' + relative path, both up to VW_PATH_MAX */
#define ABS_MAX (PATH_MAX + VW_PATH_MAX + 2)

/* What each kernel op is called on the stream (renames are worked out per project). */
static const struct {
	enum vw_kind kind;
	bool dir;
} op_events[] = {
	[VW_OP_MODIFY] = { VW_KIND_MODIFY, false },
	[VW_OP_CREATE] = { VW_KIND_CREATE, false },
	[VW_OP_DELETE] = { VW_KIND_DELETE, false },
	[VW_OP_TRUNCATE] = { VW_KIND_TRUNCATE, false },
	[VW_OP_MKDIR] = { VW_KIND_CREATE, true },
	[VW_OP_RMDIR] = { VW_KIND_DELETE, true },
	[VW_OP_ATTRIB] = { VW_KIND_ATTRIB, false },
};

#define ANCHOR_CACHE 64		/* deep directories found by identity, remembered */
#define ANCHOR_DIRS_MAX 1000000	/* directories searched for one anchor, at most */

static struct {
	uint32_t project;	/* id of the project it is below */
	uint64_t ino;
	char *rel;	/* path of the directory below the root */
} anchors[ANCHOR_CACHE];

static bool anchor_ok(const struct vw_project *p, const char *rel, uint64_t ino)
{
	struct stat st;

	return project_lstat(p, rel, &st) == 0 && S_ISDIR(st.st_mode) && st.st_ino == ino;
}

/*
 * The directory with inode @ino below @p's root, found by a depth-first
 * search that reads directory entries only (d_ino), below the pinned root
 * and never through a symlink or into a user's FUSE mount; its path below the
 * root into @out (PATH_MAX). Paths cut by the kernel's 64-level walk are rare,
 * and every file of one deep directory shares its anchor, so the answer is
 * cached and checked on use.
 */
static bool anchor_find(const struct vw_project *p, uint64_t ino, char *out)
{
	size_t slot = ino % ANCHOR_CACHE, nstack = 0, searched = 0;
	char **stack = NULL;
	bool found = false;

	if (anchors[slot].rel && anchors[slot].ino == ino && anchors[slot].project == p->id &&
	    anchor_ok(p, anchors[slot].rel, ino)) {
		snprintf(out, PATH_MAX, "%s", anchors[slot].rel);
		return true;
	}
	stack = malloc(sizeof(*stack));
	if (!stack || !(stack[0] = strdup(""))) {
		free(stack);
		return false;
	}
	nstack = 1;
	while (nstack && !found && searched++ < ANCHOR_DIRS_MAX) {
		char *dir = stack[--nstack];
		int fd = project_open(p, dir, O_RDONLY | O_DIRECTORY);
		DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
		struct dirent *de;

		if (fd >= 0 && !d)
			close(fd);
		while (d && !found && (de = readdir(d))) {
			char child[PATH_MAX], **ns;

			if (de->d_type != DT_DIR || !strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			if ((size_t)snprintf(child, sizeof(child), "%s%s%s", dir, *dir ? "/" : "",
					     de->d_name) >= sizeof(child))
				continue;
			if (de->d_ino == ino && anchor_ok(p, child, ino)) {
				snprintf(out, PATH_MAX, "%s", child);
				found = true;
				break;
			}
			ns = reallocarray(stack, nstack + 1, sizeof(*stack));
			if (!ns)
				break;
			stack = ns;
			if ((stack[nstack] = strdup(child)))
				nstack++;
		}
		if (d)
			closedir(d);
		free(dir);
	}
	while (nstack)
		free(stack[--nstack]);
	free(stack);
	if (found) {
		free(anchors[slot].rel);
		anchors[slot].rel = strdup(out);
		anchors[slot].ino = ino;
		anchors[slot].project = p->id;
	}
	return found;
}

/*
 * Build the absolute, normalized path of one side of a record; false when it
 * has none. A path the kernel cut (deeper than its walk keeps names for) is
 * completed from its anchor directory, found by identity; *cut says whether
 * it is still incomplete.
 */
static bool absolute_of(struct vw_projects *t, uint32_t project, const char *rel, size_t len,
			uint64_t anchor, char *buf, bool *cut)
{
	const struct vw_project *p = project ? projects_by_id(t, project) : NULL;
	char base[PATH_MAX + 1], anchor_rel[PATH_MAX];
	size_t rl;

	if (!p)
		return false;
	if (!rel || !len) {	/* the root itself (a rename of the root: its old side) */
		rel = "";
		len = 0;
	}
	snprintf(base, sizeof(base), "%s", p->root);
	if (*cut && anchor && anchor_find(p, anchor, anchor_rel)) {
		if ((size_t)snprintf(base, sizeof(base), "%s/%s", p->root, anchor_rel) < sizeof(base))
			*cut = false;
		else	/* too long to say whole: cut, as it was */
			snprintf(base, sizeof(base), "%s", p->root);
	}
	rl = strlen(base);
	if (rl + len + 2 > ABS_MAX) {
		*cut = true;
		len = ABS_MAX - rl - 2;
	}
	memcpy(buf, base, rl);
	buf[rl] = '/';
	memcpy(buf + rl + 1, rel, len);
	buf[rl + 1 + len] = 0;
	path_normalize(buf);
	if (*cut && !anchor) {
		/*
		 * Longer than the kernel keeps (VW_PATH_MAX bytes): it kept the
		 * leading names, the last one perhaps in part. What is left is the
		 * deepest directory known whole, below which the change happened.
		 */
		char *slash = strrchr(buf, '/');

		if (slash && slash > buf + rl)
			*slash = 0;
	}
	return true;
}

/*
 * enum vw_ftype of what sits at @abs now, for changes the kernel side could
 * not type: looked at below @p's pinned root (VW_FT_UNKNOWN when @abs is not
 * below it).
 */
static unsigned int ftype_now(const struct vw_project *p, const char *abs)
{
	size_t rl = strlen(p->root);
	struct stat st;

	/* below the pinned root, as every look at a project's files */
	if (strncmp(abs, p->root, rl) != 0 || (abs[rl] && abs[rl] != '/'))
		return VW_FT_UNKNOWN;
	return project_lstat(p, abs[rl] ? abs + rl + 1 : "", &st) < 0 ? VW_FT_UNKNOWN :
									  ftype_of_mode(st.st_mode);
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
		o.kind = VW_KIND_ROOT_GONE;
	else if ((ev->op == VW_OP_MKDIR || ev->op == VW_OP_RENAME) && have_new &&
		 strcmp(nabs, q->root) == 0)
		o.kind = VW_KIND_ROOT_BACK;
	if (!o.kind)
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
		struct vw_out o = { .project = q, .kind = VW_KIND_CREATE, .type = "dir", .path = rel,
				    .ev = ev, .ignored = true };

		fn(ctx, &o);
	}
	return NULL;
}

int route_event(struct vw_projects *t, const struct vw_event *ev, out_fn fn, void *ctx)
{
	static char nabs[ABS_MAX], oabs[ABS_MAX];
	unsigned int ftype = ev->ftype;
	bool late = false;
	bool have_new, have_old, cut = ev->flags & VW_EVF_TRUNCATED;
	bool ocut = ev->flags & VW_EVF_OLD_TRUNCATED;
	bool long_cut;
	bool exchange = ev->op == VW_OP_RENAME && (ev->flags & VW_EVF_EXCHANGE);
	int n = 0;

	have_new = absolute_of(t, ev->project, ev->path, ev->path_len, ev->anchor_ino, nabs, &cut);
	have_old = (ev->op == VW_OP_RENAME || ev->op == VW_OP_CREATE) && ev->old_project &&
		   absolute_of(t, ev->old_project, ev->old_path, ev->old_path_len,
			       ev->old_anchor_ino, oabs, &ocut);
	/* a side cut for its length (no anchor to complete it from) */
	long_cut = (have_new && cut && !ev->anchor_ino) || (have_old && ocut && !ev->old_anchor_ino);
	/*
	 * A rename or a metadata change seen by the tracepoint set carries names
	 * only: what is at the (new) name now tells the type.
	 */
	if (ftype == VW_FT_UNKNOWN && have_new && (ev->op == VW_OP_RENAME || ev->op == VW_OP_ATTRIB)) {
		const struct vw_project *np = projects_by_id(t, ev->project);

		ftype = np ? ftype_now(np, nabs) : VW_FT_UNKNOWN;
		late = true;
	}
	for (size_t i = 0; i < t->n; i++) {
		if (t->v[i].gone)
			continue;
		if (root_itself(&t->v[i], ev, nabs, have_new, oabs, have_old, fn, ctx))
			continue;
		if (t->v[i].root_lost)
			continue;	/* the old root path names nothing (or something else) now */
		const struct vw_project *q = &t->v[i];
		bool is_dir = ftype == VW_FT_DIR || ev->op == VW_OP_MKDIR || ev->op == VW_OP_RMDIR;
		bool made = ev->op == VW_OP_MKDIR || ev->op == VW_OP_RENAME;
		const char *nrel = unless_ignored(q, below(nabs, have_new, q), is_dir, made, fn, ctx, ev);
		const char *orel = unless_ignored(q, below(oabs, have_old, q), is_dir, false, fn, ctx, ev);
		struct vw_out o = { .project = q, .ev = ev, .type = ftype_name(ftype),
				    .type_late = late };

		o.truncated = cut || ocut;
		if (long_cut && (nrel || orel)) {
			/* below a path too long to name: its deepest whole directory changed */
			o.kind = VW_KIND_MODIFY;
			o.type = "dir";
			o.path = nrel ? nrel : orel;
			o.type_late = false;
			fn(ctx, &o);
			n++;
			if (nrel && orel && strcmp(nrel, orel) != 0) {
				o.path = orel;
				fn(ctx, &o);
				n++;
			}
			continue;
		}
		switch (ev->op) {
		case VW_OP_RENAME:
			if (nrel && orel) {
				o.kind = VW_KIND_RENAME;
				o.path = nrel;
				o.old_path = orel;
				o.exchange = exchange;
			} else if (nrel) {
				o.kind = VW_KIND_CREATE;	/* moved in from outside this project */
				o.path = nrel;
			} else if (orel) {
				/* moved out; an exchange leaves the name, holding what came in */
				o.kind = exchange ? VW_KIND_CREATE : VW_KIND_DELETE;
				o.path = orel;
			}
			break;
		default:
			if (ev->op < sizeof(op_events) / sizeof(op_events[0]) && op_events[ev->op].kind) {
				o.kind = op_events[ev->op].kind;
				if (op_events[ev->op].dir)
					o.type = "dir";
				o.path = nrel;
				o.link_from = ev->op == VW_OP_CREATE ? orel : NULL;
			}
			break;
		}
		if (!o.kind || !o.path)
			continue;
		fn(ctx, &o);
		n++;
	}
	return n;
}
