// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// tracepoint.bpf.c: the tracepoint attach set, one tp_btf/sys_exit program for every change syscall.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "common.bpf.h"

/*
 * Why only sys_exit: any syscall tracepoint moves every syscall of every task
 * to the slow path (~22 ns each for tp_btf here), so one program is half the
 * cost of an enter/exit pair. At exit the return value tells success, and the
 * arguments are still in pt_regs: fds are still open and the base directory
 * of a path string (cwd, dirfd or root) still exists, so even unlink and
 * rename can be resolved after the fact. What this set cannot see: io_uring
 * and AIO writes, writes through shared mmap, 32-bit (ia32) syscalls, and
 * name-based changes reached through a symlink or through ".." from outside
 * every root (counted as VW_STAT_UNRESOLVED when ".." is the reason).
 */

#if defined(__TARGET_ARCH_x86)
#define NR_write		1
#define NR_open			2
#define NR_pwrite64		18
#define NR_writev		20
#define NR_sendfile		40
#define NR_truncate		76
#define NR_ftruncate		77
#define NR_rename		82
#define NR_mkdir		83
#define NR_rmdir		84
#define NR_creat		85
#define NR_link			86
#define NR_unlink		87
#define NR_symlink		88
#define NR_openat		257
#define NR_mkdirat		258
#define NR_unlinkat		263
#define NR_renameat		264
#define NR_linkat		265
#define NR_symlinkat		266
#define NR_splice		275
#define NR_fallocate		285
#define NR_pwritev		296
#define NR_renameat2		316
#define NR_copy_file_range	326
#define NR_pwritev2		328
#define NR_openat2		437
#define NR_chmod		90
#define NR_fchmod		91
#define NR_chown		92
#define NR_fchown		93
#define NR_lchown		94
#define NR_utime		132
#define NR_mknod		133
#define NR_setxattr		188
#define NR_lsetxattr		189
#define NR_fsetxattr		190
#define NR_removexattr		197
#define NR_lremovexattr		198
#define NR_fremovexattr		199
#define NR_utimes		235
#define NR_mknodat		259
#define NR_fchownat		260
#define NR_futimesat		261
#define NR_fchmodat		268
#define NR_utimensat		280
#define NR_fchmodat2		452
#define NR_setxattrat		463
#define NR_removexattrat	466
#else
#error "syscall numbers for this architecture are not written down yet"
#endif

/*
 * tp_btf hands over a trusted pt_regs and bpf_get_current_task_btf() a
 * trusted task: plain loads through them (CO-RE relocated, fault-safe) cost
 * far less than bpf_probe_read_kernel(), which matters on every write of the
 * host. Only the fd array slot needs a probe read (a variable index).
 */
#define ARG(regs, n) ((long)PT_REGS_PARM##n##_SYSCALL(regs))

/* The struct file of @fd in the current task, as a scalar (0: none). Global: verified once. */
__noinline __u64 vw_fd_file(__s64 fd)
{
#ifdef VW_COMPAT
	/* bpf_get_current_task_btf() is 5.11+: the compat object reads through probes */
	struct task_struct *task = (void *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fda;
	__u64 f = 0;

	if (fd < 0 || fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	fda = BPF_CORE_READ(fdt, fd);
#else
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = task->files->fdt;
	struct file **fda;
	__u64 f = 0;

	if (fd < 0 || fd >= fdt->max_fds)
		return 0;
	fda = fdt->fd;
#endif
	bpf_probe_read_kernel(&f, sizeof(f), &fda[fd]);
	return f;
}

/*
 * Hash components of s->name, starting at a base directory that is not under
 * any root, looking each prefix up in vw_chains: a miss ends the search (the
 * string cannot lead into a root), a final entry names the root reached and
 * the rest of the string is the path below it.
 */
static __always_inline __u64 mix(__u64 h, __u8 ch)
{
	return (h ^ ch) * VW_HASH_PRIME;
}

static long chain_step(__u32 i, void *arg)
{
	struct vw_scratch *s = scratch_get();
	struct vw_chain_key key = {};
	struct vw_chain_state *c;
	struct vw_chain_val *v;
	char ch;

	if (!s)
		return 1;
	c = &s->ch;
	ch = s->name[i & VW_PATH_MASK];
	if (ch != '/' && ch != 0) {
		if (c->clen == 0) {
			c->hc = c->ncomp ? mix(c->h, VW_HASH_SEP) : c->h;
			c->c0 = ch;
			c->c1 = 0;
		} else if (c->clen == 1) {
			c->c1 = ch;
		}
		c->hc = mix(c->hc, ch);
		c->clen++;
		return 0;
	}
	if (c->clen == 1 && c->c0 == '.') {
		c->clen = 0;	/* "." */
	} else if (c->clen == 2 && c->c0 == '.' && c->c1 == '.') {
		c->unresolved = 1;
		return 1;
	} else if (c->clen) {
		c->h = c->hc;
		c->ncomp++;
		c->clen = 0;
		key.ino = c->ino;
		key.dev = c->dev;
		key.hash = c->h;
		v = bpf_map_lookup_elem(&vw_chains, &key);
		if (!v)
			return 1;
		if (v->final) {
			c->project = v->project;
			c->tail = ch ? i + 1 : i;
			return 1;
		}
	}
	return ch == 0;
}

VW_STEPS(chain_step, 256)

/*
 * Resolve the syscall path string @upath relative to @dfd into s->path.
 * Returns the project or VW_PROJECT_NONE; *flags gets VW_EVF_LEXICAL (and
 * @cut_flag when the path was cut).
 */
static __always_inline __u32 name_resolve(struct vw_scratch *s, long dfd, const char *upath,
					  __u32 *len, __u16 *flags, __u16 cut_flag, __u64 *anchor)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct vfsmount *mnt;
	struct dentry *base;
	struct vw_chain_state *c = &s->ch;
	bool cut = false;
	__u32 proj;
	long n;

	n = bpf_probe_read_user_str(s->name, VW_PATH_MAX, upath);
	if (n <= 0) {
		stat_inc(VW_STAT_READ_FAIL);
		return VW_PROJECT_NONE;
	}
	if (s->name[0] == '/') {
		mnt = BPF_CORE_READ(task, fs, root.mnt);
		base = BPF_CORE_READ(task, fs, root.dentry);
	} else if ((int)dfd == AT_FDCWD) {
		mnt = BPF_CORE_READ(task, fs, pwd.mnt);
		base = BPF_CORE_READ(task, fs, pwd.dentry);
	} else {
		struct file *f = (void *)vw_fd_file((int)dfd);

		if (!f)
			return VW_PROJECT_NONE;
		mnt = BPF_CORE_READ(f, f_path.mnt);
		base = BPF_CORE_READ(f, f_path.dentry);
	}

	proj = vw_resolve((__u64)mnt, (__u64)base);
	if (proj != VW_PROJECT_NONE) {
		cut = s->res_cut;
		*anchor = s->res_anchor;
		*len = append_name(s, s->res_len, 0, &cut);
	} else {
		__builtin_memset(c, 0, sizeof(*c));
		c->ino = BPF_CORE_READ(base, d_inode, i_ino);
		c->dev = BPF_CORE_READ(base, d_sb, s_dev);
		c->h = VW_HASH_INIT;
		VW_LOOP(VW_PATH_MAX, chain_step, 256);
		if (c->unresolved)
			stat_inc(VW_STAT_UNRESOLVED);
		proj = c->project;
		if (proj == VW_PROJECT_NONE)
			return VW_PROJECT_NONE;
		s->path[0] = 0;
		*len = append_name(s, 1, c->tail, &cut);
	}
	*flags |= VW_EVF_LEXICAL;
	if (cut)
		*flags |= cut_flag;
	return proj;
}

#define VW_NC_EXCHANGE	0x80000000u	/* in op_ftype: renameat2(RENAME_EXCHANGE) */

/*
 * A name-based change that succeeded: one path, or two for renames (global:
 * verified once). op_ftype = op | ftype << 16 | VW_NC_*.
 */
__noinline int vw_name_change(__u32 op_ftype, __s64 dfd, __u64 upath, __s64 odfd, __u64 oldpath)
{
	struct vw_scratch *s = scratch_get();
	__u32 proj, oproj = VW_PROJECT_NONE, len = 0, olen = 0;
	__u16 flags = 0, oflags = 0;
	__u64 anchor = 0, oanchor = 0;

	stat_inc(VW_STAT_SEEN);
	if (!s)
		return 0;
	if ((op_ftype & 0xffff) == VW_OP_RENAME)
		verdicts_invalidate();
	proj = name_resolve(s, dfd, (const char *)upath, &len, &flags, VW_EVF_TRUNCATED, &anchor);
	if (proj != VW_PROJECT_NONE)
		path_store(s, 0, len);
	else
		len = 0;
	if (oldpath) {
		oproj = name_resolve(s, odfd, (const char *)oldpath, &olen, &oflags,
				     VW_EVF_OLD_TRUNCATED, &oanchor);
		if (oproj != VW_PROJECT_NONE)
			path_store(s, len, olen);
		else
			olen = 0;
	}
	if (proj == VW_PROJECT_NONE && oproj == VW_PROJECT_NONE)
		return 0;
	ev_begin(s, op_ftype & 0xffff, (op_ftype >> 16) & 0xff);
	s->ev.project = proj;
	s->ev.old_project = oproj;
	s->ev.path_len = len;
	s->ev.old_path_len = olen;
	s->ev.anchor_ino = anchor;
	s->ev.old_anchor_ino = oanchor;
	s->ev.hdr.flags = (flags & (VW_EVF_LEXICAL | VW_EVF_TRUNCATED)) |
			  (oflags & VW_EVF_OLD_TRUNCATED) | ((oflags & VW_EVF_LEXICAL) ? VW_EVF_OLD_LEXICAL : 0);
	if (op_ftype & VW_NC_EXCHANGE)
		s->ev.hdr.flags |= VW_EVF_EXCHANGE;
	ev_submit(s, false);
	return 0;
}

#define name_change(op, ftype, dfd, upath, odfd, oldpath) \
	vw_name_change((op) | (ftype) << 16, dfd, (__u64)(upath), odfd, (__u64)(oldpath))

static __always_inline void fd_change(long fd, __u16 op, __u32 opts)
{
	__u64 f = vw_fd_file(fd);

	if (f)
		vw_file_change(f, op, opts);
}

/* Data changes: regular files that still have a name. */
#define DATA_OPTS (VW_PC_REGULAR_ONLY | VW_PC_LINKED_ONLY)

/* mknod's file type: a regular file, or a fifo, socket or device node. */
static __always_inline __u16 mknod_ftype(long mode)
{
	__u32 fmt = mode & S_IFMT;

	return fmt == 0 || fmt == S_IFREG ? VW_FT_FILE : VW_FT_OTHER;
}

/*
 * Metadata changes (chmod, chown, utimes, xattrs) by fd or by name; a NULL
 * or empty name means the fd itself (utimensat, AT_EMPTY_PATH).
 */
static __always_inline void attrib_change(long nr, struct pt_regs *regs)
{
	switch (nr) {
	case NR_fchmod:
	case NR_fchown:
	case NR_fsetxattr:
	case NR_fremovexattr:
		fd_change(ARG(regs, 1), VW_OP_ATTRIB, 0);
		break;
	case NR_chmod:
	case NR_chown:
	case NR_lchown:
	case NR_utime:
	case NR_utimes:
	case NR_setxattr:
	case NR_lsetxattr:
	case NR_removexattr:
	case NR_lremovexattr:
		name_change(VW_OP_ATTRIB, VW_FT_UNKNOWN, AT_FDCWD, (void *)ARG(regs, 1), 0, NULL);
		break;
	case NR_utimensat:
	case NR_futimesat:
		if (!ARG(regs, 2)) {
			fd_change(ARG(regs, 1), VW_OP_ATTRIB, 0);
			break;
		}
		/* fallthrough */
	case NR_fchownat:
	case NR_fchmodat:
	case NR_fchmodat2:
	case NR_setxattrat:
	case NR_removexattrat:
		name_change(VW_OP_ATTRIB, VW_FT_UNKNOWN, ARG(regs, 1), (void *)ARG(regs, 2), 0, NULL);
		break;
	default:
		break;
	}
}

/* open, openat, openat2, creat: a create, or a truncate of an existing file. */
static __always_inline void open_change(long fd, __u64 oflags)
{
	__u64 f;
	__u32 mode;

	if (!(oflags & (O_CREAT | O_TRUNC)))
		return;
	f = vw_fd_file(fd);
	if (!f)
		return;
	mode = BPF_CORE_READ((struct file *)f, f_mode);
	if (mode & FMODE_CREATED)
		vw_file_change(f, VW_OP_CREATE, VW_PC_REGULAR_ONLY);
	else if ((oflags & O_TRUNC) && (mode & FMODE_WRITE))
		vw_file_change(f, VW_OP_TRUNCATE, VW_PC_REGULAR_ONLY);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(tp_sys_exit, struct pt_regs *regs, long ret)
{
	long nr = regs->orig_ax;

	switch (nr) {
	case NR_write:
	case NR_pwrite64:
	case NR_writev:
	case NR_pwritev:
	case NR_pwritev2:
	case NR_sendfile:
		if (ret > 0)
			fd_change(ARG(regs, 1), VW_OP_MODIFY, DATA_OPTS);
		return 0;
	case NR_splice:
	case NR_copy_file_range:
		if (ret > 0)
			fd_change(ARG(regs, 3), VW_OP_MODIFY, DATA_OPTS);
		return 0;
	case NR_ftruncate:
		if (ret == 0)
			fd_change(ARG(regs, 1), VW_OP_TRUNCATE, DATA_OPTS);
		return 0;
	case NR_fallocate:
		if (ret == 0)
			fd_change(ARG(regs, 1), VW_OP_MODIFY, DATA_OPTS);
		return 0;
	case NR_open:
		if (ret >= 0)
			open_change(ret, ARG(regs, 2));
		return 0;
	case NR_creat:
		if (ret >= 0)
			open_change(ret, O_CREAT | O_TRUNC);
		return 0;
	case NR_openat:
		if (ret >= 0)
			open_change(ret, ARG(regs, 3));
		return 0;
	case NR_openat2:
		if (ret >= 0) {
			__u64 how_flags = 0;

			bpf_probe_read_user(&how_flags, sizeof(how_flags), (void *)ARG(regs, 3));
			open_change(ret, how_flags);
		}
		return 0;
	default:
		break;
	}
	if (ret != 0)
		return 0;
	switch (nr) {
	case NR_truncate:
		name_change(VW_OP_TRUNCATE, VW_FT_FILE, AT_FDCWD, (void *)ARG(regs, 1), 0, NULL);
		break;
	case NR_unlink:
		name_change(VW_OP_DELETE, VW_FT_UNKNOWN, AT_FDCWD, (void *)ARG(regs, 1), 0, NULL);
		break;
	case NR_unlinkat:
		if (ARG(regs, 3) & AT_REMOVEDIR)
			name_change(VW_OP_RMDIR, VW_FT_DIR, ARG(regs, 1), (void *)ARG(regs, 2), 0, NULL);
		else
			name_change(VW_OP_DELETE, VW_FT_UNKNOWN, ARG(regs, 1), (void *)ARG(regs, 2), 0,
				    NULL);
		break;
	case NR_rmdir:
		name_change(VW_OP_RMDIR, VW_FT_DIR, AT_FDCWD, (void *)ARG(regs, 1), 0, NULL);
		break;
	case NR_mkdir:
		name_change(VW_OP_MKDIR, VW_FT_DIR, AT_FDCWD, (void *)ARG(regs, 1), 0, NULL);
		break;
	case NR_mkdirat:
		name_change(VW_OP_MKDIR, VW_FT_DIR, ARG(regs, 1), (void *)ARG(regs, 2), 0, NULL);
		break;
	case NR_rename:
		name_change(VW_OP_RENAME, VW_FT_UNKNOWN, AT_FDCWD, (void *)ARG(regs, 2), AT_FDCWD,
			    (void *)ARG(regs, 1));
		break;
	case NR_renameat:
		name_change(VW_OP_RENAME, VW_FT_UNKNOWN, ARG(regs, 3), (void *)ARG(regs, 4),
			    ARG(regs, 1), (void *)ARG(regs, 2));
		break;
	case NR_renameat2:
		vw_name_change(VW_OP_RENAME | (ARG(regs, 5) & RENAME_EXCHANGE ? VW_NC_EXCHANGE : 0),
			       ARG(regs, 3), ARG(regs, 4), ARG(regs, 1), ARG(regs, 2));
		break;
	case NR_mknod:
		name_change(VW_OP_CREATE, mknod_ftype(ARG(regs, 2)), AT_FDCWD, (void *)ARG(regs, 1), 0,
			    NULL);
		break;
	case NR_mknodat:
		name_change(VW_OP_CREATE, mknod_ftype(ARG(regs, 3)), ARG(regs, 1), (void *)ARG(regs, 2),
			    0, NULL);
		break;
	case NR_symlink:
		name_change(VW_OP_CREATE, VW_FT_SYMLINK, AT_FDCWD, (void *)ARG(regs, 2), 0, NULL);
		break;
	case NR_symlinkat:
		name_change(VW_OP_CREATE, VW_FT_SYMLINK, ARG(regs, 2), (void *)ARG(regs, 3), 0, NULL);
		break;
	/* a hard link: the name it was made from goes along (a change by name may reach it) */
	case NR_link:
		name_change(VW_OP_CREATE, VW_FT_FILE, AT_FDCWD, (void *)ARG(regs, 2), AT_FDCWD,
			    (void *)ARG(regs, 1));
		break;
	case NR_linkat:
		name_change(VW_OP_CREATE, VW_FT_FILE, ARG(regs, 3), (void *)ARG(regs, 4), ARG(regs, 1),
			    (void *)ARG(regs, 2));
		break;
	default:
		attrib_change(nr, regs);
		break;
	}
	return 0;
}
