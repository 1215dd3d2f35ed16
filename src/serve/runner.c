// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// runner.c: analyzer jobs: fork+execvp (no shell), own process group, owner's uid, pidfd reaping.
#define _GNU_SOURCE	/* clearenv */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "serve/runner.h"
#include "core/creds.h"
#include "core/ignore.h"
#include "pipeline/json_out.h"
#include "core/log.h"
#include "core/util.h"

#define RUNNER_MAX 8		/* analyzer processes at once, all analyzers together */
#define KILL_GRACE_NS (1000ull * 1000 * 1000)
#define RECENT_CHILDREN 256
/* A job that could run (its retry's back-off over) and still waits this long is said (late). */
#define JOB_WAIT_BOUND_NS (60000ull * 1000 * 1000)

struct job {
	struct job *next;
	const struct vw_project *p;
	const struct vw_analyzer *a;
	enum vw_kind kind;	/* NONE: a batch job */
	char *path, *old_path;	/* relative */
	unsigned int attempt;
	uint64_t not_before_ns, started_ns, deadline_ns;
	uint64_t waits_since_ns;	/* first seen waiting by runner_tick() (0: not yet) */
	bool late;			/* said to have waited past JOB_WAIT_BOUND_NS */
	pid_t pid;
	int pidfd;
	int outfd;		/* the analyzer's stdout+stderr, copied (bounded) into the log */
	size_t logged;
	char *input;		/* batch jobs: the JSON lines for stdin */
	size_t input_len;
	unsigned int changes;
	bool termed;
	struct vw_runner *r;
};

/* Lines waiting for a batch analyzer while it runs (it runs once at a time per project). */
struct pending_batch {
	struct pending_batch *next;
	const struct vw_project *p;
	const struct vw_analyzer *a;
	char *buf;
	size_t len;
	unsigned int changes;
};

/* A project whose analyzers wait for a VCS to let go of its tree (runner_hold()). */
struct held {
	const struct vw_project *p;
	uint64_t until_ns;
};

struct recent {
	pid_t pid;
	const char *name;
};

struct vw_runner {
	struct vw_loop *loop;
	FILE *out;
	char *dead_path;
	struct job *queue, *running;
	size_t nqueued, nrunning;
	struct recent recent[RECENT_CHILDREN];
	size_t nrecent;
	struct pending_batch *batches;
	uint64_t reported[VW_AN_STATUSES];	/* results told, by status */
	uint64_t late;		/* jobs that waited past JOB_WAIT_BOUND_NS for a slot */
	struct held *held;
	size_t nheld;
	runner_hold_fn hold;
	void *hold_ctx;
};

const char *const vw_an_status_names[VW_AN_STATUSES] = { "ok", "failed", "dead", "dropped" };

uint64_t runner_reported(const struct vw_runner *r, int status)
{
	return r && status >= 0 && status < VW_AN_STATUSES ? r->reported[status] : 0;
}

struct vw_runner *runner_new(struct vw_loop *loop, FILE *out, const char *state_dir)
{
	struct vw_runner *r = calloc(1, sizeof(*r));
	char path[PATH_MAX];

	if (!r)
		return NULL;
	r->loop = loop;
	r->out = out;
	if (state_dir) {
		snprintf(path, sizeof(path), "%s/dead-letters.jsonl", state_dir);
		r->dead_path = strdup(path);
	}
	return r;
}

void runner_set_hold(struct vw_runner *r, runner_hold_fn fn, void *ctx)
{
	r->hold = fn;
	r->hold_ctx = ctx;
}

void runner_hold(struct vw_runner *r, const struct vw_project *p, uint64_t until_ns)
{
	struct held *v;

	if (!r || !r->hold)
		return;
	for (size_t i = 0; i < r->nheld; i++)
		if (r->held[i].p == p) {
			r->held[i].until_ns = until_ns;
			return;
		}
	v = realloc(r->held, (r->nheld + 1) * sizeof(*v));
	if (!v)
		return;		/* out of memory: the jobs run now rather than never */
	r->held = v;
	r->held[r->nheld++] = (struct held){ .p = p, .until_ns = until_ns };
}

size_t runner_holding(const struct vw_runner *r)
{
	return r ? r->nheld : 0;
}

static bool is_held(const struct vw_runner *r, const struct vw_project *p)
{
	for (size_t i = 0; i < r->nheld; i++)
		if (r->held[i].p == p)
			return true;
	return false;
}

/* Once a tick: the holds that ended (the lock is gone, the project too, or the wait is over). */
static void holds_refresh(struct vw_runner *r, uint64_t now)
{
	for (size_t i = 0; i < r->nheld;) {
		const struct held *h = &r->held[i];

		if (h->p->gone || now >= h->until_ns || !r->hold(r->hold_ctx, h->p))
			r->held[i] = r->held[--r->nheld];
		else
			i++;
	}
}

static void job_free(struct job *j)
{
	free(j->path);
	free(j->old_path);
	free(j->input);
	free(j);
}

void runner_free(struct vw_runner *r, unsigned int grace_ms)
{
	struct job *j, *n;
	uint64_t until = now_ns(CLOCK_MONOTONIC) + grace_ms * 1000000ull;

	if (!r)
		return;
	/* a grace period: SIGTERM, then wait for them (at most grace_ms) before SIGKILL */
	for (j = r->running; j; j = j->next)
		kill(-j->pid, SIGTERM);
	for (bool left = r->running != NULL; left && now_ns(CLOCK_MONOTONIC) < until;) {
		left = false;
		for (j = r->running; j; j = j->next)
			left |= waitpid(j->pid, NULL, WNOHANG) == 0;
		if (left)
			usleep(20000);
	}
	for (j = r->running; j; j = n) {
		n = j->next;
		kill(-j->pid, SIGKILL);
		waitpid(j->pid, NULL, 0);
		loop_del(r->loop, j->pidfd);
		close(j->pidfd);
		if (j->outfd >= 0) {
			loop_del(r->loop, j->outfd);
			close(j->outfd);
		}
		job_free(j);
	}
	for (j = r->queue; j; j = n) {
		n = j->next;
		job_free(j);
	}
	for (struct pending_batch *b = r->batches, *nb; b; b = nb) {
		nb = b->next;
		free(b->buf);
		free(b);
	}
	free(r->dead_path);
	free(r->held);
	free(r);
}

size_t runner_running(const struct vw_runner *r)
{
	return r->nrunning;
}

uint64_t runner_late(const struct vw_runner *r)
{
	return r->late;
}

size_t runner_queued(const struct vw_runner *r)
{
	return r->nqueued;
}

const char *runner_child_name(const struct vw_runner *r, uint32_t tgid, uint32_t pgid)
{
	size_t n = r->nrecent < RECENT_CHILDREN ? r->nrecent : RECENT_CHILDREN;

	for (size_t i = 0; i < n; i++)	/* none started yet: nothing to look at */
		if (r->recent[i].pid &&
		    (r->recent[i].pid == (pid_t)tgid || r->recent[i].pid == (pid_t)pgid))
			return r->recent[i].name;
	return NULL;
}

static bool matches(const struct vw_analyzer *a, const char *rel)
{
	return globs_match(a->match, a->nmatch, rel);
}

static unsigned int event_bit(enum vw_kind kind)
{
	/* an analyzer's "modify" covers truncations and metadata too */
	return VW_AN_EV(kind_is_write(kind) ? VW_KIND_MODIFY : kind);
}

/* What a job's lines, {event} and VFSWATCH_EVENT call its change. */
static const char *job_event(const struct job *j)
{
	return j->kind ? kind_name(j->kind) : "batch";
}

static void report_why(struct vw_runner *r, const struct job *j, const char *status, int code,
		       int sig, const char *reason)
{
	struct vw_analyzer_result res = {
		.analyzer = j->a->name,
		.project = j->p,
		.event = job_event(j),
		.path = j->path,
		.status = status,
		.exit_code = code,
		.signal = sig,
		.attempt = j->attempt + 1,
		.changes = j->changes,
		.duration_ms = j->started_ns ? (now_ns(CLOCK_MONOTONIC) - j->started_ns) / 1000000 : 0,
		.reason = reason,
	};

	for (int i = 0; i < VW_AN_STATUSES; i++)
		if (strcmp(status, vw_an_status_names[i]) == 0)
			r->reported[i]++;
	json_out_analyzer(r->out, &res);
	fflush(r->out);
	if (strcmp(status, "dead") == 0 && r->dead_path) {
		FILE *f = fopen_private(r->dead_path, true);

		if (f) {
			json_out_analyzer(f, &res);
			fclose(f);
		}
	}
}

static void report(struct vw_runner *r, const struct job *j, const char *status, int code,
		   int sig)
{
	report_why(r, j, status, code, sig, NULL);
}

/* Add one JSON line to the lines waiting for (p, a); false when over VW_AN_BATCH_MAX. */
static bool batch_append(struct vw_runner *r, const struct vw_project *p,
			 const struct vw_analyzer *a, const char *line)
{
	struct pending_batch *b;
	size_t n = strlen(line);
	char *nb;

	for (b = r->batches; b && (b->p != p || b->a != a); b = b->next)
		;
	if (!b) {
		b = calloc(1, sizeof(*b));
		if (!b)
			return false;
		b->p = p;
		b->a = a;
		b->next = r->batches;
		r->batches = b;
	}
	if (b->len + n + 1 > VW_AN_BATCH_MAX || !(nb = realloc(b->buf, b->len + n + 1)))
		return false;
	b->buf = nb;
	memcpy(b->buf + b->len, line, n);
	b->len += n;
	b->buf[b->len++] = '\n';
	b->changes++;
	return true;
}

void runner_submit(struct vw_runner *r, const struct vw_settled *s, const char *line)
{
	const struct vw_project *p = s->project;
	const char *by = s->ev ? runner_child_name(r, s->ev->tgid, s->ev->pgid) : NULL;

	for (size_t i = 0; i < p->nanalyzers; i++) {
		const struct vw_analyzer *a = &p->analyzers[i];
		bool del = s->kind == VW_KIND_DELETE;
		struct job *j, **tail;
		size_t mine = 0;

		if (!(a->events & event_bit(s->kind)) || !matches(a, s->path))
			continue;
		if (by && strcmp(by, a->name) == 0)
			continue;	/* its own write: never fed back to it */
		if (a->batch) {
			if (!line || !batch_append(r, p, a, line)) {
				struct job tmp = { .p = p, .a = a, .path = (char *)s->path };

				tmp.kind = s->kind;
				report(r, &tmp, "dropped", -1, 0);
			}
			continue;
		}
		if (!(del ? a->on_delete : a->on_change))
			continue;
		for (tail = &r->queue; *tail; tail = &(*tail)->next) {
			j = *tail;
			if (j->a == a && strcmp(j->path, s->path) == 0) {
				/* a newer change of the same path replaces the queued one */
				j->kind = s->kind;
				j->attempt = 0;
				j->not_before_ns = 0;
				goto next;
			}
			mine += j->a == a;
		}
		j = calloc(1, sizeof(*j));
		if (mine >= VW_AN_QUEUE_MAX || !j || !(j->path = strdup(s->path)) ||
		    (s->old_path && !(j->old_path = strdup(s->old_path)))) {
			struct job tmp = { .p = p, .a = a, .path = (char *)s->path };

			tmp.kind = s->kind;
			report(r, &tmp, "dropped", -1, 0);	/* never silent */
			if (j)
				job_free(j);
			continue;
		}
		j->p = p;
		j->a = a;
		j->r = r;
		j->pidfd = -1;
		j->outfd = -1;
		j->kind = s->kind;
		*tail = j;
		r->nqueued++;
next:;
	}
}

/* "{path}" and friends inside one argument; returns a new string. */
static char *expand(const char *tmpl, const struct job *j)
{
	char abs[PATH_MAX * 2], oabs[PATH_MAX * 2], out[PATH_MAX * 4];
	const struct {
		const char *key, *val;
	} subs[] = {
		{ "{path}", abs },
		{ "{relpath}", j->path ? j->path : "" },
		{ "{root}", j->p->root },
		{ "{project}", j->p->name },
		{ "{event}", job_event(j) },
		{ "{old_path}", j->old_path ? oabs : "" },
	};
	size_t o = 0;

	snprintf(abs, sizeof(abs), "%s/%s", j->p->root, j->path ? j->path : "");
	snprintf(oabs, sizeof(oabs), "%s/%s", j->p->root, j->old_path ? j->old_path : "");
	while (*tmpl && o + 1 < sizeof(out)) {
		size_t k;

		for (k = 0; k < sizeof(subs) / sizeof(subs[0]); k++) {
			size_t kl = strlen(subs[k].key), vl = strlen(subs[k].val);

			if (strncmp(tmpl, subs[k].key, kl) == 0 && o + vl < sizeof(out)) {
				memcpy(out + o, subs[k].val, vl);
				o += vl;
				tmpl += kl;
				break;
			}
		}
		if (k == sizeof(subs) / sizeof(subs[0]))
			out[o++] = *tmpl++;
	}
	out[o] = 0;
	return strdup(out);
}

/* In the child: own process group, the owner's identity, a clean environment, then exec. */
static void __attribute__((noreturn)) child_exec(const struct job *j, char **argv,
						 const struct vw_creds *as, int in, int out)
{
	sigset_t none;

	setpgid(0, 0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	if (in < 0)
		in = open("/dev/null", O_RDONLY);
	if (in >= 0)
		dup2(in, 0);
	/* never our stdout (the JSON stream): a pipe the daemon copies into its log */
	if (out >= 0) {
		dup2(out, 1);
		dup2(out, 2);
	}
	/* nothing else of the daemon's: its descriptors are close-on-exec, and closed here too */
	if (close_range(3, ~0u, 0) < 0)
		for (int fd = 3; fd < 65536; fd++)
			close(fd);
	if (j->a->limit_memory_mb)
		setrlimit(RLIMIT_AS, &(struct rlimit){ j->a->limit_memory_mb << 20,
						       j->a->limit_memory_mb << 20 });
	if (j->a->limit_cpu_s)
		setrlimit(RLIMIT_CPU, &(struct rlimit){ j->a->limit_cpu_s, j->a->limit_cpu_s });
	if (j->a->limit_nofile)
		setrlimit(RLIMIT_NOFILE, &(struct rlimit){ j->a->limit_nofile, j->a->limit_nofile });
	/* the owner's uid and primary group, no supplementary group: no more than needed */
	if (as->uid != 0 && (setgroups(0, NULL) < 0 || setgid(as->gid) < 0 || setuid(as->uid) < 0))
		_exit(126);
	clearenv();
	setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
	setenv("VFSWATCH_PROJECT", j->p->name, 1);
	setenv("VFSWATCH_ROOT", j->p->root, 1);
	if (j->a->batch)
		setenv("VFSWATCH_BATCH", "1", 1);
	else
		setenv("VFSWATCH_EVENT", job_event(j), 1);
	execvp(argv[0], argv);
	_exit(127);
}

static void finish(struct vw_runner *r, struct job *j, int status);

/*
 * The analyzer's output: copied line by line into the log, up to VW_AN_LOG_MAX
 * bytes a job. Returns the bytes read (0 at EOF or when nothing is there).
 */
static ssize_t output_read(struct job *j)
{
	char buf[4096];
	ssize_t n = read(j->outfd, buf, sizeof(buf) - 1);

	if (n <= 0) {
		if (n < 0 && errno == EAGAIN)
			return 0;
		loop_del(j->r->loop, j->outfd);
		close(j->outfd);
		j->outfd = -1;
		return 0;
	}
	if (j->logged < VW_AN_LOG_MAX) {
		size_t take = (size_t)n < VW_AN_LOG_MAX - j->logged ? (size_t)n :
								       VW_AN_LOG_MAX - j->logged;

		buf[take] = 0;
		for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
			log_warnx("analyzer %s: %s", j->a->name, line);
		if (j->logged + n >= VW_AN_LOG_MAX)
			log_warnx("analyzer %s: more output than %u bytes; the rest is dropped",
				  j->a->name, VW_AN_LOG_MAX);
	}
	j->logged += n;
	return n;
}

static int on_output(void *ctx, uint32_t events)
{
	output_read(ctx);
	return 0;
}

static int on_child(void *ctx, uint32_t events)
{
	struct job *j = ctx;
	int status;

	if (waitpid(j->pid, &status, WNOHANG) != j->pid)
		return 0;
	finish(j->r, j, status);
	return 0;
}

/*
 * Whose rights a job runs with, failing closed: "user":"root" (root wrote
 * it in the config) runs as root; "user": <account> as that account;
 * otherwise the owner of the project's root as it was pinned (never the path
 * looked at again: it may lead anywhere now), and never root that way. NULL
 * with @why when the job must not run.
 */
static const struct vw_creds *job_creds(const struct job *j, struct vw_creds *buf,
					const char **why)
{
	static const struct vw_creds root;

	if (j->p->root_lost) {
		*why = "the project's root directory is gone: nothing runs for it";
		return NULL;
	}
	if (j->a->as_root)
		return &root;
	if (j->a->user) {
		struct passwd *pw = getpwnam(j->a->user);

		if (!pw) {
			*why = "its \"user\" has no account";
			return NULL;
		}
		creds_of_user(pw->pw_uid, pw->pw_gid, buf);
		if (buf->uid == 0) {
			*why = "its \"user\" is root by another name: write \"user\":\"root\"";
			return NULL;
		}
		return buf;
	}
	if (j->p->owner.uid == 0) {
		*why = "the project's root directory is root's: analyzers run as root only with "
		       "\"user\":\"root\" in the config";
		return NULL;
	}
	return &j->p->owner;
}

static int spawn(struct vw_runner *r, struct job *j, uint64_t now, const struct vw_creds *as)
{
	char **tmpl = j->a->batch ? j->a->batch :
		      j->kind == VW_KIND_DELETE ? j->a->on_delete : j->a->on_change;
	char *argv[64];
	size_t n = 0;
	int ret = 0, in = -1, pipefd[2] = { -1, -1 };

	if (j->input) {	/* a memfd: the child reads at its pace, we never block on it */
		in = memfd_create("vfswatch-batch", MFD_CLOEXEC);
		if (in < 0 || write(in, j->input, j->input_len) != (ssize_t)j->input_len ||
		    lseek(in, 0, SEEK_SET) < 0) {
			if (in >= 0)
				close(in);
			return -EIO;
		}
	}
	if (pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) < 0)
		pipefd[0] = pipefd[1] = -1;
	for (; tmpl[n] && n < 63; n++)
		argv[n] = expand(tmpl[n], j);
	argv[n] = NULL;
	j->pid = fork();
	if (j->pid == 0)
		child_exec(j, argv, as, in, pipefd[1]);
	for (size_t i = 0; i < n; i++)
		free(argv[i]);
	if (in >= 0)
		close(in);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	j->outfd = pipefd[0];
	j->logged = 0;
	if (j->outfd >= 0 && loop_add(r->loop, j->outfd, on_output, j) < 0) {
		close(j->outfd);
		j->outfd = -1;
	}
	if (j->pid < 0)
		return -errno;
	setpgid(j->pid, j->pid);	/* also here: no race with the kill below */
	j->pidfd = (int)syscall(SYS_pidfd_open, j->pid, 0);
	if (j->pidfd < 0 || loop_add(r->loop, j->pidfd, on_child, j) < 0) {
		ret = -errno;
		kill(-j->pid, SIGKILL);
		waitpid(j->pid, NULL, 0);
		if (j->pidfd >= 0)
			close(j->pidfd);
		return ret ? ret : -EIO;
	}
	j->started_ns = now;
	j->deadline_ns = now + j->a->timeout_ms * 1000000ull;
	j->termed = false;
	r->recent[r->nrecent++ % RECENT_CHILDREN] = (struct recent){ j->pid, j->a->name };
	return 0;
}

static void finish(struct vw_runner *r, struct job *j, int status)
{
	struct job **pp;
	bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;

	for (pp = &r->running; *pp && *pp != j; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = j->next;
	r->nrunning--;
	loop_del(r->loop, j->pidfd);
	close(j->pidfd);
	j->pidfd = -1;
	/* what is left in the pipe (a pipe's worth at most: the writer is gone) */
	while (j->outfd >= 0 && output_read(j) > 0)
		;
	if (j->outfd >= 0) {
		loop_del(r->loop, j->outfd);
		close(j->outfd);
		j->outfd = -1;
	}
	if (ok) {
		report(r, j, "ok", 0, 0);
		job_free(j);
	} else if (j->attempt < j->a->retries) {
		report(r, j, "failed", code, sig);
		j->not_before_ns = now_ns(CLOCK_MONOTONIC) +
				   ((j->a->retry_delay_ms * 1000000ull) << j->attempt);
		j->attempt++;
		j->started_ns = 0;
		j->next = r->queue;	/* ahead of newer work */
		r->queue = j;
		r->nqueued++;
	} else {
		report(r, j, "dead", code, sig);
		job_free(j);
	}
	runner_tick(r, now_ns(CLOCK_MONOTONIC));
}

static size_t running_of(const struct vw_runner *r, const struct vw_analyzer *a)
{
	size_t n = 0;

	for (const struct job *j = r->running; j; j = j->next)
		n += j->a == a;
	return n;
}

/* A batch analyzer with lines waiting and not running (nor queued for a retry): start it. */
static void start_batches(struct vw_runner *r)
{
	for (struct pending_batch *b = r->batches; b; b = b->next) {
		struct job *j;
		bool busy = false;

		if (!b->len || b->p->gone || is_held(r, b->p))
			continue;
		for (j = r->running; j && !busy; j = j->next)
			busy = j->a == b->a && j->p == b->p;
		for (j = r->queue; j && !busy; j = j->next)
			busy = j->a == b->a && j->p == b->p;
		if (busy)
			continue;	/* the next run gets everything collected meanwhile */
		j = calloc(1, sizeof(*j));
		if (!j)
			return;
		j->p = b->p;
		j->a = b->a;
		j->r = r;
		j->pidfd = j->outfd = -1;
		j->input = b->buf;
		j->input_len = b->len;
		j->changes = b->changes;
		b->buf = NULL;
		b->len = 0;
		b->changes = 0;
		j->next = r->queue;
		r->queue = j;
		r->nqueued++;
	}
}

/* A job that could run waits for a slot: true the first time it is past JOB_WAIT_BOUND_NS. */
static bool job_late(struct vw_runner *r, struct job *j, uint64_t now)
{
	uint64_t since;

	if (!j->waits_since_ns)
		j->waits_since_ns = now;
	since = j->waits_since_ns > j->not_before_ns ? j->waits_since_ns : j->not_before_ns;
	if (j->late || now < since + JOB_WAIT_BOUND_NS)
		return false;
	j->late = true;
	r->late++;
	return true;
}

void runner_tick(struct vw_runner *r, uint64_t now)
{
	struct job **pp, *late;
	size_t nlate = 0;
	struct vw_creds creds;
	const struct vw_creds *as;
	const char *why;
	int ret;

	holds_refresh(r, now);
	start_batches(r);
	for (struct job *j = r->running; j; j = j->next) {
		if (now < j->deadline_ns)
			continue;
		kill(-j->pid, j->termed ? SIGKILL : SIGTERM);	/* the whole process group */
		j->termed = true;
		j->deadline_ns = now + KILL_GRACE_NS;
	}
	for (pp = &r->queue; *pp && r->nrunning < RUNNER_MAX;) {
		struct job *j = *pp;

		if (j->p->gone) {	/* its project was removed */
			*pp = j->next;
			r->nqueued--;
			job_free(j);
			continue;
		}
		if (j->not_before_ns > now || running_of(r, j->a) >= j->a->concurrency ||
		    is_held(r, j->p)) {
			pp = &j->next;
			continue;
		}
		*pp = j->next;
		r->nqueued--;
		if (!(as = job_creds(j, &creds, &why))) {
			log_warnx("analyzer %s: a job for %s is not run: %s", j->a->name, j->p->name,
				  why);
			report_why(r, j, "dead", -1, 0, why);
			job_free(j);
			continue;
		}
		if ((ret = spawn(r, j, now, as)) < 0) {
			log_warnx("analyzer %s: cannot start (%s)", j->a->name, strerror(-ret));
			report_why(r, j, "dead", -1, 0, strerror(-ret));
			job_free(j);
			continue;
		}
		j->next = r->running;
		r->running = j;
		r->nrunning++;
	}
	late = NULL;
	for (struct job *j = r->queue; j; j = j->next)	/* what still waits: said once a tick */
		if (is_held(r, j->p))
			j->waits_since_ns = 0;	/* waiting for a VCS is not waiting for a slot */
		else if (job_late(r, j, now) && !nlate++)
			late = j;
	if (late)
		log_warnx("analyzer %s: %zu jobs have waited over %llu s for a slot, the first "
			  "for %s/%s (%zu running, %zu queued)", late->a->name, nlate,
			  JOB_WAIT_BOUND_NS / 1000000000ull, late->p->name,
			  late->path ? late->path : "", r->nrunning, r->nqueued);
}

int runner_retry_dead(struct vw_runner *r, struct vw_projects *t, const char *project)
{
	char tmp[PATH_MAX], *line = NULL;
	size_t cap = 0;
	FILE *in, *keep;
	int n = 0;

	if (!r->dead_path)
		return -ENOENT;
	in = fopen(r->dead_path, "re");
	if (!in)
		return errno == ENOENT ? 0 : -errno;
	snprintf(tmp, sizeof(tmp), "%s.tmp", r->dead_path);
	keep = fopen_private(tmp, false);
	if (!keep) {
		fclose(in);
		return -errno;
	}
	while (getline(&line, &cap, in) > 0) {
		struct vw_dead d = {};
		struct vw_project *p = NULL;
		const struct vw_analyzer *a = NULL;

		if (json_parse_dead(line, &d) == 0 && (!project || strcmp(d.project, project) == 0))
			p = projects_by_name(t, d.project);
		for (size_t i = 0; p && i < p->nanalyzers; i++)
			if (strcmp(p->analyzers[i].name, d.analyzer) == 0)
				a = &p->analyzers[i];
		if (a && d.path && !a->batch && kind_parse(d.event)) {
			struct vw_settled s = { .project = p, .kind = kind_parse(d.event),
						.path = d.path };

			runner_submit(r, &s, NULL);
			n++;
		} else {
			fputs(line, keep);	/* not this project's, or no longer configured */
		}
		json_dead_free(&d);
	}
	free(line);
	fclose(in);
	if (fclose(keep) == EOF || rename(tmp, r->dead_path) < 0) {
		unlink(tmp);
		return -errno;
	}
	runner_tick(r, now_ns(CLOCK_MONOTONIC));
	return n;
}
