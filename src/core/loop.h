/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* loop.h: one epoll set; each source registers {fd, callback, ctx}, no switch on fds. */
#ifndef VW_LOOP_H
#define VW_LOOP_H

#include <stdbool.h>
#include <stdint.h>

/* Called when @fd is ready; @events is the epoll mask. Returns 0 or -errno (logged). */
typedef int (*loop_cb_fn)(void *ctx, uint32_t events);

struct vw_loop;

struct vw_loop *loop_new(void);
void loop_free(struct vw_loop *l);	/* closes nothing it did not open; NULL is a no-op */
int loop_add(struct vw_loop *l, int fd, loop_cb_fn cb, void *ctx);
/* Stop watching @fd (it is not closed). Safe from inside a handler. Returns 0 or -errno. */
int loop_del(struct vw_loop *l, int fd);
/* Be called for @fd when it can be written too (EPOLLOUT), or no longer. */
int loop_want_write(struct vw_loop *l, int fd, bool on);
void loop_stop(struct vw_loop *l);
bool loop_stopped(const struct vw_loop *l);
/* Wait up to @timeout_ns (-1: forever) and dispatch. Returns 0 or -errno; EINTR is 0. */
int loop_run_once(struct vw_loop *l, int64_t timeout_ns);

#endif
