/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* vw_events.h: the record and map ABI shared by the BPF programs (bpf/) and the loader (src/). */
#ifndef VW_EVENTS_H
#define VW_EVENTS_H

/*
 * This header includes nothing: BPF code includes vmlinux.h before it and
 * userspace includes <linux/types.h>. Fields are __u8..__u64 and fixed arrays,
 * largest first, padding spelled out. The _Static_asserts at the bottom are
 * evaluated by both compilers, so the two sides cannot drift apart.
 */

#define VW_COMM_LEN	16
#define VW_PATH_MAX	4096	/* bytes of one relative path, NUL included */
/*
 * Ring-buffer wake-ups: a record sent within this long of the last one that
 * woke the daemon does not wake it (waking is an inter-processor interrupt per
 * record otherwise); the daemon reads the ring again this long after every
 * read a wake-up caused (its wake-ups are bounded, its latency too).
 */
#define VW_RB_WAKEUP_NS	250000ull
#define VW_NAME_MAX	256	/* bytes of one path component, NUL included */
#define VW_MAX_DEPTH	64	/* ancestors walked looking for a project root */
#define VW_DATA_MAX	(2 * VW_PATH_MAX)	/* path + old path of a rename */
/*
 * Sync marks (vw_sync): one per project slot (project id % VW_SYNC_SLOTS), so a
 * query only ends the coalescing of its own project's writes (and of the few
 * that share its slot), and one more, VW_SYNC_SLOTS, for every project.
 */
#define VW_SYNC_SLOTS	1024

/* Values of the roots map (and of vw_change.project). */
#define VW_PROJECT_NONE		0u		/* not under any root */
#define VW_PROJECT_EXCLUDED	0xffffffffu	/* an ignored directory inside a root */

/* Record types; values are never renumbered or reused. */
enum vw_ev_type {
	VW_EV_CHANGE = 1,	/* struct vw_change */
	VW_EV_RESULT = 2,	/* struct vw_result: outcome of a pending change */
	VW_EV_WAKE = 3,		/* struct vw_ev_hdr alone: wakes the reader (rb_late_wake()) */
};

/* What happened (vw_change.op). */
enum vw_op {
	VW_OP_MODIFY = 1,	/* data written */
	VW_OP_CREATE = 2,	/* a file came into being */
	VW_OP_DELETE = 3,	/* a file was unlinked */
	VW_OP_TRUNCATE = 4,	/* truncate, ftruncate, fallocate, open(O_TRUNC) */
	VW_OP_MKDIR = 5,
	VW_OP_RMDIR = 6,
	VW_OP_RENAME = 7,	/* old_path -> path; either side may lie outside every root */
	VW_OP_ATTRIB = 8,	/* metadata: chmod, chown, utimes, xattrs */
};

/* File type (vw_change.ftype), from the inode mode. */
enum vw_ftype {
	VW_FT_UNKNOWN = 0,
	VW_FT_FILE = 1,
	VW_FT_DIR = 2,
	VW_FT_SYMLINK = 3,
	VW_FT_OTHER = 4,
};

/* vw_ev_hdr.flags */
#define VW_EVF_PENDING		0x0001	/* wait for the VW_EV_RESULT of the same pid */
#define VW_EVF_TRUNCATED	0x0002	/* path cut: deeper than VW_MAX_DEPTH or longer than VW_PATH_MAX */
#define VW_EVF_OLD_TRUNCATED	0x0004	/* the same for old_path */
#define VW_EVF_LEXICAL		0x0008	/* path came from a syscall string: may hold ".", "..", "//" */
#define VW_EVF_OLD_LEXICAL	0x0010
#define VW_EVF_REPLACED		0x0020	/* rename onto an existing name (known to the fentry set only) */
#define VW_EVF_EXCHANGE		0x0040	/* renameat2(RENAME_EXCHANGE): the two names swapped contents */

struct vw_ev_hdr {
	__u16 type;	/* enum vw_ev_type */
	__u16 flags;	/* VW_EVF_* */
	__u32 size;	/* bytes, header included */
	__u64 ts_ns;	/* bpf_ktime_get_boot_ns() */
};

/*
 * One change under a project root. data[] holds path (path_len bytes, NUL
 * included) followed by old_path (old_path_len bytes, renames only). Both are
 * relative to their project's root.
 */
struct vw_change {
	struct vw_ev_hdr hdr;
	__u64 cgroup_id;
	__u64 ino;		/* inode of the changed object (0 when unknown) */
	/*
	 * With VW_EVF_TRUNCATED: inode number of the directory the kept names
	 * start from (the ancestor just above the VW_MAX_DEPTH levels kept), so
	 * that userspace can find it by identity and complete the path.
	 */
	__u64 anchor_ino;
	__u64 old_anchor_ino;	/* the same for old_path (VW_EVF_OLD_TRUNCATED) */
	__u32 dev;		/* kernel dev_t of its filesystem */
	__u32 pid;		/* thread id of the writer */
	__u32 tgid;		/* process id of the writer */
	__u32 uid;
	__u32 project;		/* project of path, or VW_PROJECT_NONE */
	__u32 old_project;	/* project of old_path (renames), or VW_PROJECT_NONE */
	__u16 op;		/* enum vw_op */
	__u16 ftype;		/* enum vw_ftype */
	__u16 path_len;
	__u16 old_path_len;
	__u32 pgid;		/* process group of the writer (analyzer jobs run in their own) */
	__u32 pad;
	char comm[VW_COMM_LEN];
	char data[VW_DATA_MAX];	/* only hdr.size - offsetof(data) bytes are sent */
};

/* The outcome of the syscall that produced a VW_EVF_PENDING change. */
struct vw_result {
	struct vw_ev_hdr hdr;
	__s64 ret;		/* syscall (or vfs function) return value */
	__u32 pid;
	__u32 tgid;
};

/* Key of the roots map: a directory by identity. */
struct vw_dir_key {
	__u64 ino;
	__u32 dev;
	__u32 pad;
};

/*
 * A value of the roots map: a project's root, or a directory that a project
 * ignores (VW_PROJECT_EXCLUDED). An exclusion holds for its directory only:
 * its i_generation is kept (by userspace where FS_IOC_GETVERSION says it, else
 * by the first walk that meets it), and a directory with the same inode number
 * and another generation (the number reused after an rmdir) is not excluded:
 * the stale entry is dropped there and then.
 */
struct vw_root_val {
	__u32 project;
	__u32 igen;
	__u32 bound;		/* igen is known */
	__u32 pad;
};

/*
 * Key of the chains map, used for name-based syscalls whose base directory is
 * not under any root: (ancestor dir of a root, hash of the components from it
 * towards the root). Value: struct vw_chain_val.
 */
struct vw_chain_key {
	__u64 ino;
	__u64 hash;	/* vw_hash over "c1/c2/.../cn" (see VW_HASH_*) */
	__u32 dev;
	__u32 pad;
};

struct vw_chain_val {
	__u32 project;	/* the root reached, valid when final != 0 */
	__u32 final;	/* 1: this prefix names the root itself; 0: keep going */
};

/* FNV-1a 64 over component bytes, VW_HASH_SEP mixed in between components. */
#define VW_HASH_INIT	0xcbf29ce484222325ULL
#define VW_HASH_PRIME	0x100000001b3ULL
#define VW_HASH_SEP	'/'

/*
 * fexit targets of the compat object (kernels without bpf_get_func_ret()):
 * the loader writes each one's argument count, read from the kernel's BTF,
 * into cfg_fx_nargs[], and the program takes the return value (and, for
 * the metadata hooks, the dentry) from that place in its context.
 */
enum vw_fexit {
	VW_FX_UNLINK,		/* vfs_unlink */
	VW_FX_RMDIR,		/* do_rmdir */
	VW_FX_MKDIRAT,		/* do_mkdirat */
	VW_FX_SYMLINK,		/* vfs_symlink */
	VW_FX_LINK,		/* vfs_link */
	VW_FX_MKNOD,		/* vfs_mknod */
	VW_FX_RENAME,		/* vfs_rename */
	VW_FX_NOTIFY,		/* notify_change */
	VW_FX_SETXATTR,		/* __vfs_setxattr_noperm */
	VW_FX_REMOVEXATTR,	/* __vfs_removexattr_locked */
	VW_FX_MAX,
};

/* Per-CPU counters; index of the stats map. Never renumbered. */
enum vw_stat {
	VW_STAT_SEEN = 0,	/* hook invocations that got past the syscall-number switch */
	VW_STAT_REJECTED,	/* rejected early: not regular, filesystem not watched, own process */
	VW_STAT_WALKED,		/* ancestor walks done */
	VW_STAT_EMITTED,	/* records submitted */
	VW_STAT_RINGBUF_FULL,	/* records lost: ring buffer full (triggers a rescan) */
	VW_STAT_TRUNCATED,	/* paths flagged as cut */
	VW_STAT_EXCLUDED,	/* hits under an EXCLUDED directory */
	VW_STAT_UNRESOLVED,	/* name paths with ".." below an unwatched base (dropped) */
	VW_STAT_READ_FAIL,	/* bpf_probe_read_* failures */
	VW_STAT_CACHED,		/* rejected by a cached "not watched" verdict of an open file */
	VW_STAT_COALESCED,	/* writes to a hot watched file folded into its last record */
	VW_STAT_MAX,
};

_Static_assert(sizeof(struct vw_ev_hdr) == 16, "vw_ev_hdr layout");
_Static_assert(__builtin_offsetof(struct vw_change, cgroup_id) == 16, "vw_change layout");
_Static_assert(__builtin_offsetof(struct vw_change, op) == 72, "vw_change layout");
_Static_assert(__builtin_offsetof(struct vw_change, pgid) == 80, "vw_change layout");
_Static_assert(__builtin_offsetof(struct vw_change, comm) == 88, "vw_change layout");
_Static_assert(__builtin_offsetof(struct vw_change, data) == 104, "vw_change layout");
_Static_assert(sizeof(struct vw_result) == 32, "vw_result layout");
_Static_assert(sizeof(struct vw_dir_key) == 16, "vw_dir_key layout");
_Static_assert(sizeof(struct vw_root_val) == 16, "vw_root_val layout");
_Static_assert(sizeof(struct vw_chain_key) == 24, "vw_chain_key layout");

#endif /* VW_EVENTS_H */
