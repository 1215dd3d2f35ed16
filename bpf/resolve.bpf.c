// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// resolve.bpf.c: the identity prefix filter (ancestor walk) and path assembly, as global functions.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "common.bpf.h"

static __always_inline struct mount *real_mount_of(struct vfsmount *mnt)
{
	return (void *)mnt - bpf_core_field_offset(struct mount, mnt);
}

/*
 * Ancestor walk, one loop step per level (VW_LOOP). Each level: look the
 * dentry's (dev, ino) up in vw_roots; on a miss remember the dentry (its name
 * becomes part of the relative path) and go to d_parent, crossing from a
 * mount's root to its mountpoint in the parent mount when the hook gave us
 * the vfsmount.
 * Names are kept for VW_MAX_DEPTH levels; the search goes on to VW_WALK_MAX
 * so that a deeper file is still found, flagged as cut.
 */
static long walk_step(__u32 i, void *arg)
{
	struct vw_scratch *s = scratch_get();
	struct vw_walk_state *c;
	struct dentry *parent, *d;
	struct inode *inode;
	struct vw_root_val *rv;

	if (!s)
		return 1;
	c = &s->walk;
	d = (void *)c->dentry;

	inode = BPF_CORE_READ(d, d_inode);
	if (inode) {
		struct vw_dir_key key = {};

		key.ino = BPF_CORE_READ(inode, i_ino);
		key.dev = BPF_CORE_READ(d, d_sb, s_dev);
		rv = bpf_map_lookup_elem(&vw_roots, &key);
		if (rv) {
			__u32 proj = rv->project;

			if (proj == VW_PROJECT_EXCLUDED) {
				__u32 igen = BPF_CORE_READ(inode, i_generation);

				if (!rv->bound) {	/* first met: it is this directory */
					rv->igen = igen;
					rv->bound = 1;
				} else if (rv->igen != igen) {
					/* its number reused by another directory: not excluded */
					bpf_map_delete_elem(&vw_roots, &key);
					proj = VW_PROJECT_NONE;
				}
			}
			if (proj != VW_PROJECT_NONE) {
				c->project = proj;
				return 1;
			}
		}
		/* the names kept end below this directory: userspace finds it by identity */
		if (i == VW_MAX_DEPTH)
			c->anchor_ino = key.ino;
	}
	if (c->mnt) {
		struct mount *m = (void *)c->mnt;

		if (d == BPF_CORE_READ(m, mnt.mnt_root)) {
			struct mount *pm = BPF_CORE_READ(m, mnt_parent);

			if (pm == m)
				return 1;	/* root of the mount namespace */
			d = BPF_CORE_READ(m, mnt_mountpoint);
			c->mnt = (__u64)pm;
		}
	}
	if (i < VW_MAX_DEPTH) {
		s->chain[i & (VW_MAX_DEPTH - 1)] = (__u64)d;
		c->depth = i + 1;
	}
	c->levels = i + 1;
	parent = BPF_CORE_READ(d, d_parent);
	if (parent == d)
		return 1;	/* filesystem root and no mount to cross */
	c->dentry = (__u64)parent;
	return 0;
}

VW_STEPS(walk_step, 32)

/* Join the recorded names, root side first, into s->path: one loop step per name. */
static long assemble_step(__u32 i, void *arg)
{
	struct vw_scratch *s = scratch_get();
	struct vw_assemble_state *c;
	const unsigned char *name;
	struct dentry *d;
	__u32 k;
	long n;

	if (!s)
		return 1;
	c = &s->as;
	if (i >= c->depth)
		return 1;
	k = c->depth - 1 - i;
	d = (void *)s->chain[k & (VW_MAX_DEPTH - 1)];
	name = BPF_CORE_READ(d, d_name.name);
	n = bpf_probe_read_kernel_str(&s->path[VW_IDX(c->off)], VW_NAME_MAX, name);
	if (n <= 0) {
		stat_inc(VW_STAT_READ_FAIL);
		c->cut = 1;
		return 1;
	}
	if (c->off + n > VW_PATH_MAX) {
		c->cut = 1;
		return 1;
	}
	c->off += n - 1;
	if (k > 0) {
		s->path[VW_IDX(c->off)] = '/';
		c->off++;
	}
	return 0;
}

VW_STEPS(assemble_step, VW_MAX_DEPTH)

__noinline int vw_resolve(__u64 mnt, __u64 dentry)
{
	struct vw_scratch *s = scratch_get();
	__u32 project;
	__u64 off;

	if (!s)
		return VW_PROJECT_NONE;
	s->res_len = 0;
	s->res_cut = 0;
	s->res_anchor = 0;
	__builtin_memset(&s->walk, 0, sizeof(s->walk));
	s->walk.dentry = dentry;
	s->walk.mnt = mnt ? (__u64)real_mount_of((void *)mnt) : 0;
	stat_inc(VW_STAT_WALKED);
	VW_LOOP(VW_WALK_MAX, walk_step, 32);
	project = s->walk.project;
	if (project == VW_PROJECT_NONE)
		return VW_PROJECT_NONE;
	if (project == VW_PROJECT_EXCLUDED) {
		stat_inc(VW_STAT_EXCLUDED);
		return VW_PROJECT_NONE;
	}
	s->as.off = 0;
	s->as.cut = 0;
	s->as.depth = s->walk.depth;
	s->path[0] = 0;
	VW_LOOP(VW_MAX_DEPTH, assemble_step, VW_MAX_DEPTH);
	off = s->as.off;
	if (off > VW_PATH_MAX - 1)
		off = VW_PATH_MAX - 1;
	s->path[VW_IDX(off)] = 0;
	s->res_len = off + 1;
	s->res_cut = s->as.cut || s->walk.levels > VW_MAX_DEPTH;
	if (s->walk.levels > VW_MAX_DEPTH && !s->as.cut)
		s->res_anchor = s->walk.anchor_ino;
	return project;
}

__noinline int vw_path_change(__u64 mnt, __u64 dentry, __u32 op_ftype, __u32 opts)
{
	struct dentry *d = (void *)dentry;
	struct inode *inode = BPF_CORE_READ(d, d_inode);
	__u32 dev = BPF_CORE_READ(d, d_sb, s_dev);
	__u16 ftype = op_ftype >> 16;
	struct vw_scratch *s;
	__u32 proj, len;

	stat_inc(VW_STAT_SEEN);
	if (inode)
		ftype = ftype_of(inode);
	if (((opts & VW_PC_REGULAR_ONLY) && ftype != VW_FT_FILE) || !dev_watched(dev)) {
		stat_inc(VW_STAT_REJECTED);
		return 0;
	}
	proj = vw_resolve(mnt, dentry);
	if (proj == VW_PROJECT_NONE)
		return 0;
	s = scratch_get();
	if (!s)
		return 0;
	len = s->res_len;
	path_store(s, 0, len);
	ev_begin(s, op_ftype & 0xffff, ftype);
	s->ev.project = proj;
	s->ev.ino = inode ? BPF_CORE_READ(inode, i_ino) : 0;
	s->ev.dev = dev;
	s->ev.anchor_ino = s->res_anchor;
	if (s->res_cut)
		s->ev.hdr.flags |= VW_EVF_TRUNCATED;
	s->ev.path_len = len;
	ev_submit(s, opts & VW_PC_PENDING);
	return proj;
}

/*
 * A change to an open file (write, truncate, create through open); @file is
 * the struct file * as a scalar. What a walk found is remembered per open
 * file: a file outside every root then costs one lookup per write, and a
 * watched file written again within cfg_coalesce_ns of its last record is
 * counted instead of sent (the debouncer merges those writes anyway).
 */
__noinline int vw_file_change(__u64 file, __u32 op, __u32 opts)
{
	struct file *f = (void *)file;
	struct inode *inode = BPF_CORE_READ(f, f_inode);
	struct vw_verdict *v = bpf_map_lookup_elem(&vw_verdicts, &file);
	__u32 *g = gen_ptr();
	struct vw_verdict nv = {};

	if (!g || !inode)
		return 0;
	nv.ino = BPF_CORE_READ(inode, i_ino);
	nv.igen = BPF_CORE_READ(inode, i_generation);
	if (v && v->inode == (__u64)inode && v->ino == nv.ino && v->igen == nv.igen &&
	    v->gen == *g) {
		if (v->project == VW_PROJECT_NONE) {
			stat_inc(VW_STAT_CACHED);
			return 0;
		}
		/*
		 * only into a modify: the first write after a create or truncate is
		 * news, and so is the first after a query's sync point (which may
		 * have settled the record it would be folded into)
		 */
		if (op == VW_OP_MODIFY && v->last_op == VW_OP_MODIFY && cfg_coalesce_ns &&
		    bpf_ktime_get_ns() - v->last_ns < cfg_coalesce_ns && !synced_since(v->project, v->last_ns)) {
			stat_inc(VW_STAT_COALESCED);
			return 0;
		}
	}
	/*
	 * A write or truncate through a file whose last name is gone (unlinked
	 * while open) changes nothing anyone can see by name: its dentry still
	 * carries the old name, which may by now belong to another file. Not
	 * cached: a tmpfile can still be given a name with linkat(). (Looked at
	 * after the cache: a file outside every root needs no more.)
	 */
	if ((opts & VW_PC_LINKED_ONLY) && BPF_CORE_READ(inode, i_nlink) == 0) {
		stat_inc(VW_STAT_REJECTED);
		return 0;
	}
	nv.gen = *g;	/* read before the walk: a rename during it makes this entry stale */
	nv.inode = (__u64)inode;
	/* before the record is sent: a sync point marked after reading it is later (vw_sync) */
	nv.last_ns = bpf_ktime_get_ns();
	nv.project = vw_path_change((__u64)BPF_CORE_READ(f, f_path.mnt),
				    (__u64)BPF_CORE_READ(f, f_path.dentry), op, opts);
	nv.last_op = op;
	bpf_map_update_elem(&vw_verdicts, &file, &nv, BPF_ANY);
	return 0;
}
