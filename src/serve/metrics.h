/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * metrics.h: the daemon's status as Prometheus text (node_exporter's textfile
 * collector), written atomically to the config's "metrics_file". It is made
 * from the same object `vfswatch status` prints, so the two always agree.
 */
#ifndef VW_METRICS_H
#define VW_METRICS_H

#include <stddef.h>
#include <stdio.h>

struct cJSON;

#define VW_METRICS_EVERY_MS 10000

/* The Prometheus text exposition of @status (a `status` reply) into @f. */
int metrics_format(FILE *f, const struct cJSON *status);

/* Write it to @path atomically (a temporary file renamed over it). 0 or -errno. */
int metrics_write(const char *path, const struct cJSON *status);

#endif
