// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// liveness.c: the ring's re-read plan and the reader's liveness invariant (see liveness.h).
#include "source/liveness.h"

uint64_t liveness_reread_at(uint64_t armed, uint64_t now, uint64_t window, bool woken,
			    int found, uint64_t backlog)
{
	uint64_t at = now + window;

	if (!woken && found <= 0 && !backlog)
		return armed;	/* nothing new: what was planned still stands */
	return armed > at ? armed : at;
}

uint64_t liveness_ring_check(struct vw_liveness *l, uint64_t sent, uint64_t read, bool owed)
{
	uint64_t behind = 0;

	if (!owed && read < l->sent_then) {
		behind = l->sent_then - read;
		l->stalls++;
		l->stalled += behind;
	}
	l->sent_then = sent;
	return behind;
}

bool liveness_queue_check(struct vw_liveness *l, uint64_t queued, uint64_t reads)
{
	bool stalled = queued && l->queued_then && reads == l->reads_then;

	if (stalled)
		l->stalls++;
	l->queued_then = queued;
	l->reads_then = reads;
	return stalled;
}
