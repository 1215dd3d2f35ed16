// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// daemon.c: `vfswatch run`: backend choice, the epoll loop's handlers, settled output, teardown.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include <cjson/cJSON.h>

#include "serve/runner.h"
#include "core/caps.h"
#include "store/changes.h"
#include "serve/clients.h"
#include "store/config.h"
#include "serve/control.h"
#include "daemon/daemon.h"
#include "daemon/daemon_priv.h"
#include "pipeline/debounce.h"
#include "pipeline/route.h"
#include "pipeline/fanout.h"
#include "source/fanotify.h"
#include "store/fingerprint.h"
#include "core/ignore.h"
#include "store/index.h"
#include "pipeline/json_out.h"
#include "serve/metrics.h"
#include "core/log.h"
#include "core/loop.h"
#include "store/project.h"
#include "pipeline/reconcile.h"
#include "store/state.h"
#include "source/decoder.h"
#include "core/util.h"

/*
 * The housekeeping tick (losses, analyzer timeouts, rescans owed, journal
 * syncs, root checks) runs every TICK_MS while any of that has work, and every
 * IDLE_TICK_MS otherwise: an idle daemon does not wake up. The BPF backends
 * see a root go by its events; fanotify's roots are looked at on this tick.
 */
#define TICK_MS 250
#define IDLE_TICK_MS 10000
#define IDLE_TICK_FAN_MS 2000
#define CRAWL_BUDGET 2048	/* directory entries indexed per loop turn */
#define START_GRACE_MS 10	/* a start-up crawl ends this long after it read its last entry */
#define COLLECT_EVERY_NS (86400ull * 1000000000ull)	/* state files no project claims: looked for */
#define TRIM_AFTER_PATHS 1000	/* batches this large free enough to hand back */
#define BTF_PATH "/sys/kernel/btf/vmlinux"


static void start_rescan(struct daemon *d, struct vw_project *p, const char *reason);
static void on_rescan(void *ctx, const struct vw_rescan_change *c);
static void announce_rescan(struct daemon *d, struct vw_project *p, const char *reason);
static int flush_out(struct daemon *d);
static void on_event(void *ctx, const struct vw_event *ev);

/* The kernel's BTF; VFSWATCH_BTF_PATH overrides it so tests can play a kernel without BTF. */
const char *daemon_btf_path(void)
{
	const char *p = getenv("VFSWATCH_BTF_PATH");

	return p && *p ? p : BTF_PATH;
}

static bool have_btf(void)
{
	return access(daemon_btf_path(), R_OK) == 0;
}

static int require_root_and_btf(enum vw_backend b)
{
	if (geteuid() != 0) {
		log_warnx("must run as root: BPF programs and fanotify filesystem marks need "
			  "CAP_SYS_ADMIN");
		return -EPERM;
	}
	if (b == VW_BACKEND_FANOTIFY || b == VW_BACKEND_AUTO)
		return 0;	/* auto falls back to fanotify without BTF */
	if (!have_btf()) {
		log_warnx("this kernel has no BTF (%s is missing): the BPF backends need a kernel "
			  "built with CONFIG_DEBUG_INFO_BTF=y",
			  daemon_btf_path());
		return -ENOENT;
	}
	return 0;
}

/* Keep the index of existing paths in step with what the kernel reports. */
static void index_update(struct daemon *d, const struct vw_out *o)
{
	uint32_t id = o->project->id;

	if (o->kind == VW_KIND_CREATE) {
		index_add(d->idx, id, o->path);
	} else if (o->kind == VW_KIND_DELETE) {
		index_del(d->idx, id, o->path);
		if (d->fps)
			fps_forget(d->fps, id, o->path);
	} else if (o->kind == VW_KIND_RENAME) {
		index_del(d->idx, id, o->old_path);
		if (d->fps)
			fps_forget(d->fps, id, o->old_path);
		index_add(d->idx, id, o->path);
		if (o->type && strcmp(o->type, "dir") == 0 &&
		    index_crawl(d->idx, o->project, o->path) == 0)
			d->crawling = true;	/* what it holds moved with it */
	}
}

#define VW_EXCL_PER_PROJECT 4096	/* kernel exclusions one project may hold */
#define VW_EXCL_MAX 32768	/* and all together: the roots map (65536) keeps room for roots */

/* Do the live projects @p and @q share a tree (one holds the other)? */
static bool trees_overlap(const struct vw_project *p, const struct vw_project *q)
{
	return q != p && !q->gone && (path_below(p->root, q->root) || path_below(q->root, p->root));
}

/* Does another live project share @p's tree? */
static bool shares_tree(const struct daemon *d, const struct vw_project *p)
{
	for (size_t i = 0; i < d->projects.n; i++)
		if (trees_overlap(p, &d->projects.v[i]))
			return true;
	return false;
}

/* The kernel exclusions of @p go (from now on the kernel reports what is below them). */
static void unexclude_project(struct daemon *d, const struct vw_project *p)
{
	size_t k = 0;

	for (size_t i = 0; i < d->nexcl; i++) {
		int ret = d->excl[i].project == p->id ?
			  loader_unexclude(d->loader, d->excl[i].dev, d->excl[i].ino) : 1;

		if (ret < 0)
			log_warnx("loader: %s: an ignored directory stays excluded in the kernel: %s",
				  p->name, errstr(ret));
		if (ret)
			d->excl[k++] = d->excl[i];
	}
	d->nexcl = k;
}

/*
 * A directory moved to a place where it is not ignored (into another project,
 * or to a name its project does not ignore): an exclusion it carried goes, so
 * that it hides nothing there. (Moved to where no project is, it hides nothing.)
 */
static void moved_exclusion(struct daemon *d, const struct vw_out *o)
{
	struct stat st;

	if (project_lstat(o->project, o->path, &st) < 0)
		return;
	for (size_t i = 0; i < d->nexcl; i++) {
		if (d->excl[i].dev != kernel_dev(st.st_dev) || d->excl[i].ino != st.st_ino)
			continue;
		if (loader_unexclude(d->loader, d->excl[i].dev, d->excl[i].ino) == 0)
			d->excl[i] = d->excl[--d->nexcl];
		return;
	}
}

/*
 * A directory @rel that @p ignores: what happens below it stays in the
 * kernel, for that directory only (its generation is kept: an inode number
 * reused by another directory is not excluded). Only where no other project
 * shares the tree: the kernel keeps one verdict for everybody, and an
 * exclusion must hide nothing from a project that does not ignore it (those
 * changes are dropped in userspace, per project, instead).
 */
static void exclude_dir(void *ctx, const struct vw_project *p, const char *rel)
{
	struct daemon *d = ctx;
	struct stat st;
	uint32_t igen;
	bool have_igen;
	size_t mine = 0;
	void *v;
	int fd, ret;

	if (!d->loader || shares_tree(d, p) || d->nexcl >= VW_EXCL_MAX)
		return;	/* beyond the bound, dropped in userspace: the map keeps room for roots */
	fd = project_open(p, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return;	/* gone again, or not a directory now */
	have_igen = ioctl(fd, FS_IOC_GETVERSION, &igen) == 0;
	ret = fstat(fd, &st) < 0 ? -errno : 0;
	close(fd);
	for (size_t i = 0; !ret && i < d->nexcl; i++) {
		if (d->excl[i].dev == kernel_dev(st.st_dev) && d->excl[i].ino == st.st_ino)
			return;	/* excluded already (a rescan found it again) */
		mine += d->excl[i].project == p->id;
	}
	if (mine >= VW_EXCL_PER_PROJECT)
		return;
	if (!ret)
		ret = loader_exclude(d->loader, kernel_dev(st.st_dev), st.st_ino,
				     have_igen ? &igen : NULL);
	if (ret == -EEXIST)
		return;	/* a project root: never excluded */
	if (!ret && (v = reallocarray(d->excl, d->nexcl + 1, sizeof(*d->excl)))) {
		d->excl = v;
		d->excl[d->nexcl++] = (struct vw_excl){ kernel_dev(st.st_dev), st.st_ino, p->id };
	} else if (!ret) {
		ret = -ENOMEM;
		loader_unexclude(d->loader, kernel_dev(st.st_dev), st.st_ino);
	}
	if (ret)
		log_warnx("loader: %s: %s: cannot keep what happens below it in the kernel (%s); "
			  "it is dropped here instead", p->name, rel, errstr(ret));
}

static void on_settled(void *ctx, const struct vw_settled *s);

static void root_changed(struct daemon *d, struct vw_project *p, bool back);
static void load_state(struct daemon *d, struct vw_project *p, bool announce);
static void collect_state_files(struct daemon *d, const struct run_opts *o);

/* A root that came back: each entry in it is a create (directories are listed whole). */
static void describe_root(struct daemon *d, struct vw_project *p)
{
	int fd = project_open(p, "", O_RDONLY | O_DIRECTORY);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (fd >= 0 && !dir)
		close(fd);
	while (dir && (de = readdir(dir))) {
		struct vw_out o = { .project = p, .kind = VW_KIND_CREATE, .path = de->d_name,
				    .ev = &vw_no_writer };

		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    !(p->ignore && ignore_match(p->ignore, de->d_name, de->d_type == DT_DIR)))
			debounce_add(d->deb, &o, now_ns(CLOCK_MONOTONIC));
	}
	if (dir)
		closedir(dir);
}

/*
 * Does the root path still name the directory pinned, itself (not a symlink
 * to it)? It may have been renamed away, or replaced.
 */
static bool root_intact(const struct vw_project *p)
{
	struct stat st;

	return project_lstat_root_path(p, &st) == 0 && S_ISDIR(st.st_mode) &&
	       st.st_ino == p->ino && kernel_dev(st.st_dev) == p->dev;
}

/*
 * At every tick: a root gone (fanotify learns it only so), and a lost root's
 * path holding something again (fanotify does not see the root's own name;
 * the BPF backends do, and this catches what their events could not say).
 */
static void check_roots(struct daemon *d)
{
	for (size_t i = 0; i < d->projects.n; i++) {
		struct vw_project *p = &d->projects.v[i];
		struct stat st;

		if (p->gone)
			continue;
		if (!p->root_lost && !root_intact(p))
			root_changed(d, p, false);
		else if (p->root_lost && project_lstat_root_path(p, &st) == 0 &&
			 (st.st_ino != p->refused_ino || kernel_dev(st.st_dev) != p->refused_dev))
			root_changed(d, p, true);
	}
}

/* The kinds of state file a project has (picture, journal, change log, a damaged picture). */
static const char *const state_exts[] = { "snap", "journal", "changes", "snap.damaged", "id" };
#define NSTATE_EXTS (sizeof(state_exts) / sizeof(state_exts[0]))

/* Delete @p's state files under its identity now. */
static void remove_project_files(struct daemon *d, const struct vw_project *p)
{
	char path[PATH_MAX];

	if (!d->opts || !d->opts->state_dir || d->opts->raw)
		return;
	for (size_t i = 0; i < NSTATE_EXTS; i++) {
		project_file(p, d->opts->state_dir, state_exts[i], path, sizeof(path));
		if (unlink(path) < 0 && errno != ENOENT)
			log_warn("state: remove %s", path);
	}
}

/* Name @p's state files by its identity's instance (found, or made and written down). */
static void bind_files(const struct run_opts *o, struct vw_project *p)
{
	/* an identity that cannot be written now is written with its next snapshot */
	if (o && o->state_dir && !o->raw)
		project_bind_files(p, o->state_dir);
}

/*
 * The root directory was removed (or moved away), or a directory is at its
 * path again. The project stays registered, its path watched by name (the
 * chains map). What appears there is adopted only when it is reached without
 * a symlink and belongs to the same owner, and then as a new identity: its
 * history starts afresh (old cursors are answered "fresh") and nothing of
 * the old one is read again.
 */
static void root_changed(struct daemon *d, struct vw_project *p, bool back)
{
	struct vw_project next = { .root_fd = -1 };
	int ret = 0;

	if (back != p->root_lost)
		return;	/* said already */
	if (back && now_ns(CLOCK_MONOTONIC) < p->adopt_after_ns)
		return;	/* the last try did not answer in time: the tick tries again later */
	if (back) {
		ret = project_pin(&next, p->root, &p->owner);
		if (ret == -ETIMEDOUT)
			p->adopt_after_ns = now_ns(CLOCK_MONOTONIC) + VW_RESOLVE_BACKOFF_NS;
		if (!ret && next.owner.uid != p->owner.uid)
			ret = -EPERM;
		if (ret) {	/* said once for what is there (check_roots() looks again) */
			struct stat st;

			if (project_lstat_root_path(p, &st) == 0) {
				p->refused_dev = kernel_dev(st.st_dev);
				p->refused_ino = st.st_ino;
			}
			log_warnx("project %s: a directory is at %s again, but %s: not adopted, the "
				  "project stays lost", p->name, p->root,
				  ret == -ELOOP ? "reached through a symlink" :
				  ret == -EPERM ? "it belongs to another user" :
				  ret == -EREMOTE ? "it is on a user's FUSE file system" : strerror(-ret));
			project_unpin(&next);
			return;
		}
	}
	if (d->deb && back)
		debounce_flush(d->deb, 0, true, on_settled, d);
	else if (d->deb)
		debounce_discard(d->deb, p);	/* its paths name nothing, or something else, now */
	p->root_lost = !back;
	json_out_project(d->out, kind_name(back ? VW_KIND_ROOT_BACK : VW_KIND_ROOT_GONE), p);
	log_warnx("project %s: root %s %s", p->name, p->root,
		  back ? "is back: a new directory, its history starts afresh" : "is gone");
	if (!back && d->loader) {	/* its numbers may be other directories' soon */
		unexclude_project(d, p);
		loader_root_lost(d->loader, p);
	}
	if (!back)
		return;
	/* the old identity: written out, closed, deleted (nothing reads it again) */
	clients_project_ended(d->clients, p, "root_replaced");
	state_forget(d->state, p);
	changes_forget(d->changes, p);
	remove_project_files(d, p);
	if (d->loader) {
		p->gone = true;	/* out under the old identity, in again under the new one */
		loader_remove_project(d->loader, p, &d->projects);
		p->gone = false;
	}
	project_unpin(p);
	p->root_fd = next.root_fd;
	p->st_dev = next.st_dev;
	p->remote = next.remote;
	p->dev = next.dev;
	p->ino = next.ino;
	p->btime_ns = next.btime_ns;
	p->owner = next.owner;
	bind_files(d->opts, p);	/* a new instance: the old one's files are gone */
	if (d->loader)
		loader_add_project(d->loader, p);
	if (d->state)
		load_state(d, p, false);	/* nothing on disk: described anew by a crawl */
	if (d->deb)
		describe_root(d, p);
	if (d->idx && index_crawl(d->idx, p, "") == 0)
		d->crawling = true;
}

struct scan {
	struct daemon *d;
	const struct vw_out *o;
};

static int scan_one(void *ctx, const char *rel, const struct stat *st)
{
	struct scan *s = ctx;
	struct vw_out c = *s->o;

	c.kind = VW_KIND_CREATE;
	c.path = rel;
	c.old_path = NULL;
	c.type = ftype_name(ftype_of_mode(st->st_mode));
	c.type_late = false;
	c.source = "scan";
	project_count((struct vw_project *)c.project, c.kind);
	if (s->d->state)
		state_put_said(s->d->state, c.project, rel, st);
	if (!s->d->out_broken && json_out_change(s->d->out, &c) < 0)
		s->d->out_broken = true;
	return 0;
}

/* --raw: a directory moved in from outside: what it holds, as create lines with "source":"scan". */
static void scan_moved_in(struct daemon *d, const struct vw_out *o)
{
	struct scan s = { .d = d, .o = o };
	bool vanished = false;

	walk_below(o->project, o->path, scan_one, &s, &vanished);
}

static void on_out(void *ctx, const struct vw_out *o)
{
	struct daemon *d = ctx;

	if (o->kind == VW_KIND_ROOT_GONE || o->kind == VW_KIND_ROOT_BACK) {
		root_changed(d, (struct vw_project *)o->project, o->kind == VW_KIND_ROOT_BACK);
		return;
	}
	if (o->ignored) {	/* a new ignored directory: keep what happens inside in the kernel */
		exclude_dir(d, o->project, o->path);
		return;
	}
	if (d->nexcl && o->type && !strcmp(o->type, "dir") && o->ev->op == VW_OP_RENAME)
		moved_exclusion(d, o);
	if (!d->deb) {
		project_count((struct vw_project *)o->project, o->kind);
		/* before the line: what it covers is what is there now */
		daemon_told(d, o->project, o->kind, o->path, o->old_path, NULL, o->type, true);
		if (!d->out_broken && json_out_change(d->out, o) < 0)
			d->out_broken = true;
		if (o->ev->op == VW_OP_RENAME && o->kind == VW_KIND_CREATE &&
		    (o->type_late || (o->type && !strcmp(o->type, "dir"))))
			scan_moved_in(d, o);	/* a type read late may be a later occupant's */
		return;
	}
	if (debounce_add(d->deb, o, now_ns(CLOCK_MONOTONIC)) < 0)
		log_warnx("debounce: out of memory; change to %s dropped", o->path);
	index_update(d, o);
}

static void on_settled(void *ctx, const struct vw_settled *cs)
{
	struct daemon *d = ctx;
	struct vw_settled tagged = *cs;

	if (d->runner && tagged.ev)	/* its own write */
		tagged.by = runner_child_name(d->runner, tagged.ev->tgid, tagged.ev->pgid);
	project_count((struct vw_project *)tagged.project, tagged.kind);
	fanout_settled(d->fanout, &tagged);
}

/* The debounce timerfd fires at the earliest batch deadline (absolute, CLOCK_MONOTONIC). */
static void arm_debounce(struct daemon *d)
{
	uint64_t at = d->deb ? debounce_deadline(d->deb) : 0;
	struct itimerspec its = { .it_value = { at / 1000000000ull, at % 1000000000ull } };

	if (at == 0)
		its.it_value.tv_nsec = 0;	/* disarm */
	timerfd_settime(d->dfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* Test hook: every read of a kernel queue waits a random while first (0: not at all). */
static void hook_read_delay(const struct daemon *d)
{
	if (d->hooks.read_delay_us)
		usleep((useconds_t)(random() % (d->hooks.read_delay_us + 1)));
}

/*
 * Read what the ring holds; @woken: a wake-up caused this read. Returns the
 * records read, or a negative error (logged).
 *
 * The invariant, with rb_flags() (bpf/common.bpf.h): no record stays in the
 * ring unless a read of it is owed, that is a wake-up not handled yet or a
 * planned re-read (d->recheck_ns). A record is sent either as the first of
 * its window, which may wake the reader (the kernel's adaptive rule), or within
 * one window after such a record, without a wake-up. The read a wake-up causes
 * comes after that record was committed, and it plans a re-read one window
 * later, found anything or not: by then the window's last record was sent.
 * When the first record woke no one, a read of the records in front of it was
 * owed, and that read finds it or sees it still being written, and plans a
 * re-read (tests/unit/test_liveness.c). A read that finds records, or that leaves
 * bytes in the ring behind it (a record still being written, or committed
 * after the read passed it), plans a re-read too. A read moves a planned
 * re-read later, never cancels it: a read that finds nothing because an
 * earlier re-read took its records cannot strand the records of the window
 * its wake-up opened (found by a burst of mkdirs: the old rule cancelled the
 * re-read when a read found nothing, and the kernel's adaptive rule then woke
 * no one again, the stranded record sitting in front of every later one).
 * The re-read itself drops the plan when it finds the ring empty. A writer
 * held up (preempted) between choosing its flags and committing its record
 * for longer than the re-read took to come finds its window over when it has
 * committed, and sends a header-only record that forces a wake-up
 * (rb_late_wake()). check_liveness() says so if the reader ever falls behind
 * anyway.
 */
static int consume_ring(struct daemon *d, bool woken)
{
	int n;

	hook_read_delay(d);
	n = ring_buffer__consume(d->rb);
	if (n < 0)
		log_warnx("ringbuf: consume: %s", errstr(n));
	d->recheck_ns = liveness_reread_at(d->recheck_ns, now_ns(CLOCK_MONOTONIC), d->wakeup_ns,
					   woken, n, loader_ring_backlog(d->loader));
	if (d->hooks.no_reread)
		d->recheck_ns = 0;
	return n;
}

/* Read the fanotify queue (the kernel wakes us for every event it queues: level-triggered). */
static int read_fanotify(struct daemon *d)
{
	hook_read_delay(d);
	d->fan_reads++;
	return fan_read(d->fan, on_event, d);
}

static int on_debounce(void *ctx, uint32_t events)
{
	struct daemon *d = ctx;
	uint64_t expirations;

	if (read(d->dfd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		return -errno;
	/* what the hooks already sent belongs in the batches before they are decided */
	if (d->rb)
		consume_ring(d, false);
	if (d->fan && read_fanotify(d) < 0)
		log_warnx("fanotify: read failed");
	debounce_flush(d->deb, now_ns(CLOCK_MONOTONIC), false, on_settled, d);
	if (d->trim_owed) {
		/* a flood's batches and their lookups are freed now: give the heap back rather
		 * than keep the peak for good */
		d->trim_owed = false;
		malloc_trim(0);
	}
	if (d->runner)
		runner_tick(d->runner, now_ns(CLOCK_MONOTONIC));	/* the batch is complete now */
	return flush_out(d);
}

static bool path_existed(void *ctx, const struct vw_project *p, const char *path)
{
	struct daemon *d = ctx;

	return index_has(d->idx, p->id, path);
}

static bool picture_judges(void *ctx, const struct vw_project *p, const char *path)
{
	struct daemon *d = ctx;

	return !d->state || state_judges(d->state, p, path);
}

static bool content_unchanged(void *ctx, const struct vw_project *p, const char *path,
			      enum vw_kind kind);

/* A settled batch: decided by comparing its paths with the file system and the model. */
static size_t settle_batch(void *ctx, const struct vw_project *p, const struct vw_dirty *v,
			   size_t n, uint64_t batch, bool may_defer, settled_fn fn, void *fctx)
{
	struct daemon *d = ctx;

	if (p->root_lost || !root_intact(p)) {
		if (!p->root_lost)
			root_changed(d, (struct vw_project *)p, false);
		return 0;	/* nothing is reported under a root path that names something else */
	}
	if (n >= TRIM_AFTER_PATHS)
		d->trim_owed = true;
	n = reconcile_batch(d->state, p, v, n, batch, may_defer, fn, fctx,
			    d->fps ? content_unchanged : NULL, d);
	if (n == VW_RECONCILE_AGAIN)
		log_debug("settle: %s: the tree moved while the batch was looked at; again", p->name);
	else
		log_debug("settle: %s: batch %llu: %zu lines (may defer %d)", p->name,
			  (unsigned long long)batch, n, may_defer);
	return n;
}

/* --skip-identical: a "modify" whose bytes are what they were is not a change. */
static bool content_unchanged(void *ctx, const struct vw_project *p, const char *path,
			      enum vw_kind kind)
{
	struct daemon *d = ctx;

	if (kind == VW_KIND_MODIFY)
		return fps_unchanged(d->fps, p, path);
	fps_record(d->fps, p, path);	/* created or moved here: the next rewrite compares */
	return false;
}

/*
 * Each entry the crawl finds: compared with what the stream told (rescans:
 * a difference is reported at once), and fingerprinted (--skip-identical)
 * so that even a first rewrite is recognised.
 */
static void crawl_file(void *ctx, const struct vw_project *p, const char *rel, int dirfd,
		       const char *name, bool is_dir)
{
	struct daemon *d = ctx;
	bool rescanning = d->state && state_rescanning(d->state, p);
	/* asked only when the answer is used: a plain crawl looks up nothing */
	bool dirty = (rescanning || (d->fps && !is_dir)) && d->deb &&
		     debounce_dirty(d->deb, p, rel);
	struct stat st;

	if (rescanning) {
		((struct vw_project *)p)->rescan_entries++;
		/* a path with changes pending is described by its own batch */
		if (dirty)
			state_crawled(d->state, p, rel, NULL, !d->deb, on_rescan, d);
		else if (project_statat(p, dirfd, name, &st) == 0)
			state_crawled(d->state, p, rel, &st, !d->deb, on_rescan, d);
	}
	/* changes pending: what is there is not what they are compared with */
	if (!d->fps || is_dir || dirty)
		return;
	fps_record(d->fps, p, rel);
}

/*
 * Keep the picture of what was told current with a line. @st is what the
 * line describes, or NULL: what is there is looked at now (just before the
 * line, so any change it does not cover is a change after it). A name gone
 * again is dropped (a settled line was decided against the tree) or, with
 * @keep_gone, kept as told (a raw line says it exists).
 */
void daemon_told(struct daemon *d, const struct vw_project *p, enum vw_kind kind,
		       const char *path, const char *old_path, const struct stat *st,
		       const char *type, bool keep_gone);

/* The last raw data line's path, when later lines for it were not looked at yet. */
static void told_refresh(struct daemon *d)
{
	const struct vw_project *p = d->told_last.p;

	if (!p || !d->told_last.owed)
		return;
	d->told_last.owed = false;
	d->told_last.p = NULL;	/* so that it is looked at now; the call remembers it again */
	daemon_told(d, p, VW_KIND_MODIFY, d->told_last.path, NULL, NULL, NULL, true);
}

void daemon_told(struct daemon *d, const struct vw_project *p, enum vw_kind kind,
		       const char *path, const char *old_path, const struct stat *st,
		       const char *type, bool keep_gone)
{
	struct stat now;

	if (!d->state || !path)
		return;
	if (keep_gone && !st && !old_path) {
		bool data = kind_is_write(kind);

		if (data && d->told_last.p == p && d->told_last.round == d->round &&
		    !strcmp(d->told_last.path, path)) {
			d->told_last.owed = true;	/* looked at when this read ends */
			return;
		}
		told_refresh(d);
		if (data && strlen(path) < sizeof(d->told_last.path)) {
			d->told_last.p = p;
			d->told_last.round = d->round;
			if (path != d->told_last.path)	/* told_refresh() passes it */
				strcpy(d->told_last.path, path);
		} else {
			d->told_last.p = NULL;
		}
	} else {
		told_refresh(d);
		d->told_last.p = NULL;
	}
	if (old_path)	/* what it holds moved with it */
		state_move_tree(d->state, p, old_path, path);
	if (kind == VW_KIND_DELETE)
		state_drop_tree(d->state, p, path);
	else if (st || project_lstat(p, path, &now) == 0)
		state_put_said(d->state, p, path, st ? st : &now);
	else if (keep_gone)
		state_put_unknown(d->state, p, path, type && !strcmp(type, "dir"));
	else
		state_drop_tree(d->state, p, path);
}

/*
 * A difference found by a rescan. --raw: a line with "source":"rescan" now.
 * Settled: a change handed to the project's batch like the kernel's, so that
 * it is decided with them and told once (its line says "source":"rescan"
 * unless the kernel reported the path too).
 */
static void on_rescan(void *ctx, const struct vw_rescan_change *c)
{
	struct daemon *d = ctx;
	struct vw_project *p = (struct vw_project *)c->project;
	struct vw_out o = { .project = p, .kind = c->kind, .path = c->path,
			    .type = ftype_name(ftype_of_mode(c->mode)), .ev = &vw_no_writer,
			    .source = "rescan" };

	p->rescan_changes++;
	index_update(d, &o);
	if (d->deb) {
		if (debounce_add(d->deb, &o, now_ns(CLOCK_MONOTONIC)) < 0)
			log_warnx("debounce: out of memory; change to %s dropped", o.path);
		return;
	}
	project_count(p, o.kind);
	if (!d->out_broken && json_out_change(d->out, &o) < 0)
		d->out_broken = true;
}

/* A rescan begins, for @reason ("fresh" when the project has nothing to compare with). */
static void announce_rescan(struct daemon *d, struct vw_project *p, const char *reason)
{
	p->rescan_reason = reason;
	p->rescan_entries = p->rescan_changes = 0;
	p->rescan_started_ns = p->rescan_logged_ns = now_ns(CLOCK_MONOTONIC);
	json_out_rescan(d->out, "start", p, p->rescan_fresh);
}

/* Crawl @p again and report what differs from what the stream told. */
static void start_rescan(struct daemon *d, struct vw_project *p, const char *reason)
{
	if (!d->state || !d->idx || p->gone || p->root_lost)
		return;
	state_begin_rescan(d->state, p);
	if (index_crawl(d->idx, p, "") < 0) {
		log_warnx("rescan: %s: out of memory", p->name);
		return;
	}
	d->crawling = true;
	p->rescan_owed = false;
	announce_rescan(d, p, reason);
	log_warnx("rescan: %s: changes were lost (%s); crawling it to report them", p->name,
		  reason);
}

/* Records of @p were lost: rescan it now, or when the running (or a too recent) one is over. */
static void request_rescan(struct daemon *d, struct vw_project *p, const char *reason)
{
	if (p->gone || !d->state)
		return;
	if (state_rescanning(d->state, p) ||
	    now_ns(CLOCK_MONOTONIC) < p->rescan_not_before_ns) {
		/* the crawl may have passed the lost change already: another one is owed */
		p->rescan_owed = true;
		p->rescan_owed_reason = reason;
		return;
	}
	start_rescan(d, p, reason);
}

static void request_rescan_all(struct daemon *d, const char *reason)
{
	for (size_t i = 0; i < d->projects.n; i++)
		request_rescan(d, &d->projects.v[i], reason);
}

/* The crawl of @p is over: what it did not find is gone; a rescan owed waits its turn. */
static void end_rescan(struct daemon *d, struct vw_project *p)
{
	uint64_t now = now_ns(CLOCK_MONOTONIC);
	bool first = state_starting(d->state, p);	/* the start-up crawl: no loss loop yet */

	state_end_rescan(d->state, p, !d->deb, on_rescan, d);
	if (p->rescan_reason) {
		json_out_rescan(d->out, "done", p, false);
		log_info("rescan: %s: done in %llu ms: %llu entries, %llu changes", p->name,
			 (unsigned long long)((now - p->rescan_started_ns) / MS),
			 (unsigned long long)p->rescan_entries,
			 (unsigned long long)p->rescan_changes);
		p->rescans++;
	}
	p->rescan_reason = NULL;
	p->rescan_fresh = false;
	/* records lost again while it ran: back off (1 s doubling to a minute) before the next */
	if (p->rescan_owed && !first) {
		p->rescan_backoff_ns = p->rescan_backoff_ns ? p->rescan_backoff_ns * 2 : 1000 * MS;
		if (p->rescan_backoff_ns > 60000 * MS)
			p->rescan_backoff_ns = 60000 * MS;
		p->rescan_not_before_ns = now + p->rescan_backoff_ns;
		log_warnx("rescan: %s: records were lost again while it ran; the next in %llu ms",
			  p->name, (unsigned long long)(p->rescan_backoff_ns / MS));
	} else {
		p->rescan_backoff_ns = 0;
	}
}

/* After a step of the crawl: progress of long rescans, and the ones that are over. */
static void crawl_progress(struct daemon *d)
{
	uint64_t now = now_ns(CLOCK_MONOTONIC);
	bool drained = false;

	d->crawl_end_ns = 0;
	if (!d->state)
		return;
	for (size_t i = 0; i < d->projects.n; i++) {
		struct vw_project *p = &d->projects.v[i];

		if (p->gone || !state_rescanning(d->state, p))
			continue;
		if (!index_crawling(d->idx, p) && d->deb && state_starting(d->state, p)) {
			/*
			 * A start-up crawl is over. A change made before the crawl got to
			 * its path is judged by what it implies only while the picture
			 * says it cannot judge: its record may still be on its way (a
			 * tracepoint sends it when the system call returns; a writer
			 * may be preempted in between). So the end waits a little, then
			 * what the kernel sent meanwhile is read, then the crawl ends.
			 */
			uint64_t at;

			if (!p->crawl_done_ns)
				p->crawl_done_ns = now;
			at = p->crawl_done_ns + START_GRACE_MS * MS;
			if (now < at) {
				if (!d->crawl_end_ns || at < d->crawl_end_ns)
					d->crawl_end_ns = at;
				continue;
			}
			if (!drained) {
				drained = true;
				if (d->rb)
					consume_ring(d, false);
				if (d->fan)
					read_fanotify(d);
			}
		}
		if (!index_crawling(d->idx, p)) {
			p->crawl_done_ns = 0;
			end_rescan(d, p);
			continue;
		}
		if (p->rescan_reason && now - p->rescan_logged_ns >= 2000 * MS) {
			p->rescan_logged_ns = now;
			log_info("rescan: %s: %llu entries read, %llu changes so far", p->name,
				 (unsigned long long)p->rescan_entries,
				 (unsigned long long)p->rescan_changes);
		}
	}
	flush_out(d);
}

/* Rescans owed whose back-off is over. */
static void owed_rescans(struct daemon *d)
{
	uint64_t now = now_ns(CLOCK_MONOTONIC);

	for (size_t i = 0; d->state && i < d->projects.n; i++) {
		struct vw_project *p = &d->projects.v[i];

		if (p->rescan_owed && !p->gone && now >= p->rescan_not_before_ns &&
		    !state_rescanning(d->state, p))
			start_rescan(d, p, p->rescan_owed_reason);
	}
}

/* While a VCS holds its lock, a checkout is under way: keep its changes in one batch. */
static bool vcs_locked(void *ctx, const struct vw_project *p)
{
	static const char *const locks[] = { ".git/index.lock", ".hg/wlock" };
	struct stat st;

	/* below the pinned root, as every look at a project's files */
	for (size_t i = 0; i < sizeof(locks) / sizeof(locks[0]); i++)
		if (project_lstat(p, locks[i], &st) == 0)
			return true;
	return false;
}

static void on_event(void *ctx, const struct vw_event *ev)
{
	struct daemon *d = ctx;

	log_debug("event: op %u project %u path_len %zu '%.*s' old %u '%.*s' flags %#x", ev->op,
		  ev->project, ev->path_len, (int)ev->path_len, ev->path ? ev->path : "",
		  ev->old_project, (int)ev->old_path_len, ev->old_path ? ev->old_path : "", ev->flags);
	route_event(&d->projects, ev, on_out, d);
}

/* Has the tick work within TICK_MS? */
static bool tick_busy(const struct daemon *d)
{
	/* records the kernel sent and the reader has not taken: the liveness check looks again */
	if (d->dec && decoder_samples(d->dec) < d->live.sent_then)
		return true;
	if (d->activity || state_tick_due(d->state) ||
	    (d->runner && (runner_running(d->runner) || runner_queued(d->runner))))
		return true;
	for (size_t i = 0; i < d->projects.n; i++)
		if (d->projects.v[i].rescan_owed && !d->projects.v[i].gone)
			return true;
	return false;
}

/* Arm the tick for when it is needed next; only a tick due sooner re-arms the timer. */
static void arm_tick(struct daemon *d)
{
	uint64_t now = now_ns(CLOCK_MONOTONIC);
	uint64_t at = now + (tick_busy(d) ? TICK_MS : d->fan ? IDLE_TICK_FAN_MS : IDLE_TICK_MS) * MS;
	struct itimerspec its = { .it_value = { at / 1000000000ull, at % 1000000000ull } };

	if (d->tick_at && d->tick_at <= at)
		return;
	if (timerfd_settime(d->tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
		d->tick_at = at;
}

static int flush_out(struct daemon *d)
{
	changes_flush(d->changes);	/* the change log before the lines it numbers */
	clients_flush(d->clients);
	arm_tick(d);
	if (d->deb)
		arm_debounce(d);
	if (fflush(d->out) == EOF || ferror(d->out))
		d->out_broken = true;
	else	/* what the lines told is out: now the journal may say so */
		state_commit(d->state);
	if (d->out_broken) {
		log_warnx("output: stdout closed; stopping");
		loop_stop(d->loop);
	}
	return 0;
}

/* A read of the ring: @woken by the kernel's wake-up, else a planned re-read. */
static int read_ring(struct daemon *d, bool woken)
{
	int n;

	d->round++;
	d->ring_wakes += woken;
	if (woken && d->hooks.reread_first)	/* the race: a re-read takes what woke us */
		consume_ring(d, false);
	n = consume_ring(d, woken);
	told_refresh(d);
	if (n > 0)	/* records dropped for a full ring are counted on the next tick */
		d->activity = true;
	return flush_out(d);
}

static int on_ringbuf(void *ctx, uint32_t events)
{
	return read_ring(ctx, true);
}

/*
 * Records of @p were lost: it is rescanned, and so is every project that
 * holds it (nested roots): the kernel counts a record against the innermost
 * root only, yet the change was the outer projects' too.
 */
static void rescan_enclosing(struct daemon *d, uint32_t id, const char *reason)
{
	struct vw_project *p = projects_by_id(&d->projects, id);

	if (!p) {	/* not known (or removed since): every project */
		request_rescan_all(d, reason);
		return;
	}
	for (size_t i = 0; i < d->projects.n; i++) {
		struct vw_project *q = &d->projects.v[i];

		if (q == p || (!q->gone && path_below(p->root, q->root)))
			request_rescan(d, q, reason);
	}
}

static void lost_project(void *ctx, uint32_t id, uint64_t lost)
{
	log_debug("ringbuf: project %u lost %llu records", id, (unsigned long long)lost);
	rescan_enclosing(ctx, id, "ringbuf_full");
}

static void orphan_project(void *ctx, uint32_t id)
{
	rescan_enclosing(ctx, id, "no_result");
}

/* Report kernel-side and decode-side losses as overflow lines: never silent. */
static void check_losses(struct daemon *d)
{
	uint64_t st[VW_STAT_MAX], bad = d->dec ? decoder_bad_samples(d->dec) : 0;
	uint64_t orphans = d->dec ? decoder_orphans(d->dec) : 0;

	/* changes the kernel announced and never said the outcome of: look at the disk */
	if (orphans) {
		json_out_overflow(d->out, "no_result", orphans);
		log_warnx("ringbuf: %llu changes got no result from the kernel: rescanning",
			  (unsigned long long)orphans);
		decoder_take_orphans(d->dec, orphan_project, d);
	}

	if (d->fan && fan_overflows(d->fan) > d->fan_lost_seen) {
		json_out_overflow(d->out, "fanotify_queue", fan_overflows(d->fan) - d->fan_lost_seen);
		log_warnx("fanotify: event queue overflowed");
		d->fan_lost_seen = fan_overflows(d->fan);
		request_rescan_all(d, "fanotify_queue");	/* one queue for every project */
	}
	if (d->fan && fan_unresolved(d->fan) > d->fan_unresolved_seen) {
		json_out_overflow(d->out, "unresolved", fan_unresolved(d->fan) - d->fan_unresolved_seen);
		d->fan_unresolved_seen = fan_unresolved(d->fan);
	}
	if (d->loader) {	/* one read of the per-CPU map */
		int ret = loader_stats(d->loader, st);

		if (ret && !d->stats_warned) {
			log_warnx("loader: the kernel counters cannot be read (%s): a full ring "
				  "buffer would go unseen", errstr(ret));
			d->stats_warned = true;
		}
		if (st[VW_STAT_RINGBUF_FULL] > d->lost_seen) {
			json_out_overflow(d->out, "ringbuf_full",
					  st[VW_STAT_RINGBUF_FULL] - d->lost_seen);
			log_warnx("ringbuf: %llu records lost (ring buffer full)",
				  (unsigned long long)(st[VW_STAT_RINGBUF_FULL] - d->lost_seen));
			d->lost_seen = st[VW_STAT_RINGBUF_FULL];
			/* the kernel marked the projects whose records were lost; none: all */
			if (loader_take_lost(d->loader, lost_project, d) == 0)
				request_rescan_all(d, "ringbuf_full");
		}
		if (st[VW_STAT_UNRESOLVED] > d->unresolved_seen) {
			json_out_overflow(d->out, "unresolved",
					  st[VW_STAT_UNRESOLVED] - d->unresolved_seen);
			d->unresolved_seen = st[VW_STAT_UNRESOLVED];
		}
	}
	if (bad > d->bad_seen) {
		json_out_overflow(d->out, "bad_record", bad - d->bad_seen);
		d->bad_seen = bad;
	}
}

/* Is @fd readable now (a wake-up waiting to be handled)? */
static bool fd_readable(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN);
}

/*
 * The reader's liveness (liveness.h), at every tick: every record the kernel
 * had sent by the previous tick has been read by now, or a read of it is owed
 * (a wake-up waiting on the ring's epoll fd, or a planned re-read). fanotify:
 * events were not queued at two ticks in a row with no read between. Even a
 * bug not found yet cannot make the daemon deaf without a word: a stall is
 * told like a loss (an overflow line, reason reader_stalled, and a rescan of
 * every project), counted in status, and the queue is read at once.
 */
static void check_liveness(struct daemon *d)
{
	uint64_t st[VW_STAT_MAX], behind = 0;
	bool stalled = false;
	int queued = 0;

	if (d->rb && loader_stats(d->loader, st) == 0) {
		/*
		 * A read is owed: a re-read planned and not overdue by a tick, or
		 * a wake-up waiting that was not already waiting at the previous
		 * check with no wake-up handled since (the check does not trust
		 * the mechanisms it audits).
		 */
		uint64_t now = now_ns(CLOCK_MONOTONIC);
		bool readable = fd_readable(ring_buffer__epoll_fd(d->rb));
		bool waiting = readable && !(d->live.readable_then &&
					     d->live.wakes_then == d->ring_wakes);
		bool owed = (d->recheck_ns && now < d->recheck_ns + TICK_MS * MS) || waiting;

		d->live.readable_then = readable;
		d->live.wakes_then = d->ring_wakes;
		behind = liveness_ring_check(&d->live, st[VW_STAT_EMITTED], decoder_samples(d->dec),
					     owed);
		stalled = behind > 0;
	} else if (d->fan && ioctl(fan_fd(d->fan), FIONREAD, &queued) == 0) {
		stalled = liveness_queue_check(&d->live, queued > 0 ? (uint64_t)queued : 0,
					       d->fan_reads);
	}
	if (!stalled)
		return;
	json_out_overflow(d->out, "reader_stalled", behind);
	log_warnx("liveness: the kernel queue held records no read was owed for "
		  "(%llu records): reading it, rescanning", (unsigned long long)behind);
	request_rescan_all(d, "reader_stalled");
	if (d->rb)
		consume_ring(d, true);
	else
		read_fanotify(d);
	told_refresh(d);
}

static int on_fanotify(void *ctx, uint32_t events)
{
	struct daemon *d = ctx;
	int ret;

	d->round++;
	ret = read_fanotify(d);
	if (ret < 0)
		log_warnx("fanotify: read: %s", strerror(-ret));
	told_refresh(d);
	check_losses(d);
	return flush_out(d);
}

static int on_timer(void *ctx, uint32_t events)
{
	struct daemon *d = ctx;
	uint64_t expirations;

	if (read(d->tfd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		return -errno;
	d->tick_at = 0;
	d->activity = false;
	if (d->runner)
		runner_tick(d->runner, now_ns(CLOCK_MONOTONIC));	/* timeouts, retries */
	check_roots(d);
	if (d->collect_due_ns && now_ns(CLOCK_MONOTONIC) >= d->collect_due_ns) {
		collect_state_files(d, d->opts);
		d->collect_due_ns = now_ns(CLOCK_MONOTONIC) + COLLECT_EVERY_NS;
	}
	check_liveness(d);
	check_losses(d);
	owed_rescans(d);
	state_tick(d->state, now_ns(CLOCK_MONOTONIC));
	changes_sync(d->changes);
	clients_tick(d->clients, now_ns(CLOCK_MONOTONIC));
	control_tick(d->ctl, now_ns(CLOCK_MONOTONIC));
	daemon_write_metrics(d, false);
	return flush_out(d);
}

static void reload(struct daemon *d);

static int on_signal(void *ctx, uint32_t events)
{
	struct daemon *d = ctx;
	struct signalfd_siginfo si;

	while (read(d->sfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM) {
			log_info("signal %d: draining and stopping", si.ssi_signo);
			loop_stop(d->loop);
		} else if (si.ssi_signo == SIGHUP) {
			reload(d);
		}
	}
	return 0;
}

static int setup_fds(struct daemon *d)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	d->sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (d->sfd < 0)
		return -errno;
	d->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (d->tfd < 0)
		return -errno;
	d->dfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (d->dfd < 0)
		return -errno;
	return 0;
}

/* A project's ignore rules: the defaults, its .gitignore when asked, then extra patterns. */
int daemon_project_ignores(struct vw_project *p, bool defaults, bool gitignore,
			   const char *const *extra, size_t nextra)
{
	char path[PATH_MAX];
	int ret = 0;

	p->ignore = ignore_new();
	if (!p->ignore)
		return -ENOMEM;
	for (size_t i = 0; defaults && vw_default_ignores[i] && !ret; i++)
		ret = ignore_add(p->ignore, vw_default_ignores[i]);
	if (!ret && gitignore) {
		/* below the pinned root: never through a symlink, never into a user's FUSE */
		snprintf(path, sizeof(path), "%s/.gitignore", p->root);
		ret = ignore_add_fd(p->ignore, project_open(p, ".gitignore", O_RDONLY | O_NOFOLLOW |
								     O_NONBLOCK | O_NOCTTY));
		if (ret)
			log_warnx("watch: %s: %s", path, ignore_file_error(ret));
	}
	for (size_t i = 0; i < nextra && !ret; i++)
		ret = ignore_add(p->ignore, extra[i]);
	return ret;
}

static int add_project(struct daemon *d, const char *dir, const char *name, bool defaults,
		       bool gitignore, const char *const *extra, size_t nextra)
{
	char err[PATH_MAX + 256];
	int ret = projects_add(&d->projects, dir, name, err, sizeof(err));

	if (ret) {
		log_warnx("watch: %s", err);
		return ret;
	}
	return daemon_project_ignores(d->projects.last, defaults, gitignore, extra,
			       nextra);
}

/* Projects from the config file, then --watch; the current directory when neither names one. */
static int run_projects(struct daemon *d, const struct run_opts *o, const struct vw_config *cfg)
{
	for (size_t i = 0; cfg && i < cfg->nprojects; i++) {
		const struct vw_config_project *p = &cfg->projects[i];
		int ret = add_project(d, p->root, p->name, p->default_ignores, p->gitignore,
				      (const char *const *)p->ignore, p->nignore);
		struct vw_project *np;

		if (ret)
			return ret;
		np = d->projects.last;
		np->from_config = true;
		np->analyzers = p->analyzers;	/* handed over */
		np->nanalyzers = p->nanalyzers;
		np->readers = p->readers;
		((struct vw_config_project *)p)->readers = NULL;
		((struct vw_config_project *)p)->analyzers = NULL;
		((struct vw_config_project *)p)->nanalyzers = 0;
	}
	for (size_t i = 0; i < o->nwatch; i++) {
		int ret = add_project(d, o->watch[i], NULL, !o->no_default_ignores, o->gitignore,
				      o->ignores, o->nignores);

		if (ret)
			return ret;
	}
	if (d->projects.n)
		return 0;
	log_info("no --watch given: watching the current directory");
	return add_project(d, ".", NULL, !o->no_default_ignores, o->gitignore, o->ignores,
			   o->nignores);
}

/* One daemon per host: an flock on <run_dir>/vfswatch.lock, released by the kernel on a crash. */
static int take_lock(struct daemon *d, const char *run_dir)
{
	char pid[32] = "";
	ssize_t n;

	if (mkdir(run_dir, 0755) < 0 && errno != EEXIST) {
		log_warn("lock: mkdir %s", run_dir);
		return -errno;
	}
	snprintf(d->lock_path, sizeof(d->lock_path), "%s/vfswatch.lock", run_dir);
	d->lock_fd = open(d->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (d->lock_fd < 0) {
		log_warn("lock: open %s", d->lock_path);
		return -errno;
	}
	if (flock(d->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		n = pread(d->lock_fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = 0;
		pid[strcspn(pid, "\n")] = 0;
		log_warnx("another vfswatch is already running (pid %s; lock %s)", *pid ? pid : "?",
			  d->lock_path);
		close(d->lock_fd);
		d->lock_fd = -1;
		d->lock_path[0] = 0;
		return -EBUSY;
	}
	n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(d->lock_fd, 0) < 0 || pwrite(d->lock_fd, pid, n, 0) != n)
		log_warn("lock: write %s", d->lock_path);
	return 0;
}

/* systemd's readiness protocol (Type=notify): one datagram to $NOTIFY_SOCKET. */
static void sd_notify_send(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len;
	int fd;

	if (!path || !*path || strlen(path) >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, strlen(path));
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = 0;	/* abstract namespace */
	len = offsetof(struct sockaddr_un, sun_path) + strlen(path);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&sa, len) < 0)
		log_warn("notify: %s", path);
	close(fd);
}

/* Fill what the command line left unset from the config file. */
static void merge_config(struct run_opts *o, const struct vw_config *cfg)
{
	if (cfg->has_settle && !(o->set & SET_SETTLE))
		o->settle_ms = cfg->settle_ms;
	if (cfg->has_max_delay && !(o->set & SET_MAX_DELAY))
		o->max_delay_ms = cfg->max_delay_ms;
	if (cfg->has_batch_max && !(o->set & SET_BATCH_MAX))
		o->batch_max = cfg->batch_max;
	if (cfg->has_journal_mb)
		o->journal_mb = cfg->journal_mb;
	if (cfg->has_user_projects)
		o->user_projects = cfg->user_projects;
	if (cfg->has_user_reply_mb)
		o->user_reply_mb = cfg->user_reply_mb;
	if (cfg->has_state_keep_days)
		o->state_keep_days = cfg->state_keep_days;
	if (cfg->has_backend && !(o->set & SET_BACKEND))
		backend_parse(cfg->backend, &o->backend);
	if (cfg->has_skip_identical && !(o->set & SET_SKIP))
		o->skip_identical = cfg->skip_identical;
	if (cfg->run_dir && !(o->set & SET_RUN_DIR))
		o->run_dir = cfg->run_dir;
	if (cfg->socket_group)
		o->socket_group = cfg->socket_group;
	if (cfg->metrics_file)
		o->metrics_file = cfg->metrics_file;
	if (cfg->state_dir && !(o->set & SET_STATE_DIR))
		o->state_dir = cfg->state_dir;
	if (cfg->verbose > o->verbose) {
		o->verbose = cfg->verbose;
		log_init(o->verbose);
	}
}

/*
 * VFSWATCH_TEST_HOOKS, for tests that provoke the reader's interleavings: a
 * comma-separated list of reread_first (a wake-up's records are taken by a
 * re-read before the read it causes), no_reread (no re-read is planned: a
 * stand-in for a reader bug, which the liveness check must tell),
 * read_delay_us=N (every read of a kernel queue waits up to N us first, at
 * random) and wakeup_us=N (the kernel's wake-up window). Returns 0, or
 * -EINVAL with the reason logged.
 */
static int parse_test_hooks(struct daemon *d)
{
	const char *env = getenv("VFSWATCH_TEST_HOOKS");
	char buf[256], *tok, *save = NULL;
	uint64_t v;

	d->wakeup_ns = VW_RB_WAKEUP_NS;
	if (!env || !*env)
		return 0;
	if (strlen(env) >= sizeof(buf)) {
		log_warnx("VFSWATCH_TEST_HOOKS: too long");
		return -EINVAL;
	}
	strcpy(buf, env);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (strcmp(tok, "reread_first") == 0)
			d->hooks.reread_first = true;
		else if (strcmp(tok, "no_reread") == 0)
			d->hooks.no_reread = true;
		else if (strncmp(tok, "read_delay_us=", 14) == 0 &&
			 parse_u64(tok + 14, 1, 1000000, &v) == 0)
			d->hooks.read_delay_us = (uint32_t)v;
		else if (strncmp(tok, "wakeup_us=", 10) == 0 &&
			 parse_u64(tok + 10, 1, 10000000, &v) == 0)
			d->wakeup_ns = v * 1000;
		else {
			log_warnx("VFSWATCH_TEST_HOOKS: unknown or bad hook '%s' (reread_first, "
				  "no_reread, read_delay_us=N, wakeup_us=N)", tok);
			return -EINVAL;
		}
	}
	log_warnx("VFSWATCH_TEST_HOOKS=%s: for tests only", env);
	return 0;
}

/* A BPF backend: load, register the projects, consume the ring buffer. */
static int setup_bpf(struct daemon *d, const struct run_opts *o, char *err, size_t errlen)
{
	struct vw_loader_opts lo = {
		.backend = o->backend,
		.pin_dir = o->pin_dir,
		.ringbuf_bytes = o->ringbuf_bytes,
		/*
		 * settled mode: a fifth of the settle time, well inside it, so settled
		 * lines never run ahead of the writes they cover; --raw keeps every write
		 */
		.coalesce_ns = o->raw || o->no_kernel_coalesce ? 0 : o->settle_ms * MS / 5,
		.wakeup_ns = d->wakeup_ns,
	};
	int ret;

	d->loader = loader_new(&lo, err, errlen);
	if (!d->loader)
		return -EINVAL;
	for (size_t i = 0; i < d->projects.n; i++) {
		ret = loader_add_project(d->loader, &d->projects.v[i]);
		if (ret) {
			snprintf(err, errlen, "register %s: %s", d->projects.v[i].root, errstr(ret));
			return ret;
		}
	}
	d->dec = decoder_new(on_event, d);
	if (!d->dec)
		return -ENOMEM;
	d->rb = ring_buffer__new(loader_events_fd(d->loader), decoder_sample, d->dec, NULL);
	if (!d->rb)
		return -errno;
	return loop_add(d->loop, ring_buffer__epoll_fd(d->rb), on_ringbuf, d);
}

static int setup_fanotify(struct daemon *d, char *err, size_t errlen)
{
	d->fan = fan_new(&d->projects, err, errlen);
	if (!d->fan)
		return -EINVAL;
	return loop_add(d->loop, fan_fd(d->fan), on_fanotify, d);
}

/*
 * Pick the backend: a forced one, or auto: fentry, then tracepoint, then
 * fanotify when no BPF set works (or the kernel has no BTF).
 */
static int setup_backend(struct daemon *d, const struct run_opts *o)
{
	char err[8192] = "";
	int ret;

	if (o->backend != VW_BACKEND_FANOTIFY && (o->backend != VW_BACKEND_AUTO || have_btf())) {
		ret = setup_bpf(d, o, err, sizeof(err));
		if (!ret) {
			d->backend = loader_backend(d->loader);
			return 0;
		}
		if (o->backend != VW_BACKEND_AUTO) {
			log_warnx("loader: %s", err);
			return ret;
		}
		log_warnx("loader: %s", err);
		log_warnx("loader: no BPF backend works here; falling back to fanotify");
		ring_buffer__free(d->rb);
		d->rb = NULL;
		decoder_free(d->dec);
		d->dec = NULL;
		loader_free(d->loader);
		d->loader = NULL;
	} else if (o->backend == VW_BACKEND_AUTO) {
		log_warnx("kernel has no BTF (%s): using the fanotify backend", daemon_btf_path());
	}
	ret = setup_fanotify(d, err, sizeof(err));
	if (ret) {
		log_warnx("fanotify: %s", err);
		return ret;
	}
	d->backend = VW_BACKEND_FANOTIFY;
	if (d->deb)	/* it names paths when an event is read, not when it happened */
		debounce_presence(d->deb, false);
	return 0;
}

/* The picture of @p to start from: its snapshot and journal, or nothing (a first start). */
static void load_state(struct daemon *d, struct vw_project *p, bool announce)
{
	int r = state_load(d->state, p);

	p->rescan_reason = NULL;
	if (r == -VW_STATE_EDAMAGED) {
		log_warnx("state: %s: its snapshot is damaged (set aside as *.damaged): what changed "
			  "while the daemon was down cannot be told; a crawl rebuilds it", p->name);
		p->rescan_reason = "state_damaged";
		p->rescan_fresh = true;
	} else if (r < 0) {
		log_warnx("state: %s: cannot read its snapshot (%s); starting afresh", p->name,
			  strerror(-r));
	} else if (r == 1) {
		p->rescan_reason = "start";	/* what changed while the daemon was down */
	}
	if (p->rescan_reason && announce)
		announce_rescan(d, p, p->rescan_reason);
}

#define RUNNING_MARK "vfswatch.running"	/* in the state dir while a daemon runs: gone at a clean stop */

/* Is @name a project's state file: <name>-<instance>.<one of state_exts>[.tmp]? */
static bool project_file_name(const char *name)
{
	const char *ext;
	size_t el;

	if (!project_file_parts(name, NULL, &ext))
		return false;
	el = strlen(ext);
	if (el > 4 && strcmp(ext + el - 4, ".tmp") == 0)
		el -= 4;	/* a write a crash cut short */
	for (size_t i = 0; i < NSTATE_EXTS; i++)
		if (strlen(state_exts[i]) == el && strncmp(ext, state_exts[i], el) == 0)
			return true;
	return false;
}

/* Is @name one of the state files of a project in the table now? */
static bool claimed(const struct daemon *d, const char *dir, const char *name)
{
	char path[PATH_MAX];
	size_t dl = strlen(dir);

	for (size_t i = 0; i < d->projects.n; i++) {
		if (d->projects.v[i].gone)
			continue;
		for (size_t k = 0; k < NSTATE_EXTS; k++) {
			project_file(&d->projects.v[i], dir, state_exts[k], path, sizeof(path));
			if (strncmp(path, dir, dl) == 0 && strcmp(path + dl + 1, name) == 0)
				return true;
		}
	}
	return false;
}

/*
 * The files in the state dir: each made root's only (0600) if it was not, and
 * those of projects nobody watches any more deleted once they are older than
 * state_keep_days (a project dropped from the config, a root gone for good).
 * At start, and once a day.
 */
static void collect_state_files(struct daemon *d, const struct run_opts *o)
{
	uint64_t keep_s = o->state_keep_days * 86400ull;
	time_t now = time(NULL);
	struct dirent *de;
	struct stat st;
	DIR *dir;
	int fd = open(o->state_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return;
	dir = fdopendir(fd);
	while (dir && (de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue;
		if ((st.st_mode & 077) && fchmodat(fd, de->d_name, 0600, 0) == 0)
			log_info("state: %s/%s was readable by others: made root's only",
				 o->state_dir, de->d_name);
		if (!project_file_name(de->d_name) || claimed(d, o->state_dir, de->d_name))
			continue;
		if ((uint64_t)(now - st.st_mtime) >= keep_s && unlinkat(fd, de->d_name, 0) == 0)
			log_info("state: %s/%s: no project has claimed it for %llu days: deleted",
				 o->state_dir, de->d_name,
				 (unsigned long long)o->state_keep_days);
	}
	if (dir)
		closedir(dir);
	else
		close(fd);
}

/*
 * The state dir before anything in it is read: root's only (0700, tightened
 * if it was not), told whether the last daemon stopped cleanly, its files
 * looked after (collect_state_files()).
 */
static void prepare_state_dir(struct daemon *d, const struct run_opts *o)
{
	struct stat st;
	int ret = make_dir_private(o->state_dir);
	int fd = ret ? ret : open(o->state_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0) {	/* tried again when first written */
		log_warnx("state: %s: %s", o->state_dir, strerror(fd == ret ? -ret : errno));
		return;
	}
	if (fstat(fd, &st) == 0 && (st.st_mode & 077) && fchmod(fd, 0700) == 0)
		log_info("state: %s was open to others (mode %04o): made root's only", o->state_dir,
			 st.st_mode & 07777);
	d->unclean = faccessat(fd, RUNNING_MARK, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
	if (d->unclean)
		log_warnx("state: the last daemon did not stop cleanly: change logs start a new "
			  "epoch (a client's cursor from before gets a full listing, never a gap)");
	close(fd);
	for (size_t i = 0; i < d->projects.n; i++)	/* their files claimed before any is collected */
		if (!d->projects.v[i].gone)
			bind_files(o, &d->projects.v[i]);
	collect_state_files(d, o);
	d->collect_due_ns = now_ns(CLOCK_MONOTONIC) + COLLECT_EVERY_NS;
}

/* A clean stop ahead: the next daemon trusts the change logs. */
static void mark_running(struct daemon *d, bool running)
{
	char path[PATH_MAX];
	int fd;

	if (!d->opts || !d->opts->state_dir || d->opts->raw)
		return;
	snprintf(path, sizeof(path), "%s/" RUNNING_MARK, d->opts->state_dir);
	if (!running) {
		unlink(path);
		return;
	}
	if (mkdir(d->opts->state_dir, 0700) < 0 && errno != EEXIST)
		return;
	fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
}

/* Settled mode: the debouncer, and the index it asks whether a path existed before. */
static int setup_settled(struct daemon *d, const struct run_opts *o)
{
	struct vw_debounce_opts dopts = {
		.settle_ns = o->settle_ms * MS,
		.max_delay_ns = o->max_delay_ms * MS,
		.max_hold_ns = 30000 * MS,
		.batch_max = o->batch_max,
		.existed = path_existed,
		.judges = picture_judges,
		.hold = vcs_locked,
		.unchanged = o->skip_identical ? content_unchanged : NULL,
		.reconcile = settle_batch,
		.ctx = d,
	};

	/* the crawl also finds the ignored directories to exclude in the kernel */
	d->idx = index_new();
	if (!d->idx)
		return -ENOMEM;
	for (size_t i = 0; i < d->projects.n; i++)
		if (index_crawl(d->idx, &d->projects.v[i], "") < 0)
			return -ENOMEM;
	d->crawling = true;
	if (!o->raw && o->state_dir)
		prepare_state_dir(d, o);
	/*
	 * The picture of what the stream told, which rescans compare with: kept
	 * on disk when there is a state dir (settled mode), in memory otherwise.
	 */
	d->state = state_new(o->raw ? NULL : o->state_dir);
	if (!d->state)
		return -ENOMEM;
	for (size_t i = 0; i < d->projects.n; i++)
		load_state(d, &d->projects.v[i], false);
	if (o->raw)
		return 0;
	if (o->skip_identical && !(d->fps = fps_new()))
		return -ENOMEM;
	d->deb = debounce_new(&dopts);
	d->runner = runner_new(d->loop, d->out, o->state_dir);
	/* every settled line is numbered and kept for clients (cursors) */
	d->changes = changes_new(o->state_dir, o->journal_mb << 20);
	if (d->changes && d->unclean)
		changes_renew(d->changes);
	d->fanout = d->changes ? fanout_new(d->changes) : NULL;
	if (!d->deb || !d->runner || !d->changes || !d->fanout)
		return -ENOMEM;
	return loop_add(d->loop, d->dfd, on_debounce, d);
}

/* Register a project just added to the table with the backend and the crawl. */
int daemon_project_start(struct daemon *d, struct vw_project *p, char *err, size_t errlen)
{
	int ret = 0;

	/* projects whose tree it shares: their exclusions would hide its changes */
	for (size_t i = 0; d->loader && i < d->projects.n; i++)
		if (trees_overlap(p, &d->projects.v[i]))
			unexclude_project(d, &d->projects.v[i]);
	if (d->loader)
		ret = loader_add_project(d->loader, p);
	else if (d->fan)
		ret = fan_add_project(d->fan, p, err, errlen);
	if (ret) {
		if (!err[0])
			snprintf(err, errlen, "register %s: %s", p->root, errstr(ret));
		return ret;
	}
	if (d->idx && index_crawl(d->idx, p, "") == 0)
		d->crawling = true;
	json_out_project(d->out, "project_added", p);
	bind_files(d->opts, p);
	if (d->state)
		load_state(d, p, true);
	flush_out(d);
	log_info("project %s (%s) added", p->name, p->root);
	return 0;
}

/* Take a project out: what it has pending is flushed first, nothing else is touched. */
int daemon_project_stop(struct daemon *d, struct vw_project *p)
{
	int ret = 0;

	if (d->deb)
		debounce_flush(d->deb, 0, true, on_settled, d);
	if (d->loader)
		unexclude_project(d, p);
	p->gone = true;
	if (d->loader)
		ret = loader_remove_project(d->loader, p, &d->projects);
	json_out_project(d->out, "project_removed", p);
	flush_out(d);
	/* its journal and change log are closed: a project added and removed leaves no descriptor */
	clients_project_ended(d->clients, p, "project_removed");
	state_forget(d->state, p);
	changes_forget(d->changes, p);
	if (d->idx)	/* its known paths: a user's add/remove loop leaves nothing growing */
		index_forget(d->idx, p->id);
	if (p->by_user)	/* a user's project leaves nothing behind (config ones are kept a while) */
		remove_project_files(d, p);
	project_unpin(p);
	if (d->told_last.p == p)
		d->told_last.p = NULL;
	/*
	 * Nothing refers to it now (its batches flushed, subscribers told, picture
	 * and log closed), unless analyzers' jobs may: then its slot stays taken.
	 */
	p->reclaimable = !p->nanalyzers;
	log_info("project %s (%s) removed", p->name, p->root);
	return ret;
}

/*
 * SIGHUP: read the config again and apply the difference in place: new roots
 * are added, config projects no longer listed are removed, ignore rules of the
 * others are replaced. A bad file changes nothing.
 */
static void reload(struct daemon *d)
{
	char err[PATH_MAX + 512] = "", real[PATH_MAX];
	const char *path = d->opts->config;
	struct vw_config *cfg;

	if (!path) {
		log_warnx("reload: no config file to read (started without --config)");
		return;
	}
	cfg = config_load(path, err, sizeof(err));
	if (!cfg) {
		log_warnx("reload: %s; keeping the running configuration", err);
		return;
	}
	for (size_t i = 0; i < d->projects.n; i++) {
		struct vw_project *p = &d->projects.v[i];
		bool listed = false;

		for (size_t j = 0; !p->gone && p->from_config && j < cfg->nprojects; j++)
			listed |= realpath(cfg->projects[j].root, real) && strcmp(real, p->root) == 0;
		if (!p->gone && p->from_config && !listed)
			daemon_project_stop(d, p);
	}
	for (size_t j = 0; j < cfg->nprojects; j++) {
		const struct vw_config_project *c = &cfg->projects[j];
		struct vw_project *p = realpath(c->root, real) ? projects_by_root(&d->projects, real) :
								   NULL;

		err[0] = 0;
		if (p) {	/* kept: its rules may have changed */
			ignore_free(p->ignore);
			daemon_project_ignores(p, c->default_ignores, c->gitignore,
					(const char *const *)c->ignore, c->nignore);
			/* who may read it follows the file */
			for (char **r = p->readers; r && *r; r++)
				free(*r);
			free(p->readers);
			p->readers = c->readers;
			((struct vw_config_project *)c)->readers = NULL;
			/* queued jobs point at the old analyzers: they go with them */
			continue;
		}
		if (add_project(d, c->root, c->name, c->default_ignores, c->gitignore,
				(const char *const *)c->ignore, c->nignore) == 0) {
			p = d->projects.last;
			p->from_config = true;
			p->analyzers = c->analyzers;	/* handed over */
			p->nanalyzers = c->nanalyzers;
			p->readers = c->readers;
			((struct vw_config_project *)c)->readers = NULL;
			((struct vw_config_project *)c)->analyzers = NULL;
			((struct vw_config_project *)c)->nanalyzers = 0;
			if (daemon_project_start(d, p, err, sizeof(err))) {
				log_warnx("reload: %s", err);
				p->gone = true;
			}
		}
	}
	config_free(cfg);
	log_info("reload: %zu projects", projects_live(&d->projects));
}

static int run_setup(struct daemon *d, const struct run_opts *o)
{
	int ret;

	ret = parse_test_hooks(d);
	if (ret)
		return ret;
	d->loop = loop_new();
	if (!d->loop)
		return -ENOMEM;
	ret = setup_fds(d);
	if (!ret)
		ret = loop_add(d->loop, d->sfd, on_signal, d);
	if (!ret)
		ret = loop_add(d->loop, d->tfd, on_timer, d);
	if (!ret)
		ret = setup_settled(d, o);
	if (!ret) {
		char path[PATH_MAX], err[PATH_MAX + 64];

		struct group *gr = o->socket_group ? getgrnam(o->socket_group) : NULL;

		snprintf(path, sizeof(path), "%s/ctl.sock", o->run_dir);
		if (o->socket_group && !gr) {
			log_warnx("control: no group named '%s'", o->socket_group);
			return -EINVAL;
		}
		d->ctl = control_new(path, gr ? (long)gr->gr_gid : -1, d->loop, daemon_ctl_verbs, d, err,
				     sizeof(err));
		if (!d->ctl) {
			log_warnx("control: %s", err);
			ret = -EINVAL;
		}
		snprintf(path, sizeof(path), "%s/client.sock", o->run_dir);
		if (!ret && d->changes &&
		    !(d->clients = clients_new(path, d->loop, &d->projects, d->changes, d->state,
					       &(struct vw_clients_ops){ daemon_user_add, daemon_user_remove, d },
					       err, sizeof(err)))) {
			log_warnx("clients: %s", err);
			ret = -EINVAL;
		}
		if (d->clients)
			clients_set_reply_budget(d->clients, (size_t)o->user_reply_mb << 20);
		if (!ret && d->fanout)
			ret = daemon_consumers(d);
	}
	if (!ret)
		ret = setup_backend(d, o);
	return ret;
}

static void run_teardown(struct daemon *d)
{
	control_free(d->ctl);	/* stop accepting first */
	d->ctl = NULL;
	/* Stop the hooks first, then drain what they already sent. */
	if (d->loader)
		loader_detach(d->loader);
	if (d->rb)
		ring_buffer__consume(d->rb);
	if (d->fan)
		fan_read(d->fan, on_event, d);
	told_refresh(d);
	if (d->deb)
		debounce_flush(d->deb, 0, true, on_settled, d);
	runner_free(d->runner, 2000);	/* running jobs get 2 s; queued ones are dropped */
	d->runner = NULL;
	if (d->rb || d->fan) {
		check_losses(d);
		json_out_stop(d->out, "signal");
	}
	/* the lines first: the snapshot holds only what is out */
	if (fflush(d->out) == 0 && !ferror(d->out) && d->state) {
		int r = state_save(d->state);

		if (r)
			log_warnx("state: save: %s", strerror(-r));
	}
	ring_buffer__free(d->rb);
	fan_free(d->fan);
	debounce_free(d->deb);
	index_free(d->idx);
	fps_free(d->fps);
	free(d->excl);
	clients_free(d->clients);
	changes_free(d->changes);
	mark_running(d, false);	/* everything is written: the next daemon trusts it */
	fanout_free(d->fanout);
	state_free(d->state);
	decoder_free(d->dec);
	loader_free(d->loader);
	loop_free(d->loop);
	if (d->sfd >= 0)
		close(d->sfd);
	if (d->tfd >= 0)
		close(d->tfd);
	if (d->dfd >= 0)
		close(d->dfd);
	projects_free(&d->projects);
	if (d->lock_fd >= 0) {
		unlink(d->lock_path);	/* still holding it: nobody else can have taken it */
		close(d->lock_fd);
	}
}

/*
 * Can the BPF maps still be read and written once @keep is all that is left?
 * Kernels before 5.19 with unprivileged BPF disabled (Debian's default) ask
 * for CAP_BPF on every bpf() command, map lookups on a descriptor already
 * held included; later ones only on creating maps and loading programs.
 * Tried in a child that drops to @keep, since a dropped capability cannot be
 * had back.
 */
static bool maps_work_without_cap_bpf(struct daemon *d, uint64_t keep)
{
	char err[256];
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return false;
	if (pid == 0)
		_exit(caps_keep(keep, err, sizeof(err)) == 0 && loader_map_probe(d->loader) == 0 ? 0
											      : 1);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/*
 * Set up, the daemon keeps what it still uses: reading every file and
 * directory it watches (rescans, types, .gitignore; and open_by_handle_at for
 * fanotify), running analyzers as their owners and stopping them, and for
 * fanotify, marking the filesystems of projects added later. The BPF
 * programs are loaded and attached by now: their maps and ring buffer are
 * used through descriptors, which needs none on current kernels; where the
 * kernel still asks for CAP_BPF there (maps_work_without_cap_bpf()), that is
 * kept too. Everything else goes, from the bounding set too.
 */
static int drop_caps(struct daemon *d)
{
	uint64_t keep = VW_CAP(CAP_DAC_READ_SEARCH) | VW_CAP(CAP_SETUID) | VW_CAP(CAP_SETGID) |
			VW_CAP(CAP_KILL);
	char err[256];
	int ret;

	if (d->backend == VW_BACKEND_FANOTIFY)
		keep |= VW_CAP(CAP_SYS_ADMIN);
	else if (d->loader && geteuid() == 0 && !maps_work_without_cap_bpf(d, keep)) {
		log_info("capabilities: this kernel asks for CAP_BPF on map access: kept");
		keep |= VW_CAP(CAP_BPF);
	}
	ret = caps_keep(keep, err, sizeof(err));
	if (ret)
		log_warnx("capabilities: %s", err);
	return ret;
}

int daemon_run(const struct run_opts *opts)
{
	struct daemon d = { .sfd = -1, .tfd = -1, .dfd = -1, .lock_fd = -1, .out = stdout };
	struct run_opts o = *opts;
	struct vw_config *cfg = NULL;
	char err[PATH_MAX + 512];
	int ret, code = 0;

	if (o.config) {
		cfg = config_load(o.config, err, sizeof(err));
		if (!cfg) {
			log_warnx("config: %s", err);
			return EXIT_USAGE;
		}
		merge_config(&o, cfg);
		if (o.max_delay_ms < o.settle_ms) {
			log_warnx("config: max_delay_ms must not be shorter than settle_ms");
			config_free(cfg);
			return EXIT_USAGE;
		}
	}
	/* cfg stays alive to the end: o's strings may point into it */
	ret = run_projects(&d, &o, cfg);
	if (ret) {
		projects_free(&d.projects);
		config_free(cfg);
		return EXIT_USAGE;
	}
	if (require_root_and_btf(o.backend) || take_lock(&d, o.run_dir)) {
		projects_free(&d.projects);
		config_free(cfg);
		if (d.lock_fd >= 0)
			close(d.lock_fd);
		return EXIT_SETUP;
	}
	ret = run_setup(&d, &o);
	if (ret) {
		if (ret != -EINVAL && ret != -EPERM)
			log_warnx("setup: %s", errstr(ret));
		code = EXIT_SETUP;
		goto out;
	}
	ret = drop_caps(&d);
	if (ret) {
		code = EXIT_SETUP;
		goto out;
	}
	d.opts = &o;
	d.started_ns = now_ns(CLOCK_MONOTONIC);
	mark_running(&d, true);
	/* loading parsed the kernel's BTF (megabytes, freed): give the heap back */
	malloc_trim(0);
	json_out_ready(d.out, backend_name(d.backend), &d.projects, getpid());
	daemon_write_metrics(&d, true);
	for (size_t i = 0; i < d.projects.n; i++)	/* catch-up of what changed while down */
		if (d.projects.v[i].rescan_reason)
			announce_rescan(&d, &d.projects.v[i], d.projects.v[i].rescan_reason);
	flush_out(&d);
	sd_notify_send("READY=1");
	while (!loop_stopped(d.loop)) {
		/* the crawl runs between events: it never delays one for long */
		int64_t wait = d.crawling ? 0 : -1;
		uint64_t now = now_ns(CLOCK_MONOTONIC);

		if (d.recheck_ns && wait < 0)
			wait = d.recheck_ns > now ? (int64_t)(d.recheck_ns - now) : 0;
		if (d.crawl_end_ns) {
			int64_t w = d.crawl_end_ns > now ? (int64_t)(d.crawl_end_ns - now) : 0;

			if (wait < 0 || w < wait)
				wait = w;
		}
		ret = loop_run_once(d.loop, wait);
		if (d.recheck_ns && now_ns(CLOCK_MONOTONIC) >= d.recheck_ns) {
			d.recheck_ns = 0;	/* the re-read plans the next one if it finds any */
			read_ring(&d, false);
		}
		/* lines told on any path reach subscribers now: numbered in the change log first,
		 * so that no client holds a cursor a crash could give out again */
		changes_flush(d.changes);
		clients_flush(d.clients);
		if (d.crawling || (d.crawl_end_ns && now_ns(CLOCK_MONOTONIC) >= d.crawl_end_ns)) {
			if (d.crawling)
				d.crawling = index_crawl_step(d.idx, CRAWL_BUDGET, exclude_dir,
							      crawl_file, &d);
			crawl_progress(&d);
		}
		if (ret) {
			log_warnx("loop: %s", strerror(-ret));
			code = EXIT_SETUP;
			break;
		}
	}
	sd_notify_send("STOPPING=1");
out:
	run_teardown(&d);
	config_free(cfg);
	return code;
}
