// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// loader.c: the only user of the skeleton: picks the attach set, loads, attaches, pins, fills maps.
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "source/loader.h"
#include "core/log.h"
#include "core/util.h"
#include "vfswatch.skel.h"
#include "vfswatch_compat.skel.h"

#define BPF_FS_MAGIC_NR 0xcafe4a11
#define TRACEFS_MAGIC_NR 0x74726163
#define VERIFIER_TAIL 24	/* lines of libbpf's last warning kept for the user */

/*
 * Which build of the programs a kernel gets: the full one (bpf_loop(),
 * bpf_get_func_ret(), trusted task pointers), or the compat one (bounded
 * loops, return values read from the fexit context, probe reads), and the
 * kernel feature that decided it.
 */
struct vw_objsel {
	bool compat;
	char because[192];
};

struct vw_loader {
	struct vfswatch_bpf *skel;
	enum vw_backend backend;
	struct vw_objsel sel;
	char *pin_dir;
	int ncpus;
	/* the ring's consumer and producer pages, mapped read-only: loader_ring_backlog() */
	const volatile unsigned long *ring_pos;
	size_t ring_pos_len;
};

/* Functions the fentry set may live without (absent before 6.2). */
static const char *const optional_targets[] = { "security_file_truncate", "__vfs_setxattr_noperm",
						 "__vfs_removexattr_locked" };

static char verifier_tail[VERIFIER_TAIL][256];
static int verifier_pos;

VW_PRINTF(2, 0) static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[4096];
	char *p, *save = NULL;

	vsnprintf(line, sizeof(line), fmt, ap);
	if (level == LIBBPF_DEBUG) {
		if (log_verbosity() >= 3)
			fprintf(stderr, "libbpf: %s", line);
		return 0;
	}
	for (p = strtok_r(line, "\n", &save); p; p = strtok_r(NULL, "\n", &save)) {
		snprintf(verifier_tail[verifier_pos % VERIFIER_TAIL], sizeof(verifier_tail[0]), "%s", p);
		verifier_pos++;
		if (log_verbosity() >= 1)
			fprintf(stderr, "libbpf: %s\n", p);
	}
	return 0;
}

void loader_init_logging(void)
{
	libbpf_set_print(libbpf_print);
}

/* Append the last libbpf lines (the verifier's reason) to @err. */
static void append_verifier_tail(char *err, size_t errlen)
{
	int start = verifier_pos > VERIFIER_TAIL ? verifier_pos - VERIFIER_TAIL : 0;
	size_t n = strlen(err);

	for (int i = start; i < verifier_pos && n + 2 < errlen; i++) {
		snprintf(err + n, errlen - n, "\n  %s", verifier_tail[i % VERIFIER_TAIL]);
		n = strlen(err);
	}
}

static bool prog_is_fentry_set(struct bpf_program *prog)
{
	const char *sec = bpf_program__section_name(prog);

	return strncmp(sec, "fentry/", 7) == 0 || strncmp(sec, "fexit/", 6) == 0;
}

static bool optional_target(const char *fn)
{
	for (size_t i = 0; i < sizeof(optional_targets) / sizeof(optional_targets[0]); i++)
		if (strcmp(fn, optional_targets[i]) == 0)
			return true;
	return false;
}

/* Does the kernel's BTF know @value in enum @type (a helper, a map type it has)? */
static bool btf_enum_has(const struct btf *btf, const char *type, const char *value)
{
	int id = btf__find_by_name_kind(btf, type, BTF_KIND_ENUM);
	const struct btf_type *t = id > 0 ? btf__type_by_id(btf, id) : NULL;
	const struct btf_enum *e = t ? btf_enum(t) : NULL;

	for (int i = 0; t && i < btf_vlen(t); i++)
		if (strcmp(btf__name_by_offset(btf, e[i].name_off), value) == 0)
			return true;
	return false;
}

/*
 * What either build needs of the kernel, checked by name in its BTF (not by
 * version): a reason when it is missing, or NULL.
 */
static const char *missing_feature(const struct btf *vmlinux)
{
	if (!btf_enum_has(vmlinux, "bpf_map_type", "BPF_MAP_TYPE_RINGBUF"))
		return "no BPF ring buffer (BPF_MAP_TYPE_RINGBUF, Linux 5.8+)";
	return NULL;
}

/* Does the kernel lack this helper for tracing programs? A test load; one that errs says no. */
static bool helper_missing(enum bpf_func_id id)
{
	return libbpf_probe_bpf_helper(BPF_PROG_TYPE_RAW_TRACEPOINT, id, NULL) == 0;
}

/*
 * Full or compat build, by feature probes: bpf_loop() and
 * bpf_get_current_task_btf() by a test load, bpf_get_func_ret() (fentry
 * only; tracing programs cannot be test-loaded without a target) in the
 * kernel's BTF. VFSWATCH_BPF_COMPAT=1 asks for the compat build anywhere,
 * so that it is tested on new kernels too.
 */
static void choose_object(enum vw_backend b, const struct btf *vmlinux, struct vw_objsel *sel)
{
	const char *force = getenv("VFSWATCH_BPF_COMPAT");

	sel->compat = true;
	if (force && strcmp(force, "1") == 0)
		snprintf(sel->because, sizeof(sel->because), "VFSWATCH_BPF_COMPAT=1 asks for it");
	else if (helper_missing(BPF_FUNC_loop))
		snprintf(sel->because, sizeof(sel->because),
			 "no bpf_loop() helper (BPF_FUNC_loop, Linux 5.17+): bounded loops");
	else if (helper_missing(BPF_FUNC_get_current_task_btf))
		snprintf(sel->because, sizeof(sel->because),
			 "no bpf_get_current_task_btf() helper (Linux 5.11+): probe reads");
	else if (b == VW_BACKEND_FENTRY && vmlinux &&
		 !btf_enum_has(vmlinux, "bpf_func_id", "BPF_FUNC_get_func_ret"))
		snprintf(sel->because, sizeof(sel->because),
			 "no bpf_get_func_ret() helper (BPF_FUNC_get_func_ret, Linux 5.17+): "
			 "return values read by the argument counts in BTF");
	else {
		sel->compat = false;
		snprintf(sel->because, sizeof(sel->because), "%s",
			 b == VW_BACKEND_FENTRY ? "bpf_loop() and bpf_get_func_ret() present"
						: "bpf_loop() present");
	}
}

/*
 * Open the chosen build. Both builds come from the same sources and define
 * the same maps, programs and knobs, so the compat ELF is opened through the
 * full build's skeleton (the Makefile checks that their data sections agree).
 */
static struct vfswatch_bpf *skel_open(bool compat)
{
	struct vfswatch_bpf *obj;
	int ret;

	if (!compat)
		return vfswatch_bpf__open();
	obj = calloc(1, sizeof(*obj));
	if (!obj) {
		errno = ENOMEM;
		return NULL;
	}
	ret = vfswatch_bpf__create_skeleton(obj);
	if (!ret) {
		obj->skeleton->data = (void *)vfswatch_compat_bpf__elf_bytes(&obj->skeleton->data_sz);
		ret = bpf_object__open_skeleton(obj->skeleton, NULL);
	}
	if (ret) {
		vfswatch_bpf__destroy(obj);
		errno = -ret;
		return NULL;
	}
	return obj;
}

/* Argument count of kernel function @name in its BTF, or -1. */
static int btf_func_nargs(const struct btf *btf, const char *name)
{
	int id = btf__find_by_name_kind(btf, name, BTF_KIND_FUNC);
	const struct btf_type *t = id > 0 ? btf__type_by_id(btf, id) : NULL;

	t = t ? btf__type_by_id(btf, t->type) : NULL;
	return t && btf_is_func_proto(t) ? btf_vlen(t) : -1;
}

/*
 * The compat fexit programs read the return value from the slot after the
 * arguments (and the metadata hooks their dentry a fixed count before it):
 * write each target's argument count into cfg_fx_nargs[]. A target missing
 * from BTF is left at 0; select_set() decides about its program.
 */
static int set_fexit_nargs(struct vfswatch_bpf *skel, const struct btf *vmlinux, char *err,
			   size_t errlen)
{
	static const struct {
		const char *fn;
		int min;	/* arguments the program finds its dentry among */
	} fx[VW_FX_MAX] = {
		[VW_FX_UNLINK] = { "vfs_unlink", 0 },
		[VW_FX_RMDIR] = { "do_rmdir", 0 },
		[VW_FX_MKDIRAT] = { "do_mkdirat", 0 },
		[VW_FX_SYMLINK] = { "vfs_symlink", 0 },
		[VW_FX_LINK] = { "vfs_link", 0 },
		[VW_FX_MKNOD] = { "vfs_mknod", 0 },
		[VW_FX_RENAME] = { "vfs_rename", 0 },
		[VW_FX_NOTIFY] = { "notify_change", 3 },
		[VW_FX_SETXATTR] = { "__vfs_setxattr_noperm", 5 },
		[VW_FX_REMOVEXATTR] = { "__vfs_removexattr_locked", 3 },
	};

	for (int i = 0; i < VW_FX_MAX; i++) {
		int n = btf_func_nargs(vmlinux, fx[i].fn);

		if (n < 0)
			continue;
		/* a trampoline's context holds at most six arguments and the result */
		if (n < fx[i].min || n > 6) {
			snprintf(err, errlen,
				 "kernel function %s takes %d arguments, which the compat fentry "
				 "set cannot read", fx[i].fn, n);
			return -ENOTSUP;
		}
		skel->rodata->cfg_fx_nargs[i] = (uint8_t)n;
	}
	return 0;
}

/*
 * A function the compiler split or specialised (vfs_rmdir.part.0 on Debian's
 * 5.10, name.isra.0, name.constprop.0) is partly called through that copy,
 * which a trampoline on the function never sees: an fentry or fexit there
 * would miss changes without a word. The fentry set is refused instead (auto
 * goes on to tracepoint). Looked up in /proc/kallsyms; unreadable: no verdict.
 */
static int split_target(const struct vfswatch_bpf *skel, char *err, size_t errlen)
{
	static const char *const kinds[] = { ".part.", ".isra.", ".constprop." };
	const char *path = getenv("VFSWATCH_KALLSYMS");	/* tests play a kernel so built */
	FILE *f = fopen(path && *path ? path : "/proc/kallsyms", "re");
	char line[512];
	int ret = 0;

	if (!f)
		return 0;
	while (!ret && fgets(line, sizeof(line), f)) {
		char *name = strrchr(line, ' '), *dot;
		struct bpf_program *prog;

		if (!name || !(dot = strchr(++name, '.')))
			continue;
		name[strcspn(name, "\t\n")] = 0;
		for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
			if (strncmp(dot, kinds[k], strlen(kinds[k])) != 0)
				continue;
			bpf_object__for_each_program(prog, skel->obj) {
				const char *t = strchr(bpf_program__section_name(prog), '/') + 1;

				if (!bpf_program__autoload(prog) || !prog_is_fentry_set(prog) ||
				    strlen(t) != (size_t)(dot - name) || strncmp(t, name, dot - name))
					continue;
				snprintf(err, errlen, "kernel function %s is partly called through a "
					 "compiler-made copy (%s) that %s would not see", t, name,
					 bpf_program__name(prog));
				ret = -ENOTSUP;
				break;
			}
		}
	}
	fclose(f);
	return ret;
}

/*
 * Turn autoload off for the set not chosen. For the fentry set, check every
 * target function in the kernel's BTF (@vmlinux) first: an optional one that
 * is missing is switched off, a required one fails the set with a clear
 * reason.
 */
static int select_set(struct vfswatch_bpf *skel, enum vw_backend b, const struct btf *vmlinux,
		      const struct vw_objsel *sel, char *err, size_t errlen)
{
	struct bpf_program *prog;

	if (b == VW_BACKEND_FENTRY && sel->compat) {
		int ret = set_fexit_nargs(skel, vmlinux, err, errlen);

		if (ret)
			return ret;
	}
	bpf_object__for_each_program(prog, skel->obj) {
		bool fentry = prog_is_fentry_set(prog);
		const char *target;

		if ((b == VW_BACKEND_FENTRY) != fentry) {
			bpf_program__set_autoload(prog, false);
			continue;
		}
		if (!fentry)
			continue;
		target = strchr(bpf_program__section_name(prog), '/') + 1;
		if (btf__find_by_name_kind(vmlinux, target, BTF_KIND_FUNC) >= 0)
			continue;
		if (optional_target(target)) {
			log_info("loader: kernel has no %s, %s left out", target, bpf_program__name(prog));
			bpf_program__set_autoload(prog, false);
			continue;
		}
		snprintf(err, errlen, "kernel function %s (for %s) is not in the kernel's BTF", target,
			 bpf_program__name(prog));
		return -ENOENT;
	}
	return b == VW_BACKEND_FENTRY ? split_target(skel, err, errlen) : 0;
}

/* The kernel's BTF for the fentry set (which needs it to pick targets); NULL otherwise. */
static int vmlinux_for(enum vw_backend b, struct btf **out, char *err, size_t errlen)
{
	int ret;

	*out = NULL;
	if (b != VW_BACKEND_FENTRY)
		return 0;
	*out = btf__load_vmlinux_btf();
	if (*out)
		return 0;
	ret = -errno;
	snprintf(err, errlen, "cannot read the kernel's BTF: %s", errstr(ret));
	return ret;
}

/*
 * After a failed load: does the kernel lack something either build needs?
 * Then that is the reason (in @err), rather than what the verifier made of
 * it. The kernel's BTF is read here only when the set did not already
 * (@vmlinux, fentry): start-up reads it no more than it must.
 */
static bool kernel_lacks(enum vw_backend b, const struct btf *vmlinux, char *err, size_t errlen)
{
	struct btf *own = vmlinux ? NULL : btf__load_vmlinux_btf();
	const struct btf *btf = vmlinux ? vmlinux : own;
	const char *missing = btf ? missing_feature(btf) : NULL;

	if (missing)
		snprintf(err, errlen, "%s set: this kernel has %s", backend_name(b), missing);
	btf__free(own);
	return missing != NULL;
}

#define VERIFIER_LOG_SIZE (16u << 20)

/*
 * After a failed load, load once more with one large verifier log shared by
 * every program of the set. libbpf stops at the first program that fails, so
 * the buffer ends up holding that program's log; its last lines are the
 * verifier's reason, which libbpf's own (smaller) copy can miss.
 */
static void explain_load_failure(enum vw_backend b, const struct btf *vmlinux,
				 const struct vw_objsel *sel, uint32_t ringbuf_bytes, char *err,
				 size_t errlen)
{
	struct vfswatch_bpf *skel = skel_open(sel->compat);
	char *log = calloc(1, VERIFIER_LOG_SIZE), why[256], *p;
	struct bpf_program *prog;
	size_t n = strlen(err);
	int lines = 0;

	if (!skel || !log || select_set(skel, b, vmlinux, sel, why, sizeof(why)))
		goto out;
	if (ringbuf_bytes)
		bpf_map__set_max_entries(skel->maps.vw_events, ringbuf_bytes);
	bpf_object__for_each_program(prog, skel->obj) {
		bpf_program__set_log_buf(prog, log, VERIFIER_LOG_SIZE);
		bpf_program__set_log_level(prog, 1);
	}
	if (bpf_object__load(skel->obj) == 0 || !log[0])
		goto out;
	if (log_verbosity() >= 2)
		fprintf(stderr, "verifier log:\n%s\n", log);
	for (p = log + strlen(log); p > log && lines <= 16;)
		if (*--p == '\n')
			lines++;
	snprintf(err + n, errlen - n, "\nverifier:\n%s", p);
out:
	vfswatch_bpf__destroy(skel);
	free(log);
}

/* "tracepoint set" or "tracepoint set (compat build: why)" for messages. */
static const char *set_label(enum vw_backend b, const struct vw_objsel *sel, char *buf, size_t len)
{
	if (sel->compat)
		snprintf(buf, len, "%s set (compat build: %s)", backend_name(b), sel->because);
	else
		snprintf(buf, len, "%s set", backend_name(b));
	return buf;
}

/*
 * Open, load and attach one attach set, in the build this kernel gets (@sel
 * says which and why). Returns the skeleton or NULL with errno set.
 */
static struct vfswatch_bpf *open_set(enum vw_backend b, const struct vw_loader_opts *o,
				     struct vw_objsel *sel, char *err, size_t errlen)
{
	struct vfswatch_bpf *skel = NULL;
	struct btf *vmlinux;
	char label[256];
	int ret;

	verifier_pos = 0;
	ret = vmlinux_for(b, &vmlinux, err, errlen);
	if (ret)
		goto fail;
	choose_object(b, vmlinux, sel);
	if (sel->compat)
		log_info("loader: %s", set_label(b, sel, label, sizeof(label)));
	skel = skel_open(sel->compat);
	if (!skel) {
		ret = -errno;
		snprintf(err, errlen, "open BPF object: %s", errstr(ret));
		goto fail;
	}
	skel->rodata->cfg_self_tgid = (uint32_t)getpid();
	skel->rodata->cfg_coalesce_ns = o->coalesce_ns;
	skel->rodata->cfg_wakeup_ns = o->wakeup_ns;
	if (o->ringbuf_bytes)
		bpf_map__set_max_entries(skel->maps.vw_events, o->ringbuf_bytes);
	ret = select_set(skel, b, vmlinux, sel, err, errlen);
	if (ret)
		goto fail;
	ret = vfswatch_bpf__load(skel);
	if (ret) {
		ret = -errno;
		if (kernel_lacks(b, vmlinux, err, errlen))
			goto fail;
		snprintf(err, errlen, "%s: load failed: %s", set_label(b, sel, label, sizeof(label)),
			 errstr(ret));
		if (ret == -EACCES || ret == -EINVAL || ret == -E2BIG)
			explain_load_failure(b, vmlinux, sel, o->ringbuf_bytes, err, errlen);
		else
			append_verifier_tail(err, errlen);
		goto fail;
	}
	ret = vfswatch_bpf__attach(skel);
	if (ret) {
		ret = -errno;
		snprintf(err, errlen, "%s: attach failed: %s", set_label(b, sel, label, sizeof(label)),
			 errstr(ret));
		append_verifier_tail(err, errlen);
		goto fail;
	}
	btf__free(vmlinux);
	return skel;
fail:
	vfswatch_bpf__destroy(skel);
	btf__free(vmlinux);
	errno = -ret;
	return NULL;
}

int loader_probe(enum vw_backend b, char *why, size_t len, bool *compat, char *because,
		 size_t because_len)
{
	struct vfswatch_bpf *skel;
	struct vw_objsel sel = { 0 };

	why[0] = 0;
	skel = open_set(b, &(struct vw_loader_opts){ .backend = b }, &sel, why, len);
	*compat = sel.compat;
	snprintf(because, because_len, "%s", sel.because);
	if (!skel)
		return -errno;
	vfswatch_bpf__destroy(skel);
	return 0;
}

static int mount_if_missing(const char *dir, const char *type, long magic)
{
	struct statfs sfs;

	if (statfs(dir, &sfs) == 0 && (long)sfs.f_type == magic)
		return 0;
	if (mount(type, dir, type, 0, NULL) < 0) {
		int ret = -errno;

		log_warn("loader: mount %s on %s", type, dir);
		return ret;
	}
	log_info("loader: mounted %s on %s", type, dir);
	return 0;
}

/* Map names carry a vw_ prefix; pins drop it: /sys/fs/bpf/vfswatch/roots. */
static const char *pin_name(const char *name)
{
	return strncmp(name, "vw_", 3) == 0 ? name + 3 : name;
}

static void unpin_all(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) < 0)
			log_warn("loader: unpin %s/%s", dir, de->d_name);
	}
	closedir(d);
	if (rmdir(dir) < 0 && errno != ENOENT)
		log_warn("loader: rmdir %s", dir);
}

static int pin_all(struct vw_loader *l)
{
	struct bpf_program *prog;
	struct bpf_map *map;
	char path[512];
	int ret;

	if (mount_if_missing("/sys/fs/bpf", "bpf", BPF_FS_MAGIC_NR))
		return -ENODEV;
	if (access(l->pin_dir, F_OK) == 0) {
		log_warnx("loader: removing stale pins in %s", l->pin_dir);
		unpin_all(l->pin_dir);
	}
	/* root's alone: a pinned map opened by anyone else could be read or changed */
	if ((mkdir(l->pin_dir, 0700) < 0 && errno != EEXIST) || chmod(l->pin_dir, 0700) < 0)
		return -errno;
	bpf_object__for_each_map(map, l->skel->obj) {
		const char *name = bpf_map__name(map);

		if (strncmp(name, "vw_", 3) != 0)
			continue;	/* .rodata and friends */
		snprintf(path, sizeof(path), "%s/%s", l->pin_dir, pin_name(name));
		ret = bpf_map__pin(map, path);
		if (ret)
			return ret;
	}
	bpf_object__for_each_program(prog, l->skel->obj) {
		if (!bpf_program__autoload(prog))
			continue;
		snprintf(path, sizeof(path), "%s/%s", l->pin_dir, bpf_program__name(prog));
		ret = bpf_program__pin(prog, path);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * Map the ring's first two pages read-only: the consumer position (which
 * libbpf's reader advances) and the producer position (which the kernel
 * advances when it reserves a record). Without them the liveness check
 * falls back to the counters alone.
 */
static void ring_pos_map(struct vw_loader *l)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	void *p = mmap(NULL, 2 * page, PROT_READ, MAP_SHARED,
		       bpf_map__fd(l->skel->maps.vw_events), 0);

	if (p == MAP_FAILED) {
		log_warn("loader: map the ring's positions");
		return;
	}
	l->ring_pos = p;
	l->ring_pos_len = 2 * page;
}

struct vw_loader *loader_new(const struct vw_loader_opts *o, char *err, size_t errlen)
{
	static const enum vw_backend order[] = { VW_BACKEND_FENTRY, VW_BACKEND_TRACEPOINT };
	struct vw_loader *l = calloc(1, sizeof(*l));
	char why[2048] = "";
	int ret;

	if (!l)
		return NULL;
	if (o->backend == VW_BACKEND_FANOTIFY) {
		snprintf(err, errlen, "fanotify is not a BPF backend");
		free(l);
		errno = EINVAL;
		return NULL;
	}
	l->ncpus = libbpf_num_possible_cpus();
	mount_if_missing("/sys/kernel/tracing", "tracefs", TRACEFS_MAGIC_NR);
	if (o->backend != VW_BACKEND_AUTO) {
		l->skel = open_set(o->backend, o, &l->sel, err, errlen);
		l->backend = o->backend;
	} else {
		for (size_t i = 0; i < sizeof(order) / sizeof(order[0]) && !l->skel; i++) {
			l->skel = open_set(order[i], o, &l->sel, why, sizeof(why));
			l->backend = order[i];
			if (!l->skel)
				log_info("loader: %s backend unusable: %s", backend_name(order[i]), why);
		}
		if (!l->skel)
			snprintf(err, errlen, "no BPF backend works on this kernel; last: %s", why);
	}
	if (!l->skel) {
		ret = -errno;
		free(l);
		errno = ret ? -ret : EINVAL;
		return NULL;
	}
	ring_pos_map(l);
	if (o->pin_dir) {
		l->pin_dir = strdup(o->pin_dir);
		ret = l->pin_dir ? pin_all(l) : -ENOMEM;
		if (ret) {
			snprintf(err, errlen, "pin under %s: %s", o->pin_dir, errstr(ret));
			loader_free(l);
			errno = -ret;
			return NULL;
		}
	}
	return l;
}

uint64_t loader_ring_backlog(const struct vw_loader *l)
{
	size_t words = l->ring_pos_len / 2 / sizeof(unsigned long);
	unsigned long cons, prod;

	if (!l->ring_pos)
		return 0;
	cons = __atomic_load_n(&l->ring_pos[0], __ATOMIC_ACQUIRE);
	prod = __atomic_load_n(&l->ring_pos[words], __ATOMIC_ACQUIRE);
	return prod - cons;
}

int loader_detach(struct vw_loader *l)
{
	if (l && l->skel)
		vfswatch_bpf__detach(l->skel);
	return 0;
}

void loader_free(struct vw_loader *l)
{
	if (!l)
		return;
	if (l->ring_pos)
		munmap((void *)l->ring_pos, l->ring_pos_len);
	if (l->skel)
		vfswatch_bpf__detach(l->skel);
	if (l->pin_dir)
		unpin_all(l->pin_dir);
	vfswatch_bpf__destroy(l->skel);
	free(l->pin_dir);
	free(l);
}

enum vw_backend loader_backend(const struct vw_loader *l)
{
	return l->backend;
}

bool loader_compat(const struct vw_loader *l, const char **because)
{
	if (because)
		*because = l->sel.because;
	return l->sel.compat;
}

int loader_events_fd(const struct vw_loader *l)
{
	return bpf_map__fd(l->skel->maps.vw_events);
}

int loader_sync_mark(struct vw_loader *l, uint32_t project, uint64_t now_ns)
{
	uint32_t slot = project == VW_PROJECT_NONE ? VW_SYNC_SLOTS : project % VW_SYNC_SLOTS;

	return bpf_map_update_elem(bpf_map__fd(l->skel->maps.vw_sync), &slot, &now_ns, BPF_ANY) ?
		       -errno : 0;
}

static void bump_gen(struct vw_loader *l)
{
	uint32_t zero = 0, cur;
	int fd = bpf_map__fd(l->skel->maps.vw_gen);

	if (bpf_map_lookup_elem(fd, &zero, &cur) == 0) {
		cur++;
		bpf_map_update_elem(fd, &zero, &cur, BPF_ANY);
	}
}

struct fill_ctx {
	int fd;
	int err;
};

static void put_chain(void *ctx, const struct vw_chain_key *k, const struct vw_chain_val *v)
{
	struct fill_ctx *c = ctx;
	struct vw_chain_val old;

	/* A root reached from this prefix wins over a longer chain through it. */
	if (!v->final && bpf_map_lookup_elem(c->fd, k, &old) == 0)
		return;
	if (bpf_map_update_elem(c->fd, k, v, BPF_ANY) < 0 && !c->err)
		c->err = -errno;
}

static void put_dev(void *ctx, uint32_t dev)
{
	struct fill_ctx *c = ctx;
	uint32_t one = 1;

	if (bpf_map_update_elem(c->fd, &dev, &one, BPF_ANY) < 0 && !c->err)
		c->err = -errno;
}

int loader_add_project(struct vw_loader *l, const struct vw_project *p)
{
	struct vw_dir_key key = { .ino = p->ino, .dev = p->dev };
	struct fill_ctx c = {};
	int ret;

	c.fd = bpf_map__fd(l->skel->maps.vw_chains);
	ret = project_chain_entries(p, put_chain, &c);
	if (ret || c.err)
		return ret ? ret : c.err;
	c.fd = bpf_map__fd(l->skel->maps.vw_watched_devs);
	ret = project_devs(p, "/proc/self/mountinfo", put_dev, &c);
	if (ret || c.err)
		return ret ? ret : c.err;
	/* The root goes in last: from then on its events flow. */
	if (bpf_map_update_elem(bpf_map__fd(l->skel->maps.vw_roots), &key,
				&(struct vw_root_val){ .project = p->id }, BPF_ANY) < 0)
		return -errno;
	bump_gen(l);	/* open files judged "not watched" may be under it now */
	return 0;
}

struct entries {
	struct vw_chain_key *k;
	struct vw_chain_val *v;
	uint32_t *devs;
	size_t n, cap, ndevs, capdevs;
	int err;
};

static void collect_chain(void *ctx, const struct vw_chain_key *k, const struct vw_chain_val *v)
{
	struct entries *e = ctx;

	for (size_t i = 0; i < e->n; i++) {
		if (memcmp(&e->k[i], k, sizeof(*k)) == 0) {
			if (v->final)
				e->v[i] = *v;	/* as on add: a root reached wins */
			return;
		}
	}
	if (e->n == e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 64;
		struct vw_chain_key *nk = reallocarray(e->k, cap, sizeof(*nk));
		struct vw_chain_val *nv = nk ? reallocarray(e->v, cap, sizeof(*nv)) : NULL;

		if (nk)
			e->k = nk;
		if (!nv) {
			e->err = -ENOMEM;
			return;
		}
		e->v = nv;
		e->cap = cap;
	}
	e->k[e->n] = *k;
	e->v[e->n++] = *v;
}

static void collect_dev(void *ctx, uint32_t dev)
{
	struct entries *e = ctx;

	for (size_t i = 0; i < e->ndevs; i++)
		if (e->devs[i] == dev)
			return;
	if (e->ndevs == e->capdevs) {
		size_t cap = e->capdevs ? e->capdevs * 2 : 16;
		uint32_t *n = reallocarray(e->devs, cap, sizeof(*n));

		if (!n) {
			e->err = -ENOMEM;
			return;
		}
		e->devs = n;
		e->capdevs = cap;
	}
	e->devs[e->ndevs++] = dev;
}

static void entries_free(struct entries *e)
{
	free(e->k);
	free(e->v);
	free(e->devs);
}

int loader_remove_project(struct vw_loader *l, const struct vw_project *p,
			  const struct vw_projects *t)
{
	struct vw_dir_key key = { .ino = p->ino, .dev = p->dev };
	struct entries mine = {}, keep = {};
	int cfd = bpf_map__fd(l->skel->maps.vw_chains);
	int dfd = bpf_map__fd(l->skel->maps.vw_watched_devs);
	struct vw_root_val cur;
	int ret = 0;

	/* the root first: from now on nothing of it is emitted */
	if (bpf_map_lookup_elem(bpf_map__fd(l->skel->maps.vw_roots), &key, &cur) == 0 &&
	    cur.project == p->id)
		bpf_map_delete_elem(bpf_map__fd(l->skel->maps.vw_roots), &key);
	project_chain_entries(p, collect_chain, &mine);
	project_devs(p, "/proc/self/mountinfo", collect_dev, &mine);
	for (size_t i = 0; i < t->n; i++) {
		if (t->v[i].gone)
			continue;
		project_chain_entries(&t->v[i], collect_chain, &keep);
		project_devs(&t->v[i], "/proc/self/mountinfo", collect_dev, &keep);
	}
	if (mine.err || keep.err) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < mine.n; i++) {
		size_t j;

		for (j = 0; j < keep.n; j++)
			if (memcmp(&mine.k[i], &keep.k[j], sizeof(mine.k[i])) == 0)
				break;
		if (j < keep.n)
			bpf_map_update_elem(cfd, &keep.k[j], &keep.v[j], BPF_ANY);
		else
			bpf_map_delete_elem(cfd, &mine.k[i]);
	}
	for (size_t i = 0; i < mine.ndevs; i++) {
		size_t j;

		for (j = 0; j < keep.ndevs && keep.devs[j] != mine.devs[i]; j++)
			;
		if (j == keep.ndevs)
			bpf_map_delete_elem(dfd, &mine.devs[i]);
	}
	bump_gen(l);	/* files judged to be in it must be judged again */
out:
	entries_free(&mine);
	entries_free(&keep);
	return ret;
}

int loader_exclude(struct vw_loader *l, uint32_t kdev, uint64_t ino, const uint32_t *igen)
{
	struct vw_dir_key key = { .ino = ino, .dev = kdev };
	struct vw_root_val v = { .project = VW_PROJECT_EXCLUDED, .igen = igen ? *igen : 0,
				 .bound = igen != NULL };
	int fd = bpf_map__fd(l->skel->maps.vw_roots);
	struct vw_root_val cur;

	/* never turn a project root into an exclusion */
	if (bpf_map_lookup_elem(fd, &key, &cur) == 0 && cur.project != VW_PROJECT_EXCLUDED)
		return -EEXIST;
	if (bpf_map_update_elem(fd, &key, &v, BPF_ANY) < 0)
		return -errno;
	bump_gen(l);	/* files already judged "watched" below it must be judged again */
	return 0;
}

int loader_unexclude(struct vw_loader *l, uint32_t kdev, uint64_t ino)
{
	struct vw_dir_key key = { .ino = ino, .dev = kdev };
	int fd = bpf_map__fd(l->skel->maps.vw_roots);
	struct vw_root_val cur;

	if (bpf_map_lookup_elem(fd, &key, &cur) < 0 || cur.project != VW_PROJECT_EXCLUDED)
		return 0;
	if (bpf_map_delete_elem(fd, &key) < 0 && errno != ENOENT)
		return -errno;
	bump_gen(l);	/* files below it are watched from now on */
	return 0;
}

int loader_root_lost(struct vw_loader *l, const struct vw_project *p)
{
	struct vw_dir_key key = { .ino = p->ino, .dev = p->dev };
	int fd = bpf_map__fd(l->skel->maps.vw_roots);
	struct vw_root_val cur;

	/* its inode number may be given to another directory: nothing may be told as its */
	if (bpf_map_lookup_elem(fd, &key, &cur) == 0 && cur.project == p->id &&
	    bpf_map_delete_elem(fd, &key) < 0 && errno != ENOENT)
		return -errno;
	bump_gen(l);
	return 0;
}

int loader_quiet_add(struct vw_loader *l, uint32_t tgid)
{
	uint32_t one = 1;

	if (bpf_map_update_elem(bpf_map__fd(l->skel->maps.vw_quiet), &tgid, &one, BPF_ANY) < 0)
		return -errno;
	return 0;
}

int loader_stats(const struct vw_loader *l, uint64_t *out)
{
	int fd = bpf_map__fd(l->skel->maps.vw_stats), ret = 0;
	uint64_t *vals = calloc(l->ncpus, sizeof(*vals));

	if (!vals)
		return -ENOMEM;
	for (uint32_t k = 0; k < VW_STAT_MAX; k++) {
		out[k] = 0;
		if (bpf_map_lookup_elem(fd, &k, vals) < 0) {
			ret = -errno;
			continue;
		}
		for (int c = 0; c < l->ncpus; c++)
			out[k] += vals[c];
	}
	free(vals);
	return ret;
}

int loader_map_probe(const struct vw_loader *l)
{
	uint32_t next;

	if (bpf_map_get_next_key(bpf_map__fd(l->skel->maps.vw_quiet), NULL, &next) < 0 &&
	    errno != ENOENT)
		return -errno;
	return 0;
}

int loader_take_lost(const struct vw_loader *l, lost_fn fn, void *ctx)
{
	int fd = bpf_map__fd(l->skel->maps.vw_lost), n = 0;
	uint32_t key, next, ids[256];
	uint64_t lost;
	size_t nids = 0;
	bool first = true;

	/* collect first: deleting while walking the keys would restart the walk */
	while (nids < sizeof(ids) / sizeof(ids[0]) &&
	       bpf_map_get_next_key(fd, first ? NULL : &key, &next) == 0) {
		ids[nids++] = next;
		key = next;
		first = false;
	}
	for (size_t i = 0; i < nids; i++) {
		if (bpf_map_lookup_elem(fd, &ids[i], &lost) < 0)
			continue;
		/* a loss after this delete marks it again: the rescan starts after it anyway */
		bpf_map_delete_elem(fd, &ids[i]);
		fn(ctx, ids[i], lost);
		n++;
	}
	return n;
}
