/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* maps.bpf.h: declarations of the maps and rodata knobs defined once in maps.bpf.c. */
#ifndef VW_MAPS_BPF_H
#define VW_MAPS_BPF_H

/*
 * Per-CPU scratch: records are assembled here (the BPF stack holds only 512
 * bytes) and sent with bpf_ringbuf_output(), which takes a variable size.
 */
/*
 * State of the bpf_loop callbacks lives in the map value, not on the stack:
 * the verifier tracks stack scalars exactly, so a counter there makes every
 * iteration a new state and the program "too large"; map values it does not
 * track, so each callback is verified once.
 */
struct vw_walk_state {
	__u64 dentry;
	__u64 mnt;		/* struct mount *, 0 when the hook has no vfsmount */
	__u32 depth;		/* names recorded in chain[] */
	__u32 project;
	__u32 levels;
	__u32 pad;
	__u64 anchor_ino;	/* the directory above the VW_MAX_DEPTH names kept */
};

struct vw_assemble_state {
	__u64 off;
	__u32 depth;
	__u32 cut;
};

struct vw_chain_state {
	__u64 ino;
	__u64 h;		/* hash of the components taken so far */
	__u64 hc;		/* hash including the component being read */
	__u32 dev;
	__u32 project;
	__u32 tail;		/* index in name[] where the relative path starts */
	__u32 ncomp;
	__u32 clen;
	__u32 unresolved;
	char c0, c1;
	__u8 pad[6];
};

struct vw_scratch {
	struct vw_change ev;
	char path[2 * VW_PATH_MAX];	/* one path being assembled */
	char name[VW_PATH_MAX];		/* a path string copied from a syscall argument */
	__u64 chain[VW_MAX_DEPTH];	/* dentries from the changed one up to below the root */
	__u32 res_len;			/* out of vw_resolve(): s->path length, NUL included */
	__u32 res_cut;			/* out of vw_resolve(): the path was cut */
	__u64 res_anchor;		/* out of vw_resolve(): anchor inode when cut, else 0 */
	struct vw_walk_state walk;
	struct vw_assemble_state as;
	struct vw_chain_state ch;
};

/*
 * Each map's type is spelled once; maps.bpf.c defines VW_MAPS_OWNER so that
 * the same lines there become the definitions, here extern declarations that
 * the static linker (bpftool gen object) resolves.
 */
#ifdef VW_MAPS_OWNER
#define VW_MAP(def, name) def name SEC(".maps")
#define VW_KNOB(type, name) const volatile type name = 0
#define VW_KNOBS(type, name, n) const volatile type name[n] = {}
#else
#define VW_MAP(def, name) extern def name SEC(".maps")
#define VW_KNOB(type, name) extern const volatile type name
#define VW_KNOBS(type, name, n) extern const volatile type name[n]
#endif

/* The ring buffer; the loader sets its size before load. */
VW_MAP(struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
}, vw_events);

/* Project roots and EXCLUDED directories, by identity. */
VW_MAP(struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);	/* created in microseconds, filled as needed */
	__type(key, struct vw_dir_key);
	__type(value, struct vw_root_val);
	__uint(max_entries, 65536);
}, vw_roots);

/* Filesystems (kernel dev_t) that hold at least one project: the fast reject. */
VW_MAP(struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);	/* created in microseconds, filled as needed */
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 4096);
}, vw_watched_devs);

/* Ancestors of roots, for syscall path strings whose base is outside every root. */
VW_MAP(struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);	/* created in microseconds, filled as needed */
	__type(key, struct vw_chain_key);
	__type(value, struct vw_chain_val);
	__uint(max_entries, 65536);
}, vw_chains);

/* Processes whose own changes are never reported (the daemon, its children). */
VW_MAP(struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);	/* created in microseconds, filled as needed */
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 4096);
}, vw_quiet);

/* Threads that emitted a VW_EVF_PENDING change and owe a VW_EV_RESULT: the change's project. */
VW_MAP(struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 16384);
}, vw_pending);

VW_MAP(struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, VW_STAT_MAX);
}, vw_stats);

/*
 * Projects that lost a record (ring buffer full): project id -> records lost.
 * Userspace takes the entries and rescans just those projects; the key
 * VW_PROJECT_NONE stands for "a project not known": every one is rescanned.
 */
VW_MAP(struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);	/* created in microseconds, filled as needed */
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 8192);
}, vw_lost);

VW_MAP(struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct vw_scratch);
	__uint(max_entries, 1);
}, vw_scratch_map);

/*
 * "Not watched" verdicts of open files, keyed by struct file *: a write to a
 * file outside every root then costs one lookup instead of an ancestor walk.
 * The entry holds the identity of the inode the file had and the generation
 * it was computed in. The inode pointer alone is not enough: when a file is
 * closed and unlinked, a new file can get both the same struct file and the
 * same struct inode memory back, so its number and i_generation (random per
 * allocation on ext4, tmpfs, xfs) are compared too.
 */
struct vw_verdict {
	__u64 inode;
	__u64 ino;
	__u32 igen;
	__u32 gen;
	__u32 project;		/* VW_PROJECT_NONE: not watched */
	__u32 last_op;		/* watched: enum vw_op of its last record */
	__u64 last_ns;		/* watched: when its last record was sent */
};

VW_MAP(struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, __u64);
	__type(value, struct vw_verdict);
	__uint(max_entries, 65536);
}, vw_verdicts);

/*
 * Generation of the verdicts: bumped by every rename (a directory moved into
 * a root changes the ancestry of every file below it) and by userspace when
 * roots change. Stale verdicts then simply miss.
 */
VW_MAP(struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
}, vw_gen);

/*
 * When the daemon last settled what it had read (CLOCK_MONOTONIC ns, written
 * after the read and before the batch is looked at): a write after it is never
 * folded into a record sent before it (vw_file_change()), since that record's
 * line may be told already; one before it is on disk when the batch is looked at.
 */
VW_MAP(struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, VW_SYNC_SLOTS + 1);
}, vw_sync);

/* When a record last could wake the daemon (ev_submit(): VW_RB_WAKEUP_NS). */
VW_MAP(struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
}, vw_wake);

VW_KNOB(__u32, cfg_self_tgid);	/* the daemon itself */
/*
 * Writes to one open watched file within this window of its last record are
 * counted, not sent (0: send every write). Kept below the daemon's settle
 * time, so a settled change is never reported before the writes it covers.
 */
VW_KNOB(__u64, cfg_coalesce_ns);
/* The wake-up window of rb_flags() (0: VW_RB_WAKEUP_NS); tests widen it. */
VW_KNOB(__u64, cfg_wakeup_ns);
/* Argument counts of the fexit targets (enum vw_fexit); read by the compat object only. */
VW_KNOBS(__u8, cfg_fx_nargs, VW_FX_MAX);

#endif /* VW_MAPS_BPF_H */
