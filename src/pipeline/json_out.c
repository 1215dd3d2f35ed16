// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// json_out.c: one JSON object per line on the event stream; names that are not UTF-8 stay recoverable.
#define _GNU_SOURCE	/* the _unlocked stdio calls */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "pipeline/json_out.h"
#include "core/util.h"

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
bool json_add_name(cJSON *o, const char *key, const char *s)
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

/*
 * Change lines are the hot path (one per kernel event with --raw): they are
 * written straight into the stream, with no tree of objects and no number
 * formatting through doubles. The escaping is cJSON's (RFC 8259: quote,
 * backslash and control bytes; everything else as is, valid UTF-8 only).
 */
static void put_str(FILE *f, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t run = 0;

	putc_unlocked('"', f);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *esc = NULL;
		char u[7];

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		fwrite_unlocked(s + run, 1, i - run, f);
		run = i + 1;
		switch (c) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		default:
			memcpy(u, "\\u00", 4);
			u[4] = hex[c >> 4];
			u[5] = hex[c & 15];
			u[6] = 0;
			esc = u;
		}
		fputs_unlocked(esc, f);
	}
	fwrite_unlocked(s + run, 1, len - run, f);
	putc_unlocked('"', f);
}

/* ,"key": */
static void put_key(FILE *f, const char *key)
{
	putc_unlocked(',', f);
	put_str(f, key, strlen(key));
	putc_unlocked(':', f);
}

static void put_kstr(FILE *f, const char *key, const char *s)
{
	put_key(f, key);
	put_str(f, s, strlen(s));
}

static void put_knum(FILE *f, const char *key, uint64_t v)
{
	char d[24], *p = d + sizeof(d);

	do
		*--p = (char)('0' + v % 10);
	while ((v /= 10));
	put_key(f, key);
	fwrite_unlocked(p, 1, (size_t)(d + sizeof(d) - p), f);
}

/* A name: the text when it is UTF-8; otherwise lossy text and "<key>_b64" (json_add_name()). */
static int put_name(FILE *f, const char *key, const char *s)
{
	size_t len = strlen(s);
	char b64key[32];
	char *lossy, *b64;

	if (utf8_valid(s, len)) {
		put_key(f, key);
		put_str(f, s, len);
		return 0;
	}
	lossy = utf8_lossy(s, len);
	b64 = base64_encode((const unsigned char *)s, len);
	if (lossy && b64) {
		snprintf(b64key, sizeof(b64key), "%s_b64", key);
		put_kstr(f, key, lossy);
		put_kstr(f, b64key, b64);
	}
	free(lossy);
	free(b64);
	return lossy && b64 ? 0 : -ENOMEM;
}

/* The fields every change line has, from "{" on; the caller closes the object. */
static int put_change(FILE *f, const struct vw_out *o)
{
	const struct vw_event *ev = o->ev;
	char ts[64];
	int ret = 0;

	format_boot_ns(ev->ts_ns ? ev->ts_ns : now_ns(CLOCK_BOOTTIME), ts, sizeof(ts));
	fputs_unlocked("{\"v\":", f);
	fputs_unlocked(VW_SCHEMA_VERSION_STR, f);
	put_kstr(f, "time", ts);
	put_kstr(f, "event", kind_name(o->kind));
	put_kstr(f, "project", o->project->name);
	ret |= put_name(f, "root", o->project->root);
	ret |= put_name(f, "path", o->path);
	if (o->old_path)
		ret |= put_name(f, "old_path", o->old_path);
	if (o->type)
		put_kstr(f, "type", o->type);
	if (!(ev->flags & VW_EVU_NO_PID))
		put_knum(f, "pid", ev->tgid);
	if (!(ev->flags & VW_EVU_NO_TID))
		put_knum(f, "tid", ev->pid);
	if (!(ev->flags & VW_EVU_NO_COMM))
		ret |= put_name(f, "comm", ev->comm);
	if (!(ev->flags & VW_EVU_NO_UID))
		put_knum(f, "uid", ev->uid);
	if (!(ev->flags & VW_EVU_NO_CGROUP))
		put_knum(f, "cgroup", ev->cgroup_id);
	if (o->truncated)
		fputs_unlocked(",\"truncated\":true", f);
	if (o->exchange)
		fputs_unlocked(",\"exchange\":true", f);
	put_kstr(f, "source", o->source ? o->source : "kernel");
	return ret;
}

static int line_end(FILE *f, int ret)
{
	fputs_unlocked("}\n", f);
	if (ferror(f))
		return -EIO;
	return ret;
}

int json_out_change(FILE *f, const struct vw_out *o)
{
	return line_end(f, put_change(f, o));
}

int json_out_settled(FILE *f, const struct vw_settled *s)
{
	struct vw_out o = {
		.project = s->project,
		.kind = s->kind,
		.type = s->type,
		.path = s->path,
		.old_path = s->old_path,
		.truncated = s->truncated,
		.ev = s->ev,
		.source = s->source,
	};
	int ret = put_change(f, &o);

	if (s->writes)
		put_knum(f, "writes", s->writes);
	if (s->by)
		put_kstr(f, "by", s->by);
	put_knum(f, "batch", s->batch);
	put_knum(f, "batch_size", s->batch_size);
	if (s->cursor)
		put_kstr(f, "cursor", s->cursor);
	return line_end(f, ret);
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
		    !json_add_name(p, "root", t->v[i].root))
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
	if (!cJSON_AddStringToObject(j, "project", p->name) || !json_add_name(j, "root", p->root)) {
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
	     (!r->signal || cJSON_AddNumberToObject(j, "signal", r->signal)) &&
	     (!r->reason || cJSON_AddStringToObject(j, "reason", r->reason));
	if (ok && r->path) {
		cJSON *p = cJSON_CreateObject();

		ok = p && json_add_name(p, "path", r->path);
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
