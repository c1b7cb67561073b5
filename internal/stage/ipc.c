// The jail's SysV IPC limits (ipc.h).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stage.h"
#include "base.h"
#include "user.h"
#include "ipc.h"

// own_ipc_namespace moves init, unprivileged, into a new IPC namespace whose
// limits it may set. The kernel lets only the root of the user namespace
// that owns an IPC namespace write its sysctls, and an unprivileged jail
// has no root: its only mapped id is the program's. So a child makes a user
// namespace below the jail's that maps its root to that same id, and an IPC
// namespace owned by it; init, the owner of the child's user namespace,
// enters that IPC namespace, and is its root's host id, like everything in
// the jail. The program could write these sysctls too, but only through a
// writable /proc/sys, which the jail's is not (mount.c), and it may not
// mount (no capabilities, seccomp).
static int own_ipc_namespace(void) {
	const char *step = "limit ipc";
	int sync[2]; // the child's result: 0 once the namespaces exist, else an errno
	if (pipe2(sync, O_CLOEXEC) < 0)
		return fail(errno, step, "pipe");
	pid_t pid = fork();
	if (pid < 0)
		return fail(errno, step, "fork");
	if (pid == 0) {
		// Dumpable (user_own_ns_as_root); it ends before the jail's
		// program exists.
		int err = user_own_ns_as_root();
		if (err == 0 && unshare(CLONE_NEWIPC) < 0)
			err = errno;
		unsigned char r = (unsigned char)err;
		if (write(sync[1], &r, 1) != 1 || err != 0)
			_exit(1);
		for (;;)
			pause(); // until init has entered the namespace and kills it
	}
	close(sync[1]);
	unsigned char r = EIO;
	ssize_t n;
	while ((n = read(sync[0], &r, 1)) < 0 && errno == EINTR) {
	}
	int rc = 0;
	int pidfd = n == 1 && r == 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
	if (n != 1 || r != 0)
		rc = fail(n == 1 ? r : EIO, step,
		          "create a user namespace in the jail's to own its IPC namespace (does the host limit nested user "
		          "namespaces? see user.max_user_namespaces)");
	else if (pidfd < 0)
		rc = fail(errno, step, "pidfd_open");
	else if (setns(pidfd, CLONE_NEWIPC) < 0)
		rc = fail(errno, step, "enter the namespace");
	if (pidfd >= 0)
		close(pidfd);
	kill(pid, SIGKILL);
	close(sync[0]);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
	}
	return rc;
}

// ipc_limit sets the jail's SysV IPC limits (ipclimits.go) in its IPC
// namespace. /proc is still the host's here; the sysctls it shows are those
// of the writer's IPC namespace.
int ipc_limit(const struct spec *s) {
	if (s->ipc_sysctls == NULL || s->ipc_sysctls[0] == NULL)
		return 0;
	if (!(s->flags & SPEC_PRIVILEGED) && own_ipc_namespace() < 0)
		return -1;
	for (char **p = s->ipc_sysctls; *p != NULL; p++) {
		char path[128];
		const char *eq = strchr(*p, '=');
		if (eq == NULL || strncmp(*p, "kernel/", 7) != 0 || (size_t)(eq - *p) > 64 || strchr(*p, '.') != NULL)
			return fail(EINVAL, "limit ipc", "malformed sysctl %s", *p);
		snprintf(path, sizeof path, "/proc/sys/%.*s", (int)(eq - *p), *p);
		if (write_file(path, eq + 1, 0) < 0)
			return fail(errno, "limit ipc", "write %s", path);
	}
	return 0;
}
