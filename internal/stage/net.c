// The jail's network namespace (net.h) is made by a child of init while init builds the
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
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stage.h"
#include "base.h"
#include "net.h"

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

// The maker's pid, for pid_reap: its memory is init's, not the program's.
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
// replacement in net_join is exercised. No production binary defines it,
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
// pid_reap must not count its rusage (init's memory) as the program's, and
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

// net_start starts the maker, which works on the other CPU while init
// builds the filesystem.
int net_start(struct net_maker *m, const struct spec *s) {
	return start_net_maker(m, brig_test_silent_maker && brig_test_silent_maker(s->hostname));
}

// net_join enters the maker's namespace. A maker that ended without a word
// (cause not found): the supervisor logs how it ended, and a new maker
// makes the namespace; a second such end fails the jail.
int net_join(struct net_maker *m) {
	int rc = join_net_maker(m);
	if (rc > 0) {
		report_warning(failed.step, failed.err);
		rc = start_net_maker(m, 0) < 0 ? -1 : join_net_maker(m);
	}
	return rc == 0 ? 0 : -1;
}

int net_is_maker(pid_t pid) {
	return pid == net_maker_pid;
}
