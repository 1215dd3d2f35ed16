/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* ignore.h: gitignore-style rules ("dir/", "*.swp", "**", "!negation", anchored "/x"). */
#ifndef VW_IGNORE_H
#define VW_IGNORE_H

#include <stdbool.h>
#include <stddef.h>

struct vw_ignore;

/* The built-in defaults: .git/ node_modules/ __pycache__/ build/ dist/, editor swap and backups. */
extern const char *const vw_default_ignores[];

struct vw_ignore *ignore_new(void);
void ignore_free(struct vw_ignore *ig);	/* NULL is a no-op */

/* Add one pattern line (comments and blank lines are accepted and skipped). Returns 0 or -errno. */
int ignore_add(struct vw_ignore *ig, const char *line);
/*
 * Add every line of a .gitignore-style file; a missing file is not an error.
 * Only a regular file of at most 1 MiB, not reached through a symlink as its
 * last component, is read (without blocking). Returns 0 or -errno.
 */
int ignore_add_file(struct vw_ignore *ig, const char *path);
/* The same for a file opened by the caller (@fd, taken; or -errno of the open). */
int ignore_add_fd(struct vw_ignore *ig, int fd);
/* What ignore_add_file()'s error means, for a message. */
const char *ignore_file_error(int err);
size_t ignore_count(const struct vw_ignore *ig);
/*
 * Do the rules hide nothing but git's own directory (".git/")? Then no path
 * git tracks is ever hidden (git can track files below ".hg/" or ".svn/").
 * NULL: nothing hidden.
 */
bool ignore_only_git(const struct vw_ignore *ig);

/*
 * Is @rel (relative to the root, no leading '/') ignored? @is_dir says whether
 * it is a directory. As in git, a path inside an ignored directory is ignored
 * whatever later rules say about the path itself.
 */
bool ignore_match(const struct vw_ignore *ig, const char *rel, bool is_dir);

/* Does a glob match a whole string? '*' and '?' stop at '/', '**' spans directories. */
bool glob_match(const char *pat, const char *s);
/*
 * Does @rel (a relative path) match any of @pats ("match" lists of analyzers and
 * clients)? A pattern with a '/' is matched against the whole path, one without
 * against the base name. No patterns: everything matches.
 */
bool globs_match(char *const *pats, size_t n, const char *rel);

#endif
