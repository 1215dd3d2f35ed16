// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// loop.c: the daemon's single epoll loop (the redis ae idea: data.ptr points at the registration).
#define _GNU_SOURCE	/* epoll_pwait2 */
#include <errno.h>
#include <string.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"

#define LOOP_MAX_SOURCES 512	/* the daemon's own, control and client connections */
#define LOOP_BATCH 16

struct source {
	int fd;
	loop_cb_fn cb;
	void *ctx;
};

struct vw_loop {
	int epfd;
	bool stop;
	int n;
	struct source src[LOOP_MAX_SOURCES];
};

struct vw_loop *loop_new(void)
{
	struct vw_loop *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		int e = errno;

		free(l);
		errno = e;
		return NULL;
	}
	return l;
}

void loop_free(struct vw_loop *l)
{
	if (!l)
		return;
	close(l->epfd);
	free(l);
}

int loop_add(struct vw_loop *l, int fd, loop_cb_fn cb, void *ctx)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct source *s;

	/* a free slot (fd -1) first: registrations never move, epoll points at them */
	for (s = l->src; s < l->src + l->n && s->fd >= 0; s++)
		;
	if (s == l->src + LOOP_MAX_SOURCES)
		return -ENOSPC;
	s->fd = fd;
	s->cb = cb;
	s->ctx = ctx;
	ev.data.ptr = s;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		s->fd = -1;
		return -errno;
	}
	if (s == l->src + l->n)
		l->n++;
	return 0;
}

int loop_del(struct vw_loop *l, int fd)
{
	for (int i = 0; i < l->n; i++) {
		if (l->src[i].fd == fd) {
			l->src[i].fd = -1;	/* a pending event for it is skipped below */
			return epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL) < 0 ? -errno : 0;
		}
	}
	return -ENOENT;
}

int loop_want_write(struct vw_loop *l, int fd, bool on)
{
	for (int i = 0; i < l->n; i++) {
		if (l->src[i].fd == fd) {
			struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0),
						  .data.ptr = &l->src[i] };

			return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
		}
	}
	return -ENOENT;
}

void loop_stop(struct vw_loop *l)
{
	l->stop = true;
}

bool loop_stopped(const struct vw_loop *l)
{
	return l->stop;
}

int loop_run_once(struct vw_loop *l, int64_t timeout_ns)
{
	static bool no_pwait2;	/* before Linux 5.11: milliseconds, rounded up */
	struct epoll_event evs[LOOP_BATCH];
	struct timespec ts = { timeout_ns / 1000000000ll, timeout_ns % 1000000000ll };
	int n = -1;

	if (timeout_ns >= 0 && !no_pwait2) {
		n = epoll_pwait2(l->epfd, evs, LOOP_BATCH, &ts, NULL);
		if (n < 0 && errno == ENOSYS)
			no_pwait2 = true;
	}
	if (timeout_ns < 0 || no_pwait2)
		n = epoll_wait(l->epfd, evs, LOOP_BATCH,
			       timeout_ns < 0 ? -1 : (int)((timeout_ns + 999999) / 1000000));
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n && !l->stop; i++) {
		struct source *s = evs[i].data.ptr;
		int ret;

		if (s->fd < 0)
			continue;	/* removed by an earlier handler of this round */
		ret = s->cb(s->ctx, evs[i].events);

		if (ret < 0)
			log_warnx("loop: handler for fd %d: %s", s->fd, strerror(-ret));
	}
	return 0;
}
