/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * fsmonitor.h: `vfswatch git-fsmonitor [--run-dir DIR] 2 TOKEN`, git's
 * core.fsmonitor hook: prints the new token, a NUL, then the NUL-separated
 * paths changed since TOKEN (a directory deleted or renamed as "dir/"), or
 * "/" when it cannot say. A work tree that is no project yet becomes one of
 * the calling user's. Exit 1 (git then looks at everything) when the daemon
 * cannot be asked.
 */
#ifndef VW_FSMONITOR_H
#define VW_FSMONITOR_H

int fsmonitor_main(int argc, char **argv);

#endif
