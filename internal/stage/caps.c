// Capabilities and no_new_privs (caps.h).
#define _GNU_SOURCE
#include <errno.h>
#include <linux/capability.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "stage.h"
#include "base.h"
#include "caps.h"

// caps_drop_bounding sets no_new_privs and empties the bounding and the
// ambient sets. The bounding set must go while CAP_SETPCAP is still
// effective.
void caps_drop_bounding(int report_fd) {
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		child_fail(report_fd, "set no_new_privs", errno);
	for (int cap = 0; cap <= 63; cap++) {
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
			if (errno == EINVAL)
				break; // past the kernel's last capability
			child_fail(report_fd, "drop bounding capabilities", errno);
		}
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		child_fail(report_fd, "clear ambient capabilities", errno);
}

// caps_drop_all empties the permitted, effective and inheritable sets.
void caps_drop_all(int report_fd) {
	struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof data);
	if (syscall(SYS_capset, &header, data) < 0)
		child_fail(report_fd, "drop capabilities", errno);
}
