// The spawner: one small process per supervisor that forks a helper for
// each jail, so a jail costs a fork of this process instead of an exec of
// the embedding binary (dynamic linking, page faults of a 12 MB binary,
// glibc's CPU probing: ~1 ms of CPU and ~0.8 ms of latency each).
//
// It reads requests on fd 3, a SOCK_SEQPACKET socket: one message per jail
// carrying, as SCM_RIGHTS, the helper's fds in order (stdin, stdout, stderr,
// spec, status, control, then the caller's extra files). The fork installs
// them as fds 0.. and runs the helper. The spawner holds no jail state and
// exits when the supervisor closes the socket (or dies).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "stage.h"

#define SPAWNER_FD 3
#define HELPER_FDS 6 // stdin, stdout, stderr, spec, status, control
#define MAX_FDS (HELPER_FDS + MAX_EXTRA + 1)

// install puts fds[i] on fd i and closes everything else.
static int install(const int *fds, int n) {
	int moved[MAX_FDS];
	for (int i = 0; i < n; i++) {
		moved[i] = fcntl(fds[i], F_DUPFD, n);
		if (moved[i] < 0)
			return -1;
	}
	for (int i = 0; i < n; i++) {
		if (dup2(moved[i], i) < 0)
			return -1;
	}
	return (int)syscall(SYS_close_range, n, ~0U, 0);
}

void run_spawner(char **argv) {
	fcntl(SPAWNER_FD, F_SETFD, FD_CLOEXEC);
	// Its helpers are reaped by the kernel; each reports its own end on its
	// status pipe.
	signal(SIGCHLD, SIG_IGN);
	for (;;) {
		char byte;
		char oob[CMSG_SPACE(sizeof(int) * MAX_FDS)];
		struct iovec iov = {&byte, 1};
		struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = oob, .msg_controllen = sizeof oob};
		ssize_t r = recvmsg(SPAWNER_FD, &msg, MSG_CMSG_CLOEXEC);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			_exit(0); // the supervisor is gone
		int fds[MAX_FDS];
		int n = received_fds(&msg, fds, MAX_FDS);
		if (n < HELPER_FDS || (msg.msg_flags & MSG_CTRUNC)) {
			for (int i = 0; i < n; i++)
				close(fds[i]);
			continue; // the supervisor never sends this; its status pipe, if any, closes
		}
		pid_t pid = fork();
		if (pid == 0) {
			signal(SIGCHLD, SIG_DFL);
			close(SPAWNER_FD);
			if (install(fds, n) < 0) {
				dprintf(STATUS_FD, "{\"k\":\"error\",\"step\":\"start helper\",\"err\":\"install fds: %s\"}\n", errstr(errno));
				_exit(1);
			}
			// Named for ps: it is a helper now (INIT_ARG0's rule holds).
			memset(argv[0], 0, strlen(argv[0]));
			memcpy(argv[0], HELPER_ARG0, strlen(HELPER_ARG0));
			prctl(PR_SET_NAME, HELPER_ARG0, 0, 0, 0);
			run_helper(argv);
		}
		if (pid < 0)
			dprintf(fds[4], "{\"k\":\"error\",\"step\":\"start helper\",\"err\":\"fork: %s\"}\n", errstr(errno));
		for (int i = 0; i < n; i++)
			close(fds[i]);
	}
}
