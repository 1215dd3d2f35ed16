// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// main.c: argv, setup order, teardown order; the subcommands run, probe, version, help.
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <bpf/libbpf.h>
#include <cjson/cJSON.h>

#include "events.h"
#include "fanotify.h"
#include "json_out.h"
#include "loader.h"
#include "log.h"
#include "loop.h"
#include "project.h"
#include "ringbuf.h"
#include "util.h"

#define VW_VERSION "0.1.0"
#define EXIT_SETUP 1
#define EXIT_USAGE 2
#define STATS_PERIOD_MS 250
#define BTF_PATH "/sys/kernel/btf/vmlinux"

struct run_opts {
	const char **watch;
	size_t nwatch;
	enum vw_backend backend;
	bool raw;
	const char *pin_dir;
	uint32_t ringbuf_bytes;
	int verbose;
};

struct daemon {
	struct vw_projects projects;
	struct vw_loader *loader;	/* BPF backends */
	struct vw_fan *fan;		/* or the fanotify backend */
	struct vw_decoder *dec;
	struct ring_buffer *rb;
	struct vw_loop *loop;
	int sfd, tfd;
	FILE *out;
	uint64_t lost_seen;	/* ring-buffer-full count already reported */
	uint64_t bad_seen;
	uint64_t unresolved_seen;
	uint64_t fan_lost_seen;
	uint64_t fan_unresolved_seen;
	bool out_broken;
	enum vw_backend backend;
};

static void usage(FILE *f)
{
	fputs("usage: vfswatch run [--watch DIR]... [--backend auto|fentry|tracepoint|fanotify] [--raw]\n"
	      "                    [--pin-dir DIR | --no-pin] [--ringbuf-mb N] [-v]...\n"
	      "       vfswatch probe\n"
	      "       vfswatch version\n"
	      "\n"
	      "run     watch the directories (default: the current one) and print one JSON\n"
	      "        line per change on stdout; logs go to stderr. Needs root and a kernel\n"
	      "        with BTF. SIGINT/SIGTERM drain pending events and exit 0.\n"
	      "        --watch, -w DIR     a project root; repeat for more projects\n"
	      "        --backend, -b B     auto tries fentry, then tracepoint, then fanotify\n"
	      "        --raw               one line per kernel event (the only mode so far)\n"
	      "        --pin-dir DIR       pin maps and programs there (default "
	      VW_PIN_DIR_DEFAULT ")\n"
	      "        --no-pin            do not pin\n"
	      "        --ringbuf-mb N      ring buffer size in MiB, a power of two (default 8)\n"
	      "        -v                  more diagnostics on stderr (-vv, -vvv for libbpf)\n"
	      "probe   print as JSON which backends this kernel supports, and why not\n",
	      f);
}

/* The kernel's BTF; VFSWATCH_BTF_PATH overrides it so tests can play a kernel without BTF. */
static const char *btf_path(void)
{
	const char *p = getenv("VFSWATCH_BTF_PATH");

	return p && *p ? p : BTF_PATH;
}

static bool have_btf(void)
{
	return access(btf_path(), R_OK) == 0;
}

static int require_root_and_btf(enum vw_backend b)
{
	if (geteuid() != 0) {
		log_warnx("must run as root: BPF programs and fanotify filesystem marks need "
			  "CAP_SYS_ADMIN");
		return -EPERM;
	}
	if (b == VW_BACKEND_FANOTIFY || b == VW_BACKEND_AUTO)
		return 0;	/* auto falls back to fanotify without BTF */
	if (!have_btf()) {
		log_warnx("this kernel has no BTF (%s is missing): the BPF backends need a kernel "
			  "built with CONFIG_DEBUG_INFO_BTF=y",
			  btf_path());
		return -ENOENT;
	}
	return 0;
}

static void on_out(void *ctx, const struct vw_out *o)
{
	struct daemon *d = ctx;

	if (!d->out_broken && json_out_change(d->out, o) < 0)
		d->out_broken = true;
}

static void on_event(void *ctx, const struct vw_event *ev)
{
	struct daemon *d = ctx;

	log_debug("event: op %u project %u path_len %zu '%.*s' old %u '%.*s' flags %#x", ev->op,
		  ev->project, ev->path_len, (int)ev->path_len, ev->path ? ev->path : "",
		  ev->old_project, (int)ev->old_path_len, ev->old_path ? ev->old_path : "", ev->flags);
	events_route(&d->projects, ev, on_out, d);
}

static int flush_out(struct daemon *d)
{
	if (fflush(d->out) == EOF || ferror(d->out))
		d->out_broken = true;
	if (d->out_broken) {
		log_warnx("output: stdout closed; stopping");
		loop_stop(d->loop);
	}
	return 0;
}

static int on_ringbuf(void *ctx, uint32_t events)
{
	struct daemon *d = ctx;
	int n = ring_buffer__consume(d->rb);

	if (n < 0)
		log_warnx("ringbuf: consume: %s", errstr(n));
	return flush_out(d);
}

/* Report kernel-side and decode-side losses as overflow lines: never silent. */
static void check_losses(struct daemon *d)
{
	uint64_t st[VW_STAT_MAX], bad = d->dec ? decoder_bad_samples(d->dec) : 0;

	if (d->fan && fan_overflows(d->fan) > d->fan_lost_seen) {
		json_out_overflow(d->out, "fanotify_queue", fan_overflows(d->fan) - d->fan_lost_seen);
		log_warnx("fanotify: event queue overflowed");
		d->fan_lost_seen = fan_overflows(d->fan);
	}
	if (d->fan && fan_unresolved(d->fan) > d->fan_unresolved_seen) {
		json_out_overflow(d->out, "unresolved", fan_unresolved(d->fan) - d->fan_unresolved_seen);
		d->fan_unresolved_seen = fan_unresolved(d->fan);
	}
	if (!d->loader)
		return;
	if (loader_stats(d->loader, st) == 0 && st[VW_STAT_RINGBUF_FULL] > d->lost_seen) {
		json_out_overflow(d->out, "ringbuf_full", st[VW_STAT_RINGBUF_FULL] - d->lost_seen);
		log_warnx("ringbuf: %llu records lost (ring buffer full)",
			  (unsigned long long)(st[VW_STAT_RINGBUF_FULL] - d->lost_seen));
		d->lost_seen = st[VW_STAT_RINGBUF_FULL];
	}
	if (loader_stats(d->loader, st) == 0 && st[VW_STAT_UNRESOLVED] > d->unresolved_seen) {
		json_out_overflow(d->out, "unresolved", st[VW_STAT_UNRESOLVED] - d->unresolved_seen);
		d->unresolved_seen = st[VW_STAT_UNRESOLVED];
	}
	if (bad > d->bad_seen) {
		json_out_overflow(d->out, "bad_record", bad - d->bad_seen);
		d->bad_seen = bad;
	}
}

static int on_fanotify(void *ctx, uint32_t events)
{
	struct daemon *d = ctx;
	int ret = fan_read(d->fan, on_event, d);

	if (ret < 0)
		log_warnx("fanotify: read: %s", strerror(-ret));
	check_losses(d);
	return flush_out(d);
}

static int on_timer(void *ctx, uint32_t events)
{
	struct daemon *d = ctx;
	uint64_t expirations;

	if (read(d->tfd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		return -errno;
	check_losses(d);
	return flush_out(d);
}

static int on_signal(void *ctx, uint32_t events)
{
	struct daemon *d = ctx;
	struct signalfd_siginfo si;

	while (read(d->sfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM) {
			log_info("signal %d: draining and stopping", si.ssi_signo);
			loop_stop(d->loop);
		} else if (si.ssi_signo == SIGHUP) {
			log_info("SIGHUP: nothing to reload without a config file");
		}
	}
	return 0;
}

static int setup_fds(struct daemon *d)
{
	struct itimerspec its = {
		.it_interval = { 0, STATS_PERIOD_MS * 1000000L },
		.it_value = { 0, STATS_PERIOD_MS * 1000000L },
	};
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	d->sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (d->sfd < 0)
		return -errno;
	d->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (d->tfd < 0 || timerfd_settime(d->tfd, 0, &its, NULL) < 0)
		return -errno;
	return 0;
}

static int run_projects(struct daemon *d, const struct run_opts *o)
{
	char err[PATH_MAX + 256];
	const char *here[] = { "." };
	const char **dirs = o->nwatch ? o->watch : here;
	size_t n = o->nwatch ? o->nwatch : 1;

	if (!o->nwatch)
		log_info("no --watch given: watching the current directory");
	for (size_t i = 0; i < n; i++) {
		int ret = projects_add(&d->projects, dirs[i], NULL, err, sizeof(err));

		if (ret) {
			log_warnx("watch: %s", err);
			return ret;
		}
	}
	return 0;
}

/* A BPF backend: load, register the projects, consume the ring buffer. */
static int setup_bpf(struct daemon *d, const struct run_opts *o, char *err, size_t errlen)
{
	struct vw_loader_opts lo = {
		.backend = o->backend,
		.pin_dir = o->pin_dir,
		.ringbuf_bytes = o->ringbuf_bytes,
	};
	int ret;

	d->loader = loader_new(&lo, err, errlen);
	if (!d->loader)
		return -EINVAL;
	for (size_t i = 0; i < d->projects.n; i++) {
		ret = loader_add_project(d->loader, &d->projects.v[i]);
		if (ret) {
			snprintf(err, errlen, "register %s: %s", d->projects.v[i].root, errstr(ret));
			return ret;
		}
	}
	d->dec = decoder_new(on_event, d);
	if (!d->dec)
		return -ENOMEM;
	d->rb = ring_buffer__new(loader_events_fd(d->loader), decoder_sample, d->dec, NULL);
	if (!d->rb)
		return -errno;
	return loop_add(d->loop, ring_buffer__epoll_fd(d->rb), on_ringbuf, d);
}

static int setup_fanotify(struct daemon *d, char *err, size_t errlen)
{
	d->fan = fan_new(&d->projects, err, errlen);
	if (!d->fan)
		return -EINVAL;
	return loop_add(d->loop, fan_fd(d->fan), on_fanotify, d);
}

/*
 * Pick the backend: a forced one, or auto: fentry, then tracepoint, then
 * fanotify when no BPF set works (or the kernel has no BTF).
 */
static int setup_backend(struct daemon *d, const struct run_opts *o)
{
	char err[8192] = "";
	int ret;

	if (o->backend != VW_BACKEND_FANOTIFY && (o->backend != VW_BACKEND_AUTO || have_btf())) {
		ret = setup_bpf(d, o, err, sizeof(err));
		if (!ret) {
			d->backend = loader_backend(d->loader);
			return 0;
		}
		if (o->backend != VW_BACKEND_AUTO) {
			log_warnx("loader: %s", err);
			return ret;
		}
		log_warnx("loader: %s", err);
		log_warnx("loader: no BPF backend works here; falling back to fanotify");
		ring_buffer__free(d->rb);
		d->rb = NULL;
		decoder_free(d->dec);
		d->dec = NULL;
		loader_free(d->loader);
		d->loader = NULL;
	} else if (o->backend == VW_BACKEND_AUTO) {
		log_warnx("kernel has no BTF (%s): using the fanotify backend", btf_path());
	}
	ret = setup_fanotify(d, err, sizeof(err));
	if (ret) {
		log_warnx("fanotify: %s", err);
		return ret;
	}
	d->backend = VW_BACKEND_FANOTIFY;
	return 0;
}

static int run_setup(struct daemon *d, const struct run_opts *o)
{
	int ret;

	d->loop = loop_new();
	if (!d->loop)
		return -ENOMEM;
	ret = setup_fds(d);
	if (!ret)
		ret = loop_add(d->loop, d->sfd, on_signal, d);
	if (!ret)
		ret = loop_add(d->loop, d->tfd, on_timer, d);
	if (!ret)
		ret = setup_backend(d, o);
	return ret;
}

static void run_teardown(struct daemon *d)
{
	/* Stop the hooks first, then drain what they already sent. */
	if (d->loader)
		loader_detach(d->loader);
	if (d->rb)
		ring_buffer__consume(d->rb);
	if (d->fan)
		fan_read(d->fan, on_event, d);
	if (d->rb || d->fan) {
		check_losses(d);
		json_out_stop(d->out, "signal");
		fflush(d->out);
	}
	ring_buffer__free(d->rb);
	fan_free(d->fan);
	decoder_free(d->dec);
	loader_free(d->loader);
	loop_free(d->loop);
	if (d->sfd >= 0)
		close(d->sfd);
	if (d->tfd >= 0)
		close(d->tfd);
	projects_free(&d->projects);
}

static int cmd_run(const struct run_opts *o)
{
	struct daemon d = { .sfd = -1, .tfd = -1, .out = stdout };
	int ret, code = 0;

	ret = run_projects(&d, o);
	if (ret) {
		projects_free(&d.projects);
		return EXIT_USAGE;
	}
	if (require_root_and_btf(o->backend)) {
		projects_free(&d.projects);
		return EXIT_SETUP;
	}
	ret = run_setup(&d, o);
	if (ret) {
		if (ret != -EINVAL && ret != -EPERM)
			log_warnx("setup: %s", errstr(ret));
		code = EXIT_SETUP;
		goto out;
	}
	json_out_ready(d.out, backend_name(d.backend), &d.projects, getpid());
	flush_out(&d);
	while (!loop_stopped(d.loop)) {
		ret = loop_run_once(d.loop, -1);
		if (ret) {
			log_warnx("loop: %s", strerror(-ret));
			code = EXIT_SETUP;
			break;
		}
	}
out:
	run_teardown(&d);
	return code;
}

static int cmd_probe(void)
{
	static const enum vw_backend sets[] = { VW_BACKEND_FENTRY, VW_BACKEND_TRACEPOINT };
	cJSON *j = cJSON_CreateObject(), *arr;
	const char *chosen = NULL;
	char why[8192], *s;
	int root = geteuid() == 0, btf = access(btf_path(), R_OK) == 0;

	if (!j || !(arr = cJSON_AddArrayToObject(j, "backends")))
		return EXIT_SETUP;
	cJSON_AddBoolToObject(j, "root", root);
	cJSON_AddBoolToObject(j, "btf", btf);
	for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		cJSON *b = cJSON_CreateObject();
		int ret = -EPERM;

		if (!b)
			break;
		cJSON_AddItemToArray(arr, b);
		cJSON_AddStringToObject(b, "name", backend_name(sets[i]));
		if (!root)
			snprintf(why, sizeof(why), "not root");
		else if (!btf)
			snprintf(why, sizeof(why), "no kernel BTF at %s", btf_path());
		else
			ret = loader_probe(sets[i], why, sizeof(why));
		cJSON_AddBoolToObject(b, "usable", ret == 0);
		if (ret)
			cJSON_AddStringToObject(b, "reason", why);
		else if (!chosen)
			chosen = backend_name(sets[i]);
	}
	{
		cJSON *b = cJSON_CreateObject();
		int ret = root ? fan_probe(why, sizeof(why)) : -EPERM;

		if (b) {
			cJSON_AddItemToArray(arr, b);
			cJSON_AddStringToObject(b, "name", "fanotify");
			cJSON_AddBoolToObject(b, "usable", ret == 0);
			if (ret)
				cJSON_AddStringToObject(b, "reason", root ? why : "not root");
			else if (!chosen)
				chosen = "fanotify";
		}
	}
	if (chosen)
		cJSON_AddStringToObject(j, "auto", chosen);
	else
		cJSON_AddNullToObject(j, "auto");
	s = cJSON_Print(j);
	if (s)
		puts(s);
	cJSON_free(s);
	cJSON_Delete(j);
	return chosen ? 0 : EXIT_SETUP;
}

static int parse_run(int argc, char **argv, struct run_opts *o)
{
	static const struct option opts[] = {
		{ "watch", required_argument, NULL, 'w' },
		{ "backend", required_argument, NULL, 'b' },
		{ "raw", no_argument, NULL, 'r' },
		{ "pin-dir", required_argument, NULL, 'P' },
		{ "no-pin", no_argument, NULL, 'N' },
		{ "ringbuf-mb", required_argument, NULL, 'R' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t mb;
	int c;

	o->pin_dir = VW_PIN_DIR_DEFAULT;
	while ((c = getopt_long(argc, argv, "w:b:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'w':
			o->watch[o->nwatch++] = optarg;
			break;
		case 'b':
			if (backend_parse(optarg, &o->backend)) {
				log_warnx("unknown backend '%s' (auto, fentry, tracepoint, fanotify)",
					  optarg);
				return -EINVAL;
			}
			break;
		case 'r':
			o->raw = true;
			break;
		case 'P':
			if (optarg[0] != '/') {
				log_warnx("--pin-dir must be an absolute path under a bpf filesystem");
				return -EINVAL;
			}
			o->pin_dir = optarg;
			break;
		case 'N':
			o->pin_dir = NULL;
			break;
		case 'R':
			if (parse_u64(optarg, 1, 1024, &mb) || (mb & (mb - 1))) {
				log_warnx("--ringbuf-mb: '%s' is not a power of two from 1 to 1024", optarg);
				return -EINVAL;
			}
			o->ringbuf_bytes = (uint32_t)(mb << 20);
			break;
		case 'v':
			o->verbose++;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		log_warnx("unexpected argument '%s' (directories go after --watch)", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct run_opts o = {};
	const char *cmd = argc > 1 ? argv[1] : "help";
	int ret;

	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0) {
		printf("vfswatch %s\n", VW_VERSION);
		return 0;
	}
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) {
		usage(stdout);
		return argc > 1 ? 0 : EXIT_USAGE;
	}
	loader_init_logging();
	if (strcmp(cmd, "probe") == 0) {
		log_init(argc > 2 && strcmp(argv[2], "-v") == 0);
		return cmd_probe();
	}
	if (strcmp(cmd, "run") != 0) {
		log_warnx("unknown command '%s'", cmd);
		usage(stderr);
		return EXIT_USAGE;
	}
	o.watch = calloc(argc, sizeof(*o.watch));
	if (!o.watch)
		return EXIT_SETUP;
	ret = parse_run(argc - 1, argv + 1, &o);
	log_init(o.verbose);
	if (!ret)
		ret = cmd_run(&o);
	else
		ret = EXIT_USAGE;
	free(o.watch);
	return ret;
}
