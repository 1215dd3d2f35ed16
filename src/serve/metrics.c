// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// metrics.c: status -> Prometheus text format (version 0.0.4), written atomically.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "serve/metrics.h"

/* A label value: backslash, double quote and newline escaped. */
static void label(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f);
		if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void value(FILE *f, const cJSON *v)
{
	fprintf(f, " %.17g\n", cJSON_IsNumber(v) ? v->valuedouble : 0.0);
}

/* A metric without labels from a number of the status, if it is there. */
static void plain(FILE *f, const cJSON *st, const char *key, const char *name, const char *type,
		  const char *help)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(st, key);

	if (!cJSON_IsNumber(v))
		return;
	head(f, name, type, help);
	fputs(name, f);
	value(f, v);
}

/* A metric with one label per member of the object @key: {"a":1,...} -> name{lbl="a"} 1 */
static void by_member(FILE *f, const cJSON *st, const char *key, const char *name,
		      const char *lbl, const char *type, const char *help)
{
	const cJSON *o = cJSON_GetObjectItemCaseSensitive(st, key), *v;

	if (!cJSON_IsObject(o))
		return;
	head(f, name, type, help);
	cJSON_ArrayForEach(v, o) {
		fprintf(f, "%s{%s=", name, lbl);
		label(f, v->string);
		fputc('}', f);
		value(f, v);
	}
}

/* Per project: name{project="p"} from projects[].key */
static void per_project(FILE *f, const cJSON *projects, const char *key, const char *name,
			const char *type, const char *help)
{
	const cJSON *p;
	bool any = false;

	cJSON_ArrayForEach(p, projects) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, key);
		const char *pn = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, "name"));

		if (!cJSON_IsNumber(v) || !pn)
			continue;
		if (!any)
			head(f, name, type, help);
		any = true;
		fprintf(f, "%s{project=", name);
		label(f, pn);
		fputc('}', f);
		value(f, v);
	}
}

/* The status numbers told as they are: key, metric, type, help. NULL key: the analyzer results. */
static const struct {
	const char *key, *name, *type, *help;
} plains[] = {
	{ "pending_paths", "vfswatch_pending_paths", "gauge", "Paths waiting in a batch to settle." },
	{ "indexed_paths", "vfswatch_indexed_paths", "gauge", "Paths known to exist." },
	{ "lost", "vfswatch_lost_records_total", "counter",
	  "Kernel records lost (ring buffer or fanotify queue full); each starts a rescan." },
	{ "unresolved", "vfswatch_unresolved_total", "counter",
	  "Events whose path could not be named." },
	{ "bad_records", "vfswatch_bad_records_total", "counter",
	  "Malformed kernel records skipped." },
	{ "records_sent", "vfswatch_records_sent_total", "counter",
	  "Records the kernel put in the ring buffer (lost ones not counted)." },
	{ "records_read", "vfswatch_records_read_total", "counter",
	  "Ring-buffer records read; equals records sent once the reader has caught up." },
	{ "reader_stalls", "vfswatch_reader_stalls_total", "counter",
	  "Times the reader was found behind the kernel with no read owed (told, then rescanned)." },
	{ NULL, NULL, NULL, NULL },
	{ "analyzer_jobs_running", "vfswatch_analyzer_jobs_running", "gauge",
	  "Analyzer commands running." },
	{ "analyzer_jobs_queued", "vfswatch_analyzer_jobs_queued", "gauge",
	  "Analyzer jobs waiting to run." },
	{ "analyzer_jobs_late", "vfswatch_analyzer_jobs_late_total", "counter",
	  "Analyzer jobs that waited over 60 s for a slot once runnable." },
	{ "subscribers", "vfswatch_subscribers", "gauge", "Clients subscribed over client.sock." },
	{ "client_queue_stalls", "vfswatch_client_queue_stalls_total", "counter",
	  "Client queues found unsent to a writable socket at a tick (then sent)." },
	{ "client_queue_bytes", "vfswatch_client_queue_bytes", "gauge",
	  "Bytes queued for clients, not read by them yet." },
	{ "rss_kib", "vfswatch_resident_memory_kib", "gauge",
	  "Resident memory of the daemon (VmRSS), KiB." },
	{ "rss_anon_kib", "vfswatch_anon_memory_kib", "gauge",
	  "Anonymous resident memory of the daemon (RssAnon), KiB." },
};

int metrics_format(FILE *f, const cJSON *st)
{
	const cJSON *projects = cJSON_GetObjectItemCaseSensitive(st, "projects"), *p, *k, *v;
	bool any = false;

	plain(f, st, "uptime_s", "vfswatch_uptime_seconds", "gauge",
	      "Seconds since the daemon started.");
	head(f, "vfswatch_projects", "gauge", "Projects watched.");
	fprintf(f, "vfswatch_projects %d\n", cJSON_GetArraySize(projects));
	cJSON_ArrayForEach(p, projects) {
		const char *pn = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, "name"));
		const cJSON *ev = cJSON_GetObjectItemCaseSensitive(p, "events");

		if (!pn || !cJSON_IsObject(ev))
			continue;
		if (!any)
			head(f, "vfswatch_changes_total", "counter",
			     "Change lines told, by project and kind of change.");
		any = true;
		cJSON_ArrayForEach(v, ev) {
			fputs("vfswatch_changes_total{project=", f);
			label(f, pn);
			fputs(",event=", f);
			label(f, v->string);
			fputc('}', f);
			value(f, v);
		}
	}
	per_project(f, projects, "rescans", "vfswatch_rescans_total", "counter",
		    "Rescans done (after lost records, or at start).");
	per_project(f, projects, "known_paths", "vfswatch_known_paths", "gauge",
		    "Paths in the picture of the tree the stream has told.");
	for (size_t i = 0; i < sizeof(plains) / sizeof(plains[0]); i++)
		if (plains[i].key)
			plain(f, st, plains[i].key, plains[i].name, plains[i].type, plains[i].help);
		else
			by_member(f, st, "analyzer_jobs", "vfswatch_analyzer_jobs_total", "status",
				  "counter", "Analyzer results, by status.");
	k = cJSON_GetObjectItemCaseSensitive(st, "kernel");
	if (cJSON_IsObject(k)) {
		head(f, "vfswatch_kernel_total", "counter",
		     "The BPF programs' counters (status \"kernel\"), by name.");
		cJSON_ArrayForEach(v, k) {
			fputs("vfswatch_kernel_total{counter=", f);
			label(f, v->string);
			fputc('}', f);
			value(f, v);
		}
	}
	return ferror(f) ? -EIO : 0;
}

int metrics_write(const char *path, const cJSON *status)
{
	char tmp[PATH_MAX];
	FILE *f;
	int fd, ret;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	f = fdopen(fd, "w");
	if (!f) {
		ret = -errno;
		close(fd);
		unlink(tmp);
		return ret;
	}
	ret = metrics_format(f, status);
	if (fclose(f) == EOF && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path) < 0)
		ret = -errno;
	if (ret)
		unlink(tmp);
	return ret;
}
