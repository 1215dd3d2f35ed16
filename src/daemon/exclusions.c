// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// exclusions.c: directories a project ignores, kept in the kernel where no other project shares the tree.
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/fs.h>

#include "core/log.h"
#include "core/util.h"
#include "daemon/daemon.h"
#include "daemon/daemon_priv.h"
#include "store/project.h"

#define VW_EXCL_PER_PROJECT 4096	/* kernel exclusions one project may hold */
#define VW_EXCL_MAX 32768	/* and all together: the roots map (65536) keeps room for roots */

/* Do the live projects @p and @q share a tree (one holds the other)? */
bool excl_trees_overlap(const struct vw_project *p, const struct vw_project *q)
{
	return q != p && !q->gone && (path_below(p->root, q->root) || path_below(q->root, p->root));
}

/* Does another live project share @p's tree? */
static bool shares_tree(const struct daemon *d, const struct vw_project *p)
{
	for (size_t i = 0; i < d->projects.n; i++)
		if (excl_trees_overlap(p, &d->projects.v[i]))
			return true;
	return false;
}

/*
 * The kernel exclusions of @p go (from now on the kernel reports what is below
 * them). d->excl holds entries only when the source has exclude(), and a
 * source has unexclude() with it (source.h).
 */
void excl_drop_project(struct daemon *d, const struct vw_project *p)
{
	size_t k = 0;

	for (size_t i = 0; i < d->nexcl; i++) {
		int ret = d->excl[i].project == p->id ?
			  d->src->ops->unexclude(d->src, d->excl[i].dev, d->excl[i].ino) : 1;

		if (ret < 0)
			log_warnx("loader: %s: an ignored directory stays excluded in the kernel: %s",
				  p->name, errstr(ret));
		if (ret)
			d->excl[k++] = d->excl[i];
	}
	d->nexcl = k;
}

/*
 * A directory moved to a place where it is not ignored (into another project,
 * or to a name its project does not ignore): an exclusion it carried goes, so
 * that it hides nothing there. (Moved to where no project is, it hides nothing.)
 */
void excl_moved(struct daemon *d, const struct vw_out *o)
{
	struct stat st;

	if (project_lstat(o->project, o->path, &st) < 0)
		return;
	for (size_t i = 0; i < d->nexcl; i++) {
		if (d->excl[i].dev != kernel_dev(st.st_dev) || d->excl[i].ino != st.st_ino)
			continue;
		if (d->src->ops->unexclude(d->src, d->excl[i].dev, d->excl[i].ino) == 0)
			d->excl[i] = d->excl[--d->nexcl];
		return;
	}
}

/*
 * A directory @rel that @p ignores: what happens below it stays in the
 * kernel, for that directory only (its generation is kept: an inode number
 * reused by another directory is not excluded). Only where no other project
 * shares the tree: the kernel keeps one verdict for everybody, and an
 * exclusion must hide nothing from a project that does not ignore it (those
 * changes are dropped in userspace, per project, instead).
 */
void excl_dir(void *ctx, const struct vw_project *p, const char *rel)
{
	struct daemon *d = ctx;
	struct stat st;
	uint32_t igen;
	bool have_igen;
	size_t mine = 0;
	void *v;
	int fd, ret;

	if (!d->src || !d->src->ops->exclude || shares_tree(d, p) || d->nexcl >= VW_EXCL_MAX)
		return;	/* beyond the bound, dropped in userspace: the map keeps room for roots */
	fd = project_open(p, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return;	/* gone again, or not a directory now */
	have_igen = ioctl(fd, FS_IOC_GETVERSION, &igen) == 0;
	ret = fstat(fd, &st) < 0 ? -errno : 0;
	close(fd);
	for (size_t i = 0; !ret && i < d->nexcl; i++) {
		if (d->excl[i].dev == kernel_dev(st.st_dev) && d->excl[i].ino == st.st_ino)
			return;	/* excluded already (a rescan found it again) */
		mine += d->excl[i].project == p->id;
	}
	if (mine >= VW_EXCL_PER_PROJECT)
		return;
	if (!ret)
		ret = d->src->ops->exclude(d->src, kernel_dev(st.st_dev), st.st_ino,
				     have_igen ? &igen : NULL);
	if (ret == -EEXIST)
		return;	/* a project root: never excluded */
	if (!ret && (v = reallocarray(d->excl, d->nexcl + 1, sizeof(*d->excl)))) {
		d->excl = v;
		d->excl[d->nexcl++] = (struct vw_excl){ kernel_dev(st.st_dev), st.st_ino, p->id };
	} else if (!ret) {
		ret = -ENOMEM;
		d->src->ops->unexclude(d->src, kernel_dev(st.st_dev), st.st_ino);
	}
	if (ret)
		log_warnx("loader: %s: %s: cannot keep what happens below it in the kernel (%s); "
			  "it is dropped here instead", p->name, rel, errstr(ret));
}
