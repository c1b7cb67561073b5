// init: PID 1 of the jail. It builds the jail's filesystem, starts the
// program, reaps every orphan, and exits when the program exits: the kernel
// then kills whatever is left in the PID namespace, which is how a
// double-forked daemon dies with the jail. It has an empty environment (the
// helper was started with none), so /proc/1/environ discloses nothing.
//
// run_init is the recipe, in nsjail's containProc shape: a list of the
// concerns' child-side entries in the order they must run.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <poll.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "stage.h"
#include "base.h"
#include "wire.h"
#include "cgroup.h"
#include "ipc.h"
#include "mount.h"
#include "net.h"
#include "pid.h"
#include "proxy.h"
#include "signals.h"
#include "tty.h"
#include "user.h"
#include "execstage.h"
#include "init.h"

// become_init runs in the cloned child: it waits until the helper mapped
// its ids and placed it, then takes the jail's root id (or, unprivileged,
// the jail user's; user.c), keeping the namespace's capabilities without an
// execve.
static void become_init(struct spec *s, char **argv, int ready_fd) {
	char b;
	ssize_t r;
	do
		r = read(ready_fd, &b, 1);
	while (r < 0 && errno == EINTR);
	if (r != 1)
		_exit(1); // the helper failed and says why
	close(CONTROL_FD);
	// Named for ps and the jail's /proc/1/cmdline.
	memset(argv[0], 0, strlen(argv[0]));
	memcpy(argv[0], INIT_ARG0, strlen(INIT_ARG0));
	prctl(PR_SET_NAME, INIT_ARG0, 0, 0, 0);
	if (user_enter_as_init(s) < 0)
		die();
	// After the id change, which resets both: nothing of the jail may
	// outlive the helper, and nobody in the jail may read init's memory or
	// open its /proc/1/exe, the host's binary (CVE-2019-5736).
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		fail(errno, "create namespaces", "prctl");
		die();
	}
	// The helper keeps its end open until it exits: a hang-up now means it
	// died before the death signal was armed.
	struct pollfd p = {.fd = ready_fd, .events = POLLIN};
	if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR)))
		_exit(1);
	close(ready_fd);
}

// set_hostname names the jail's UTS namespace (the helper's clone3 made it).
static int set_hostname(const struct spec *s) {
	if (sethostname(s->hostname, strlen(s->hostname)) < 0)
		return fail(errno, "set hostname", NULL);
	return 0;
}

// run_program starts the program, a cold jail's at once, a pooled jail's
// with its request, and reaps it.
__attribute__((noreturn)) static void run_program(struct spec *s, int request_fd) {
	int stdio[3] = {0, 1, 2};
	int tty = -1;
	if (s->flags & SPEC_TTY) {
		if ((tty = tty_open(s)) < 0)
			die();
		stdio[0] = stdio[1] = stdio[2] = tty;
	}
	int files[3 + MAX_EXTRA];
	int extra[MAX_EXTRA];
	for (uint32_t i = 0; i < s->exec.nextra; i++)
		extra[i] = HELPER_EXTRA_FD + (int)i;
	if (s->flags & SPEC_PREFORK) {
		// The program's process is forked now and waits, as the jail user
		// under seccomp, for the request itself.
		int prog = prefork_program(s, request_fd);
		if (prog < 0)
			die();
		report_simple("started");
		pid_reap(prog);
	}
	if (s->flags & SPEC_POOLED) {
		// The jail is built; the program and its stdio come with the request.
		report_simple("ready");
		int nfiles = 0;
		if (read_request(s, request_fd, files, &nfiles) < 0)
			die();
		memcpy(stdio, files, sizeof stdio);
		memcpy(extra, files + 3, sizeof(int) * (size_t)(nfiles - 3));
	}
	int prog = start_program(s, stdio, extra);
	if (prog < 0)
		die();
	if (tty >= 0)
		close(tty); // the program's alone: its hang-up ends the supervisor's copy
	// Only the program holds the caller's files now, so their EOF is the
	// program's.
	if (s->flags & SPEC_POOLED) {
		for (uint32_t i = 0; i < 3 + s->exec.nextra; i++)
			close(files[i]);
	} else {
		for (uint32_t i = 0; i < s->exec.nextra; i++)
			close(extra[i]);
	}
	report_simple("started");
	pid_reap(prog);
}

// run_init is init from the helper's clone3 to the program's end. The
// network namespace's maker works while the filesystem is built; the
// cgroups of a JoinLater jail are joined before anything of the caller's
// starts, and the cgroup namespace entered only after.
void run_init(struct spec *s, char **argv, int ready_fd, int request_fd, int join_fd) {
	become_init(s, argv, ready_fd);
	signals_init();
	struct net_maker net;
	int new_net = (s->flags & SPEC_NEW_NET) != 0;
	if (new_net && net_start(&net, s) < 0)
		die();
	if (ipc_limit(s) < 0 || user_set_loginuid() < 0 || mount_build_root(s) < 0 || set_hostname(s) < 0)
		die();
	if (new_net && net_join(&net) < 0)
		die();
	if ((s->flags & SPEC_PROXY) && proxy_hand_up_listener(s) < 0)
		die();
	if (join_fd >= 0 && cgroup_join(join_fd) < 0)
		die();
	if (cgroup_new_namespace() < 0)
		die();
	run_program(s, request_fd);
}
