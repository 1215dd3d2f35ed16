// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// record.c: the words the stream uses for kinds and file types, and the record of no writer.
#include <string.h>
#include <sys/stat.h>

#include "core/record.h"

static const char *const kind_names[VW_KINDS] = {
	[VW_KIND_CREATE] = "create",	   [VW_KIND_MODIFY] = "modify",
	[VW_KIND_TRUNCATE] = "truncate",   [VW_KIND_ATTRIB] = "attrib",
	[VW_KIND_DELETE] = "delete",	   [VW_KIND_RENAME] = "rename",
	[VW_KIND_ROOT_GONE] = "root_gone", [VW_KIND_ROOT_BACK] = "root_back",
};

const char *kind_name(enum vw_kind k)
{
	return (unsigned int)k < VW_KINDS ? kind_names[k] : NULL;
}

enum vw_kind kind_parse(const char *word)
{
	for (int k = 0; word && k < VW_KINDS; k++)
		if (kind_names[k] && strcmp(word, kind_names[k]) == 0)
			return (enum vw_kind)k;
	return VW_KIND_NONE;
}

const char *ftype_name(unsigned int ftype)
{
	switch (ftype) {
	case VW_FT_FILE:
		return "file";
	case VW_FT_DIR:
		return "dir";
	case VW_FT_SYMLINK:
		return "symlink";
	case VW_FT_OTHER:
		return "other";
	default:
		return NULL;
	}
}

unsigned int ftype_of_mode(unsigned int mode)
{
	if (S_ISREG(mode))
		return VW_FT_FILE;
	if (S_ISDIR(mode))
		return VW_FT_DIR;
	return S_ISLNK(mode) ? VW_FT_SYMLINK : VW_FT_OTHER;
}

const struct vw_event vw_no_writer = {
	.flags = VW_EVU_NO_PID | VW_EVU_NO_TID | VW_EVU_NO_COMM | VW_EVU_NO_UID | VW_EVU_NO_CGROUP,
};
