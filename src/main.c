// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// main.c: argv and the subcommands run, probe, version, help.
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/fsmonitor.h"
#include "cli/request.h"
#include "cli/watchman_cli.h"
#include "store/changes.h"
#include "store/config.h"
#include "serve/control.h"
#include "serve/clients.h"
#include "daemon/daemon.h"
#include "store/state.h"
#include "source/fanotify.h"
#include "source/loader.h"
#include "core/log.h"
#include "core/util.h"

#define VW_VERSION "0.1.0"

static void usage(FILE *f)
{
	fputs("usage: vfswatch run [--watch DIR]... [--config FILE] [--run-dir DIR]\n"
	      "                    [--backend auto|fentry|tracepoint|fanotify]\n"
	      "                    [--raw | --settle MS --max-delay MS --batch-max N --skip-identical]\n"
	      "                    [--ignore PATTERN]... [--gitignore] [--no-default-ignores]\n"
	      "                    [--pin-dir DIR | --no-pin] [--ringbuf-mb N] [-v]...\n"
	      "       vfswatch ctl [--run-dir DIR] add DIR [--name N] [--ignore P]... [--gitignore]\n"
	      "                    [--no-default-ignores]\n"
	      "       vfswatch ctl [--run-dir DIR] remove NAME | list | retry-dead [PROJECT]\n"
	      "       vfswatch status [--run-dir DIR]\n"
	      "       vfswatch changes PROJECT [--since CURSOR] [--match GLOB]... [--events K,K]\n"
	      "       vfswatch subscribe PROJECT [--since CURSOR] [--match GLOB]... [--events K,K]\n"
	      "       vfswatch wait PROJECT [--match GLOB]... [--events K,K] [--timeout S]\n"
	      "       vfswatch git-fsmonitor [--run-dir DIR] 2 TOKEN\n"
	      "       vfswatch watchman [--run-dir DIR] [OPTIONS] COMMAND [ARGS]\n"
	      "       vfswatch config check FILE\n"
	      "       vfswatch probe [DIR]\n"
	      "       vfswatch version\n"
	      "\n"
	      "run     watch the directories (default: the current one) and print one JSON\n"
	      "        line per change on stdout; logs go to stderr. Needs root and a kernel\n"
	      "        with BTF. SIGINT/SIGTERM drain pending events and exit 0.\n"
	      "        --watch, -w DIR     a project root; repeat for more projects\n"
	      "        --config, -c FILE   JSON config: settings and projects (default\n"
	      "                            " VW_CONFIG_DEFAULT " when no --watch is given\n"
	      "                            and it exists); command-line options win\n"
	      "        --run-dir DIR       lock file and control socket (default " VW_RUN_DIR_DEFAULT ")\n"
	      "        --state-dir DIR     snapshots: changes made while the daemon was down, or\n"
	      "                            lost, are reported by a rescan (default\n"
	      "                            " VW_STATE_DIR_DEFAULT "); --no-state keeps none\n"
	      "        --backend, -b B     auto tries fentry, then tracepoint, then fanotify\n"
	      "        --raw               one line per kernel event instead of settled changes\n"
	      "        --settle MS         quiet time before changes flush (default 50); a file\n"
	      "                            still being written waits for its own quiet time\n"
	      "        --max-delay MS      report a busy file at least this often (default 1000)\n"
	      "        --batch-max N       flush a batch once it holds N paths (default 10000)\n"
	      "        --no-kernel-coalesce  send every write of a hot file to userspace (settled\n"
	      "                            mode counts writes within settle/5 of the last record)\n"
	      "        --skip-identical    drop a modify whose content (crc32, files up to 1 MiB)\n"
	      "                            is what it was; the start-up crawl reads every file\n"
	      "        --ignore PATTERN    gitignore-style pattern to leave out (repeatable)\n"
	      "        --gitignore         also leave out what each root's .gitignore lists\n"
	      "        --no-default-ignores  do not leave out .git/ node_modules/ build/ dist/\n"
	      "                            __pycache__/ and editor swap and backup files\n"
	      "        --pin-dir DIR       pin maps and programs there (default "
	      VW_PIN_DIR_DEFAULT ")\n"
	      "        --no-pin            do not pin\n"
	      "        --ringbuf-mb N      ring buffer size in MiB, a power of two (default 8)\n"
	      "        -v                  more diagnostics on stderr (-vv, -vvv for libbpf)\n"
	      "ctl     talk to the running daemon over <run-dir>/ctl.sock (root only): add or\n"
	      "        remove a project live, list projects; any user may add a directory\n"
	      "        they own and remove what they added (over client.sock)\n"
	      "status  the daemon's state as JSON: backend, projects, kernel counters, memory\n"
	      "changes  (any user, of projects they may read) the net change since a cursor\n"
	      "        (every settled line carries one), then the new cursor; a cursor the\n"
	      "        journal no longer covers gives every path, marked \"fresh\"\n"
	      "subscribe  the lines since a cursor, then each new one as it settles\n"
	      "wait    exit 0 at the next matching change, 1 after --timeout seconds\n"
	      "        (each of these first reads what the kernel queued and settles what is\n"
	      "        pending for the project: a change whose system call returned before the\n"
	      "        request is in the answer)\n"
	      "git-fsmonitor  git's core.fsmonitor hook (core.fsmonitorHookVersion 2): what\n"
	      "        changed in the work tree since git's token; the work tree becomes a\n"
	      "        project of the calling user's if it is not one (only .git/ ignored)\n"
	      "watchman  Watchman's command line (also as the program name \"watchman\"), for\n"
	      "        Watchman's clients: <run-dir>/watchman.sock speaks its protocol\n"
	      "config check FILE   validate a config file without starting (exit 0 or 2)\n"
	      "probe [DIR]  print as JSON which backends this kernel supports, which build of\n"
	      "        the BPF programs it gets and the feature that decided, and why not;\n"
	      "        fanotify is tried on DIR's filesystem (default /)\n",
	      f);
}

/* Which backends work here; fanotify is tried on the filesystem of @dir. */
static int cmd_probe(const char *dir)
{
	static const enum vw_backend sets[] = { VW_BACKEND_FENTRY, VW_BACKEND_TRACEPOINT };
	cJSON *j = cJSON_CreateObject(), *arr;
	const char *chosen = NULL;
	char why[8192], *s;
	int root = geteuid() == 0, btf = access(daemon_btf_path(), R_OK) == 0;
	struct stat st;

	if (dir[0] != '/' || stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "vfswatch: probe: %s is not an absolute path to a directory\n", dir);
		cJSON_Delete(j);
		return EXIT_USAGE;
	}
	if (!j || !(arr = cJSON_AddArrayToObject(j, "backends")))
		return EXIT_SETUP;
	cJSON_AddStringToObject(j, "dir", dir);
	cJSON_AddBoolToObject(j, "root", root);
	cJSON_AddBoolToObject(j, "btf", btf);
	for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		cJSON *b = cJSON_CreateObject();
		char because[256] = "";
		bool compat = false;
		int ret = -EPERM;

		if (!b)
			break;
		cJSON_AddItemToArray(arr, b);
		cJSON_AddStringToObject(b, "name", backend_name(sets[i]));
		if (!root)
			snprintf(why, sizeof(why), "not root");
		else if (!btf)
			snprintf(why, sizeof(why), "no kernel BTF at %s", daemon_btf_path());
		else
			ret = loader_probe(sets[i], why, sizeof(why), &compat, because,
					   sizeof(because));
		cJSON_AddBoolToObject(b, "usable", ret == 0);
		/* which build of the programs this kernel gets, and the feature that decided */
		if (because[0]) {
			cJSON_AddStringToObject(b, "build", compat ? "compat" : "full");
			cJSON_AddStringToObject(b, "decided_by", because);
		}
		if (ret)
			cJSON_AddStringToObject(b, "reason", why);
		else if (!chosen)
			chosen = backend_name(sets[i]);
	}
	{
		cJSON *b = cJSON_CreateObject();
		int ret = root ? fan_probe(dir, why, sizeof(why)) : -EPERM;

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

/* Send one control request; print the reply. Exit 0 when the daemon says ok. */
static int ctl_send(const char *run_dir, cJSON *req)
{
	char path[PATH_MAX], *text = cJSON_PrintUnformatted(req), *reply;
	const char *cmd = cJSON_GetStringValue(cJSON_GetObjectItem(req, "cmd"));
	/* an ordinary user adds and removes their own projects over the client socket */
	bool user = geteuid() != 0 && cmd && (!strcmp(cmd, "add") || !strcmp(cmd, "remove"));
	cJSON *r, *ok, *err;
	int code = 1;

	snprintf(path, sizeof(path), "%s/%s", run_dir, user ? "client.sock" : "ctl.sock");
	cJSON_Delete(req);
	reply = text ? control_call(path, text) : NULL;
	cJSON_free(text);
	if (!reply) {
		log_warn("ctl: cannot reach the daemon at %s", path);
		return 1;
	}
	r = cJSON_Parse(reply);
	ok = cJSON_GetObjectItemCaseSensitive(r, "ok");
	err = cJSON_GetObjectItemCaseSensitive(r, "error");
	if (cJSON_IsTrue(ok)) {
		char *pretty = cJSON_Print(r);

		if (pretty)
			puts(pretty);
		cJSON_free(pretty);
		code = 0;
	} else {
		log_warnx("ctl: %s", cJSON_IsString(err) ? err->valuestring : reply);
	}
	cJSON_Delete(r);
	free(reply);
	return code;
}

/*
 * vfswatch ctl [--run-dir DIR] add DIR [--name N] [--ignore P]... [--gitignore]
 *              | remove NAME | list;  vfswatch status [--run-dir DIR]
 */
static int cmd_ctl(int argc, char **argv, bool status)
{
	const char *run_dir = VW_RUN_DIR_DEFAULT;
	cJSON *req = cJSON_CreateObject(), *ign = NULL;
	char real[PATH_MAX];
	int i = 0;

	if (!req)
		return 1;
	if (i + 1 < argc && strcmp(argv[i], "--run-dir") == 0) {
		run_dir = argv[i + 1];
		i += 2;
	}
	if (status) {
		cJSON_AddStringToObject(req, "cmd", "status");
		if (i == argc)
			return ctl_send(run_dir, req);
	} else if (i < argc && (strcmp(argv[i], "list") == 0) && i + 1 == argc) {
		cJSON_AddStringToObject(req, "cmd", "list");
		return ctl_send(run_dir, req);
	} else if ((i + 1 == argc || i + 2 == argc) && strcmp(argv[i], "retry-dead") == 0) {
		cJSON_AddStringToObject(req, "cmd", "retry-dead");
		if (i + 2 == argc)
			cJSON_AddStringToObject(req, "project", argv[i + 1]);
		return ctl_send(run_dir, req);
	} else if (i + 2 == argc && strcmp(argv[i], "remove") == 0) {
		cJSON_AddStringToObject(req, "cmd", "remove");
		cJSON_AddStringToObject(req, "name", argv[i + 1]);
		return ctl_send(run_dir, req);
	} else if (i + 1 < argc && strcmp(argv[i], "add") == 0) {
		/* the daemon's working directory is not ours: send an absolute path */
		if (!realpath(argv[i + 1], real)) {
			log_warn("ctl: add %s", argv[i + 1]);
			cJSON_Delete(req);
			return EXIT_USAGE;
		}
		cJSON_AddStringToObject(req, "cmd", "add");
		cJSON_AddStringToObject(req, "root", real);
		for (i += 2; i < argc; i++) {
			if (strcmp(argv[i], "--gitignore") == 0) {
				cJSON_AddTrueToObject(req, "gitignore");
			} else if (strcmp(argv[i], "--no-default-ignores") == 0) {
				cJSON_AddFalseToObject(req, "default_ignores");
			} else if (i + 1 < argc && strcmp(argv[i], "--name") == 0) {
				cJSON_AddStringToObject(req, "name", argv[++i]);
			} else if (i + 1 < argc && strcmp(argv[i], "--ignore") == 0) {
				if (!ign)
					ign = cJSON_AddArrayToObject(req, "ignore");
				cJSON_AddItemToArray(ign, cJSON_CreateString(argv[++i]));
			} else {
				break;
			}
		}
		if (i == argc)
			return ctl_send(run_dir, req);
	}
	cJSON_Delete(req);
	log_warnx("usage: vfswatch ctl [--run-dir DIR] add DIR [--name N] [--ignore P]... "
		  "[--gitignore] [--no-default-ignores] | remove NAME | list | retry-dead [PROJECT];  "
		  "vfswatch status [--run-dir DIR]");
	return EXIT_USAGE;
}

/*
 * vfswatch changes|subscribe|wait PROJECT [--since CURSOR] [--match GLOB]... [--timeout S]
 *          [--run-dir DIR]: a client of <run-dir>/client.sock (any user).
 * changes: the net change since CURSOR, then {"cursor":...}; exit 0, 1 on an error.
 * subscribe: the lines since CURSOR, then live ones until interrupted; exit 1 on an overflow.
 * wait: the next matching line; exit 0, 1 on timeout.
 */
/* What `vfswatch changes|subscribe|wait` makes of the reply's lines. */
#define CLIENT_LINE_MAX (64u << 20)
struct client_reply {
	const char *cmd;
	bool wait, connected, done, failed;
	int code;
};

static int client_line(void *ctx, char *line, size_t len)
{
	struct client_reply *r = ctx;
	cJSON *j = cJSON_ParseWithLength(line, len);
	const char *err = cJSON_GetStringValue(cJSON_GetObjectItem(j, "error"));
	const char *ev = cJSON_GetStringValue(cJSON_GetObjectItem(j, "event"));

	r->connected = true;
	if (err) {
		log_warnx("%s: %s", r->cmd, err);
		r->failed = r->done = true;
		r->code = 1;
	} else if (r->wait) {
		if (ev && strcmp(ev, "subscribed") != 0) {
			fwrite(line, 1, len, stdout);
			putchar('\n');
			r->code = strcmp(ev, "overflow") == 0 ? 1 : 0;
			r->done = true;
		}
	} else {
		fwrite(line, 1, len, stdout);
		putchar('\n');
		if (!ev && cJSON_GetObjectItem(j, "cursor"))
			r->code = 0;	/* changes: the last line */
		if (ev && strcmp(ev, "overflow") == 0)
			r->failed = true, r->code = 1;
	}
	cJSON_Delete(j);
	return r->done;
}

static int cmd_client(int argc, char **argv, const char *cmd)
{
	const char *run_dir = VW_RUN_DIR_DEFAULT, *project = NULL, *since = NULL;
	bool wait = strcmp(cmd, "wait") == 0;
	struct client_reply r = { .cmd = cmd, .code = 1 };
	cJSON *req = cJSON_CreateObject(), *match = NULL;
	char sock[PATH_MAX];
	double timeout = -1;
	int ret;

	for (int i = 0; req && i < argc; i++) {
		char *end;

		if (i + 1 < argc && strcmp(argv[i], "--run-dir") == 0) {
			run_dir = argv[++i];
		} else if (!wait && i + 1 < argc && strcmp(argv[i], "--since") == 0) {
			since = argv[++i];
		} else if (i + 1 < argc && strcmp(argv[i], "--match") == 0) {
			if (!match)
				match = cJSON_AddArrayToObject(req, "match");
			cJSON_AddItemToArray(match, cJSON_CreateString(argv[++i]));
		} else if (i + 1 < argc && strcmp(argv[i], "--events") == 0) {
			cJSON *ev = cJSON_AddArrayToObject(req, "events");
			char *save = NULL, *tok, *list = argv[++i];

			for (tok = strtok_r(list, ",", &save); ev && tok;
			     tok = strtok_r(NULL, ",", &save))
				cJSON_AddItemToArray(ev, cJSON_CreateString(tok));
		} else if (wait && i + 1 < argc && strcmp(argv[i], "--timeout") == 0) {
			timeout = strtod(argv[++i], &end);
			if (*end || end == argv[i] || !(timeout >= 0) || timeout > 1e9) {
				log_warnx("%s: --timeout: '%s' is not a number of seconds", cmd, argv[i]);
				cJSON_Delete(req);
				return EXIT_USAGE;
			}
		} else if (!project && argv[i][0] != '-') {
			project = argv[i];
		} else {
			project = NULL;
			break;
		}
	}
	if (!req || !project) {
		cJSON_Delete(req);
		log_warnx("usage: vfswatch %s PROJECT%s [--match GLOB]... [--events KIND,...]%s "
			  "[--run-dir DIR]", cmd, wait ? "" : " [--since CURSOR]",
			  wait ? " [--timeout S]" : "");
		return EXIT_USAGE;
	}
	cJSON_AddStringToObject(req, "cmd", strcmp(cmd, "changes") == 0 ? "changes" : "subscribe");
	cJSON_AddStringToObject(req, "project", project);
	if (since)
		cJSON_AddStringToObject(req, "since", since);
	if (snprintf(sock, sizeof(sock), "%s/client.sock", run_dir) >= (int)sizeof(sock)) {
		log_warnx("%s: --run-dir %s: path too long", cmd, run_dir);
		cJSON_Delete(req);
		return EXIT_USAGE;
	}
	r.wait = wait;
	setvbuf(stdout, NULL, _IOLBF, 0);
	ret = client_request(sock, req, wait && timeout >= 0 ? (int)(timeout * 1000) : -1,
			     CLIENT_LINE_MAX, client_line, &r);
	cJSON_Delete(req);
	if (ret == -ETIMEDOUT && wait && r.connected)
		log_warnx("wait: no change to %s in %g s", project, timeout);
	else if (ret == -EMSGSIZE)
		log_warnx("%s: a line longer than %u bytes", cmd, CLIENT_LINE_MAX);
	else if (ret && !r.connected)
		log_warnx("%s: %s: %s (is the daemon running, in settled mode?)", cmd, sock,
			  strerror(-ret));
	else if (ret)
		log_warnx("%s: %s", cmd, strerror(-ret));
	else if (!r.failed && !r.done && strcmp(cmd, "changes") == 0 && r.code != 0)
		log_warnx("changes: the daemon closed the connection early");
	return ret ? 1 : r.code;
}

/* vfswatch config check FILE: exit 0 when the daemon would accept it, 2 with the reason if not. */
static int cmd_config(int argc, char **argv)
{
	char err[PATH_MAX + 512];
	struct vw_config *cfg;

	if (argc != 2 || strcmp(argv[0], "check") != 0) {
		log_warnx("usage: vfswatch config check FILE");
		return EXIT_USAGE;
	}
	cfg = config_load(argv[1], err, sizeof(err));
	if (!cfg) {
		log_warnx("config: %s", err);
		return EXIT_USAGE;
	}
	printf("%s: ok, %zu project%s\n", argv[1], cfg->nprojects, cfg->nprojects == 1 ? "" : "s");
	config_free(cfg);
	return 0;
}

static int parse_run(int argc, char **argv, struct run_opts *o)
{
	static const struct option opts[] = {
		{ "watch", required_argument, NULL, 'w' },
		{ "config", required_argument, NULL, 'c' },
		{ "run-dir", required_argument, NULL, 'U' },
		{ "state-dir", required_argument, NULL, 'T' },
		{ "no-state", no_argument, NULL, 'X' },
		{ "backend", required_argument, NULL, 'b' },
		{ "raw", no_argument, NULL, 'r' },
		{ "settle", required_argument, NULL, 'S' },
		{ "ignore", required_argument, NULL, 'i' },
		{ "no-default-ignores", no_argument, NULL, 'I' },
		{ "no-kernel-coalesce", no_argument, NULL, 'K' },
		{ "skip-identical", no_argument, NULL, 'Z' },
		{ "gitignore", no_argument, NULL, 'g' },
		{ "max-delay", required_argument, NULL, 'D' },
		{ "batch-max", required_argument, NULL, 'B' },
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
	o->run_dir = VW_RUN_DIR_DEFAULT;
	o->state_dir = VW_STATE_DIR_DEFAULT;
	o->settle_ms = 50;
	o->max_delay_ms = 1000;
	o->batch_max = 10000;
	o->journal_mb = VW_CHANGES_MB_DEFAULT;
	o->user_projects = 16;
	o->state_keep_days = 7;
	o->user_reply_mb = VW_USER_REPLY_MB;
	while ((c = getopt_long(argc, argv, "w:c:b:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'w':
			o->watch[o->nwatch++] = optarg;
			break;
		case 'c':
			o->config = optarg;
			break;
		case 'U':
			if (optarg[0] != '/') {
				log_warnx("--run-dir must be an absolute path");
				return -EINVAL;
			}
			o->run_dir = optarg;
			o->set |= SET_RUN_DIR;
			break;
		case 'T':
			if (optarg[0] != '/') {
				log_warnx("--state-dir must be an absolute path");
				return -EINVAL;
			}
			o->state_dir = optarg;
			o->set |= SET_STATE_DIR;
			break;
		case 'X':
			o->state_dir = NULL;
			o->set |= SET_STATE_DIR;
			break;
		case 'b':
			o->set |= SET_BACKEND;
			if (backend_parse(optarg, &o->backend)) {
				log_warnx("unknown backend '%s' (auto, fentry, tracepoint, fanotify)",
					  optarg);
				return -EINVAL;
			}
			break;
		case 'r':
			o->raw = true;
			break;
		case 'i':
			o->ignores[o->nignores++] = optarg;
			break;
		case 'I':
			o->no_default_ignores = true;
			break;
		case 'K':
			o->no_kernel_coalesce = true;
			break;
		case 'Z':
			o->set |= SET_SKIP;
			o->skip_identical = true;
			break;
		case 'g':
			o->gitignore = true;
			break;
		case 'S':
			o->set |= SET_SETTLE;
			if (parse_u64(optarg, 1, 60000, &o->settle_ms)) {
				log_warnx("--settle: '%s' is not a number of ms from 1 to 60000", optarg);
				return -EINVAL;
			}
			break;
		case 'D':
			o->set |= SET_MAX_DELAY;
			if (parse_u64(optarg, 1, 600000, &o->max_delay_ms)) {
				log_warnx("--max-delay: '%s' is not a number of ms from 1 to 600000",
					  optarg);
				return -EINVAL;
			}
			break;
		case 'B':
			o->set |= SET_BATCH_MAX;
			if (parse_u64(optarg, 1, 10000000, &o->batch_max)) {
				log_warnx("--batch-max: '%s' is not a count from 1 to 10000000", optarg);
				return -EINVAL;
			}
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
	if (!o->config && !o->nwatch && access(VW_CONFIG_DEFAULT, F_OK) == 0)
		o->config = VW_CONFIG_DEFAULT;
	if (o->max_delay_ms < o->settle_ms) {
		log_warnx("--max-delay (%llu ms) must not be shorter than --settle (%llu ms)",
			  (unsigned long long)o->max_delay_ms, (unsigned long long)o->settle_ms);
		return -EINVAL;
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
	const char *self = argc ? strrchr(argv[0], '/') : NULL;
	int ret;

	/* under the name "watchman" (a link on PATH), Watchman's command line */
	if (argc && strcmp(self ? self + 1 : argv[0], "watchman") == 0)
		return watchman_cli_main(argc - 1, argv + 1);
	if (strcmp(cmd, "watchman") == 0)
		return watchman_cli_main(argc - 2, argv + 2);
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
		const char *dir = NULL;
		bool verbose = false;

		for (int i = 2; i < argc; i++) {
			if (strcmp(argv[i], "-v") == 0) {
				verbose = true;
			} else if (argv[i][0] != '-' && !dir) {
				dir = argv[i];
			} else {
				fprintf(stderr, "vfswatch: probe [-v] [DIR]: unexpected argument '%s'\n",
					argv[i]);
				return EXIT_USAGE;
			}
		}
		log_init(verbose);
		return cmd_probe(dir ? dir : "/");
	}
	if (strcmp(cmd, "changes") == 0 || strcmp(cmd, "subscribe") == 0 || strcmp(cmd, "wait") == 0)
		return cmd_client(argc - 2, argv + 2, cmd);
	if (strcmp(cmd, "git-fsmonitor") == 0)
		return fsmonitor_main(argc - 2, argv + 2);
	if (strcmp(cmd, "config") == 0)
		return cmd_config(argc - 2, argv + 2);
	if (strcmp(cmd, "ctl") == 0 || strcmp(cmd, "status") == 0)
		return cmd_ctl(argc - 2, argv + 2, strcmp(cmd, "status") == 0);
	if (strcmp(cmd, "run") != 0) {
		log_warnx("unknown command '%s'", cmd);
		usage(stderr);
		return EXIT_USAGE;
	}
	o.watch = calloc(argc, sizeof(*o.watch));
	o.ignores = calloc(argc, sizeof(*o.ignores));
	if (!o.watch || !o.ignores)
		return EXIT_SETUP;
	ret = parse_run(argc - 1, argv + 1, &o);
	log_init(o.verbose);
	if (!ret)
		ret = daemon_run(&o);
	else
		ret = EXIT_USAGE;
	free(o.watch);
	free(o.ignores);
	return ret;
}
