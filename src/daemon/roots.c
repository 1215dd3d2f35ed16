// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// roots.c: a project's root directory gone (removed, moved away, replaced), or a directory at its path again.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/ignore.h"
#include "core/log.h"
#include "core/util.h"
#include "daemon/daemon.h"
#include "daemon/daemon_priv.h"
#include "pipeline/debounce.h"
#include "pipeline/json_out.h"
#include "serve/clients.h"
#include "store/changes.h"
#include "store/index.h"
#include "store/project.h"
#include "store/state.h"

/* A root that came back: each entry in it is a create (directories are listed whole). */
static void describe_root(struct daemon *d, struct vw_project *p)
{
	int fd = project_open(p, "", O_RDONLY | O_DIRECTORY);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (fd >= 0 && !dir)
		close(fd);
	while (dir && (de = readdir(dir))) {
		struct vw_out o = { .project = p, .kind = VW_KIND_CREATE, .path = de->d_name,
				    .ev = &vw_no_writer };

		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    !(p->ignore && ignore_match(p->ignore, de->d_name, de->d_type == DT_DIR)))
			debounce_add(d->deb, &o, now_ns(CLOCK_MONOTONIC));
	}
	if (dir)
		closedir(dir);
}

/*
 * Does the root path still name the directory pinned, itself (not a symlink
 * to it)? It may have been renamed away, or replaced.
 */
bool roots_intact(const struct vw_project *p)
{
	struct stat st;

	return project_lstat_root_path(p, &st) == 0 && S_ISDIR(st.st_mode) &&
	       st.st_ino == p->ino && kernel_dev(st.st_dev) == p->dev;
}

/*
 * At every tick: a root gone (fanotify learns it only so), and a lost root's
 * path holding something again (fanotify does not see the root's own name;
 * the BPF backends do, and this catches what their events could not say).
 */
void roots_check(struct daemon *d)
{
	for (size_t i = 0; i < d->projects.n; i++) {
		struct vw_project *p = &d->projects.v[i];
		struct stat st;

		if (p->gone)
			continue;
		if (!p->root_lost && !roots_intact(p))
			roots_changed(d, p, false);
		else if (p->root_lost && project_lstat_root_path(p, &st) == 0 &&
			 (st.st_ino != p->refused_ino || kernel_dev(st.st_dev) != p->refused_dev))
			roots_changed(d, p, true);
	}
}

/*
 * The root directory was removed (or moved away), or a directory is at its
 * path again. The project stays registered, its path watched by name (the
 * chains map). What appears there is adopted only when it is reached without
 * a symlink and belongs to the same owner, and then as a new identity: its
 * history starts afresh (old cursors are answered "fresh") and nothing of
 * the old one is read again.
 */
void roots_changed(struct daemon *d, struct vw_project *p, bool back)
{
	struct vw_project next = { .root_fd = -1 };
	int ret = 0;

	if (back != p->root_lost)
		return;	/* said already */
	if (back && now_ns(CLOCK_MONOTONIC) < p->adopt_after_ns)
		return;	/* the last try did not answer in time: the tick tries again later */
	if (back) {
		ret = project_pin(&next, p->root, &p->owner);
		if (ret == -ETIMEDOUT)
			p->adopt_after_ns = now_ns(CLOCK_MONOTONIC) + VW_RESOLVE_BACKOFF_NS;
		if (!ret && next.owner.uid != p->owner.uid)
			ret = -EPERM;
		if (ret) {	/* said once for what is there (roots_check() looks again) */
			struct stat st;

			if (project_lstat_root_path(p, &st) == 0) {
				p->refused_dev = kernel_dev(st.st_dev);
				p->refused_ino = st.st_ino;
			}
			log_warnx("project %s: a directory is at %s again, but %s: not adopted, the "
				  "project stays lost", p->name, p->root,
				  ret == -ELOOP ? "reached through a symlink" :
				  ret == -EPERM ? "it belongs to another user" :
				  ret == -EREMOTE ? "it is on a user's FUSE file system" : strerror(-ret));
			project_unpin(&next);
			return;
		}
	}
	if (d->deb && back)
		debounce_flush(d->deb, 0, true, daemon_settled, d);
	else if (d->deb)
		debounce_discard(d->deb, p);	/* its paths name nothing, or something else, now */
	p->root_lost = !back;
	json_out_project(d->out, kind_name(back ? VW_KIND_ROOT_BACK : VW_KIND_ROOT_GONE), p);
	log_warnx("project %s: root %s %s", p->name, p->root,
		  back ? "is back: a new directory, its history starts afresh" : "is gone");
	if (!back) {	/* its numbers may be other directories' soon */
		excl_drop_project(d, p);
		if (d->src->ops->root_lost)
			d->src->ops->root_lost(d->src, p);
	}
	if (!back)
		return;
	/* the old identity: written out, closed, deleted (nothing reads it again) */
	clients_project_ended(d->clients, p, "root_replaced");
	state_forget(d->state, p);
	changes_forget(d->changes, p);
	statedir_remove_project(d, p);
	/* a source that keeps entries per root: out under the old identity, in under the new */
	if (d->src->ops->remove_project) {
		p->gone = true;
		d->src->ops->remove_project(d->src, p, &d->projects);
		p->gone = false;
	}
	project_unpin(p);
	p->root_fd = next.root_fd;
	p->st_dev = next.st_dev;
	p->remote = next.remote;
	p->dev = next.dev;
	p->ino = next.ino;
	p->btime_ns = next.btime_ns;
	p->owner = next.owner;
	statedir_bind(d->opts, p);	/* a new instance: the old one's files are gone */
	if (d->src->ops->remove_project)
		d->src->ops->add_project(d->src, p, NULL, 0);
	if (d->state)
		rescan_load_state(d, p, false);	/* nothing on disk: described anew by a crawl */
	if (d->deb)
		describe_root(d, p);
	if (d->idx && index_crawl(d->idx, p, "") == 0)
		d->crawling = true;
}
