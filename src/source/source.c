// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// source.c: the sources of vw_events, registered once, and the choice of one at start.
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "source/source.h"

const char *backend_name(enum vw_backend b)
{
	switch (b) {
	case VW_BACKEND_FENTRY:
		return "fentry";
	case VW_BACKEND_TRACEPOINT:
		return "tracepoint";
	case VW_BACKEND_FANOTIFY:
		return "fanotify";
	default:
		return "auto";
	}
}

int backend_parse(const char *s, enum vw_backend *out)
{
	static const enum vw_backend all[] = { VW_BACKEND_AUTO, VW_BACKEND_FENTRY,
					       VW_BACKEND_TRACEPOINT, VW_BACKEND_FANOTIFY };

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		if (strcmp(s, backend_name(all[i])) == 0) {
			*out = all[i];
			return 0;
		}
	}
	return -EINVAL;
}

void source_read_delay(const struct vw_source_opts *o)
{
	if (o->read_delay_us)
		usleep((useconds_t)(random() % (o->read_delay_us + 1)));
}

/*
 * The registry: a backend the user can name, in the order AUTO tries them
 * (fanotify last, and only when no BPF set works or the kernel has no BTF).
 */
static const struct {
	enum vw_backend backend;
	const struct vw_source_ops *ops;
} sources[] = {
	{ VW_BACKEND_FENTRY, &vw_source_bpf },
	{ VW_BACKEND_TRACEPOINT, &vw_source_bpf },
	{ VW_BACKEND_FANOTIFY, &vw_source_fanotify },
};

static const struct vw_source_ops *ops_of(enum vw_backend b)
{
	for (size_t i = 0; i < sizeof(sources) / sizeof(sources[0]); i++)
		if (sources[i].backend == b)
			return sources[i].ops;
	return NULL;
}

struct vw_source *source_start(const struct vw_source_opts *o, bool have_btf,
			       const char *btf_path)
{
	const struct vw_source_ops *bpf = ops_of(VW_BACKEND_FENTRY), *fan;
	struct vw_source_opts so = *o;
	struct vw_source *s;
	char err[8192] = "";

	if (o->backend != VW_BACKEND_FANOTIFY && (o->backend != VW_BACKEND_AUTO || have_btf)) {
		/* AUTO: the BPF source tries fentry, then tracepoint, itself */
		s = bpf->start(o, err, sizeof(err));
		if (s)
			return s;
		log_warnx("loader: %s", err);
		if (o->backend != VW_BACKEND_AUTO)
			return NULL;
		log_warnx("loader: no BPF backend works here; falling back to fanotify");
	} else if (o->backend == VW_BACKEND_AUTO) {
		log_warnx("kernel has no BTF (%s): using the fanotify backend", btf_path);
	}
	fan = ops_of(VW_BACKEND_FANOTIFY);
	so.backend = VW_BACKEND_FANOTIFY;
	err[0] = 0;
	s = fan->start(&so, err, sizeof(err));
	if (!s)
		log_warnx("%s: %s", fan->name, err);
	return s;
}
