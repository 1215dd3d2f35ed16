/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* common.bpf.h: the prefix filter, path assembly and record emission shared by every hook. */
#ifndef VW_COMMON_BPF_H
#define VW_COMMON_BPF_H

#include "vw_events.h"
#include "maps.bpf.h"

/* vmlinux.h carries types, not macros. */
#define S_IFMT		00170000
#define S_IFREG		0100000
#define S_IFDIR		0040000
#define S_IFLNK		0120000
#define S_IFIFO		0010000
#define ATTR_MODE	(1 << 0)
#define ATTR_UID	(1 << 1)
#define ATTR_GID	(1 << 2)
#define ATTR_SIZE	(1 << 3)
#define ATTR_ATIME	(1 << 4)
#define ATTR_MTIME	(1 << 5)
#define RENAME_EXCHANGE	(1 << 1)
#define FMODE_WRITE	0x2
/* include/linux/fs.h: 0x100000 in 6.1 and (1 << 20) after the 6.9 reshuffle: same bit. */
#define FMODE_CREATED	0x100000
#define MAY_WRITE	0x2
#define O_CREAT		0100
#define O_TRUNC		01000
#define AT_FDCWD	-100
#define AT_REMOVEDIR	0x200

#define VW_WALK_MAX	256	/* levels searched for a root; names kept for VW_MAX_DEPTH */
#define VW_PATH_MASK	(VW_PATH_MAX - 1)

/*
 * An index into a VW_PATH_MAX buffer the verifier can bound: the empty asm
 * keeps clang from dropping the mask when it believes the value is in range
 * already (it often checks a copy, which the verifier does not link back).
 */
#define VW_IDX(off) ({ __u64 __o = (off); asm volatile("" : "+r"(__o)); __o & VW_PATH_MASK; })

/*
 * Loops over a step function (long step(__u32 i, void *unused): nonzero ends
 * the loop; its state lives in the scratch map). With bpf_loop() (5.17+) the
 * verifier checks the step once, whatever the count. The compat object
 * (VW_COMPAT, for kernels without it) is built with no callback at all (an
 * older verifier does not know them as functions): VW_STEPS defines a global
 * function that runs @chunk steps in a bounded loop, verified once on its own
 * (each of its iterations walked once), and VW_LOOP calls it @n / @chunk
 * times. The chunks keep the verifier's pending branches per function in
 * bounds.
 */
#ifdef VW_COMPAT
#define VW_STEPS(step, chunk)							\
	__noinline int step##_chunk(__u32 from)					\
	{									\
		_Pragma("clang loop unroll(disable)")				\
		for (__u32 i = 0; i < (chunk); i++)				\
			if (step(from + i, NULL))				\
				return 1;					\
		return 0;							\
	}
#define VW_LOOP(n, step, chunk)							\
	do {									\
		_Pragma("clang loop unroll(disable)")				\
		for (__u32 c = 0; c < (n) / (chunk); c++)			\
			if (step##_chunk(c * (chunk)))				\
				break;						\
	} while (0)
#else
#define VW_STEPS(step, chunk)
#define VW_LOOP(n, step, chunk) bpf_loop(n, step, NULL, 0)
#endif

#ifdef VW_BPF_DEBUG
#define vw_dbg(fmt, ...) bpf_printk(fmt, ##__VA_ARGS__)
#else
#define vw_dbg(fmt, ...) do { } while (0)
#endif

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&vw_stats, &idx);

	if (v)
		*v += 1;
}

static __always_inline struct vw_scratch *scratch_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&vw_scratch_map, &zero);
}

static __always_inline __u16 ftype_of(struct inode *inode)
{
	__u16 mode;

	if (!inode)
		return VW_FT_UNKNOWN;
	mode = BPF_CORE_READ(inode, i_mode) & S_IFMT;
	if (mode == S_IFREG)
		return VW_FT_FILE;
	if (mode == S_IFDIR)
		return VW_FT_DIR;
	if (mode == S_IFLNK)
		return VW_FT_SYMLINK;
	return VW_FT_OTHER;
}

/* Does this filesystem (kernel dev_t) hold any project? One hash lookup. */
static __always_inline bool dev_watched(__u32 dev)
{
	return bpf_map_lookup_elem(&vw_watched_devs, &dev) != NULL;
}

/*
 * Global functions are verified once, on their own, instead of once per call
 * site: without that the walk and path assembly inlined into every hook blow
 * past the verifier's one million instructions. Pointers cross as __u64.
 * Defined in resolve.bpf.c.
 */

/* Project of (mnt, dentry), or VW_PROJECT_NONE; the path goes to s->path, s->res_len, s->res_cut. */
extern int vw_resolve(__u64 mnt, __u64 dentry);

/* Report op on (mnt, dentry); VW_PC_* options. op_ftype = op | ftype << 16. Returns the project or 0. */
#define VW_PC_REGULAR_ONLY	0x1
#define VW_PC_PENDING		0x2
#define VW_PC_LINKED_ONLY	0x4	/* drop when the inode has no name left (i_nlink == 0) */
extern int vw_path_change(__u64 mnt, __u64 dentry, __u32 op_ftype, __u32 opts);

/* Append '/' and the string at s->name[from] to the path of length @len (NUL included). */
static __always_inline __u32 append_name(struct vw_scratch *s, __u32 len, __u32 from, bool *cut)
{
	__u32 off = len - 1;
	long n;

	if (off > 0 && off < VW_PATH_MAX - 1)
		{
			s->path[VW_IDX(off)] = '/';
			off++;
		}
	if (off >= VW_PATH_MAX - 1) {
		*cut = true;
		return len;
	}
	n = bpf_probe_read_kernel_str(&s->path[VW_IDX(off)], VW_PATH_MAX,
				      &s->name[VW_IDX(from)]);
	if (n <= 0)
		return off + 1;
	off += n - 1;
	if (off > VW_PATH_MAX - 1) {
		*cut = true;
		off = VW_PATH_MAX - 1;
		s->path[VW_IDX(off)] = 0;
	}
	return off + 1;
}

/* Copy the assembled s->path (@len bytes) into the record's data at @at. */
static __always_inline void path_store(struct vw_scratch *s, __u64 at, __u64 len)
{
	asm volatile("" : "+r"(at), "+r"(len));
	if (at > VW_PATH_MAX || len > VW_PATH_MAX || len == 0)
		return;
	bpf_probe_read_kernel(&s->ev.data[at], len, s->path);
}

/* Fill the attribution fields of s->ev. */
static __always_inline void ev_begin(struct vw_scratch *s, __u16 op, __u16 ftype)
{
	struct vw_change *ev = &s->ev;
	__u64 id = bpf_get_current_pid_tgid();

	ev->hdr.type = VW_EV_CHANGE;
	ev->hdr.flags = 0;
	ev->hdr.ts_ns = bpf_ktime_get_boot_ns();
	ev->cgroup_id = bpf_get_current_cgroup_id();
	ev->ino = 0;
	ev->anchor_ino = 0;
	ev->old_anchor_ino = 0;
	ev->dev = 0;
	ev->pid = (__u32)id;
	ev->tgid = id >> 32;
	ev->uid = (__u32)bpf_get_current_uid_gid();
	ev->project = VW_PROJECT_NONE;
	ev->old_project = VW_PROJECT_NONE;
	ev->op = op;
	ev->ftype = ftype;
	ev->path_len = 0;
	ev->old_path_len = 0;
	ev->pad = 0;
	/* the process group, so that a whole analyzer job (its children too) is recognised */
	ev->pgid = BPF_CORE_READ((struct task_struct *)bpf_get_current_task(), signal,
				 pids[PIDTYPE_PGID], numbers[0].nr);
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
}

/* Is the current process one whose changes are never reported? */
static __always_inline bool current_quiet(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (tgid == cfg_self_tgid)
		return true;
	return bpf_map_lookup_elem(&vw_quiet, &tgid) != NULL;
}

/*
 * A record of @project could not be sent: mark the project for a rescan. The
 * mark comes before the count, so that userspace, seeing the count rise,
 * finds the marks of every loss it counted.
 */
static __always_inline void lost_mark(__u32 project)
{
	__u64 one = 1, *v = bpf_map_lookup_elem(&vw_lost, &project);

	if (v) {
		__sync_fetch_and_add(v, 1);
	} else if (bpf_map_update_elem(&vw_lost, &project, &one, BPF_NOEXIST)) {
		project = VW_PROJECT_NONE;	/* the map is full (or raced): every project */
		if (bpf_map_update_elem(&vw_lost, &project, &one, BPF_NOEXIST) &&
		    (v = bpf_map_lookup_elem(&vw_lost, &project)))
			__sync_fetch_and_add(v, 1);
	}
	stat_inc(VW_STAT_RINGBUF_FULL);
}

/* The wake-up window: cfg_wakeup_ns (tests widen it), else VW_RB_WAKEUP_NS. */
static __always_inline __u64 rb_window(void)
{
	return cfg_wakeup_ns ? cfg_wakeup_ns : VW_RB_WAKEUP_NS;
}

/*
 * Flags for a record. The first record of a window (cfg_wakeup_ns long,
 * default VW_RB_WAKEUP_NS) may wake the daemon (the kernel's adaptive rule:
 * it does when the reader has caught up with this very record; when it has
 * not, a read of the records in front is owed, and that read, finding this
 * one or seeing it still being written, plans a re-read); the records sent
 * within the window after it do not wake the daemon (waking is an
 * inter-processor interrupt per record otherwise). The daemon reads the ring
 * again one window after every read a wake-up caused and after every read
 * that found records or left any behind, so each record without a wake-up is
 * read by a re-read (src/daemon.c, consume_ring(); tests/unit/test_liveness.c
 * steps both rules through random schedules). Forcing the first record's
 * wake-up would not be needed for that, and costs 8% on writes inside a root
 * in --raw (make bench-compare).
 */
static __always_inline __u64 rb_flags(void)
{
	__u32 zero = 0;
	__u64 *last = bpf_map_lookup_elem(&vw_wake, &zero), now;

	if (!last)
		return 0;
	now = bpf_ktime_get_ns();
	if (now - *last < rb_window())
		return BPF_RB_NO_WAKEUP;
	*last = now;
	return 0;
}

/*
 * After a record sent without a wake-up: if its window is over by now, its
 * writer was held up (preempted) between choosing the flags and committing
 * the record, and the re-read the window's wake-up planned may have gone by.
 * A header-only record with a forced wake-up makes the reader come for it.
 */
static __always_inline void rb_late_wake(__u64 flags)
{
	struct vw_ev_hdr h = { .type = VW_EV_WAKE, .size = sizeof(h) };
	__u32 zero = 0;
	__u64 *last;

	if (flags != BPF_RB_NO_WAKEUP)
		return;
	last = bpf_map_lookup_elem(&vw_wake, &zero);
	if (!last || bpf_ktime_get_ns() - *last < rb_window())
		return;
	h.ts_ns = bpf_ktime_get_boot_ns();
	if (bpf_ringbuf_output(&vw_events, &h, sizeof(h), BPF_RB_FORCE_WAKEUP) == 0)
		stat_inc(VW_STAT_EMITTED);
}

/* Send s->ev; @pending asks userspace to wait for this thread's VW_EV_RESULT. */
static __always_inline void ev_submit(struct vw_scratch *s, bool pending)
{
	struct vw_change *ev = &s->ev;
	__u64 plen = ev->path_len, olen = ev->old_path_len, size, flags;

	if (current_quiet()) {
		stat_inc(VW_STAT_REJECTED);
		return;
	}
	if (ev->hdr.flags & (VW_EVF_TRUNCATED | VW_EVF_OLD_TRUNCATED))
		stat_inc(VW_STAT_TRUNCATED);
	if (pending)
		ev->hdr.flags |= VW_EVF_PENDING;
	/* Each bound is checked on its own so the verifier can see size <= sizeof(*ev). */
	asm volatile("" : "+r"(plen), "+r"(olen));
	if (plen > VW_PATH_MAX || olen > VW_PATH_MAX)
		return;
	size = offsetof(struct vw_change, data) + plen + olen;
	ev->hdr.size = size;
	flags = rb_flags();
	if (bpf_ringbuf_output(&vw_events, ev, size, flags)) {
		lost_mark(ev->project);
		if (ev->old_project != VW_PROJECT_NONE && ev->old_project != ev->project)
			lost_mark(ev->old_project);
		return;
	}
	stat_inc(VW_STAT_EMITTED);
	rb_late_wake(flags);
	if (pending) {
		__u32 proj = ev->project != VW_PROJECT_NONE ? ev->project : ev->old_project;

		bpf_map_update_elem(&vw_pending, &ev->pid, &proj, BPF_ANY);
	}
}

/* Send the outcome of this thread's pending change, if it owes one. */
static __always_inline void result_submit(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = (__u32)id;
	struct vw_result r = {};
	__u32 *proj = bpf_map_lookup_elem(&vw_pending, &pid), project;
	__u64 flags;

	if (!proj)
		return;
	project = *proj;
	bpf_map_delete_elem(&vw_pending, &pid);
	r.hdr.type = VW_EV_RESULT;
	r.hdr.size = sizeof(r);
	r.hdr.ts_ns = bpf_ktime_get_boot_ns();
	r.ret = ret;
	r.pid = pid;
	r.tgid = id >> 32;
	flags = rb_flags();
	if (bpf_ringbuf_output(&vw_events, &r, sizeof(r), flags)) {
		lost_mark(project);
		return;
	}
	stat_inc(VW_STAT_EMITTED);
	rb_late_wake(flags);
}

/*
 * Trusted BTF pointers (fentry arguments) cannot be handed to a global
 * function, which takes only scalars: read the pointer's value back as one.
 */
static __always_inline __u64 ptr_scalar(const void *p)
{
	__u64 v = 0;

	bpf_probe_read_kernel(&v, sizeof(v), &p);
	return v;
}

static __always_inline __u32 *gen_ptr(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&vw_gen, &zero);
}

/* Did a sync point of @project's slot or of all projects begin at or after @ns (vw_sync)? */
static __always_inline bool synced_since(__u32 project, __u64 ns)
{
	__u32 slot = project % VW_SYNC_SLOTS, all = VW_SYNC_SLOTS;
	__u64 *s = bpf_map_lookup_elem(&vw_sync, &slot);

	if (s && *s >= ns)
		return true;
	s = bpf_map_lookup_elem(&vw_sync, &all);
	return s && *s >= ns;
}

/* Directories may have moved: every cached verdict becomes stale. */
static __always_inline void verdicts_invalidate(void)
{
	__u32 *g = gen_ptr();

	if (g)
		__sync_fetch_and_add(g, 1);
}

/*
 * A change to an open file (write, truncate, create through open); @file is
 * the struct file * as a scalar. What a walk found is remembered per open
 * file: see vw_file_change() in resolve.bpf.c. A global function: verified
 * once, not once per hook and syscall that calls it.
 */
extern int vw_file_change(__u64 file, __u32 op, __u32 opts);

#endif /* VW_COMMON_BPF_H */
