/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* daemon.h: `vfswatch run`: set-up, the event loop and its handlers, teardown. */
#ifndef VW_DAEMON_H
#define VW_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "source/source.h"

#define EXIT_SETUP 1
#define EXIT_USAGE 2

/* run_opts.set: options given on the command line, which win over the config file */
#define SET_SETTLE	0x01
#define SET_MAX_DELAY	0x02
#define SET_BATCH_MAX	0x04
#define SET_BACKEND	0x08
#define SET_SKIP	0x10
#define SET_RUN_DIR	0x20
#define SET_STATE_DIR	0x40

struct run_opts {
	unsigned int set;
	const char *config;	/* --config FILE, or NULL */
	const char *run_dir;	/* lock file and control socket */
	const char *socket_group;	/* group also allowed on the control socket, or NULL */
	const char *state_dir;		/* snapshots for rescans; NULL: none kept */
	const char *metrics_file;	/* Prometheus text, every 10 s; NULL: none */
	const char **watch;
	size_t nwatch;
	enum vw_backend backend;
	bool raw;
	bool no_default_ignores, gitignore;
	const char **ignores;
	size_t nignores;
	uint64_t settle_ms, max_delay_ms, batch_max;
	uint64_t journal_mb;	/* each project's change log (cursors) */
	uint64_t user_projects;	/* projects each user may add over client.sock */
	uint64_t user_reply_mb;	/* a user's unread replies, all connections together */
	uint64_t state_keep_days;	/* files no project claims are deleted after this */
	bool no_kernel_coalesce;
	bool skip_identical;
	const char *pin_dir;
	uint32_t ringbuf_bytes;
	int verbose;
};

/* The kernel's BTF file (VFSWATCH_BTF_PATH overrides it, for tests). */
const char *daemon_btf_path(void);

/* Run until SIGINT/SIGTERM. Returns the exit code: 0, EXIT_SETUP or EXIT_USAGE. */
int daemon_run(const struct run_opts *o);

#endif
