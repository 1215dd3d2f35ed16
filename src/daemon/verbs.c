// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// verbs.c: what the sockets ask of the daemon: ctl.sock (root) and client.sock (users'
// own projects); the status object, and the metrics file made from it.
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "serve/runner.h"
#include "core/caps.h"
#include "store/changes.h"
#include "serve/clients.h"
#include "core/creds.h"
#include "daemon/daemon.h"
#include "daemon/daemon_priv.h"
#include "core/ignore.h"
#include "pipeline/debounce.h"
#include "pipeline/fanout.h"
#include "store/index.h"
#include "source/decoder.h"
#include "source/loader.h"
#include "core/log.h"
#include "serve/metrics.h"
#include "store/project.h"
#include "store/state.h"
#include "core/util.h"

static const char **json_strings(const cJSON *arr, size_t *n)
{
	const char **v = calloc(cJSON_GetArraySize(arr) + 1, sizeof(*v));
	const cJSON *it;

	*n = 0;
	if (!v)
		return NULL;
	cJSON_ArrayForEach(it, arr) {
		if (!cJSON_IsString(it)) {
			free(v);
			return NULL;
		}
		v[(*n)++] = it->valuestring;
	}
	return v;
}

/*
 * "add" of @req, the path looked up as @as (NULL: as the daemon), who watches
 * @mine projects already (checked against user_projects once the directory is
 * known to be theirs).
 */
static int add_as(struct daemon *d, const cJSON *req, const struct vw_creds *as, size_t mine,
		  cJSON *reply, char *err, size_t errlen)
{
	const cJSON *root = cJSON_GetObjectItemCaseSensitive(req, "root");
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(req, "name");
	const cJSON *ign = cJSON_GetObjectItemCaseSensitive(req, "ignore");
	const cJSON *git = cJSON_GetObjectItemCaseSensitive(req, "gitignore");
	const cJSON *defaults = cJSON_GetObjectItemCaseSensitive(req, "default_ignores");
	const cJSON *root_id = cJSON_GetObjectItemCaseSensitive(req, "root_id");
	const char **pats = NULL;
	struct vw_project *p;
	size_t n = 0;
	int ret;

	if (!cJSON_IsString(root) || root->valuestring[0] != '/') {
		snprintf(err, errlen, "add: \"root\" must be an absolute path");
		return -EINVAL;
	}
	if ((name && !cJSON_IsString(name)) || (git && !cJSON_IsBool(git)) ||
	    (defaults && !cJSON_IsBool(defaults)) || (root_id && !cJSON_IsString(root_id)) ||
	    (ign && (!cJSON_IsArray(ign) || !(pats = json_strings(ign, &n))))) {
		snprintf(err, errlen, "add: \"name\" and \"root_id\" must be strings, \"ignore\" "
				      "an array of strings, \"gitignore\" and \"default_ignores\" "
				      "booleans");
		return -EINVAL;
	}
	ret = projects_add_as(&d->projects, root->valuestring, name ? name->valuestring : NULL, as,
			      err, errlen);
	if (!ret) {
		p = d->projects.last;
		if (!project_is(p, cJSON_GetStringValue(root_id))) {
			snprintf(err, errlen, "add: %s is another directory than the one you named "
					      "(\"root_id\" differs: another mount namespace?)", p->root);
			ret = -EXDEV;
		} else if (as && as->uid != 0 && mine >= d->opts->user_projects) {
			snprintf(err, errlen, "add: you watch %zu projects already, the limit "
					      "(user_projects in the config)", mine);
			ret = -EDQUOT;
		}
		if (!ret) {
			ret = daemon_project_ignores(p, !cJSON_IsFalse(defaults), cJSON_IsTrue(git),
						     pats, n);
			if (ret && cJSON_IsTrue(git) && ret != -ENOMEM)	/* the one file read */
				snprintf(err, errlen, "%s/.gitignore: %s", p->root,
					 ignore_file_error(ret));
		}
		if (!ret)
			ret = daemon_project_start(d, p, err, errlen);
		if (ret) {
			p->gone = true;
			p->reclaimable = !p->nanalyzers;	/* nothing took it up */
			project_unpin(p);
		} else {
			cJSON_AddStringToObject(reply, "name", p->name);
			cJSON_AddStringToObject(reply, "root", p->root);
		}
	}
	free(pats);
	return ret;
}

static int ctl_add(void *ctx, const cJSON *req, cJSON *reply, char *err, size_t errlen)
{
	return add_as(ctx, req, NULL, 0, reply, err, errlen);
}

static int ctl_remove(void *ctx, const cJSON *req, cJSON *reply, char *err, size_t errlen)
{
	struct daemon *d = ctx;
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(req, "name");
	struct vw_project *p;

	if (!cJSON_IsString(name)) {
		snprintf(err, errlen, "remove: \"name\" must be a string");
		return -EINVAL;
	}
	p = projects_by_name(&d->projects, name->valuestring);
	if (!p) {
		snprintf(err, errlen, "remove: no project named '%.128s'", name->valuestring);
		return -ENOENT;
	}
	cJSON_AddStringToObject(reply, "removed", p->name);
	return daemon_project_stop(d, p);
}

/*
 * client.sock "add": a user adds a directory they own, up to user_projects of
 * them. The path is resolved and opened as the user (their permissions, their
 * view), so an error says nothing they could not learn alone, and nothing of
 * others' projects.
 */
int daemon_user_add(void *ctx, const struct vw_creds *who, const cJSON *req, cJSON *reply,
		    char *err, size_t errlen)
{
	struct daemon *d = ctx;
	size_t mine = 0;
	int ret;

	for (size_t i = 0; i < d->projects.n; i++)
		mine += !d->projects.v[i].gone && d->projects.v[i].by_user &&
			d->projects.v[i].added_by == who->uid;
	ret = add_as(d, req, who, mine, reply, err, errlen);
	if ((ret == -EEXIST || ret == -EBUSY) && who->uid != 0)	/* nothing of others' projects */
		snprintf(err, errlen, "add: %.256s cannot be watched: it overlaps a project, or its "
				      "name is taken",
			 cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "root")));
	if (!ret) {
		struct vw_project *p = d->projects.last;

		p->by_user = true;
		log_info("clients: uid %u added project %s (%s)", who->uid, p->name, p->root);
	}
	return ret;
}

/* client.sock "remove": a project the user added (root: any). */
int daemon_user_remove(void *ctx, const struct vw_creds *who, const cJSON *req, cJSON *reply,
		       char *err, size_t errlen)
{
	struct daemon *d = ctx;
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(req, "name");
	struct vw_project *p = cJSON_IsString(name) ?
			       projects_by_name(&d->projects, name->valuestring) : NULL;

	if (!cJSON_IsString(name)) {
		snprintf(err, errlen, "remove: \"name\" must be a string");
		return -EINVAL;
	}
	if (!p || (who->uid != 0 && !(p->by_user && p->added_by == who->uid))) {
		snprintf(err, errlen, "remove: no project '%.128s' that you added",
			 name->valuestring);
		return -ENOENT;
	}
	cJSON_AddStringToObject(reply, "removed", p->name);
	return daemon_project_stop(d, p);
}

static cJSON *projects_json(const struct daemon *d)
{
	cJSON *arr = cJSON_CreateArray();

	for (size_t i = 0; arr && i < d->projects.n; i++) {
		const struct vw_project *p = &d->projects.v[i];
		cJSON *o, *ev;

		if (p->gone || !(o = cJSON_CreateObject()))
			continue;
		cJSON_AddItemToArray(arr, o);
		cJSON_AddStringToObject(o, "name", p->name);
		cJSON_AddStringToObject(o, "root", p->root);
		cJSON_AddNumberToObject(o, "changes", (double)p->changes);
		if ((ev = cJSON_AddObjectToObject(o, "events"))) {
			uint64_t other = 0;

			for (int k = 0; k < VW_KINDS; k++) {
				if (k >= VW_KIND_CREATE && k <= VW_KIND_RENAME)
					cJSON_AddNumberToObject(ev, kind_name(k), (double)p->events[k]);
				else
					other += p->events[k];
			}
			cJSON_AddNumberToObject(ev, "other", (double)other);
		}
		cJSON_AddBoolToObject(o, "rescanning",
				      d->state && state_rescanning(d->state, p));
		cJSON_AddNumberToObject(o, "rescans", (double)p->rescans);
		if (d->state)
			cJSON_AddNumberToObject(o, "known_paths", (double)state_count(d->state, p));
		if (d->deb && d->opts->state_dir) {	/* this project's catch-up after a restart */
			const char *why = state_project_error(d->state, p);

			cJSON_AddBoolToObject(o, "catch_up", !why);
			if (why)
				cJSON_AddStringToObject(o, "state_error", why);
		}
	}
	return arr;
}

static int ctl_list(void *ctx, const cJSON *req, cJSON *reply, char *err, size_t errlen)
{
	cJSON *arr = projects_json(ctx);

	if (!arr || !cJSON_AddItemToObject(reply, "projects", arr))
		return -ENOMEM;
	return 0;
}

static long proc_status_kib(const char *key)
{
	char line[256];
	size_t n = strlen(key);
	long v = -1;
	FILE *f = fopen("/proc/self/status", "re");

	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, key, n) == 0 && line[n] == ':')
			v = strtol(line + n + 1, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

static int ctl_status(void *ctx, const cJSON *req, cJSON *reply, char *err, size_t errlen)
{
	static const char *const stat_names[VW_STAT_MAX] = {
		"seen", "rejected", "walked", "emitted", "ringbuf_full", "truncated", "excluded",
		"unresolved", "read_fail", "cached", "coalesced",
	};
	struct daemon *d = ctx;
	struct vw_source_counters sc = {};
	cJSON *k;

	cJSON_AddStringToObject(reply, "version", VW_VERSION);
	cJSON_AddNumberToObject(reply, "pid", getpid());
	cJSON_AddNumberToObject(reply, "uptime_s",
				(double)((now_ns(CLOCK_MONOTONIC) - d->started_ns) / 1000000000ull));
	cJSON_AddStringToObject(reply, "backend", backend_name(d->backend));
	if (d->src)
		d->src->ops->counters(d->src, &sc);
	if (d->src && d->src->ops->build) {
		const char *because;
		bool compat = d->src->ops->build(d->src, &because);

		cJSON_AddStringToObject(reply, "build", compat ? "compat" : "full");
		cJSON_AddStringToObject(reply, "build_decided_by", because);
	}
	{
		char caps[512];

		caps_names(caps_effective(), caps, sizeof(caps));
		cJSON_AddStringToObject(reply, "capabilities", caps);
	}
	cJSON_AddStringToObject(reply, "mode", d->deb ? "settled" : "raw");
	cJSON_AddItemToObject(reply, "projects", projects_json(d));
	cJSON_AddNumberToObject(reply, "pending_paths", d->deb ? (double)debounce_pending(d->deb) : 0);
	cJSON_AddNumberToObject(reply, "indexed_paths", d->idx ? (double)index_count(d->idx) : 0);
	cJSON_AddBoolToObject(reply, "crawling", d->crawling);
	/* will what changes while the daemon is down be reported when it starts again? */
	cJSON_AddBoolToObject(reply, "catch_up", d->deb && d->opts->state_dir &&
						 !state_error(d->state));
	if (state_error(d->state))
		cJSON_AddStringToObject(reply, "state_error", state_error(d->state));
	cJSON_AddNumberToObject(reply, "lost", (double)d->lost_seen);
	cJSON_AddNumberToObject(reply, "unresolved", (double)d->unresolved_seen);
	cJSON_AddNumberToObject(reply, "bad_records", (double)d->bad_seen);
	/* liveness: every record the kernel sent is read (or lost, and told); stalls are told */
	if (sc.has_sent)
		cJSON_AddNumberToObject(reply, "records_sent", (double)sc.sent);
	if (sc.has_read)
		cJSON_AddNumberToObject(reply, "records_read", (double)sc.read);
	cJSON_AddNumberToObject(reply, "reader_stalls", (double)sc.stalls);
	/* read your writes: each query's sync point, and what they cost on average */
	cJSON_AddNumberToObject(reply, "query_syncs", (double)d->syncs);
	cJSON_AddNumberToObject(reply, "query_sync_us",
				d->syncs ? (double)(d->sync_ns / d->syncs) / 1000.0 : 0);
	if (d->runner) {
		cJSON_AddNumberToObject(reply, "analyzer_jobs_running", runner_running(d->runner));
		cJSON_AddNumberToObject(reply, "analyzer_jobs_queued", runner_queued(d->runner));
		cJSON_AddNumberToObject(reply, "analyzer_jobs_late", (double)runner_late(d->runner));
		if ((k = cJSON_AddObjectToObject(reply, "analyzer_jobs")))
			for (int i = 0; i < VW_AN_STATUSES; i++)
				cJSON_AddNumberToObject(k, vw_an_status_names[i],
							(double)runner_reported(d->runner, i));
	}
	if (d->clients) {
		cJSON_AddNumberToObject(reply, "subscribers", (double)clients_subscribers(d->clients));
		cJSON_AddNumberToObject(reply, "client_queue_bytes",
					(double)clients_queued_bytes(d->clients));
		cJSON_AddNumberToObject(reply, "client_queue_stalls",
					(double)clients_stalls(d->clients));
	}
	cJSON_AddNumberToObject(reply, "rss_kib", proc_status_kib("VmRSS"));
	cJSON_AddNumberToObject(reply, "rss_anon_kib", proc_status_kib("RssAnon"));
	if (sc.has_kernel && (k = cJSON_AddObjectToObject(reply, "kernel"))) {
		for (int i = 0; i < VW_STAT_MAX; i++)
			cJSON_AddNumberToObject(k, stat_names[i], (double)sc.kernel[i]);
	}
	return 0;
}

static int ctl_retry_dead(void *ctx, const cJSON *req, cJSON *reply, char *err, size_t errlen)
{
	struct daemon *d = ctx;
	const cJSON *proj = cJSON_GetObjectItemCaseSensitive(req, "project");
	int n;

	if (proj && !cJSON_IsString(proj)) {
		snprintf(err, errlen, "retry-dead: \"project\" must be a string");
		return -EINVAL;
	}
	if (!d->runner) {
		snprintf(err, errlen, "retry-dead: analyzers run in settled mode only");
		return -EINVAL;
	}
	n = runner_retry_dead(d->runner, &d->projects, proj ? proj->valuestring : NULL);
	if (n < 0) {
		snprintf(err, errlen, "retry-dead: %s", strerror(-n));
		return n;
	}
	cJSON_AddNumberToObject(reply, "queued", n);
	return 0;
}

const struct ctl_verb daemon_ctl_verbs[] = {
	{ "retry-dead", ctl_retry_dead },
	{ "add", ctl_add },
	{ "remove", ctl_remove },
	{ "list", ctl_list },
	{ "status", ctl_status },
	{ NULL, NULL },
};

/* The metrics file, when one is asked for: every VW_METRICS_EVERY_MS (@now: at once). */
void daemon_write_metrics(struct daemon *d, bool now)
{
	uint64_t t = now_ns(CLOCK_MONOTONIC);
	cJSON *st;
	char err[256];
	int ret;

	if (!d->opts || !d->opts->metrics_file || (!now && t < d->metrics_due))
		return;
	d->metrics_due = t + VW_METRICS_EVERY_MS * MS;
	st = cJSON_CreateObject();
	ret = st ? ctl_status(d, NULL, st, err, sizeof(err)) : -ENOMEM;
	if (!ret)
		ret = metrics_write(d->opts->metrics_file, st);
	cJSON_Delete(st);
	if (ret && !d->metrics_said)
		log_warnx("metrics: %s: %s", d->opts->metrics_file, strerror(-ret));
	d->metrics_said = ret != 0;
}
