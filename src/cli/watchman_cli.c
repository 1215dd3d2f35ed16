// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// watchman_cli.c: `watchman …` (the binary under that name) and `vfswatch watchman …`: Watchman's
// command line, as the clients that spawn it use it, talking to the daemon's watchman.sock.
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/request.h"
#include "cli/watchman_cli.h"
#include "core/log.h"
#include "serve/bser.h"
#include "serve/watchman.h"
#include "store/config.h"

#define WM_TIMEOUT_MS 60000	/* a daemon that does not answer: exit 1 */
#define WM_REPLY_MAX (1u << 30)
#define WM_STDIN_MAX (64u << 20)

enum enc { ENC_JSON, ENC_BSER, ENC_BSER2 };

struct opts {
	const char *sock, *run_dir;
	enum enc out;
	bool out_set, pretty, stdin_cmd, persistent;
};

static int parse_enc(const char *s, enum enc *e)
{
	if (!strcmp(s, "json"))
		*e = ENC_JSON;
	else if (!strcmp(s, "bser"))
		*e = ENC_BSER;
	else if (!strcmp(s, "bser-v2"))
		*e = ENC_BSER2;
	else
		return -1;
	return 0;
}

/* "--name=value" or "--name value": the value, and *@i moved past it; NULL if not this option. */
static const char *opt_value(int argc, char **argv, int *i, const char *name)
{
	size_t n = strlen(name);

	if (!strncmp(argv[*i], name, n) && argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (!strcmp(argv[*i], name) && *i + 1 < argc)
		return argv[++*i];
	return NULL;
}

/* Print @v in the output encoding: JSON (pretty unless --no-pretty) with a newline, or one PDU. */
static int emit(const struct opts *o, const cJSON *v)
{
	size_t len;
	char *b;

	if (o->out != ENC_JSON) {
		b = bser_encode(v, o->out == ENC_BSER2 ? 2 : 1, 0, &len);
		if (!b)
			return -ENOMEM;
		fwrite(b, 1, len, stdout);	/* exactly one PDU: readers take its length */
		free(b);
	} else {
		b = o->pretty ? cJSON_Print(v) : cJSON_PrintUnformatted(v);
		if (!b)
			return -ENOMEM;
		printf("%s\n", b);
		cJSON_free(b);
	}
	return fflush(stdout) == 0 ? 0 : -EIO;
}

/* The command on stdin (-j): one JSON value or one BSER PDU, read to its end. */
static cJSON *stdin_command(struct opts *o)
{
	size_t len = 0, cap = 0;
	char *buf = NULL, err[256];
	cJSON *v = NULL;
	size_t n;

	do {
		if (len == cap) {
			char *nb = cap < WM_STDIN_MAX ? realloc(buf, cap ? cap * 2 : 65536) : NULL;

			if (!nb) {
				log_warnx("watchman: the command on stdin is too long");
				free(buf);
				return NULL;
			}
			buf = nb;
			cap = cap ? cap * 2 : 65536;
		}
		n = fread(buf + len, 1, cap - len, stdin);
		len += n;
	} while (n);
	if (len >= 2 && buf[0] == 0) {
		int version = 0;
		ssize_t pdu = bser_pdu_len(buf, len, WM_STDIN_MAX, &version);

		v = pdu > 0 && (size_t)pdu <= len ? bser_decode(buf, (size_t)pdu, err, sizeof(err)) :
						    NULL;
		if (!v)
			log_warnx("watchman: the BSER command on stdin: %s",
				  pdu > 0 && (size_t)pdu <= len ? err : "not a whole PDU");
		else if (!o->out_set)	/* answered as it was asked */
			o->out = version == 2 ? ENC_BSER2 : ENC_BSER;
	} else {
		v = cJSON_ParseWithLength(buf, len);
		if (!v)
			log_warnx("watchman: the command on stdin is not JSON");
	}
	free(buf);
	return v;
}

static bool unilateral(const cJSON *r)
{
	return cJSON_IsTrue(cJSON_GetObjectItem(r, "unilateral")) ||
	       cJSON_GetObjectItem(r, "subscription") || cJSON_GetObjectItem(r, "log");
}

/*
 * Send @cmd to the daemon as a BSER PDU and print its reply (with -p/--persistent,
 * every PDU that comes, until the daemon closes). 0, or 1 when it cannot be reached.
 */
static int relay(const struct opts *o, const cJSON *cmd)
{
	size_t len = 0, cap = 0, plen;
	char *req = bser_encode(cmd, 1, 0, &plen), *buf = NULL, err[256];
	int fd = client_connect(o->sock, WM_TIMEOUT_MS), ret = 1;

	if (fd >= 0 && !o->persistent) {	/* a daemon that does not answer: exit 1 */
		struct timeval tmo = { .tv_sec = WM_TIMEOUT_MS / 1000 };

		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof(tmo));
	}
	if (fd < 0 || !req || client_send_all(fd, req, plen) < 0) {
		log_warnx("watchman: %s: %s (is vfswatch running, in settled mode?)", o->sock,
			  strerror(fd < 0 ? -fd : errno));
		goto out;
	}
	for (;;) {
		int version;
		ssize_t n, pdu;
		cJSON *r;

		while ((pdu = len ? bser_pdu_len(buf, len, WM_REPLY_MAX, &version) : 0) >= 0 &&
		       (pdu == 0 || (size_t)pdu > len)) {
			if (len == cap) {
				char *nb = realloc(buf, cap ? cap * 2 : 65536);

				if (!nb)
					goto out;
				buf = nb;
				cap = cap ? cap * 2 : 65536;
			}
			n = read(fd, buf + len, cap - len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				if (!o->persistent || len)
					log_warnx("watchman: the daemon closed the connection");
				else
					ret = 0;
				goto out;
			}
			len += (size_t)n;
		}
		if (pdu < 0 || !(r = bser_decode(buf, (size_t)pdu, err, sizeof(err)))) {
			log_warnx("watchman: a reply that is not BSER: %s", pdu < 0 ? "" : err);
			goto out;
		}
		memmove(buf, buf + pdu, len - (size_t)pdu);
		len -= (size_t)pdu;
		if (!unilateral(r) || o->persistent) {
			ret = emit(o, r) ? 1 : 0;	/* an error reply too is relayed, exit 0 */
			if (!unilateral(r) && !o->persistent) {
				cJSON_Delete(r);
				break;
			}
		}
		cJSON_Delete(r);
	}
out:
	free(req);
	free(buf);
	if (fd >= 0)
		close(fd);
	return ret;
}

static void usage(void)
{
	log_warnx("usage: watchman [--run-dir DIR] [-U SOCK] [--no-pretty] [--output-encoding "
		  "json|bser|bser-v2] [-j] [-p] COMMAND [ARGS...]   (vfswatch's Watchman "
		  "command line: the daemon's <run_dir>/watchman.sock)");
}

int watchman_cli_main(int argc, char **argv)
{
	struct opts o = { .pretty = true };
	char sock[PATH_MAX];
	const char *v, *env;
	cJSON *cmd = NULL;
	int i, ret;

	for (i = 0; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--version")) {
			printf("%s\n", WM_VERSION);	/* without asking the daemon, as Watchman */
			return 0;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage();
			return 0;
		} else if ((v = opt_value(argc, argv, &i, "--output-encoding"))) {
			if (parse_enc(v, &o.out) < 0) {
				log_warnx("watchman: --output-encoding: json, bser or bser-v2");
				return 1;
			}
			o.out_set = true;
		} else if ((v = opt_value(argc, argv, &i, "--server-encoding"))) {
			enum enc e;

			if (parse_enc(v, &e) < 0) {	/* the daemon is asked in BSER v1 anyway */
				log_warnx("watchman: --server-encoding: json, bser or bser-v2");
				return 1;
			}
		} else if ((v = opt_value(argc, argv, &i, "--sockname")) ||
			   (v = opt_value(argc, argv, &i, "-U")) ||
			   (v = opt_value(argc, argv, &i, "--unix-listener-path")) ||
			   (v = opt_value(argc, argv, &i, "-u"))) {
			o.sock = v;
		} else if ((v = opt_value(argc, argv, &i, "--run-dir"))) {
			o.run_dir = v;
		} else if (!strcmp(argv[i], "--no-pretty")) {
			o.pretty = false;
		} else if (!strcmp(argv[i], "--pretty")) {
			o.pretty = true;
		} else if (!strcmp(argv[i], "-j") || !strcmp(argv[i], "--json-command")) {
			o.stdin_cmd = true;
		} else if (!strcmp(argv[i], "-p") || !strcmp(argv[i], "--persistent")) {
			o.persistent = true;
		} else if (!strcmp(argv[i], "--no-spawn") || !strcmp(argv[i], "--no-local") ||
			   !strcmp(argv[i], "-n") || !strcmp(argv[i], "--no-save-state") ||
			   !strcmp(argv[i], "-f") || !strcmp(argv[i], "--foreground") ||
			   !strcmp(argv[i], "-S") || !strcmp(argv[i], "--no-site-spawner") ||
			   opt_value(argc, argv, &i, "--logfile") ||
			   opt_value(argc, argv, &i, "-o") ||
			   opt_value(argc, argv, &i, "--statefile") ||
			   opt_value(argc, argv, &i, "--pidfile") ||
			   opt_value(argc, argv, &i, "--log-level") ||
			   opt_value(argc, argv, &i, "--named-pipe-path")) {
			/* the daemon is the host's service: nothing here spawns or configures it */
		} else {
			log_warnx("watchman: unknown option %s", argv[i]);
			usage();
			return 1;
		}
	}
	if (!o.sock && (env = getenv("WATCHMAN_SOCK")) && *env)
		o.sock = env;
	if (!o.sock) {
		if (!o.run_dir && (env = getenv("VFSWATCH_RUN_DIR")) && *env)
			o.run_dir = env;
		if (!o.run_dir)
			o.run_dir = VW_RUN_DIR_DEFAULT;
		if ((size_t)snprintf(sock, sizeof(sock), "%s/watchman.sock", o.run_dir) >=
		    sizeof(sock)) {
			log_warnx("watchman: --run-dir %s: path too long", o.run_dir);
			return 1;
		}
		o.sock = sock;
	}
	if (o.stdin_cmd) {
		if (!(cmd = stdin_command(&o)))
			return 1;
	} else if (i < argc) {
		cmd = cJSON_CreateArray();
		for (; cmd && i < argc; i++)
			cJSON_AddItemToArray(cmd, cJSON_CreateString(argv[i]));
	} else {
		usage();
		return 1;
	}
	if (!cmd)
		return 1;
	if (!strcmp(cJSON_GetStringValue(cJSON_GetArrayItem(cmd, 0)) ?: "", "get-sockname")) {
		/* answered here, as Watchman's client does: where the daemon listens */
		cJSON *r = cJSON_CreateObject();

		cJSON_AddStringToObject(r, "version", WM_VERSION);
		cJSON_AddStringToObject(r, "sockname", o.sock);
		cJSON_AddStringToObject(r, "unix_domain", o.sock);
		ret = emit(&o, r) ? 1 : 0;
		cJSON_Delete(r);
		cJSON_Delete(cmd);
		return ret;
	}
	ret = relay(&o, cmd);
	cJSON_Delete(cmd);
	return ret;
}
