// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// json_out.c: one JSON object per line on the event stream; names that are not UTF-8 stay recoverable.
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "json_out.h"
#include "util.h"

/* Start a line: {"v":1,"time":...,"event":...}. Returns NULL on ENOMEM. */
static cJSON *line_new(const char *event, uint64_t boot_ns)
{
	cJSON *o = cJSON_CreateObject();
	char ts[64];

	format_boot_ns(boot_ns ? boot_ns : now_ns(CLOCK_BOOTTIME), ts, sizeof(ts));
	if (!o || !cJSON_AddNumberToObject(o, "v", VW_SCHEMA_VERSION) ||
	    !cJSON_AddStringToObject(o, "time", ts) || !cJSON_AddStringToObject(o, "event", event)) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static int line_write(FILE *f, cJSON *o)
{
	char *s = cJSON_PrintUnformatted(o);
	int ret = 0;

	cJSON_Delete(o);
	if (!s)
		return -ENOMEM;
	if (fputs(s, f) == EOF || fputc('\n', f) == EOF)
		ret = -EIO;
	cJSON_free(s);
	return ret;
}

/*
 * A name as JSON: the text itself when it is valid UTF-8; otherwise the text
 * with U+FFFD for each bad byte, plus "<key>_b64" holding the exact bytes.
 */
static bool add_name(cJSON *o, const char *key, const char *s)
{
	size_t len = strlen(s);
	char b64key[32];
	char *lossy, *b64;
	bool ok;

	if (utf8_valid(s, len))
		return cJSON_AddStringToObject(o, key, s) != NULL;
	lossy = utf8_lossy(s, len);
	b64 = base64_encode((const unsigned char *)s, len);
	snprintf(b64key, sizeof(b64key), "%s_b64", key);
	ok = lossy && b64 && cJSON_AddStringToObject(o, key, lossy) &&
	     cJSON_AddStringToObject(o, b64key, b64);
	free(lossy);
	free(b64);
	return ok;
}

/* The fields every change line has; NULL on ENOMEM. */
static cJSON *change_obj(const struct vw_out *o)
{
	const struct vw_event *ev = o->ev;
	cJSON *j = line_new(o->event, ev->ts_ns);
	bool ok;

	if (!j)
		return NULL;
	ok = cJSON_AddStringToObject(j, "project", o->project->name) &&
	     add_name(j, "root", o->project->root) && add_name(j, "path", o->path) &&
	     (!o->old_path || add_name(j, "old_path", o->old_path)) &&
	     (!o->type || cJSON_AddStringToObject(j, "type", o->type)) &&
	     ((ev->flags & VW_EVU_NO_PID) || cJSON_AddNumberToObject(j, "pid", ev->tgid)) &&
	     ((ev->flags & VW_EVU_NO_TID) || cJSON_AddNumberToObject(j, "tid", ev->pid)) &&
	     ((ev->flags & VW_EVU_NO_COMM) || add_name(j, "comm", ev->comm)) &&
	     ((ev->flags & VW_EVU_NO_UID) || cJSON_AddNumberToObject(j, "uid", ev->uid)) &&
	     ((ev->flags & VW_EVU_NO_CGROUP) ||
	      cJSON_AddNumberToObject(j, "cgroup", (double)ev->cgroup_id)) &&
	     (!o->truncated || cJSON_AddTrueToObject(j, "truncated")) &&
	     (!o->exchange || cJSON_AddTrueToObject(j, "exchange")) &&
	     cJSON_AddStringToObject(j, "source", o->source ? o->source : "kernel");
	if (!ok) {
		cJSON_Delete(j);
		return NULL;
	}
	return j;
}

int json_out_change(FILE *f, const struct vw_out *o)
{
	cJSON *j = change_obj(o);

	return j ? line_write(f, j) : -ENOMEM;
}

int json_out_settled(FILE *f, const struct vw_settled *s)
{
	struct vw_out o = {
		.project = s->project,
		.event = s->event,
		.type = s->type,
		.path = s->path,
		.old_path = s->old_path,
		.truncated = s->truncated,
		.ev = s->ev,
		.source = s->source,
	};
	cJSON *j = change_obj(&o);

	if (!j)
		return -ENOMEM;
	if ((s->writes && !cJSON_AddNumberToObject(j, "writes", s->writes)) ||
	    (s->by && !cJSON_AddStringToObject(j, "by", s->by)) ||
	    !cJSON_AddNumberToObject(j, "batch", (double)s->batch) ||
	    !cJSON_AddNumberToObject(j, "batch_size", s->batch_size)) {
		cJSON_Delete(j);
		return -ENOMEM;
	}
	return line_write(f, j);
}

int json_out_ready(FILE *f, const char *backend, const struct vw_projects *t, int pid)
{
	cJSON *j = line_new("ready", 0), *arr;

	if (!j)
		return -ENOMEM;
	if (!cJSON_AddStringToObject(j, "backend", backend) ||
	    !cJSON_AddNumberToObject(j, "pid", pid) ||
	    !(arr = cJSON_AddArrayToObject(j, "projects")))
		goto nomem;
	for (size_t i = 0; i < t->n; i++) {
		cJSON *p;

		if (t->v[i].gone)
			continue;
		p = cJSON_CreateObject();

		if (!p)
			goto nomem;
		cJSON_AddItemToArray(arr, p);
		if (!cJSON_AddStringToObject(p, "name", t->v[i].name) ||
		    !add_name(p, "root", t->v[i].root))
			goto nomem;
	}
	return line_write(f, j);
nomem:
	cJSON_Delete(j);
	return -ENOMEM;
}

int json_out_overflow(FILE *f, const char *reason, uint64_t lost)
{
	cJSON *j = line_new("overflow", 0);

	if (!j)
		return -ENOMEM;
	if (!cJSON_AddStringToObject(j, "reason", reason) ||
	    !cJSON_AddNumberToObject(j, "lost", (double)lost)) {
		cJSON_Delete(j);
		return -ENOMEM;
	}
	return line_write(f, j);
}

int json_out_stop(FILE *f, const char *reason)
{
	cJSON *j = line_new("stop", 0);

	if (!j)
		return -ENOMEM;
	if (!cJSON_AddStringToObject(j, "reason", reason)) {
		cJSON_Delete(j);
		return -ENOMEM;
	}
	return line_write(f, j);
}

int json_out_project(FILE *f, const char *event, const struct vw_project *p)
{
	cJSON *j = line_new(event, 0);

	if (!j)
		return -ENOMEM;
	if (!cJSON_AddStringToObject(j, "project", p->name) || !add_name(j, "root", p->root)) {
		cJSON_Delete(j);
		return -ENOMEM;
	}
	return line_write(f, j);
}

int json_out_rescan(FILE *f, const char *phase, const struct vw_project *p, bool fresh)
{
	cJSON *j = line_new("rescan", 0);
	bool done = strcmp(phase, "done") == 0;

	if (!j)
		return -ENOMEM;
	if (!cJSON_AddStringToObject(j, "phase", phase) ||
	    !cJSON_AddStringToObject(j, "project", p->name) ||
	    !cJSON_AddStringToObject(j, "reason", p->rescan_reason ? p->rescan_reason : "") ||
	    (fresh && !cJSON_AddTrueToObject(j, "fresh")) ||
	    (done && (!cJSON_AddNumberToObject(j, "entries", (double)p->rescan_entries) ||
		      !cJSON_AddNumberToObject(j, "changes", (double)p->rescan_changes)))) {
		cJSON_Delete(j);
		return -ENOMEM;
	}
	return line_write(f, j);
}

int json_out_analyzer(FILE *f, const struct vw_analyzer_result *r)
{
	cJSON *j = line_new("analyzer", 0), *paths;
	bool ok;

	if (!j)
		return -ENOMEM;
	ok = cJSON_AddStringToObject(j, "analyzer", r->analyzer) &&
	     cJSON_AddStringToObject(j, "project", r->project->name) &&
	     (!r->event || cJSON_AddStringToObject(j, "change", r->event)) &&
	     (r->path || cJSON_AddNumberToObject(j, "changes", r->changes)) &&
	     (paths = cJSON_AddArrayToObject(j, "paths")) &&
	     cJSON_AddStringToObject(j, "status", r->status) &&
	     cJSON_AddNumberToObject(j, "attempt", r->attempt) &&
	     cJSON_AddNumberToObject(j, "duration_ms", (double)r->duration_ms) &&
	     (r->exit_code < 0 || cJSON_AddNumberToObject(j, "exit_code", r->exit_code)) &&
	     (!r->signal || cJSON_AddNumberToObject(j, "signal", r->signal));
	if (ok && r->path) {
		cJSON *p = cJSON_CreateObject();

		ok = p && add_name(p, "path", r->path);
		if (p)
			cJSON_AddItemToArray(paths, p);
	}
	if (!ok) {
		cJSON_Delete(j);
		return -ENOMEM;
	}
	return line_write(f, j);
}

static char *dup_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
}

int json_parse_dead(const char *line, struct vw_dead *d)
{
	cJSON *j = cJSON_Parse(line), *paths, *first;
	int ret = -EINVAL;

	memset(d, 0, sizeof(*d));
	if (!j)
		return -EINVAL;
	paths = cJSON_GetObjectItemCaseSensitive(j, "paths");
	first = cJSON_IsArray(paths) ? cJSON_GetArrayItem(paths, 0) : NULL;
	d->project = dup_str(j, "project");
	d->analyzer = dup_str(j, "analyzer");
	d->event = dup_str(j, "change");
	/* the exact bytes when the name is not UTF-8 are in path_b64: such jobs stay dead */
	d->path = first && !cJSON_GetObjectItemCaseSensitive(first, "path_b64") ?
			  dup_str(first, "path") :
			  NULL;
	if (d->project && d->analyzer && d->event)
		ret = 0;
	cJSON_Delete(j);
	return ret;
}

void json_dead_free(struct vw_dead *d)
{
	free(d->project);
	free(d->analyzer);
	free(d->event);
	free(d->path);
}
