/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* loader.h: open, probe, load, attach and pin the BPF object; fill its maps. */
#ifndef VW_LOADER_H
#define VW_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "source/source.h"
#include "store/project.h"

#define VW_PIN_DIR_DEFAULT "/sys/fs/bpf/vfswatch"

struct vw_loader_opts {
	enum vw_backend backend;	/* AUTO: fentry, then tracepoint */
	const char *pin_dir;		/* NULL: do not pin */
	uint32_t ringbuf_bytes;		/* power of two, >= page size; 0: default */
	uint64_t coalesce_ns;		/* kernel-side window for hot files; 0: off */
	uint64_t wakeup_ns;		/* ring-buffer wake-up window; 0: VW_RB_WAKEUP_NS */
};

struct vw_loader;

/* Route libbpf's messages into log.c and keep the verifier's last words. */
void loader_init_logging(void);

/*
 * Load and attach the chosen (or first working) attach set. On failure
 * returns NULL with errno set and a message for the user in @err.
 */
struct vw_loader *loader_new(const struct vw_loader_opts *o, char *err, size_t errlen);
void loader_free(struct vw_loader *l);	/* detaches, unpins, destroys; NULL is a no-op */
int loader_detach(struct vw_loader *l);

enum vw_backend loader_backend(const struct vw_loader *l);
/* Is the compat build of the programs loaded? @because: the kernel feature that decided. */
bool loader_compat(const struct vw_loader *l, const char **because);
int loader_events_fd(const struct vw_loader *l);
/*
 * Bytes in the ring that the reader has not taken yet: the producer position
 * less the consumer position (a record still being written counts). 0 when
 * the positions could not be mapped.
 */
uint64_t loader_ring_backlog(const struct vw_loader *l);
int loader_add_project(struct vw_loader *l, const struct vw_project *p);
/*
 * Take @p out of the kernel maps; @t holds the projects that stay (p marked
 * gone): entries they share with @p (ancestor chains, filesystems) are kept
 * or rewritten, never deleted, so their events flow on. Returns 0 or -errno.
 */
int loader_remove_project(struct vw_loader *l, const struct vw_project *p,
			  const struct vw_projects *t);
int loader_quiet_add(struct vw_loader *l, uint32_t tgid);
/* Mark the directory (kernel dev, ino) EXCLUDED: nothing below it leaves the kernel. */
/*
 * Keep what happens below the directory (@kdev, @ino) in the kernel: a
 * project ignores it. @igen: its i_generation (FS_IOC_GETVERSION), or NULL:
 * the first walk that meets it records it. Either way the entry holds for that
 * directory only, never for one that reuses its inode number.
 */
int loader_exclude(struct vw_loader *l, uint32_t kdev, uint64_t ino, const uint32_t *igen);
/* The exclusion of (@kdev, @ino) goes (its project shares its tree now, or is removed). */
int loader_unexclude(struct vw_loader *l, uint32_t kdev, uint64_t ino);
/* @p's root is gone: its entry goes too (the number may be another directory's soon). */
int loader_root_lost(struct vw_loader *l, const struct vw_project *p);
/*
 * A query's sync point begins at @now_ns (CLOCK_MONOTONIC): no write to
 * @project (VW_PROJECT_NONE: to any project) from now on is folded into a
 * record sent before it. 0 or -errno.
 */
int loader_sync_mark(struct vw_loader *l, uint32_t project, uint64_t now_ns);
/* Sum the per-CPU stats map into out[VW_STAT_MAX]. Returns 0, or -errno when a read failed. */
int loader_stats(const struct vw_loader *l, uint64_t *out);
/* Can this process use the maps (one key walk)? 0 or -errno (EPERM: a capability is missing). */
int loader_map_probe(const struct vw_loader *l);
/* Projects that lost records since the last call (VW_PROJECT_NONE: not known). Returns how many. */
int loader_take_lost(const struct vw_loader *l, lost_fn fn, void *ctx);

/*
 * Try one attach set on this kernel: load and attach it, then tear it down.
 * Returns 0 when it works, else -errno with the reason in @why. Either way
 * *@compat says which build was tried and @because the feature that decided.
 */
int loader_probe(enum vw_backend b, char *why, size_t len, bool *compat, char *because,
		 size_t because_len);

#endif
