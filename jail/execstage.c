// The exec stage: the last step between brig's in-jail init and the untrusted
// program. It runs as a C constructor, before the Go runtime starts, because
// what it does (switch uid, drop every capability, set no_new_privs, apply
// rlimits, load seccomp) is per-thread or must be the very last thing before
// execve, and a single-threaded C process gives both for the cost of an exec.
//
// init starts it as argv = {"brig:exec", PATH, ARGV0, ARGS...} with the
// program's environment, fd 3 carrying its settings, fd 4 a pipe on which a
// failure is reported (the pipe closes on a successful execve), and the
// caller's extra files from fd 5 on, which the program gets from fd 3 on.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define EXEC_STAGE_ARG0 "brig:exec"
#define EXEC_STAGE_MAGIC "BRIGEXEC1"
#define CONFIG_FD 3
#define ERROR_FD 4

static int report_fd = ERROR_FD;

static void fail_to(int fd, const char *step, int err) {
	dprintf(fd, "%s: %s", step, strerror(err));
	_exit(127);
}

static void fail(const char *step, int err) { fail_to(report_fd, step, err); }

static void read_full(void *buf, size_t n) {
	char *p = buf;
	while (n > 0) {
		ssize_t r = read(CONFIG_FD, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			fail("read exec settings", r == 0 ? EPIPE : errno);
		p += r;
		n -= (size_t)r;
	}
}

static uint32_t read_u32(void) {
	uint32_t v;
	read_full(&v, sizeof v);
	return v;
}

static uint64_t read_u64(void) {
	uint64_t v;
	read_full(&v, sizeof v);
	return v;
}

__attribute__((constructor)) static void brig_exec_stage(int argc, char **argv, char **envp) {
	if (argc < 3 || strcmp(argv[0], EXEC_STAGE_ARG0) != 0)
		return;
	if (fcntl(ERROR_FD, F_SETFD, FD_CLOEXEC) < 0)
		_exit(127);

	char magic[sizeof EXEC_STAGE_MAGIC - 1];
	read_full(magic, sizeof magic);
	if (memcmp(magic, EXEC_STAGE_MAGIC, sizeof magic) != 0)
		fail("read exec settings", EPROTO);
	uint32_t uid = read_u32();
	uint32_t gid = read_u32();
	uint32_t nrlimits = read_u32();
	for (uint32_t i = 0; i < nrlimits; i++) {
		uint32_t resource = read_u32();
		struct rlimit rl;
		rl.rlim_cur = read_u64();
		rl.rlim_max = read_u64();
		if (setrlimit((int)resource, &rl) < 0)
			fail("setrlimit", errno);
	}
	uint32_t nextra = read_u32();
	if (nextra > 64)
		fail("read exec settings", EINVAL);
	uint32_t filter_len = read_u32();
	struct sock_filter *filter = NULL;
	if (filter_len > 0) {
		if (filter_len % sizeof(struct sock_filter) != 0 || filter_len > (1u << 20))
			fail("read seccomp filter", EINVAL);
		filter = malloc(filter_len);
		if (filter == NULL)
			fail("read seccomp filter", ENOMEM);
		read_full(filter, filter_len);
	}
	// Only 0, 1, 2, the caller's extra files (moved down to 3...) and the
	// error pipe (close-on-exec) survive into the program.
	close(CONFIG_FD);
	int error_fd = ERROR_FD;
	if (nextra > 0) {
		error_fd = fcntl(ERROR_FD, F_DUPFD_CLOEXEC, ERROR_FD + 1 + (int)nextra);
		if (error_fd < 0)
			_exit(127);
		close(ERROR_FD);
		for (uint32_t i = 0; i < nextra; i++) {
			if (dup2(ERROR_FD + 1 + (int)i, CONFIG_FD + (int)i) < 0)
				fail_to(error_fd, "pass extra files", errno);
		}
		if (syscall(SYS_close_range, CONFIG_FD + nextra, error_fd - 1, 0) < 0)
			fail_to(error_fd, "close inherited fds", errno);
	}
	if (syscall(SYS_close_range, error_fd + 1, ~0U, 0) < 0)
		fail_to(error_fd, "close inherited fds", errno);
	report_fd = error_fd;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		fail("set no_new_privs", errno);
	// The bounding set must go while CAP_SETPCAP is still effective.
	for (int cap = 0; cap <= 63; cap++) {
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
			if (errno == EINVAL)
				break; // past the kernel's last capability
			fail("drop bounding capabilities", errno);
		}
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		fail("clear ambient capabilities", errno);
	// setgroups is denied in the jail's user namespace; the supplementary
	// groups were already emptied on the host before the namespace existed.
	if (setresgid(gid, gid, gid) < 0)
		fail("setresgid", errno);
	if (setresuid(uid, uid, uid) < 0)
		fail("setresuid", errno);
	struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof data);
	if (syscall(SYS_capset, &header, data) < 0)
		fail("drop capabilities", errno);

	// Start the program with default signal dispositions and nothing
	// blocked: what brig's stages ignored (a CLI ignores SIGPIPE) or blocked
	// must not leak into it, and exec keeps ignored signals ignored.
	for (int sig = 1; sig < NSIG; sig++) {
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL); // fails harmlessly for the libc-reserved ones
	}
	sigset_t none;
	sigemptyset(&none);
	if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
		fail("unblock signals", errno);

	if (filter != NULL) {
		struct sock_fprog prog = {(unsigned short)(filter_len / sizeof(struct sock_filter)), filter};
		if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
			fail("load seccomp filter", errno);
	}
	execve(argv[1], argv + 2, envp);
	fail("exec", errno);
}
