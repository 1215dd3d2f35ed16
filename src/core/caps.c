// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
// caps.c: capability sets through capget/capset and the bounding set through prctl.
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

#include "core/caps.h"

static int last_cap(void)
{
	FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
	int last = CAP_LAST_CAP;

	if (f) {
		if (fscanf(f, "%d", &last) != 1 || last < 0 || last > 63)
			last = CAP_LAST_CAP;
		fclose(f);
	}
	return last;
}

int caps_keep(uint64_t keep, char *err, size_t errlen)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];
	int last = last_cap();

	if (geteuid() != 0)
		return 0;
	/* the bounding set first: dropping from it needs CAP_SETPCAP, which goes next */
	for (int cap = 0; cap <= last; cap++)
		if (!(keep & VW_CAP(cap)) && prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1 &&
		    prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
			snprintf(err, errlen, "dropping capability %d from the bounding set: %s", cap,
				 strerror(errno));
			return -errno;
		}
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);	/* none before 4.3 */
	memset(data, 0, sizeof(data));
	data[0].effective = data[0].permitted = (uint32_t)keep;
	data[1].effective = data[1].permitted = (uint32_t)(keep >> 32);
	if (syscall(SYS_capset, &h, data) < 0) {
		snprintf(err, errlen, "capset: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

uint64_t caps_effective(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &h, data) < 0)
		return 0;
	return data[0].effective | (uint64_t)data[1].effective << 32;
}

static const char *const cap_names[] = {
	[CAP_CHOWN] = "cap_chown", [CAP_DAC_OVERRIDE] = "cap_dac_override",
	[CAP_DAC_READ_SEARCH] = "cap_dac_read_search", [CAP_FOWNER] = "cap_fowner",
	[CAP_KILL] = "cap_kill", [CAP_SETGID] = "cap_setgid", [CAP_SETUID] = "cap_setuid",
	[CAP_SETPCAP] = "cap_setpcap", [CAP_NET_ADMIN] = "cap_net_admin",
	[CAP_SYS_PTRACE] = "cap_sys_ptrace", [CAP_SYS_ADMIN] = "cap_sys_admin",
	[CAP_SYS_RESOURCE] = "cap_sys_resource", [CAP_PERFMON] = "cap_perfmon",
	[CAP_BPF] = "cap_bpf",
};

void caps_names(uint64_t mask, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = 0;
	for (int cap = 0; cap < 64 && o < len; cap++) {
		const char *name = (size_t)cap < sizeof(cap_names) / sizeof(cap_names[0]) ?
					   cap_names[cap] : NULL;

		if (!(mask & VW_CAP(cap)))
			continue;
		if (name)
			o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? "," : "", name);
		else
			o += (size_t)snprintf(buf + o, len - o, "%scap_%d", o ? "," : "", cap);
	}
}
