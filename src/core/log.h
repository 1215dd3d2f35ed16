/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* log.h: diagnostics on stderr, never on the JSON stream (OpenBSD's log_warn/log_warnx set). */
#ifndef VW_LOG_H
#define VW_LOG_H

#define VW_PRINTF(a, b) __attribute__((format(printf, a, b)))

void log_init(int verbosity);
int log_verbosity(void);
void log_warn(const char *fmt, ...) VW_PRINTF(1, 2);	/* appends strerror(errno) */
void log_warnx(const char *fmt, ...) VW_PRINTF(1, 2);
void log_info(const char *fmt, ...) VW_PRINTF(1, 2);
void log_debug(const char *fmt, ...) VW_PRINTF(1, 2);
void fatal(const char *fmt, ...) VW_PRINTF(1, 2) __attribute__((noreturn));
void fatalx(const char *fmt, ...) VW_PRINTF(1, 2) __attribute__((noreturn));

#endif
