// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// test_liveness.c: the ring's re-read plan against a model of the kernel's ring, and the stall checks.
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "source/liveness.h"

#define W 250	/* the wake-up window, in the model's time units */

static void a_woken_read_plans_a_reread_even_when_it_found_nothing(void **state)
{
	assert_int_equal(liveness_reread_at(0, 1000, W, true, 0, 0), 1000 + W);
	assert_int_equal(liveness_reread_at(0, 1000, W, false, 3, 0), 1000 + W);
	assert_int_equal(liveness_reread_at(0, 1000, W, false, 0, 64), 1000 + W);	/* bytes left */
	assert_int_equal(liveness_reread_at(0, 1000, W, false, 0, 0), 0);
	assert_int_equal(liveness_reread_at(0, 1000, W, false, -5, 0), 0);	/* an error */
}

static void a_read_moves_a_planned_reread_later_and_never_cancels_it(void **state)
{
	assert_int_equal(liveness_reread_at(1100, 1000, W, false, 0, 0), 1100);
	assert_int_equal(liveness_reread_at(1100, 1000, W, true, 0, 0), 1000 + W);
	assert_int_equal(liveness_reread_at(9000, 1000, W, true, 2, 0), 9000);
}

static void records_unread_since_the_last_check_with_no_read_owed_are_a_stall(void **state)
{
	struct vw_liveness l = {};

	assert_int_equal(liveness_ring_check(&l, 10, 4, false), 0);	/* sent since: not judged */
	assert_int_equal(liveness_ring_check(&l, 12, 10, false), 0);	/* all of those read */
	assert_int_equal(liveness_ring_check(&l, 12, 11, true), 0);	/* behind, but a read is owed */
	assert_int_equal(liveness_ring_check(&l, 12, 11, false), 1);	/* behind, nothing owed */
	assert_int_equal(l.stalls, 1);
	assert_int_equal(l.stalled, 1);
	assert_int_equal(liveness_ring_check(&l, 12, 12, false), 0);
	assert_int_equal(l.stalls, 1);
}

static void a_queue_left_unread_between_two_checks_is_a_stall(void **state)
{
	struct vw_liveness l = {};

	assert_false(liveness_queue_check(&l, 100, 5));
	assert_false(liveness_queue_check(&l, 100, 6));	/* read in between */
	assert_true(liveness_queue_check(&l, 80, 6));	/* not read in between */
	assert_false(liveness_queue_check(&l, 0, 6));
	assert_false(liveness_queue_check(&l, 40, 6));	/* just queued */
	assert_int_equal(l.stalls, 1);
}

/*
 * A model of the kernel's BPF ring buffer (kernel/bpf/ringbuf.c) and of the
 * daemon's reader, stepped one event at a time in an order a seed picks:
 * writers choose their flags (rb_flags()), reserve, commit (a wake-up is
 * queued per the flags: forced, none, or the adaptive rule "the reader is at
 * this record"), wake-ups are delivered late, and the daemon reads on a
 * wake-up, on its planned re-read, or on its own (a debounce deadline).
 */
#define NREC 64
#define FORCE 1
#define NOWAKE 2
#define ADAPTIVE 0

struct model {
	unsigned int seed;
	uint64_t now;
	/* kernel */
	uint64_t last;			/* vw_wake */
	int flags[NREC];
	bool busy[NREC];		/* reserved, not committed */
	int prod, cons;			/* records, not bytes */
	bool wake_queued;		/* irq_work pending: the epoll fd turns ready later */
	bool ready;			/* the epoll fd is ready */
	/* daemon */
	uint64_t reread;
	bool old_rule;
	int read;
};

static uint64_t old_reread_at(int found, uint64_t now)
{
	return found > 0 ? now + W : 0;	/* the rule the burst of mkdirs broke */
}

static int model_flags(struct model *m, bool force_opener)
{
	if (m->now - m->last < W)
		return NOWAKE;
	m->last = m->now;
	return force_opener ? FORCE : ADAPTIVE;
}

static void model_read(struct model *m, bool woken)
{
	int found = 0;

	while (m->cons < m->prod && !m->busy[m->cons]) {
		m->cons++;
		found++;
	}
	m->read += found;
	if (m->old_rule)
		m->reread = old_reread_at(found, m->now);
	else
		m->reread = liveness_reread_at(m->reread, m->now, W, woken, found,
					       (uint64_t)(m->prod - m->cons));
}

static void model_commit(struct model *m, int i)
{
	m->busy[i] = false;
	if (m->flags[i] == FORCE || (m->flags[i] == ADAPTIVE && m->cons == i))
		m->wake_queued = true;
}

/*
 * Run one schedule: @n records, each flagged and reserved at once (one BPF
 * program run), committed in a random order (writers on other CPUs).
 */
static int model_run(struct model *m, int n, bool force_opener)
{
	int committed = 0;

	m->now = 1000;
	m->last = 0;
	while (committed < n) {
		int r = rand_r(&m->seed) % 8;

		m->now += (uint64_t)(rand_r(&m->seed) % 120);
		if (r == 0 && m->prod < n) {
			m->flags[m->prod] = model_flags(m, force_opener);
			m->busy[m->prod++] = true;
		} else if ((r == 1 || r == 2) && committed < m->prod) {
			int i = m->cons + rand_r(&m->seed) % (m->prod - m->cons ? m->prod - m->cons : 1);

			while (!m->busy[i])	/* the next one still being written */
				i = (i + 1) % m->prod;
			model_commit(m, i);
			committed++;
		} else if (r == 3 && m->wake_queued) {
			m->wake_queued = false;
			m->ready = true;
		} else if (r == 4 && m->ready) {
			m->ready = false;
			model_read(m, true);
		} else if (r == 5 && m->reread && m->now >= m->reread) {
			m->reread = 0;
			model_read(m, false);
		} else if (r == 6) {
			model_read(m, false);	/* a debounce deadline reads the ring too */
		}
	}
	/* the writers are done: the daemon runs until it has nothing owed */
	for (int guard = 0; guard < 1000; guard++) {
		m->now += 50;
		if (m->wake_queued) {
			m->wake_queued = false;
			m->ready = true;
		}
		if (m->ready) {
			m->ready = false;
			model_read(m, true);
		} else if (m->reread && m->now >= m->reread) {
			m->reread = 0;
			model_read(m, false);
		} else if (!m->reread) {
			break;
		}
	}
	return m->prod - m->cons;	/* stranded */
}

/* Schedules (of 20 000 seeds) that leave records in the ring. */
static int stranding_schedules(bool old_rule, bool force_opener)
{
	int bad = 0;

	for (unsigned int seed = 1; seed <= 20000; seed++) {
		struct model m = { .seed = seed, .old_rule = old_rule };

		bad += model_run(&m, 1 + (int)(seed % 40), force_opener) > 0;
	}
	return bad;
}

/* the kernel's adaptive rule for a window's first record, as vfswatch uses it */
static void no_schedule_leaves_a_record_unread(void **state)
{
	assert_int_equal(stranding_schedules(false, false), 0);
}

static void no_schedule_leaves_a_record_unread_with_forced_wake_ups_either(void **state)
{
	assert_int_equal(stranding_schedules(false, true), 0);
}

/* the model can tell: the rule before the fix loses records in it */
static void the_old_rule_strands_records_in_some_schedule(void **state)
{
	assert_true(stranding_schedules(true, false) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_woken_read_plans_a_reread_even_when_it_found_nothing),
		cmocka_unit_test(a_read_moves_a_planned_reread_later_and_never_cancels_it),
		cmocka_unit_test(records_unread_since_the_last_check_with_no_read_owed_are_a_stall),
		cmocka_unit_test(a_queue_left_unread_between_two_checks_is_a_stall),
		cmocka_unit_test(no_schedule_leaves_a_record_unread),
		cmocka_unit_test(the_old_rule_strands_records_in_some_schedule),
		cmocka_unit_test(no_schedule_leaves_a_record_unread_with_forced_wake_ups_either),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
