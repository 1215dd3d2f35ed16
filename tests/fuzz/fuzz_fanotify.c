// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// fuzz_fanotify.c: fanotify event buffers (lengths, masks, info records, handles, names) read,
// named, paired, rewound, routed and written, through the backend's own read path.
//
// Handles cannot be recorded on one machine and opened on another, so the seeds carry
// placeholders: a file handle of type VW_FUZZ_HANDLE whose one byte is an index into the
// objects this target makes (names[] below). Before each input is fed, every placeholder is
// replaced by the real handle of that object and the fsid by that of the scratch filesystem;
// other handles are left as they are (like those of objects that are gone).
//
// With FUZZ_FAN_RECORD=<dir> set, the target instead runs the scenarios below against a real
// fanotify group and writes what the kernel sent, placeholders put in, as seeds into <dir>.
#define _GNU_SOURCE
#include <sys/fanotify.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <linux/fs.h>
#include "fuzz_route.h"
#include "source/fanotify.h"
#include "store/project.h"

#define VW_FUZZ_HANDLE 0x7677

static const char *const names[] = { "", "a", "b", "a/c", "x", "a/y", "b/z" };
#define NOBJ (sizeof(names) / sizeof(names[0]))

static struct vw_projects projects;
static struct vw_fan *fan;
static char root[128];
static fsid_t fsid;
static struct {
	struct file_handle h;
	unsigned char bytes[MAX_HANDLE_SZ];
} handles[NOBJ];

static void at(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "%s%s%s", root, name[0] ? "/" : "", name);
}

/* The objects of names[], as they are at the start of every scenario; their handles. */
static void make_tree(void)
{
	char p[256];
	int mnt;

	for (size_t i = 0; i < NOBJ; i++) {
		at(p, sizeof(p), names[i]);
		if (i < 4)
			FUZZ_CHECK(mkdir(p, 0755) == 0 || errno == EEXIST);
		else
			fuzz_write(p, (const uint8_t *)"x", 1);
		handles[i].h.handle_bytes = MAX_HANDLE_SZ;
		FUZZ_CHECK(name_to_handle_at(AT_FDCWD, p, &handles[i].h, &mnt, 0) == 0);
	}
}

static void setup(void)
{
	char err[256];
	struct statfs sf;

	snprintf(root, sizeof(root), "%s/proj", fuzz_dir());
	make_tree();
	FUZZ_CHECK(statfs(root, &sf) == 0);
	memcpy(&fsid, &sf.f_fsid, sizeof(fsid));
	FUZZ_CHECK(projects_add(&projects, root, "proj", err, sizeof(err)) == 0);
	fan = fan_new(&projects, err, sizeof(err));
	FUZZ_CHECK(fan);
}

/*
 * Copy the events of @d into @o (at most @cap bytes), each handle of an object of names[]
 * swapped: @to_real, a placeholder for the real handle; else the real one for a placeholder.
 */
static size_t swap_handles(const uint8_t *d, size_t n, uint8_t *o, size_t cap, bool to_real)
{
	size_t len = 0;

	while (n >= FAN_EVENT_METADATA_LEN) {
		struct fanotify_event_metadata md;
		size_t start = len, off, elen;

		memcpy(&md, d, sizeof(md));
		elen = md.event_len;
		if (md.event_len < FAN_EVENT_METADATA_LEN || md.event_len > n ||
		    md.metadata_len < FAN_EVENT_METADATA_LEN || md.metadata_len > md.event_len ||
		    len + md.event_len + 4 * MAX_HANDLE_SZ > cap)
			break;
		memcpy(o + len, d, md.metadata_len);
		len += md.metadata_len;
		for (off = md.metadata_len; off + sizeof(struct fanotify_event_info_fid) +
					    sizeof(struct file_handle) <= md.event_len;) {
			struct fanotify_event_info_fid fid;
			struct file_handle fh;
			size_t hl, fixed = sizeof(fid) + sizeof(fh), was, tail;
			const struct file_handle *put = NULL;
			unsigned char idx = 0;

			memcpy(&fid, d + off, sizeof(fid));
			memcpy(&fh, d + off + sizeof(fid), sizeof(fh));
			hl = fid.hdr.len;
			if (hl < fixed || off + hl > md.event_len || fh.handle_bytes > hl - fixed)
				break;
			if (!to_real && fh.handle_type == VW_FUZZ_HANDLE && fh.handle_bytes >= 1) {
				idx = d[off + fixed] % NOBJ;
				put = &handles[idx].h;
			}
			for (size_t i = 0; to_real && i < NOBJ; i++)
				if (fh.handle_type == handles[i].h.handle_type &&
				    fh.handle_bytes == handles[i].h.handle_bytes &&
				    !memcmp(d + off + fixed, handles[i].bytes, fh.handle_bytes)) {
					static struct {
						struct file_handle h;
						unsigned char b[1];
					} ph = { .h = { .handle_bytes = 1, .handle_type = VW_FUZZ_HANDLE } };

					ph.b[0] = (unsigned char)i;
					put = &ph.h;
				}
			if (!put) {
				memcpy(o + len, d + off, hl);
				len += hl;
				off += hl;
				continue;
			}
			was = len;
			tail = hl - fixed - fh.handle_bytes;	/* the name, if any */
			if (!to_real)
				memcpy(&fid.fsid, &fsid, sizeof(fsid));
			len += sizeof(fid);
			memcpy(o + len, put, sizeof(*put));
			len += sizeof(*put);
			memcpy(o + len, put->f_handle, put->handle_bytes);
			len += put->handle_bytes;
			memcpy(o + len, d + off + fixed + fh.handle_bytes, tail);
			len += tail;
			fid.hdr.len = (uint16_t)(len - was);
			memcpy(o + was, &fid, sizeof(fid));
			off += hl;
		}
		md.event_len = (uint32_t)(len - start);
		md.fd = FAN_NOFD;	/* what a group reporting handles gets; the backend closes others */
		memcpy(o + start, &md, sizeof(md));
		d += elen;
		n -= elen;
	}
	return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	static struct fuzz_route route;
	static uint8_t buf[65536];
	size_t len;
	int p[2];

	if (!fan)
		setup();
	len = swap_handles(d, n, buf, sizeof(buf), false);
	FUZZ_CHECK(pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0);
	FUZZ_CHECK(write(p[1], buf, len) == (ssize_t)len || len == 0);
	close(p[1]);
	fan_use_fd(fan, p[0]);
	fuzz_route_begin(&route, &projects);
	fan_read(fan, fuzz_route_event, &route);
	fuzz_route_end(&route);
	return 0;
}

/* --- recording the seeds ------------------------------------------------------------- */

static void rm_tree(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'/* '%s'/.[!.]*", root, root);
	FUZZ_CHECK(system(cmd) == 0);
}

#define P(name) (at(pa, sizeof(pa), name), pa)
#define Q(name) (at(pb, sizeof(pb), name), pb)

static void scenario(int i)
{
	char pa[256], pb[256];
	int fd;

	switch (i) {
	case 0: fuzz_write(P("new"), (const uint8_t *)"hello", 5); break;
	case 1: fd = open(P("x"), O_WRONLY | O_APPEND); FUZZ_CHECK(write(fd, "y", 1) == 1); close(fd); break;
	case 2: FUZZ_CHECK(rename(P("a/y"), Q("b/y2")) == 0); break;
	case 3: FUZZ_CHECK(rename(P("a"), Q("b/a")) == 0); fuzz_write(P("b/a/c/f"), (const uint8_t *)"1", 1); break;
	case 4: FUZZ_CHECK(syscall(SYS_renameat2, AT_FDCWD, P("x"), AT_FDCWD, Q("b"), RENAME_EXCHANGE) == 0); break;
	case 5: FUZZ_CHECK(unlink(P("b/z")) == 0); FUZZ_CHECK(rmdir(P("a/c")) == 0); break;
	case 6: FUZZ_CHECK(chmod(P("x"), 0600) == 0); FUZZ_CHECK(truncate(P("a/y"), 0) == 0); break;
	case 7: FUZZ_CHECK(link(P("x"), Q("a/x2")) == 0); FUZZ_CHECK(symlink("x", P("s")) == 0); break;
	case 8: FUZZ_CHECK(mkdir(P("a/c/d"), 0755) == 0); FUZZ_CHECK(rename(P("a/c"), Q("c")) == 0);
		fuzz_write(P("c/d/e"), (const uint8_t *)"e", 1); FUZZ_CHECK(rename(P("c"), Q("b/c")) == 0); break;
	case 9: fd = open(P("a/y"), O_WRONLY); FUZZ_CHECK(unlink(P("a/y")) == 0);
		FUZZ_CHECK(write(fd, "z", 1) == 1); close(fd); break;
	case 10: fuzz_write(P("b/\xff\n\"name"), (const uint8_t *)"w", 1); break;
	default: break;
	}
}
#define SCENARIOS 11

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("FUZZ_FAN_RECORD");
	static uint8_t raw[65536], seed[65536];

	if (!dir)
		return 0;
	setup();
	for (int i = 0; i < SCENARIOS; i++) {
		char path[512];
		ssize_t got, len;

		rm_tree();
		make_tree();
		while (read(fan_fd(fan), raw, sizeof(raw)) > 0)
			;	/* what making the tree said */
		scenario(i);
		got = read(fan_fd(fan), raw, sizeof(raw));
		FUZZ_CHECK(got > 0);
		len = (ssize_t)swap_handles(raw, (size_t)got, seed, sizeof(seed), true);
		snprintf(path, sizeof(path), "%s/scenario-%02d", dir, i);
		fuzz_write(path, seed, (size_t)len);
	}
	exit(0);
}
