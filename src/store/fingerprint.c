// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// fingerprint.c: content fingerprints (zlib crc32 and size) in an open-addressing table.
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/types.h>
#include <zlib.h>

#include "store/fingerprint.h"
#include "store/project.h"
#include "core/util.h"
#include "vw_events.h"

#define FPS_MIN 1024

struct fp {
	uint64_t key;	/* 0: empty; UINT64_MAX: removed */
	uint32_t crc;
	uint32_t size;
};

struct vw_fps {
	struct fp *t;
	size_t cap, used;
};

struct vw_fps *fps_new(void)
{
	struct vw_fps *f = calloc(1, sizeof(*f));

	if (!f || !(f->t = calloc(FPS_MIN, sizeof(*f->t)))) {
		free(f);
		return NULL;
	}
	f->cap = FPS_MIN;
	return f;
}

void fps_free(struct vw_fps *f)
{
	if (!f)
		return;
	free(f->t);
	free(f);
}

static struct fp *slot(struct vw_fps *f, uint64_t key, bool insert)
{
	struct fp *tomb = NULL;

	for (size_t i = key & (f->cap - 1), n = 0; n < f->cap; i = (i + 1) & (f->cap - 1), n++) {
		struct fp *e = &f->t[i];

		if (e->key == key)
			return e;
		if (e->key == UINT64_MAX && !tomb)
			tomb = e;
		if (e->key == 0)
			return insert ? (tomb ? tomb : e) : NULL;
	}
	return insert ? tomb : NULL;
}

static void grow(struct vw_fps *f)
{
	struct fp *old = f->t;
	size_t oldcap = f->cap;

	f->t = calloc(oldcap * 2, sizeof(*f->t));
	if (!f->t) {
		f->t = old;	/* stays full: new fingerprints are dropped, nothing breaks */
		return;
	}
	f->cap = oldcap * 2;
	f->used = 0;
	for (size_t i = 0; i < oldcap; i++) {
		if (old[i].key && old[i].key != UINT64_MAX) {
			*slot(f, old[i].key, true) = old[i];
			f->used++;
		}
	}
	free(old);
}

/* crc32 and size of a regular file of @p up to VW_FP_MAX_SIZE; false otherwise. */
static bool fingerprint(const struct vw_project *p, const char *rel, uint32_t *crc, uint32_t *size)
{
	static unsigned char buf[64 * 1024];
	struct stat st;
	uLong c = crc32(0L, Z_NULL, 0);
	ssize_t n;
	int fd = project_open(p, rel, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	bool ok;

	if (fd < 0)
		return false;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > VW_FP_MAX_SIZE) {
		close(fd);
		return false;
	}
	*size = 0;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		c = crc32(c, buf, (uInt)n);
		*size += n;
	}
	ok = n == 0 && *size <= VW_FP_MAX_SIZE;
	close(fd);
	*crc = (uint32_t)c;
	return ok;
}

static void put(struct vw_fps *f, uint64_t key, uint32_t crc, uint32_t size)
{
	struct fp *e;

	if ((f->used + 1) * 10 > f->cap * 7)
		grow(f);
	e = slot(f, key, true);
	if (!e)
		return;
	if (e->key != key)
		f->used++;
	e->key = key;
	e->crc = crc;
	e->size = size;
}

bool fps_unchanged(struct vw_fps *f, const struct vw_project *p, const char *rel)
{
	uint64_t key = vw_path_key(p->id, rel);
	struct fp *e = slot(f, key, false);
	uint32_t crc, size;
	bool same;

	if (!fingerprint(p, rel, &crc, &size)) {
		fps_forget(f, p->id, rel);
		return false;
	}
	same = e && e->crc == crc && e->size == size;
	put(f, key, crc, size);
	return same;
}

void fps_record(struct vw_fps *f, const struct vw_project *p, const char *rel)
{
	uint32_t crc, size;

	if (fingerprint(p, rel, &crc, &size))
		put(f, vw_path_key(p->id, rel), crc, size);
}

void fps_forget(struct vw_fps *f, uint32_t project, const char *rel)
{
	struct fp *e = slot(f, vw_path_key(project, rel), false);

	if (e)
		e->key = UINT64_MAX;
}
