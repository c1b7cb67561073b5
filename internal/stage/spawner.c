// The spawner: one small process per supervisor that forks a helper for
// each jail, so a jail costs a fork of this process instead of an exec of
// the embedding binary (dynamic linking, page faults of a 12 MB binary,
// glibc's CPU probing: ~1 ms of CPU and ~0.8 ms of latency each).
//
// It reads requests on fd 3, a SOCK_SEQPACKET socket: one message per jail
// carrying, as SCM_RIGHTS, the helper's fds in order (stdin, stdout, stderr,
// spec, status, control, then the caller's extra files). The fork installs
// them as fds 0.. and runs the helper. The spawner holds no jail state and
// exits, once its helpers have, when the supervisor closes the socket (or
// dies). It is exec'd (argv[0] "brig:spawner") or, in a program that asks,
// forked by the constructor (start_early_spawner).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stage.h"
#include "base.h"
#include "helper.h"
#include "spawner.h"

#define HELPER_FDS HELPER_EXTRA_FD // stdin, stdout, stderr, spec, status, control
#define MAX_FDS (HELPER_FDS + MAX_EXTRA + 2) // + the root template and a tty socket (helper.c)

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
		if (r <= 0) {
			// The supervisor is gone or closed it (CloseSpawner): wait for
			// the helpers, so that none is left without a parent.
			while (wait(NULL) >= 0 || errno == EINTR)
				;
			_exit(0);
		}
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
				fail(errno, "start helper", "install fds");
				die(); // on STATUS_FD, if install got as far as placing it
			}
			// Named for ps: it is a helper now (INIT_ARG0's rule holds).
			memset(argv[0], 0, strlen(argv[0]));
			memcpy(argv[0], HELPER_ARG0, strlen(HELPER_ARG0));
			prctl(PR_SET_NAME, HELPER_ARG0, 0, 0, 0);
			run_helper(argv);
		}
		if (pid < 0)
			dprintf(fds[STATUS_FD], "{\"k\":\"error\",\"errno\":%d,\"step\":\"start helper\",\"err\":\"fork: %s\"}\n", errno, errstr(errno));
		for (int i = 0; i < n; i++)
			close(fds[i]);
	}
}

int brig_early_spawner_fd = -1;
int brig_early_spawner_pid = 0;

// start_early_spawner forks the spawner in the constructor, for a program
// that asked for it (brig_spawner_at_start; brig run does): the process is
// still small and has one thread, so the fork is cheap and safe, and the
// program's first jail then forks its helper from it instead of exec'ing one
// (~0.8 ms of that jail's latency, ~1 ms of CPU). The child is what an exec'd
// spawner is: its socket on fd 3, /dev/null as stdio and nothing else open,
// its own session, no supplementary groups under root, an empty environment;
// and the program's arguments and environment are wiped from its memory, as
// init, which a jail sees as its pid 1, is forked from it.
void start_early_spawner(int argc, char **argv, char **envp) {
	// The name goes where the arguments were; the helper's and init's are
	// shorter (stage.h). No room, no early spawner.
	char *end = argv[0];
	for (int i = 0; i < argc && argv[i] == end; i++)
		end += strlen(argv[i]) + 1;
	if ((size_t)(end - argv[0]) < sizeof SPAWNER_ARG0)
		return;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return;
	if (sv[0] <= 2 || sv[1] <= 2) {
		// stdio was closed: the program would take this socket for its
		// stdin or stdout and could hand it to a jail.
		close(sv[0]);
		close(sv[1]);
		return;
	}
	pid_t pid = fork();
	if (pid != 0) {
		close(sv[1]);
		if (pid < 0) {
			close(sv[0]);
			return; // the first jail execs its helper
		}
		brig_early_spawner_fd = sv[0];
		brig_early_spawner_pid = pid;
		return;
	}
	for (int i = 0; i < argc; i++)
		memset(argv[i], 0, strlen(argv[i]));
	for (char **e = envp; e != NULL && *e != NULL; e++)
		memset(*e, 0, strlen(*e));
	memcpy(argv[0], SPAWNER_ARG0, strlen(SPAWNER_ARG0));
	prctl(PR_SET_NAME, SPAWNER_ARG0, 0, 0, 0);
	clearenv();
	int null = open("/dev/null", O_RDWR);
	if (dup2(sv[1], SPAWNER_FD) < 0 || null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
		_exit(1); // the supervisor sees EOF and execs its helpers
	syscall(SYS_close_range, SPAWNER_FD + 1, ~0U, 0);
	setsid();
	if (geteuid() == 0 && (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0))
		_exit(1);
	run_spawner(argv);
}
