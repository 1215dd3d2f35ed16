// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// wm_hash.c: content.sha1hex: SHA-1 of files by a child running as the asking user, cached.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "core/log.h"
#include "core/util.h"
#include "serve/wm_hash.h"

#define CACHE_MAX (1u << 18)	/* entries; when full, the cache starts afresh */
#define JOB_TIMEOUT_NS (60ull * 1000000000ull)
#define JOBS_MAX 64

struct entry {
	struct wm_hash_key k;
	bool used;
	int err;		/* 0: hex holds the hash */
	char hex[41];
};

struct job {
	struct wm_hasher *h;
	void *ctx;
	void (*done)(void *ctx);
	int fd;			/* the child's answers */
	pid_t pid;		/* the child (not ours to wait for: see wm_hash_start()) */
	uint64_t deadline_ns;
	struct wm_hash_key *keys;
	bool *answered;
	size_t n;
	char buf[256];
	size_t blen;
};

struct wm_hasher {
	struct vw_loop *loop;
	struct entry *v;	/* open addressing, CACHE_MAX * 2 slots */
	size_t n;
	struct job *jobs[JOBS_MAX];
};

static uint64_t key_hash(const struct wm_hash_key *k)
{
	uint64_t h = 1469598103934665603ull;
	const uint64_t w[4] = { k->dev, k->ino, k->size, (uint64_t)k->mtime_ns };

	for (int i = 0; i < 4; i++) {
		h ^= w[i];
		h *= 1099511628211ull;
		h ^= h >> 29;
	}
	return h;
}

static bool key_eq(const struct wm_hash_key *a, const struct wm_hash_key *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime_ns == b->mtime_ns;
}

static struct entry *slot(struct wm_hasher *h, const struct wm_hash_key *k, bool add)
{
	size_t cap = CACHE_MAX * 2, i = key_hash(k) & (cap - 1);

	if (!h->v)
		return NULL;
	for (;; i = (i + 1) & (cap - 1)) {
		if (!h->v[i].used) {
			if (!add)
				return NULL;
			if (h->n >= CACHE_MAX) {	/* full: what is asked next is hashed anew */
				memset(h->v, 0, cap * sizeof(*h->v));
				h->n = 0;
				return slot(h, k, add);
			}
			h->v[i].used = true;
			h->v[i].k = *k;
			h->n++;
			return &h->v[i];
		}
		if (key_eq(&h->v[i].k, k))
			return &h->v[i];
	}
}

struct wm_hasher *wm_hasher_new(struct vw_loop *loop)
{
	struct wm_hasher *h = calloc(1, sizeof(*h));

	if (h)
		h->loop = loop;
	return h;
}

static void job_end(struct job *j, bool call)
{
	struct wm_hasher *h = j->h;

	for (size_t i = 0; i < j->n; i++) {	/* no answer: an error, not asked again */
		struct entry *e = j->answered[i] ? NULL : slot(h, &j->keys[i], true);

		if (e) {
			e->err = ETIMEDOUT;
			e->hex[0] = 0;
		}
	}
	if (j->pid > 0)
		kill(j->pid, SIGKILL);	/* it ends when its file system lets it */
	loop_del(h->loop, j->fd);
	close(j->fd);
	for (int i = 0; i < JOBS_MAX; i++)
		if (h->jobs[i] == j)
			h->jobs[i] = NULL;
	if (call && j->done)
		j->done(j->ctx);
	free(j->keys);
	free(j->answered);
	free(j);
}

void wm_hasher_free(struct wm_hasher *h)
{
	if (!h)
		return;
	for (int i = 0; i < JOBS_MAX; i++)
		if (h->jobs[i])
			job_end(h->jobs[i], false);
	free(h->v);
	free(h);
}

int wm_hash_get(struct wm_hasher *h, const struct wm_hash_key *k, char hex[41], char *err,
		size_t errlen)
{
	struct entry *e = slot(h, k, false);

	if (!e)
		return 0;
	snprintf(hex, 41, "%s", e->hex);
	if (e->err)
		snprintf(err, errlen, "%s", strerror(e->err));
	return 1;
}

/* "<index> <hex>" or "<index> !<errno>": one answer into the cache. */
static void take(struct job *j, const char *line)
{
	char *end;
	unsigned long i = strtoul(line, &end, 10);
	struct entry *e;

	if (*end != ' ' || i >= j->n || j->answered[i])
		return;
	e = slot(j->h, &j->keys[i], true);
	if (!e)
		return;
	j->answered[i] = true;
	if (end[1] == '!') {
		e->err = atoi(end + 2);
		e->err = e->err > 0 ? e->err : EIO;
		e->hex[0] = 0;
	} else if (strlen(end + 1) == 40) {
		e->err = 0;
		memcpy(e->hex, end + 1, 41);
	} else {
		e->err = EIO;
		e->hex[0] = 0;
	}
}

static int on_answers(void *ctx, uint32_t events)
{
	struct job *j = ctx;
	ssize_t n;

	(void)events;
	for (;;) {
		char *nl;

		n = read(j->fd, j->buf + j->blen, sizeof(j->buf) - 1 - j->blen);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0) {	/* the child is done (or dead): what it did not say is an error */
			job_end(j, true);
			return 0;
		}
		j->blen += (size_t)n;
		j->buf[j->blen] = 0;
		while ((nl = memchr(j->buf, '\n', j->blen))) {
			*nl = 0;
			take(j, j->buf);
			j->blen -= (size_t)(nl + 1 - j->buf);
			memmove(j->buf, nl + 1, j->blen);
		}
		if (j->blen == sizeof(j->buf) - 1)
			j->blen = 0;	/* no line is that long: garbage */
	}
}

/* In the child, as the user: each file's SHA-1, below the root (fd 4), to fd 3. */
static void hash_child(const struct vw_creds *as, char *const *rels, size_t n)
{
	unsigned char buf[65536], md[EVP_MAX_MD_SIZE];
	FILE *out;

	if (creds_child_become(as, 4) < 0)	/* the answers (3) and the root (4) kept */
		_exit(1);
	out = fdopen(3, "w");
	if (!out)
		_exit(1);
	for (size_t i = 0; i < n; i++) {
		/* no symlink on the way, never out of the root, no fifo waited on */
		int fd = creds_open_nofollow(4, rels[i], O_RDONLY | O_NOCTTY | O_NONBLOCK, true);
		EVP_MD_CTX *c = NULL;
		unsigned int mdlen = 0;
		struct stat st;
		int err = 0;
		ssize_t r;

		if (fd < 0)
			err = -fd;
		else if (fstat(fd, &st) < 0)
			err = errno;
		else if (!S_ISREG(st.st_mode))
			err = EISDIR;
		else if (!(c = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(c, EVP_sha1(), NULL))
			err = ENOMEM;
		while (!err && (r = read(fd, buf, sizeof(buf))) != 0) {
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0 || !EVP_DigestUpdate(c, buf, (size_t)r))
				err = r < 0 ? errno : EIO;
		}
		if (!err && !EVP_DigestFinal_ex(c, md, &mdlen))
			err = EIO;
		EVP_MD_CTX_free(c);
		if (fd >= 0)
			close(fd);
		if (err) {
			fprintf(out, "%zu !%d\n", i, err);
		} else {
			fprintf(out, "%zu ", i);
			for (unsigned int k = 0; k < mdlen; k++)
				fprintf(out, "%02x", md[k]);
			fputc('\n', out);
		}
	}
	fflush(out);
	_exit(0);
}

int wm_hash_start(struct wm_hasher *h, const struct vw_creds *as, const struct vw_project *p,
		  char *const *rels, const struct wm_hash_key *keys, size_t n,
		  void (*done)(void *ctx), void *ctx)
{
	struct job *j;
	int sv[2], k = -1;
	pid_t pid;

	if (!h->v && !(h->v = calloc(CACHE_MAX * 2, sizeof(*h->v))))
		return -ENOMEM;
	for (int i = 0; i < JOBS_MAX && k < 0; i++)
		if (!h->jobs[i])
			k = i;
	if (k < 0)
		return -EBUSY;
	j = calloc(1, sizeof(*j));
	if (!j || !(j->keys = malloc(n * sizeof(*keys))) || !(j->answered = calloc(n, 1))) {
		if (j)
			free(j->keys);
		free(j);
		return -ENOMEM;
	}
	memcpy(j->keys, keys, n * sizeof(*keys));
	j->n = n;
	j->h = h;
	j->ctx = ctx;
	j->done = done;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		free(j->keys);
		free(j->answered);
		free(j);
		return -errno;
	}
	/*
	 * Two forks, as creds_open_dir_as(): the one that reads is nobody's child of
	 * ours, so that one stuck in a user's FUSE file system is never waited for;
	 * it says its pid first, and is killed when its time is up.
	 */
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		if (fork() == 0) {
			pid_t me = getpid();

			if (dup2(sv[1], 3) < 0 || dup2(p->root_fd, 4) < 0 ||
			    write(3, &me, sizeof(me)) != sizeof(me))
				_exit(1);
			hash_child(as, rels, n);
		}
		_exit(0);
	}
	close(sv[1]);
	if (pid < 0 || waitpid(pid, NULL, 0) < 0 ||
	    read(sv[0], &j->pid, sizeof(j->pid)) != sizeof(j->pid)) {
		close(sv[0]);
		free(j->keys);
		free(j->answered);
		free(j);
		return -ECHILD;
	}
	j->fd = sv[0];
	if (fcntl(j->fd, F_SETFL, O_NONBLOCK) < 0 || loop_add(h->loop, j->fd, on_answers, j) < 0) {
		kill(j->pid, SIGKILL);
		close(j->fd);
		free(j->keys);
		free(j->answered);
		free(j);
		return -errno;
	}
	j->deadline_ns = now_ns(CLOCK_MONOTONIC) + JOB_TIMEOUT_NS;
	h->jobs[k] = j;
	return 0;
}

bool wm_hash_running(const struct wm_hasher *h, const void *ctx)
{
	for (int i = 0; h && i < JOBS_MAX; i++)
		if (h->jobs[i] && h->jobs[i]->ctx == ctx)
			return true;
	return false;
}

void wm_hash_forget(struct wm_hasher *h, const void *ctx)
{
	for (int i = 0; h && i < JOBS_MAX; i++)
		if (h->jobs[i] && h->jobs[i]->ctx == ctx)
			job_end(h->jobs[i], false);
}

void wm_hash_tick(struct wm_hasher *h, uint64_t now)
{
	for (int i = 0; h && i < JOBS_MAX; i++)
		if (h->jobs[i] && now >= h->jobs[i]->deadline_ns)
			job_end(h->jobs[i], true);
}
