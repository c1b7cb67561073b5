// init: PID 1 of the jail. It builds the jail's filesystem, starts the
// program, reaps every orphan, and exits when the program exits: the kernel
// then kills whatever is left in the PID namespace, which is how a
// double-forked daemon dies with the jail. It has an empty environment (the
// helper was started with none), so /proc/1/environ discloses nothing.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stage.h"

// Signals Cmd.Signal may send: init passes them to the program's process
// group, as a terminal's ^C would.
static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

// The network namespace is made by a child of init while init builds the
// filesystem, on the other CPU: creating one is ~0.6 ms of kernel work
// (every per-namespace subsystem, IPv6's above all), which in the helper's
// clone3 lay on the jail's critical path. The child is a process of the jail
// in the jail's user namespace, so the namespace belongs to the jail alone,
// exactly as one made by clone3 would.
//
// The maker shares init's memory, fd table and filesystem context
// (CLONE_VM | CLONE_FILES | CLONE_FS, not a thread: its own signals and
// namespaces): no copy of init's memory is made, faulted and torn down
// again for it (~0.25 ms of CPU a jail). It leaves the socket it brought lo
// up with in the shared fd table; init gets the namespace from that socket
// (SIOCGSKNS) and enters it. Sharing memory, the maker must not touch
// what init uses: it runs on a stack of its own and makes raw system calls
// (libc's wrappers would write init's errno); on architectures without
// raw_syscall here it gets a copy of init's memory instead, as a fork does.
#if defined(__x86_64__)
#define MAKER_SHARES_MEMORY 1
static long raw_syscall(long n, long a, long b, long c) {
	long ret;
	__asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
	return ret;
}
#elif defined(__aarch64__)
#define MAKER_SHARES_MEMORY 1
static long raw_syscall(long n, long a, long b, long c) {
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	__asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
	return x0;
}
#else
#define MAKER_SHARES_MEMORY 0
static long raw_syscall(long n, long a, long b, long c) {
	long r = syscall(n, a, b, c);
	return r < 0 ? -errno : r;
}
#endif

#define MAKER_STACK (64u << 10)

struct net_maker {
	int result[2]; // one byte from the maker: 0 once lo is up, else an errno
	int sock;      // the maker's socket in the new namespace (shared fd table)
	int pidfd;     // readable once the maker has exited
	int silent;    // tests (brig_test_silent_maker): end without the result byte
};

// The maker's pid, for reap: its memory is init's, not the program's.
static pid_t net_maker_pid = -1;

static int net_maker_main(void *arg) {
	struct net_maker *m = arg;
	unsigned char r = 0;
	long rc = raw_syscall(SYS_unshare, CLONE_NEWNET, 0, 0);
	long fd = rc < 0 ? rc : raw_syscall(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = (unsigned char)-fd;
	} else {
		struct ifreq ifr;
		memset(&ifr, 0, sizeof ifr);
		memcpy(ifr.ifr_name, "lo", 3);
		rc = raw_syscall(SYS_ioctl, fd, SIOCGIFFLAGS, (long)&ifr);
		if (rc == 0) {
			ifr.ifr_flags |= IFF_UP;
			rc = raw_syscall(SYS_ioctl, fd, SIOCSIFFLAGS, (long)&ifr);
		}
		if (rc < 0)
			r = (unsigned char)-rc;
		m->sock = (int)fd; // read by init only after the result byte
	}
	if (m->silent)
		raw_syscall(SYS_exit, 0, 0, 0);
	raw_syscall(SYS_write, m->result[1], (long)&r, 1);
	raw_syscall(SYS_exit, 0, 0, 0);
	return 0;
}

// brig_test_silent_maker is defined only in test binaries (package
// internal/testenv/silentmaker): a jail whose hostname it accepts gets a
// first network maker that ends without its result byte, so that the
// replacement in init_main is exercised. No production binary defines it,
// and the weak reference is then NULL: the hook is in no message.
int brig_test_silent_maker(const char *hostname) __attribute__((weak));

static int start_net_maker(struct net_maker *m, int silent) {
	m->sock = -1;
	m->silent = silent;
	if (pipe2(m->result, O_CLOEXEC) < 0)
		return fail(errno, "create network namespace", "pipe");
	// A guard page below the stack: an overflow faults instead of writing
	// over init's memory. Left mapped when the maker is gone (64 KiB).
	size_t guard = (size_t)sysconf(_SC_PAGESIZE), len = guard + MAKER_STACK;
	char *stack = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack == MAP_FAILED || mprotect(stack, guard, PROT_NONE) < 0)
		return fail(errno, "create network namespace", "stack");
	int flags = CLONE_FILES | CLONE_FS | CLONE_PIDFD | SIGCHLD | (MAKER_SHARES_MEMORY ? CLONE_VM : 0);
	pid_t pid = clone(net_maker_main, stack + len, flags, m, &m->pidfd);
	if (pid < 0)
		return fail(errno, "create network namespace", "clone");
	net_maker_pid = pid;
	return 0;
}

// maker_died reports a maker that exited without its result byte, with how
// it ended (its pidfd, WNOWAIT) and what init saw, then ends and reaps it:
// reap() must not count its rusage (init's memory) as the program's, and
// a new maker may take its place.
static int maker_died(struct net_maker *m, int poll_err, short result_ev, short pidfd_ev, ssize_t n, int read_err) {
	siginfo_t si;
	memset(&si, 0, sizeof si);
	char how[96] = "still running";
	if (waitid((idtype_t)P_PIDFD, (id_t)m->pidfd, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
		snprintf(how, sizeof how, "waitid: %s", errstr(errno));
	else if (si.si_pid != 0 && si.si_code == CLD_EXITED)
		snprintf(how, sizeof how, "exited with status %d", si.si_status);
	else if (si.si_pid != 0)
		snprintf(how, sizeof how, "killed by signal %d (code %d)", si.si_status, si.si_code);
	syscall(SYS_pidfd_send_signal, m->pidfd, SIGKILL, NULL, 0);
	while (waitid((idtype_t)P_PIDFD, (id_t)m->pidfd, &si, WEXITED) < 0 && errno == EINTR) {
	}
	return fail(EIO, "create network namespace",
	            "the maker ended without a word: %s; poll %s, result events %#x, pidfd events %#x, read %zd (%s)", how,
	            poll_err ? errstr(poll_err) : "ok", (unsigned)result_ev, (unsigned)pidfd_ev, n,
	            read_err ? errstr(read_err) : "-");
}

// join_net_maker enters the maker's network namespace. It returns 0 once
// in, 1 (with `failed` set) when the maker ended without its result byte,
// -1 on any other failure; the maker's fds are closed in every case.
static int join_net_maker(struct net_maker *m) {
	// The result pipe's write end is init's too (one fd table): a maker
	// that died without a word shows as its pidfd turning readable.
	struct pollfd fds[2] = {{.fd = m->result[0], .events = POLLIN}, {.fd = m->pidfd, .events = POLLIN}};
	int polled;
	while ((polled = poll(fds, 2, -1)) < 0 && errno == EINTR) {
	}
	int poll_err = polled < 0 ? errno : 0;
	unsigned char r = EIO;
	ssize_t n = -1;
	int read_err = 0;
	if (fds[0].revents & POLLIN) {
		n = read(m->result[0], &r, 1);
		read_err = n < 0 ? errno : 0;
	}
	int rc = 0, ns = -1;
	if (n != 1)
		rc = maker_died(m, poll_err, fds[0].revents, fds[1].revents, n, read_err) < 0 ? 1 : 0;
	else if (r != 0)
		rc = fail(r, "create network namespace", NULL);
	else if ((ns = ioctl(m->sock, SIOCGSKNS)) < 0)
		rc = fail(errno, "create network namespace", "get the namespace of the maker's socket");
	else if (setns(ns, CLONE_NEWNET) < 0)
		rc = fail(errno, "create network namespace", "setns");
	if (ns >= 0)
		close(ns);
	if (m->sock >= 0)
		close(m->sock);
	close(m->result[0]);
	close(m->result[1]);
	close(m->pidfd);
	return rc;
}

// join_cgroups receives from the helper the jail's cgroup v1 "tasks" files
// (helper.c's pass_cgroups) and moves init into each by writing "0": init
// is single-threaded, so moving the thread moves the process, and a thread
// moving itself takes no global lock. Everything init starts from here on
// is born inside.
static int join_cgroups(int sock) {
	unsigned char count = 0;
	char oob[CMSG_SPACE(sizeof(int) * MAX_JOIN)];
	struct iovec iov = {&count, 1};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = oob, .msg_controllen = sizeof oob};
	ssize_t r;
	do
		r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (r < 0 && errno == EINTR);
	if (r != 1)
		return fail(r < 0 ? errno : EIO, "join cgroup", "receive the cgroups");
	int fds[MAX_JOIN];
	int n = received_fds(&msg, fds, MAX_JOIN);
	int rc = 0;
	if ((msg.msg_flags & MSG_CTRUNC) || n == 0 || n != count)
		rc = fail(0, "join cgroup", "received %d cgroups, expected %d", n, count);
	for (int i = 0; i < n; i++) {
		if (rc == 0 && write(fds[i], "0", 1) != 1)
			rc = fail(errno, "join cgroup", "move into cgroup %d of %d", i + 1, n);
		close(fds[i]);
	}
	close(sock);
	return rc;
}

// own_ipc_namespace moves init, unprivileged, into a new IPC namespace whose
// limits it may set. The kernel lets only the root of the user namespace
// that owns an IPC namespace write its sysctls, and an unprivileged jail
// has no root: its only mapped id is the program's. So a child makes a user
// namespace below the jail's that maps its root to that same id, and an IPC
// namespace owned by it; init, the owner of the child's user namespace,
// enters that IPC namespace, and is its root's host id, like everything in
// the jail. The program could write these sysctls too, but only through a
// writable /proc/sys, which the jail's is not (mounts.c), and it may not
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
		char map[32];
		snprintf(map, sizeof map, "0 %d 1\n", JAIL_UID);
		// Dumpable, so that its /proc/self files are its own to write
		// (init is not: helper.c's become_init); it ends before the jail's
		// program exists.
		int err = 0;
		if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0 || unshare(CLONE_NEWUSER) < 0 || write_file("/proc/self/setgroups", "deny", 0) < 0 ||
		    write_file("/proc/self/uid_map", map, 0) < 0)
			err = errno;
		snprintf(map, sizeof map, "0 %d 1\n", JAIL_GID);
		if (err == 0 && (write_file("/proc/self/gid_map", map, 0) < 0 || unshare(CLONE_NEWIPC) < 0))
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

// limit_ipc sets the jail's SysV IPC limits (ipclimits.go) in its IPC
// namespace. /proc is still the host's here; the sysctls it shows are those
// of the writer's IPC namespace.
static int limit_ipc(const struct spec *s) {
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

// set_loginuid gives the jail the audit login uid of its user before
// anything of the caller's runs; every process of the jail inherits it. A
// task whose login uid is unset may set it once without privilege, so a
// jail that inherited an unset one could otherwise claim any. Once set,
// changing it needs CAP_AUDIT_CONTROL in the host's user namespace, which
// nothing in a jail has: when the host had set it already, the jail keeps
// that one (shown as unmapped) and cannot change it either.
static int set_loginuid(void) {
	char uid[16];
	snprintf(uid, sizeof uid, "%d", JAIL_UID);
	// /proc/self is init's own to write only while it is dumpable; nothing
	// of the caller's runs in the jail yet to make use of that.
	if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
		return fail(errno, "set loginuid", "prctl");
	int rc = write_file("/proc/self/loginuid", uid, 0), err = errno;
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return fail(errno, "set loginuid", "prctl");
	if (rc < 0 && err != EPERM && err != ENOENT)
		return fail(err, "set loginuid", NULL);
	return 0;
}

// read_request waits for the program of a pooled jail: an 8-byte length
// carrying stdio and the extra files (SCM_RIGHTS), then the program, its
// arguments and environment (pool.go's sendRequest).
int read_request(struct spec *s, int sock, int *files, int *nfiles) {
	const char *step = "read request";
	uint8_t hdr[8];
	char oob[CMSG_SPACE(sizeof(int) * (3 + MAX_EXTRA))];
	struct iovec iov = {hdr, sizeof hdr};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = oob, .msg_controllen = sizeof oob};
	ssize_t n;
	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return fail(errno, step, "recvmsg");
	if (n == 0)
		return fail(0, step, "the supervisor closed the jail");
	*nfiles = received_fds(&msg, files, 3 + MAX_EXTRA);
	if (msg.msg_flags & MSG_CTRUNC)
		return fail(0, step, "request carries too many files");
	if (*nfiles < 3)
		return fail(0, step, "request carries %d files, want at least 3", *nfiles);
	if (read_full(sock, hdr + n, sizeof hdr - (size_t)n) < 0)
		return fail(errno, step, "read");
	uint64_t size;
	memcpy(&size, hdr, sizeof size);
	if (size > MAX_REQUEST)
		return fail(0, step, "request of %llu bytes", (unsigned long long)size);
	uint8_t *body = malloc(size ? size : 1);
	if (body == NULL || read_full(sock, body, size) < 0)
		return fail(errno, step, "read");
	struct reader r = {body, size, 0};
	s->path = get_str(&r);
	s->args = get_strs(&r);
	s->env = get_strs(&r);
	if (r.bad || r.n != 0)
		return fail(0, step, "malformed request");
	s->exec.nextra = (uint32_t)(*nfiles - 3);
	close(sock);
	return 0;
}

// open_tty gives the program a terminal of the jail's own devpts (Cmd.TTY):
// init, in the jail's root, opens its ptmx, sets the window size the
// supervisor sent on the tty socket, and sends the master back on it; the
// slave becomes the program's stdin, stdout and stderr, and the exec stage
// makes it the controlling terminal. The caller's terminal never enters
// the jail: the supervisor copies between it and the master. Returns the
// slave's fd, or -1 with `failed` set.
static int open_tty(const struct spec *s) {
	const char *step = "open tty";
	struct winsize ws;
	memset(&ws, 0, sizeof ws);
	uint16_t size[2]; // rows, cols
	if (read_full(s->tty_fd, size, sizeof size) < 0)
		return fail(errno, step, "read the window size");
	ws.ws_row = size[0];
	ws.ws_col = size[1];
	int master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		return fail(errno, step, "open the jail's /dev/pts/ptmx");
	int unlock = 0, slave = -1;
	if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
		fail(errno, step, "unlock");
	else if (ioctl(master, TIOCSWINSZ, &ws) < 0)
		fail(errno, step, "set the window size");
	else if ((slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0)
		fail(errno, step, "open the slave");
	if (slave >= 0) {
		char byte = 0, oob[CMSG_SPACE(sizeof(int))];
		memset(oob, 0, sizeof oob);
		struct iovec iov = {&byte, 1};
		struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = oob, .msg_controllen = sizeof oob};
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &master, sizeof(int));
		ssize_t n;
		while ((n = sendmsg(s->tty_fd, &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
		}
		if (n != 1) {
			fail(errno, step, "send the master to the supervisor");
			close(slave);
			slave = -1;
		}
	}
	close(master);
	close(s->tty_fd);
	return slave;
}

// end_the_rest kills what the program left running and reaps it. The
// kernel would kill it too when init exits, but reaps it with SIGCHLD
// ignored, which adds nothing to init's rusage: reaped here, its CPU time
// is in what the helper's wait4 reports for the jail.
static void end_the_rest(void) {
	// No child, nothing left: every process of the namespace descends
	// from init, and the orphans are its children.
	if (waitpid(-1, NULL, WNOHANG | __WALL) < 0 && errno == ECHILD)
		return;
	kill(-1, SIGKILL);
	for (;;) {
		pid_t pid = wait4(-1, NULL, __WALL, NULL);
		if (pid < 0 && errno != EINTR)
			return; // ECHILD: nothing is left
	}
}

__attribute__((noreturn)) static void reap(int prog) {
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	for (size_t i = 0; i < sizeof forwarded / sizeof *forwarded; i++)
		sigaddset(&set, forwarded[i]);
	long maxrss = 0;
	for (;;) {
		int sig = sigwaitinfo(&set, NULL);
		if (sig < 0)
			continue;
		if (sig != SIGCHLD) {
			kill(-prog, sig);
			continue;
		}
		for (;;) {
			int status;
			struct rusage ru;
			pid_t pid = wait4(-1, &status, WNOHANG, &ru);
			if (pid < 0 && errno == EINTR)
				continue;
			if (pid < 0) {
				report_error("reap", errno, errstr(errno));
				_exit(1);
			}
			if (pid == 0)
				break;
			if (ru.ru_maxrss > maxrss && pid != net_maker_pid)
				maxrss = ru.ru_maxrss;
			if (pid != prog)
				continue;
			if (WIFSIGNALED(status))
				report_exit(-1, WTERMSIG(status), maxrss);
			else
				report_exit(WEXITSTATUS(status), 0, maxrss);
			end_the_rest();
			_exit(0);
		}
	}
}

void run_init(struct spec *s, int request_fd, int join_fd) {
	// The forwarded signals and SIGCHLD are taken with sigwaitinfo; the
	// exec stage unblocks them for the program. A program that shares
	// init's uid (unprivileged) may signal it: nothing else may stop it.
	// Blocked from the start, so that the SIGCHLD of the network
	// namespace's maker stays pending and reap collects it.
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	for (size_t i = 0; i < sizeof forwarded / sizeof *forwarded; i++)
		sigaddset(&set, forwarded[i]);
	sigprocmask(SIG_BLOCK, &set, NULL);
	for (int sig = 1; sig < 32; sig++) {
		if (sig != SIGKILL && sig != SIGSTOP && sig != SIGCHLD && !sigismember(&set, sig) && sig != SIGSEGV &&
		    sig != SIGBUS && sig != SIGFPE && sig != SIGILL)
			signal(sig, SIG_IGN);
	}
	struct net_maker maker, *net = NULL;
	if (s->flags & SPEC_NEW_NET) {
		if (start_net_maker(&maker, brig_test_silent_maker && brig_test_silent_maker(s->hostname)) < 0)
			die();
		net = &maker;
	}
	if (limit_ipc(s) < 0 || set_loginuid() < 0 || build_root(s) < 0)
		die();
	if (sethostname(s->hostname, strlen(s->hostname)) < 0) {
		fail(errno, "set hostname", NULL);
		die();
	}
	if (net != NULL) {
		int rc = join_net_maker(net);
		if (rc > 0) {
			// A maker that ended without a word (once in ~100,000 jails,
			// cause not found): the supervisor logs how it ended, and a
			// new maker makes the namespace; a second such end fails the
			// jail.
			report_warning(failed.step, failed.err);
			rc = start_net_maker(net, 0) < 0 ? -1 : join_net_maker(net);
		}
		if (rc != 0)
			die();
	}
	if ((s->flags & SPEC_PROXY) && hand_up_proxy_listener(s) < 0)
		die();
	if (join_fd >= 0 && join_cgroups(join_fd) < 0)
		die();
	// Entered only now, after init sits in the jail's cgroups, so the
	// program sees its own cgroup as the root.
	if (unshare(CLONE_NEWCGROUP) < 0) {
		fail(errno, "create cgroup namespace", NULL);
		die();
	}
	int stdio[3] = {0, 1, 2};
	int tty = -1;
	if (s->flags & SPEC_TTY) {
		if ((tty = open_tty(s)) < 0)
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
		reap(prog);
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
	reap(prog);
}
