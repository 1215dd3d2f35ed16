/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* config.h: the JSON config file: global settings and projects, validated key by key. */
#ifndef VW_CONFIG_H
#define VW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/record.h"

#define VW_CONFIG_DEFAULT "/etc/vfswatch/config.json"
#define VW_RUN_DIR_DEFAULT "/run/vfswatch"

/* One analyzer rule of a project (from the config). */
struct vw_analyzer {
	char *name;
	char **match;		/* globs; a pattern without '/' matches the base name */
	size_t nmatch;
	unsigned int events;	/* VW_AN_EV(kind) of create, modify, delete, rename */
	char **on_change;	/* argv template for create/modify/rename, NULL-terminated */
	char **on_delete;	/* argv template for delete */
	char **batch;		/* argv template run once per batch, changes as JSON lines on stdin */
	uint64_t timeout_ms;
	unsigned int retries;
	unsigned int concurrency;
	bool as_root;		/* "user": "root" */
	char *user;		/* "user": another account by name; NULL: the owner of the root */
	uint64_t retry_delay_ms;	/* first retry after this; doubles each time */
	uint64_t limit_memory_mb, limit_cpu_s, limit_nofile;	/* 0: not limited */
};

#define VW_AN_EV(kind) (1u << (kind))

void analyzers_free(struct vw_analyzer *a, size_t n);

/*
 * The table never moves its entries (other modules keep pointers to them):
 * it is allocated once for VW_PROJECTS_MAX, and removal marks "gone". The
 * slot of a removed project is given to a new one once the daemon has said
 * nothing refers to it (reclaimable); ids are never reused.
 */
#define VW_PROJECTS_MAX 1024

struct vw_config_project {
	char *name;		/* NULL: the root's base name */
	char *root;
	char **ignore;		/* extra patterns */
	size_t nignore;
	bool gitignore;
	bool default_ignores;
	char **readers;		/* users ("name") and groups ("@name") who may read it; NULL-ended */
	struct vw_analyzer *analyzers;	/* handed over to the project that uses them */
	size_t nanalyzers;
};

struct vw_config {
	/* each is set only when the file names it (has_*) */
	bool has_settle, has_max_delay, has_batch_max, has_backend, has_skip_identical;
	uint64_t settle_ms, max_delay_ms, batch_max;
	bool has_journal_mb, has_user_projects, has_state_keep_days, has_user_reply_mb;
	uint64_t user_reply_mb;	/* a user's unread replies, all connections together */
	uint64_t state_keep_days;	/* files of no project in the state dir are kept this long */
	uint64_t journal_mb;	/* each project's change log, for cursors */
	uint64_t user_projects;	/* projects each user may add over client.sock */
	char *backend;
	bool skip_identical;
	char *run_dir;		/* NULL: VW_RUN_DIR_DEFAULT */
	char *socket_group;	/* NULL: the control socket is root's only */
	char *state_dir;	/* NULL: VW_STATE_DIR_DEFAULT */
	char *metrics_file;	/* Prometheus text, rewritten every 10 s; NULL: none */
	int verbose;
	struct vw_config_project *projects;
	size_t nprojects;
};

/*
 * Parse and validate @path. On failure returns NULL and writes "<file>: <key>:
 * <reason>" into @err. Unknown keys, wrong types and bad values are errors.
 */
struct vw_config *config_load(const char *path, char *err, size_t errlen);
void config_free(struct vw_config *c);	/* NULL is a no-op */

#endif
