/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* json_out.h: the JSON-lines event stream (schema version VW_SCHEMA_VERSION); the only cJSON user. */
#ifndef VW_JSON_OUT_H
#define VW_JSON_OUT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "pipeline/debounce.h"
#include "pipeline/route.h"
#include "store/project.h"

#define VW_SCHEMA_VERSION 1
#define VW_SCHEMA_VERSION_STR "1"

struct cJSON;
/*
 * Add the name @s under @key: the text when it is valid UTF-8; otherwise the
 * text with U+FFFD for each bad byte, plus "<key>_b64" with the exact bytes.
 */
bool json_add_name(struct cJSON *o, const char *key, const char *s);

/* Each writes one line to @f. Return 0 or -errno (ENOMEM, EIO). */
int json_out_change(FILE *f, const struct vw_out *o);	/* --raw: one per kernel event */
int json_out_settled(FILE *f, const struct vw_settled *s);	/* default: net change, batched */
int json_out_ready(FILE *f, const char *backend, const struct vw_projects *t, int pid);
int json_out_overflow(FILE *f, const char *reason, uint64_t lost);
int json_out_stop(FILE *f, const char *reason);
/* One finished (or dropped) analyzer job. */
struct vw_analyzer_result {
	const char *analyzer;
	const struct vw_project *project;
	const char *event, *path;	/* per-event jobs; NULL for a batch job */
	unsigned int changes;		/* batch jobs: changes given on stdin */
	const char *status;	/* "ok" "failed" (will be retried) "dead" "dropped" */
	int exit_code;		/* -1: none (signal, or never ran) */
	int signal;
	unsigned int attempt;
	uint64_t duration_ms;
	const char *reason;	/* why a job never ran (NULL: it ran) */
};

int json_out_analyzer(FILE *f, const struct vw_analyzer_result *r);

/* One dead-letter line read back (for ctl retry-dead); strings owned, freed by json_dead_free. */
struct vw_dead {
	char *project, *analyzer, *event, *path;
};

int json_parse_dead(const char *line, struct vw_dead *d);
void json_dead_free(struct vw_dead *d);

/* "project_added" / "project_removed" with the project's name and root. */
int json_out_project(FILE *f, const char *event, const struct vw_project *p);
/*
 * {"event":"rescan","phase":"start"|"done","project":...,"reason":...}: a
 * crawl compares a project with what the stream told; its differences follow
 * as lines with "source":"rescan" until "done" (with "entries" and
 * "changes"). "fresh":true: nothing to compare with (a damaged snapshot), so
 * what changed is not known; a consumer reads the project anew.
 */
int json_out_rescan(FILE *f, const char *phase, const struct vw_project *p, bool fresh);

#endif
