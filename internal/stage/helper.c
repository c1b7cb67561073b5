// The helper stage. It exists so that the clone with a new user namespace
// happens in a small fresh process, never in the embedding program (whose
// page tables a fork would copy, whatever its size). It clones the bind
// sources while it can still see them as root, starts init in every
// namespace, maps its users, places it in its cgroups, kills the jail when
// the supervisor says so (or vanishes), and reports how much CPU the whole
// jail used.
//
// run_helper is the recipe of the parent side: each concern's entry that
// runs on the host (mount, cgroup, user), in the order they must run.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stage.h"
#include "base.h"
#include "wire.h"
#include "cgroup.h"
#include "mount.h"
#include "user.h"
#include "init.h"
#include "helper.h"

// obey carries out the supervisor's control commands and waits for init.
// EOF on control is the supervisor dying: nothing of the jail may outlive it.
static void obey(int pid, int pidfd) {
	struct pollfd p[2] = {{.fd = pidfd, .events = POLLIN}, {.fd = CONTROL_FD, .events = POLLIN}};
	int nfds = 2;
	for (;;) {
		int n = poll(p, (nfds_t)nfds, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || (p[0].revents & POLLIN))
			break;
		if (nfds < 2 || p[1].revents == 0)
			continue;
		unsigned char cmd[2];
		ssize_t r = read(CONTROL_FD, cmd, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 1 && cmd[0] == CONTROL_SIGNAL) {
			do
				r = read(CONTROL_FD, cmd + 1, 1);
			while (r < 0 && errno == EINTR);
			if (r == 1) {
				// init forwards it to the program's process group.
				kill(pid, cmd[1]);
				continue;
			}
		} else if (r == 1 && cmd[0] != CONTROL_KILL) {
			continue;
		}
		kill(pid, SIGKILL);
		nfds = 1; // nothing more to obey; wait for init
	}
	int status;
	struct rusage ru;
	while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
	}
	report_done(ru.ru_utime.tv_sec * 1000000L + ru.ru_utime.tv_usec, ru.ru_stime.tv_sec * 1000000L + ru.ru_stime.tv_usec);
	// The last word: its EOF lets the supervisor close its end now, not
	// after the jail's mounts are undone on the way out (mount_hold_from_parent).
	close(STATUS_FD);
}

// take_spec reads the spec from SPEC_FD and finds the fds that follow the
// caller's extra files; it returns the first fd past them.
static int take_spec(struct spec *s, int *request_fd) {
	size_t len = 0;
	char *raw = read_all(SPEC_FD, &len);
	close(SPEC_FD);
	if (raw == NULL) {
		fail(errno, "helper", "read spec");
		die();
	}
	struct reader rd = {(const uint8_t *)raw, len, 0};
	if (parse_spec(&rd, s) < 0) {
		fail(0, "helper", "read spec: malformed");
		die();
	}
	int nextra = (int)s->exec.nextra;
	*request_fd = (s->flags & SPEC_POOLED) ? HELPER_EXTRA_FD : -1;
	if (s->flags & SPEC_TEMPLATE)
		s->template_fd = HELPER_EXTRA_FD + nextra + (*request_fd >= 0);
	int last_fd = HELPER_EXTRA_FD + nextra + (*request_fd >= 0) + (s->template_fd >= 0);
	if (s->flags & (SPEC_TTY | SPEC_PROXY))
		s->tty_fd = last_fd++;
	for (int fd = HELPER_EXTRA_FD; fd < last_fd; fd++)
		fcntl(fd, F_SETFD, FD_CLOEXEC);
	return last_fd;
}

// place_init maps init's ids and completes its cgroup placement, then lets
// it go on; on failure init is killed and the helper dies.
static void place_init(long pid, const struct spec *s, int moved, int ready_fd) {
	// init was born in the jail's cgroups when the helper moved; the
	// helper goes home.
	int ok = !moved || cgroup_go_home(s) == 0;
	ok = ok && user_map_from_parent((int)pid, s) == 0;
	ok = ok && (moved || cgroup_place_from_parent(pid, s) == 0);
	if (!ok || write(ready_fd, "g", 1) != 1) {
		kill((pid_t)pid, SIGKILL);
		waitpid((pid_t)pid, NULL, 0);
		if (ok)
			fail(errno, "helper: start init", NULL);
		die();
	}
}

// pass_join hands a JoinLater jail's cgroups to init, which builds the jail
// meanwhile and waits for them before it starts anything of the caller's.
static void pass_join(long pid, int sock) {
	int rc = cgroup_pass_from_parent(sock);
	if (rc < 0) {
		kill((pid_t)pid, SIGKILL);
		waitpid((pid_t)pid, NULL, 0);
		die();
	}
	if (rc == 0)
		kill((pid_t)pid, SIGKILL); // obey reaps it and reports done
	close(sock);
}

void run_helper(char **argv) {
	fcntl(STATUS_FD, F_SETFD, FD_CLOEXEC);
	fcntl(CONTROL_FD, F_SETFD, FD_CLOEXEC);
	struct spec s;
	int request_fd;
	int last_fd = take_spec(&s, &request_fd);
	// The network namespace is made in the jail by a child of init
	// (net.c), not here.
	uint64_t flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_PIDFD;
	int cgroup_fd;
	if (cgroup_open_v2(&s, &cgroup_fd) < 0)
		die();
	if (cgroup_fd >= 0)
		flags |= CLONE_INTO_CGROUP;
	if (geteuid() == 0)
		mount_clone_sources_from_parent(&s);
	int moved = cgroup_move_self(&s);
	int ready[2];
	if (pipe2(ready, O_CLOEXEC) < 0) {
		fail(errno, "helper: pipe", NULL);
		die();
	}
	int join[2] = {-1, -1};
	if ((s.flags & SPEC_JOIN_LATER) && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, join) < 0) {
		fail(errno, "helper: socketpair", NULL);
		die();
	}
	int pidfd = -1;
	struct clone_args args = {
		.flags = flags,
		.pidfd = (uint64_t)(uintptr_t)&pidfd,
		.exit_signal = SIGCHLD,
		.cgroup = (uint64_t)(cgroup_fd < 0 ? 0 : cgroup_fd),
	};
	long pid = syscall(SYS_clone3, &args, sizeof args);
	if (pid < 0) {
		fail(errno, "create namespaces", "clone3");
		die();
	}
	if (pid == 0) {
		close(ready[1]);
		if (join[0] >= 0)
			close(join[0]);
		if (cgroup_fd >= 0)
			close(cgroup_fd);
		run_init(&s, argv, ready[0], request_fd, join[1]);
	}
	close(ready[0]);
	if (join[1] >= 0)
		close(join[1]);
	int mounts = mount_hold_from_parent(pid);
	if (cgroup_fd >= 0)
		close(cgroup_fd);
	// Only init needs these.
	for (uint32_t i = 0; i < s.nmounts; i++) {
		if (s.mounts[i].tree_fd >= 0)
			close(s.mounts[i].tree_fd);
	}
	for (int fd = HELPER_EXTRA_FD; fd < last_fd; fd++)
		close(fd);
	place_init(pid, &s, moved, ready[1]);
	if (join[0] >= 0)
		pass_join(pid, join[0]);
	// ready[1] stays open (close-on-exec, and the helper never execs) until
	// the helper exits: init polls it to learn that the helper is alive.
	report_init((int)pid);
	// The program's stdio is init's business now.
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		close(null);
	}
	obey((int)pid, pidfd);
	if (mounts >= 0)
		close(mounts); // the jail's mounts are undone here
	_exit(0);
}
