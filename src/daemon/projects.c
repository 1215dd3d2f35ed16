// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// projects.c: projects added (config, --watch, run time), removed, and the config reloaded.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/ignore.h"
#include "core/log.h"
#include "core/util.h"
#include "daemon/daemon.h"
#include "daemon/daemon_priv.h"
#include "pipeline/debounce.h"
#include "pipeline/json_out.h"
#include "serve/clients.h"
#include "store/changes.h"
#include "store/config.h"
#include "store/index.h"
#include "store/project.h"
#include "store/state.h"

/* A project's ignore rules: the defaults, its .gitignore when asked, then extra patterns. */
int daemon_project_ignores(struct vw_project *p, bool defaults, bool gitignore,
			   const char *const *extra, size_t nextra)
{
	char path[PATH_MAX];
	int ret = 0;

	p->ignore = ignore_new();
	if (!p->ignore)
		return -ENOMEM;
	for (size_t i = 0; defaults && vw_default_ignores[i] && !ret; i++)
		ret = ignore_add(p->ignore, vw_default_ignores[i]);
	if (!ret && gitignore) {
		/* below the pinned root: never through a symlink, never into a user's FUSE */
		snprintf(path, sizeof(path), "%s/.gitignore", p->root);
		ret = ignore_add_fd(p->ignore, project_open(p, ".gitignore", O_RDONLY | O_NOFOLLOW |
								     O_NONBLOCK | O_NOCTTY));
		if (ret)
			log_warnx("watch: %s: %s", path, ignore_file_error(ret));
	}
	for (size_t i = 0; i < nextra && !ret; i++)
		ret = ignore_add(p->ignore, extra[i]);
	return ret;
}

static int add_project(struct daemon *d, const char *dir, const char *name, bool defaults,
		       bool gitignore, const char *const *extra, size_t nextra)
{
	char err[PATH_MAX + 256];
	int ret = projects_add(&d->projects, dir, name, err, sizeof(err));

	if (ret) {
		log_warnx("watch: %s", err);
		return ret;
	}
	return daemon_project_ignores(d->projects.last, defaults, gitignore, extra,
			       nextra);
}

/* Projects from the config file, then --watch; the current directory when neither names one. */
int daemon_projects_load(struct daemon *d, const struct run_opts *o, const struct vw_config *cfg)
{
	for (size_t i = 0; cfg && i < cfg->nprojects; i++) {
		const struct vw_config_project *p = &cfg->projects[i];
		int ret = add_project(d, p->root, p->name, p->default_ignores, p->gitignore,
				      (const char *const *)p->ignore, p->nignore);
		struct vw_project *np;

		if (ret)
			return ret;
		np = d->projects.last;
		np->from_config = true;
		np->analyzers = p->analyzers;	/* handed over */
		np->nanalyzers = p->nanalyzers;
		np->readers = p->readers;
		((struct vw_config_project *)p)->readers = NULL;
		((struct vw_config_project *)p)->analyzers = NULL;
		((struct vw_config_project *)p)->nanalyzers = 0;
	}
	for (size_t i = 0; i < o->nwatch; i++) {
		int ret = add_project(d, o->watch[i], NULL, !o->no_default_ignores, o->gitignore,
				      o->ignores, o->nignores);

		if (ret)
			return ret;
	}
	if (d->projects.n)
		return 0;
	log_info("no --watch given: watching the current directory");
	return add_project(d, ".", NULL, !o->no_default_ignores, o->gitignore, o->ignores,
			   o->nignores);
}

/* Register a project just added to the table with the backend and the crawl. */
int daemon_project_start(struct daemon *d, struct vw_project *p, char *err, size_t errlen)
{
	int ret = 0;

	/* projects whose tree it shares: their exclusions would hide its changes */
	for (size_t i = 0; d->nexcl && i < d->projects.n; i++)
		if (excl_trees_overlap(p, &d->projects.v[i]))
			excl_drop_project(d, &d->projects.v[i]);
	ret = d->src->ops->add_project(d->src, p, err, errlen);
	if (ret) {
		if (!err[0])
			snprintf(err, errlen, "register %s: %s", p->root, errstr(ret));
		return ret;
	}
	if (d->idx && index_crawl(d->idx, p, "") == 0)
		d->crawling = true;
	json_out_project(d->out, "project_added", p);
	statedir_bind(d->opts, p);
	if (d->state)
		rescan_load_state(d, p, true);
	daemon_flush(d);
	log_info("project %s (%s) added", p->name, p->root);
	return 0;
}

/* Take a project out: what it has pending is flushed first, nothing else is touched. */
int daemon_project_stop(struct daemon *d, struct vw_project *p)
{
	int ret = 0;

	if (d->deb)
		debounce_flush(d->deb, 0, true, daemon_settled, d);
	excl_drop_project(d, p);
	p->gone = true;
	if (d->src->ops->remove_project)
		ret = d->src->ops->remove_project(d->src, p, &d->projects);
	json_out_project(d->out, "project_removed", p);
	daemon_flush(d);
	/* its journal and change log are closed: a project added and removed leaves no descriptor */
	clients_project_ended(d->clients, p, "project_removed");
	state_forget(d->state, p);
	changes_forget(d->changes, p);
	if (d->idx)	/* its known paths: a user's add/remove loop leaves nothing growing */
		index_forget(d->idx, p->id);
	if (p->by_user)	/* a user's project leaves nothing behind (config ones are kept a while) */
		statedir_remove_project(d, p);
	project_unpin(p);
	if (d->told_last.p == p)
		d->told_last.p = NULL;
	/*
	 * Nothing refers to it now (its batches flushed, subscribers told, picture
	 * and log closed), unless analyzers' jobs may: then its slot stays taken.
	 */
	p->reclaimable = !p->nanalyzers;
	log_info("project %s (%s) removed", p->name, p->root);
	return ret;
}

/*
 * SIGHUP: read the config again and apply the difference in place: new roots
 * are added, config projects no longer listed are removed, ignore rules of the
 * others are replaced. A bad file changes nothing.
 */
void daemon_reload(struct daemon *d)
{
	char err[PATH_MAX + 512] = "", real[PATH_MAX];
	const char *path = d->opts->config;
	struct vw_config *cfg;

	if (!path) {
		log_warnx("reload: no config file to read (started without --config)");
		return;
	}
	cfg = config_load(path, err, sizeof(err));
	if (!cfg) {
		log_warnx("reload: %s; keeping the running configuration", err);
		return;
	}
	for (size_t i = 0; i < d->projects.n; i++) {
		struct vw_project *p = &d->projects.v[i];
		bool listed = false;

		for (size_t j = 0; !p->gone && p->from_config && j < cfg->nprojects; j++)
			listed |= realpath(cfg->projects[j].root, real) && strcmp(real, p->root) == 0;
		if (!p->gone && p->from_config && !listed)
			daemon_project_stop(d, p);
	}
	for (size_t j = 0; j < cfg->nprojects; j++) {
		const struct vw_config_project *c = &cfg->projects[j];
		struct vw_project *p = realpath(c->root, real) ? projects_by_root(&d->projects, real) :
								   NULL;

		err[0] = 0;
		if (p) {	/* kept: its rules may have changed */
			ignore_free(p->ignore);
			daemon_project_ignores(p, c->default_ignores, c->gitignore,
					(const char *const *)c->ignore, c->nignore);
			/*
			 * What the old rules kept out in the kernel comes back (a directory
			 * no longer ignored must not stay unseen), and a crawl tells what
			 * the new rules show or hide, and excludes again what they ignore.
			 */
			excl_drop_project(d, p);
			rescan_request(d, p, "rules_changed");
			/* who may read it follows the file */
			for (char **r = p->readers; r && *r; r++)
				free(*r);
			free(p->readers);
			p->readers = c->readers;
			((struct vw_config_project *)c)->readers = NULL;
			/* queued jobs point at the old analyzers: they go with them */
			continue;
		}
		if (add_project(d, c->root, c->name, c->default_ignores, c->gitignore,
				(const char *const *)c->ignore, c->nignore) == 0) {
			p = d->projects.last;
			p->from_config = true;
			p->analyzers = c->analyzers;	/* handed over */
			p->nanalyzers = c->nanalyzers;
			p->readers = c->readers;
			((struct vw_config_project *)c)->readers = NULL;
			((struct vw_config_project *)c)->analyzers = NULL;
			((struct vw_config_project *)c)->nanalyzers = 0;
			if (daemon_project_start(d, p, err, sizeof(err))) {
				log_warnx("reload: %s", err);
				p->gone = true;
			}
		}
	}
	config_free(cfg);
	log_info("reload: %zu projects", projects_live(&d->projects));
}
