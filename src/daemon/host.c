// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// host.c: what the host must offer (root, BTF, one daemon per run dir) and what the daemon keeps of it.
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/caps.h"
#include "core/log.h"
#include "core/util.h"
#include "daemon/daemon.h"
#include "daemon/daemon_priv.h"
#include "store/config.h"

#define BTF_PATH "/sys/kernel/btf/vmlinux"

/* The kernel's BTF; VFSWATCH_BTF_PATH overrides it so tests can play a kernel without BTF. */
const char *daemon_btf_path(void)
{
	const char *p = getenv("VFSWATCH_BTF_PATH");

	return p && *p ? p : BTF_PATH;
}

bool host_have_btf(void)
{
	return access(daemon_btf_path(), R_OK) == 0;
}

int host_require_root_and_btf(enum vw_backend b)
{
	if (geteuid() != 0) {
		log_warnx("must run as root: BPF programs and fanotify filesystem marks need "
			  "CAP_SYS_ADMIN");
		return -EPERM;
	}
	if (b == VW_BACKEND_FANOTIFY || b == VW_BACKEND_AUTO)
		return 0;	/* auto falls back to fanotify without BTF */
	if (!host_have_btf()) {
		log_warnx("this kernel has no BTF (%s is missing): the BPF backends need a kernel "
			  "built with CONFIG_DEBUG_INFO_BTF=y",
			  daemon_btf_path());
		return -ENOENT;
	}
	return 0;
}

/* One daemon per host: an flock on <run_dir>/vfswatch.lock, released by the kernel on a crash. */
int host_take_lock(struct daemon *d, const char *run_dir)
{
	char pid[32] = "";
	ssize_t n;

	if (mkdir(run_dir, 0755) < 0 && errno != EEXIST) {
		log_warn("lock: mkdir %s", run_dir);
		return -errno;
	}
	snprintf(d->lock_path, sizeof(d->lock_path), "%s/vfswatch.lock", run_dir);
	d->lock_fd = open(d->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (d->lock_fd < 0) {
		log_warn("lock: open %s", d->lock_path);
		return -errno;
	}
	if (flock(d->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		n = pread(d->lock_fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = 0;
		pid[strcspn(pid, "\n")] = 0;
		log_warnx("another vfswatch is already running (pid %s; lock %s)", *pid ? pid : "?",
			  d->lock_path);
		close(d->lock_fd);
		d->lock_fd = -1;
		d->lock_path[0] = 0;
		return -EBUSY;
	}
	n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(d->lock_fd, 0) < 0 || pwrite(d->lock_fd, pid, n, 0) != n)
		log_warn("lock: write %s", d->lock_path);
	return 0;
}

/* systemd's readiness protocol (Type=notify): one datagram to $NOTIFY_SOCKET. */
void host_notify(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len;
	int fd;

	if (!path || !*path || strlen(path) >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, strlen(path));
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = 0;	/* abstract namespace */
	len = offsetof(struct sockaddr_un, sun_path) + strlen(path);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&sa, len) < 0)
		log_warn("notify: %s", path);
	close(fd);
}

/* Fill what the command line left unset from the config file. */
void host_merge_config(struct run_opts *o, const struct vw_config *cfg)
{
	if (cfg->has_settle && !(o->set & SET_SETTLE))
		o->settle_ms = cfg->settle_ms;
	if (cfg->has_max_delay && !(o->set & SET_MAX_DELAY))
		o->max_delay_ms = cfg->max_delay_ms;
	if (cfg->has_batch_max && !(o->set & SET_BATCH_MAX))
		o->batch_max = cfg->batch_max;
	if (cfg->has_journal_mb)
		o->journal_mb = cfg->journal_mb;
	if (cfg->has_user_projects)
		o->user_projects = cfg->user_projects;
	if (cfg->has_user_reply_mb)
		o->user_reply_mb = cfg->user_reply_mb;
	if (cfg->has_state_keep_days)
		o->state_keep_days = cfg->state_keep_days;
	if (cfg->has_backend && !(o->set & SET_BACKEND))
		backend_parse(cfg->backend, &o->backend);
	if (cfg->has_skip_identical && !(o->set & SET_SKIP))
		o->skip_identical = cfg->skip_identical;
	if (cfg->run_dir && !(o->set & SET_RUN_DIR))
		o->run_dir = cfg->run_dir;
	if (cfg->socket_group)
		o->socket_group = cfg->socket_group;
	if (cfg->metrics_file)
		o->metrics_file = cfg->metrics_file;
	if (cfg->state_dir && !(o->set & SET_STATE_DIR))
		o->state_dir = cfg->state_dir;
	if (cfg->verbose > o->verbose) {
		o->verbose = cfg->verbose;
		log_init(o->verbose);
	}
}

/*
 * VFSWATCH_TEST_HOOKS, for tests that provoke the reader's interleavings: a
 * comma-separated list of reread_first (a wake-up's records are taken by a
 * re-read before the read it causes), no_reread (no re-read is planned: a
 * stand-in for a reader bug, which the liveness check must tell),
 * read_delay_us=N (every read of a kernel queue waits up to N us first, at
 * random) and wakeup_us=N (the kernel's wake-up window). Returns 0, or
 * -EINVAL with the reason logged.
 */
int host_test_hooks(struct daemon *d)
{
	const char *env = getenv("VFSWATCH_TEST_HOOKS");
	char buf[256], *tok, *save = NULL;
	uint64_t v;

	d->src_opts.wakeup_ns = VW_RB_WAKEUP_NS;
	if (!env || !*env)
		return 0;
	if (strlen(env) >= sizeof(buf)) {
		log_warnx("VFSWATCH_TEST_HOOKS: too long");
		return -EINVAL;
	}
	strcpy(buf, env);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (strcmp(tok, "reread_first") == 0)
			d->src_opts.reread_first = true;
		else if (strcmp(tok, "no_reread") == 0)
			d->src_opts.no_reread = true;
		else if (strncmp(tok, "read_delay_us=", 14) == 0 &&
			 parse_u64(tok + 14, 1, 1000000, &v) == 0)
			d->src_opts.read_delay_us = (uint32_t)v;
		else if (strncmp(tok, "wakeup_us=", 10) == 0 &&
			 parse_u64(tok + 10, 1, 10000000, &v) == 0)
			d->src_opts.wakeup_ns = v * 1000;
		else {
			log_warnx("VFSWATCH_TEST_HOOKS: unknown or bad hook '%s' (reread_first, "
				  "no_reread, read_delay_us=N, wakeup_us=N)", tok);
			return -EINVAL;
		}
	}
	log_warnx("VFSWATCH_TEST_HOOKS=%s: for tests only", env);
	return 0;
}

/*
 * Set up, the daemon keeps what it still uses: reading every file and
 * directory it watches (rescans, types, .gitignore; and open_by_handle_at for
 * fanotify), running analyzers as their owners and stopping them, and what
 * its source still needs (its ops->caps: CAP_SYS_ADMIN for fanotify's marks
 * of projects added later; CAP_BPF where the kernel asks for it on map
 * access). Everything else goes, from the bounding set too.
 */
int host_drop_caps(struct daemon *d)
{
	uint64_t keep = VW_CAP(CAP_DAC_READ_SEARCH) | VW_CAP(CAP_SETUID) | VW_CAP(CAP_SETGID) |
			VW_CAP(CAP_KILL);
	char err[256];
	int ret;

	if (d->src && d->src->ops->caps)
		keep = d->src->ops->caps(d->src, keep);
	ret = caps_keep(keep, err, sizeof(err));
	if (ret)
		log_warnx("capabilities: %s", err);
	return ret;
}
