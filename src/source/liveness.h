/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* liveness.h: when the ring is read again, and whether the reader has fallen behind for good. */
#ifndef VW_LIVENESS_H
#define VW_LIVENESS_H

#include <stdbool.h>
#include <stdint.h>

/*
 * When to read the ring again after a read at @now that found @found records
 * (a wake-up caused it: @woken; @backlog bytes were left in the ring behind
 * it). @armed is the re-read already planned (0: none). Returns the new plan
 * (0: none): a re-read is owed one @window after every read a wake-up caused,
 * after every read that found records and after every read that left bytes
 * behind; a planned re-read is moved later by a read, never cancelled.
 */
uint64_t liveness_reread_at(uint64_t armed, uint64_t now, uint64_t window, bool woken,
			    int found, uint64_t backlog);

/*
 * The invariant checked at every housekeeping tick: every record the kernel
 * had sent by the previous check has been read by this one (lost records are
 * not counted as sent), unless a read of it is owed now.
 */
struct vw_liveness {
	uint64_t sent_then;	/* the kernel's count of records sent, at the previous check */
	uint64_t queued_then;	/* a queue's bytes at the previous check (fanotify) */
	uint64_t reads_then;	/* reads of that queue by then */
	bool readable_then;	/* the ring's wake-up was waiting at the previous check */
	uint64_t wakes_then;	/* wake-ups handled by then */
	uint64_t stalls;	/* times the reader was found behind with no read owed */
	uint64_t stalled;	/* records (ring) found so */
};

/*
 * The ring: @sent records sent by the kernel so far, @read read by the
 * daemon; @owed: a wake-up is waiting to be handled or a re-read is planned.
 * Returns how many records sent by the previous check are still unread with
 * no read owed (0: the reader is alive), and counts a stall when not 0.
 */
uint64_t liveness_ring_check(struct vw_liveness *l, uint64_t sent, uint64_t read, bool owed);

/*
 * A queue the kernel wakes the reader for (fanotify): @queued bytes in it now,
 * @reads reads of it so far. A stall is bytes queued at two checks in a row
 * with no read between them. Returns true (and counts it) on a stall.
 */
bool liveness_queue_check(struct vw_liveness *l, uint64_t queued, uint64_t reads);

#endif
