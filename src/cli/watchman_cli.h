/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* watchman_cli.h: Watchman's command line (`watchman …`, `vfswatch watchman …`) over watchman.sock. */
#ifndef VW_WATCHMAN_CLI_H
#define VW_WATCHMAN_CLI_H

/* @argv: the options and the command after the program (or verb) name. The exit code. */
int watchman_cli_main(int argc, char **argv);

#endif
