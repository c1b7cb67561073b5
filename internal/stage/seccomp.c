// The program's seccomp filter (seccomp.h).
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "stage.h"
#include "base.h"
#include "seccomp.h"

void seccomp_load_filter(const struct exec_settings *e, int report_fd) {
	if (e->filter != NULL) {
		struct sock_fprog prog = {(unsigned short)(e->filter_len / sizeof(struct sock_filter)), e->filter};
		if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
			child_fail(report_fd, "load seccomp filter", errno);
	}
}
