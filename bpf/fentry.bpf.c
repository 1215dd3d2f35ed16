// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// fentry.bpf.c: the fentry attach set, for kernels where BPF trampolines attach (the first choice).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "common.bpf.h"

/*
 * Hook choice. Data writes go through rw_verify_area() on every path that
 * writes a file: write/pwrite/writev, copy_file_range (what cp uses),
 * sendfile/splice into a file and io_uring. It calls
 * security_file_permission(file, MAY_WRITE), which hands over the struct file,
 * so the mount is known; vfs_write() alone would miss the iter, copy and
 * io_uring paths. Name changes use the security_path_* hooks because they get
 * a struct path for the directory (dentry-only vfs_* hooks lose the mount, so
 * a walk could not cross into the parent mount). Those hooks run before the
 * change, so they send a VW_EVF_PENDING record, and the fexit of the vfs_*
 * function (do_mkdirat, as vfs_mkdir returns a dentry since 6.15; do_rmdir,
 * as some builds call a partly inlined copy of vfs_rmdir) sends
 * the result, read with bpf_get_func_ret() so that signature changes across
 * kernels (idmap arguments in 5.12 and 6.3, delegated inodes) do not matter;
 * the compat object, for kernels without that helper, reads it from the
 * slot the kernel's BTF gives (FX_RESULT).
 * Truncation: security_path_truncate covers truncate(2) on every kernel and
 * ftruncate/O_TRUNC before 6.2; security_file_truncate (6.2+) covers those
 * since; the loader turns its autoload off where the kernel lacks it.
 */

#define OPF(op, ftype) ((op) | (ftype) << 16)

SEC("fentry/security_file_permission")
int BPF_PROG(fe_file_perm, struct file *file, int mask)
{
	if (mask & MAY_WRITE)
		vw_file_change(ptr_scalar(file), VW_OP_MODIFY, VW_PC_REGULAR_ONLY | VW_PC_LINKED_ONLY);
	return 0;
}

SEC("fentry/security_file_open")
int BPF_PROG(fe_file_open, struct file *file)
{
	if (BPF_CORE_READ(file, f_mode) & FMODE_CREATED)
		vw_file_change(ptr_scalar(file), VW_OP_CREATE, VW_PC_REGULAR_ONLY);
	return 0;
}

SEC("fentry/security_path_truncate")
int BPF_PROG(fe_path_trunc, const struct path *path)
{
	vw_path_change((__u64)BPF_CORE_READ(path, mnt), (__u64)BPF_CORE_READ(path, dentry),
		       OPF(VW_OP_TRUNCATE, VW_FT_FILE), VW_PC_REGULAR_ONLY);
	return 0;
}

SEC("fentry/security_file_truncate")
int BPF_PROG(fe_file_trunc, struct file *file)
{
	vw_file_change(ptr_scalar(file), VW_OP_TRUNCATE, VW_PC_REGULAR_ONLY | VW_PC_LINKED_ONLY);
	return 0;
}

/* Name changes: pending until the fexit below reports the outcome. */
static __always_inline void dir_change(const struct path *dir, struct dentry *dentry, __u32 opf)
{
	vw_path_change((__u64)BPF_CORE_READ(dir, mnt), ptr_scalar(dentry), opf, VW_PC_PENDING);
}

SEC("fentry/security_path_unlink")
int BPF_PROG(fe_path_unlink, const struct path *dir, struct dentry *dentry)
{
	dir_change(dir, dentry, OPF(VW_OP_DELETE, VW_FT_FILE));
	return 0;
}

SEC("fentry/security_path_rmdir")
int BPF_PROG(fe_path_rmdir, const struct path *dir, struct dentry *dentry)
{
	dir_change(dir, dentry, OPF(VW_OP_RMDIR, VW_FT_DIR));
	return 0;
}

SEC("fentry/security_path_mkdir")
int BPF_PROG(fe_path_mkdir, const struct path *dir, struct dentry *dentry)
{
	dir_change(dir, dentry, OPF(VW_OP_MKDIR, VW_FT_DIR));
	return 0;
}

SEC("fentry/security_path_symlink")
int BPF_PROG(fe_path_symlink, const struct path *dir, struct dentry *dentry)
{
	dir_change(dir, dentry, OPF(VW_OP_CREATE, VW_FT_SYMLINK));
	return 0;
}

SEC("fentry/security_path_link")
int BPF_PROG(fe_path_link, struct dentry *old_dentry, const struct path *new_dir,
	     struct dentry *new_dentry)
{
	dir_change(new_dir, new_dentry, OPF(VW_OP_CREATE, VW_FT_FILE));
	return 0;
}

/*
 * mknod: fifos, sockets and device nodes. open(O_CREAT) passes through this
 * hook too (may_o_create) with S_IFREG; those creates are reported by
 * security_file_open, so regular modes are left to it.
 */
SEC("fentry/security_path_mknod")
int BPF_PROG(fe_path_mknod, const struct path *dir, struct dentry *dentry, umode_t mode)
{
	__u32 fmt = mode & S_IFMT;

	if (fmt != 0 && fmt != S_IFREG)
		dir_change(dir, dentry, OPF(VW_OP_CREATE, VW_FT_OTHER));
	return 0;
}

#ifdef VW_COMPAT
/*
 * Context slot @n of an fexit program, @n a rodata constant: the verifier
 * knows its value and checks only the slot that is read. Each slot is loaded
 * at its own constant offset from ctx (the empty asm keeps clang from merging
 * the cases into one load through a computed pointer, which the verifier
 * refuses).
 */
#define CTX_LOAD(ctx, k) ({ __u64 __v = (ctx)[k]; asm volatile("" : "+r"(__v)); __v; })

static __always_inline __u64 ctx_slot(__u64 *ctx, __u32 n)
{
	switch (n) {
	case 0: return CTX_LOAD(ctx, 0);
	case 1: return CTX_LOAD(ctx, 1);
	case 2: return CTX_LOAD(ctx, 2);
	case 3: return CTX_LOAD(ctx, 3);
	case 4: return CTX_LOAD(ctx, 4);
	case 5: return CTX_LOAD(ctx, 5);
	case 6: return CTX_LOAD(ctx, 6);
	default: return 0;
	}
}

/* The return value of target @fx: the slot after its arguments. */
#define FX_RET(ctx, fx) ((long)ctx_slot(ctx, cfg_fx_nargs[fx]))
/* Its argument @back places before the return value (an idmap, 5.12+, may come before it). */
#define FX_ARG(ctx, fx, back) ((void *)ctx_slot(ctx, cfg_fx_nargs[fx] - (back)))
#endif

/*
 * Metadata: chmod, chown and utimes all end in notify_change(), whose fexit
 * sees the outcome. Only a dentry is passed (no vfsmount), so the walk cannot
 * cross into a parent mount; size changes are truncates, reported elsewhere.
 * The first argument is a user namespace (5.12+) or an idmap (6.3+), which
 * every kernel with bpf_get_func_ret() has; the compat object finds the
 * dentry by the argument count (three after it: dentry, attr, delegated).
 */
static __always_inline int attr_done(struct dentry *dentry, struct iattr *attr, int ret)
{
	unsigned int valid;

	if (ret)
		return 0;
	valid = BPF_CORE_READ(attr, ia_valid);
	if ((valid & ATTR_SIZE) || !(valid & (ATTR_MODE | ATTR_UID | ATTR_GID | ATTR_ATIME |
					      ATTR_MTIME)))
		return 0;
	vw_path_change(0, ptr_scalar(dentry), OPF(VW_OP_ATTRIB, VW_FT_UNKNOWN), 0);
	return 0;
}

static __always_inline int xattr_done(struct dentry *dentry, int ret)
{
	if (!ret)
		vw_path_change(0, ptr_scalar(dentry), OPF(VW_OP_ATTRIB, VW_FT_UNKNOWN), 0);
	return 0;
}

#ifdef VW_COMPAT
SEC("fexit/notify_change")
int fx_notify_change(__u64 *ctx)
{
	return attr_done(FX_ARG(ctx, VW_FX_NOTIFY, 3), FX_ARG(ctx, VW_FX_NOTIFY, 2),
			 FX_RET(ctx, VW_FX_NOTIFY));
}

/* (dentry, name, value, size, flags) */
SEC("fexit/__vfs_setxattr_noperm")
int fx_setxattr(__u64 *ctx)
{
	return xattr_done(FX_ARG(ctx, VW_FX_SETXATTR, 5), FX_RET(ctx, VW_FX_SETXATTR));
}

/* (dentry, name, delegated) */
SEC("fexit/__vfs_removexattr_locked")
int fx_removexattr(__u64 *ctx)
{
	return xattr_done(FX_ARG(ctx, VW_FX_REMOVEXATTR, 3), FX_RET(ctx, VW_FX_REMOVEXATTR));
}
#else
SEC("fexit/notify_change")
int BPF_PROG(fx_notify_change, void *idmap, struct dentry *dentry, struct iattr *attr,
	     struct inode **delegated, int ret)
{
	return attr_done(dentry, attr, ret);
}

/* _noperm: six arguments (BPF trampolines before 6.4 take at most six); _locked has seven */
SEC("fexit/__vfs_setxattr_noperm")
int BPF_PROG(fx_setxattr, void *idmap, struct dentry *dentry, const char *name, const void *value,
	     size_t size, int flags, int ret)
{
	return xattr_done(dentry, ret);
}

SEC("fexit/__vfs_removexattr_locked")
int BPF_PROG(fx_removexattr, void *idmap, struct dentry *dentry, const char *name,
	     struct inode **delegated, int ret)
{
	return xattr_done(dentry, ret);
}
#endif

/* Both sides of a rename; either may lie outside every root (global: verified once). */
__noinline int vw_rename_change(__u64 old_mnt, __u64 old_dentry, __u64 new_mnt, __u64 new_dentry,
				__u32 rflags)
{
	struct vw_scratch *s = scratch_get();
	struct inode *inode = BPF_CORE_READ((struct dentry *)old_dentry, d_inode);
	__u32 proj, oproj, len = 0, olen = 0, cut = 0, ocut = 0;
	__u64 anchor = 0, oanchor = 0;

	stat_inc(VW_STAT_SEEN);
	if (!s)
		return 0;
	verdicts_invalidate();
	proj = vw_resolve(new_mnt, new_dentry);
	if (proj != VW_PROJECT_NONE) {
		len = s->res_len;
		cut = s->res_cut;
		anchor = s->res_anchor;
		path_store(s, 0, len);
	}
	oproj = vw_resolve(old_mnt, old_dentry);
	if (oproj != VW_PROJECT_NONE) {
		olen = s->res_len;
		ocut = s->res_cut;
		oanchor = s->res_anchor;
		path_store(s, len, olen);
	}
	if (proj == VW_PROJECT_NONE && oproj == VW_PROJECT_NONE)
		return 0;
	ev_begin(s, VW_OP_RENAME, ftype_of(inode));
	s->ev.project = proj;
	s->ev.old_project = oproj;
	s->ev.path_len = len;
	s->ev.old_path_len = olen;
	s->ev.ino = inode ? BPF_CORE_READ(inode, i_ino) : 0;
	s->ev.dev = BPF_CORE_READ((struct dentry *)old_dentry, d_sb, s_dev);
	s->ev.anchor_ino = anchor;
	s->ev.old_anchor_ino = oanchor;
	if (rflags & RENAME_EXCHANGE)
		s->ev.hdr.flags |= VW_EVF_EXCHANGE;
	if (cut)
		s->ev.hdr.flags |= VW_EVF_TRUNCATED;
	if (ocut)
		s->ev.hdr.flags |= VW_EVF_OLD_TRUNCATED;
	if (BPF_CORE_READ((struct dentry *)new_dentry, d_inode))
		s->ev.hdr.flags |= VW_EVF_REPLACED;
	ev_submit(s, true);
	return 0;
}

SEC("fentry/security_path_rename")
int BPF_PROG(fe_path_rename, const struct path *old_dir, struct dentry *old_dentry,
	     const struct path *new_dir, struct dentry *new_dentry, unsigned int flags)
{
	vw_rename_change((__u64)BPF_CORE_READ(old_dir, mnt), ptr_scalar(old_dentry),
			 (__u64)BPF_CORE_READ(new_dir, mnt), ptr_scalar(new_dentry), flags);
	return 0;
}

/*
 * The outcome of a pending name change. bpf_get_func_ret() (5.17+) reads it
 * whatever the target's signature; the compat object reads the slot after
 * the arguments, counted in the kernel's BTF by the loader.
 */
#ifdef VW_COMPAT
#define FX_RESULT(name, target, fx)						\
	SEC("fexit/" #target)							\
	int name(__u64 *ctx)							\
	{									\
		result_submit((int)FX_RET(ctx, fx));				\
		return 0;							\
	}
#else
#define FX_RESULT(name, target, fx)						\
	SEC("fexit/" #target)							\
	int name(void *ctx)							\
	{									\
		__u64 ret = 0;							\
										\
		bpf_get_func_ret(ctx, &ret);					\
		result_submit((int)ret);					\
		return 0;							\
	}
#endif

FX_RESULT(fx_vfs_unlink, vfs_unlink, VW_FX_UNLINK)
FX_RESULT(fx_do_rmdir, do_rmdir, VW_FX_RMDIR)
FX_RESULT(fx_do_mkdirat, do_mkdirat, VW_FX_MKDIRAT)
FX_RESULT(fx_vfs_symlink, vfs_symlink, VW_FX_SYMLINK)
FX_RESULT(fx_vfs_link, vfs_link, VW_FX_LINK)
FX_RESULT(fx_vfs_mknod, vfs_mknod, VW_FX_MKNOD)
FX_RESULT(fx_vfs_rename, vfs_rename, VW_FX_RENAME)
