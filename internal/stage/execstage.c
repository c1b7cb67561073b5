// The exec stage: the last step between init and the untrusted program, in
// a child init starts (fork_stage). It gives the program its files, then
// drop_privileges, its recipe, applies the rlimits (rlimit.c), sets
// no_new_privs and drops every capability (caps.c), switches to the jail
// user (user.c), resets signals (signals.c) and loads seccomp (seccomp.c)
// as the very last thing before execve. Failures come back to init on a
// close-on-exec pipe as "errno step: cause" (errno 0 when there is none); a
// successful execve closes it empty.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stage.h"
#include "base.h"
#include "wire.h"
#include "caps.h"
#include "rlimit.h"
#include "seccomp.h"
#include "signals.h"
#include "tty.h"
#include "user.h"
#include "execstage.h"

// exec_failed reports a failed execve. ENOENT for a file that exists (the
// program was found before the execve) means what it needs to run is
// missing: the interpreter of its #! line, or an ELF's program loader.
// The bare errno would blame the program's own path.
__attribute__((noreturn)) static void exec_failed(int fd, const char *path, int err) {
	if (err == ENOENT) {
		char head[256];
		int f = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		ssize_t n = f >= 0 ? read(f, head, sizeof head - 1) : -1;
		if (f >= 0)
			close(f);
		if (n > 2 && head[0] == '#' && head[1] == '!') {
			head[n] = '\0';
			char *interp = head + 2;
			interp += strspn(interp, " \t");
			interp[strcspn(interp, " \t\r\n")] = '\0';
			dprintf(fd, "%d exec: the interpreter %s named by the #! line of %s is not in the jail (bind it in, or fix the #! line)", err, interp, path);
			_exit(127);
		}
		if (n >= 4 && memcmp(head, "\177ELF", 4) == 0) {
			dprintf(fd, "%d exec: %s needs a program loader (its ELF interpreter) that is not in the jail", err, path);
			_exit(127);
		}
	}
	child_fail(fd, "exec", err);
}

static int executable(const char *path) {
	struct stat st;
	if (stat(path, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode) || (st.st_mode & 0111) == 0)
		return -EACCES;
	return 0;
}

// look_path finds the program in the jail's PATH, as a shell would.
static char *look_path(const struct spec *s) {
	char step[600];
	snprintf(step, sizeof step, "exec %s", s->path);
	if (strchr(s->path, '/') != NULL) {
		int err = executable(s->path);
		if (err == -EACCES) {
			fail(EACCES, step, "%s", s->path);
			return NULL;
		}
		if (err < 0) {
			fail(-err, step, "stat %s", s->path);
			return NULL;
		}
		return strdup(s->path);
	}
	const char *path = DEFAULT_PATH;
	for (char **e = s->env; *e != NULL; e++) {
		if (strncmp(*e, "PATH=", 5) == 0)
			path = *e + 5;
	}
	char *dirs = strdup(path);
	for (char *save = NULL, *dir = strtok_r(dirs, ":", &save); dir != NULL; dir = strtok_r(NULL, ":", &save)) {
		char *p;
		if (asprintf(&p, "%s/%s", dir, s->path) < 0)
			break;
		if (executable(p) == 0) {
			free(dirs);
			return p;
		}
		free(p);
	}
	free(dirs);
	fail_as(ENOENT, step, "not found in PATH \"%s\"", path);
	return NULL;
}

// close_all_but closes every fd from 3 on except the n in keep (each >= 3).
static void close_all_but(int *keep, int n, int report_fd) {
	for (int i = 1; i < n; i++) {
		for (int j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
			int t = keep[j];
			keep[j] = keep[j - 1];
			keep[j - 1] = t;
		}
	}
	unsigned lo = 3;
	for (int i = 0; i < n; i++) {
		unsigned k = (unsigned)keep[i];
		if (k > lo && syscall(SYS_close_range, lo, k - 1, 0) < 0)
			child_fail(report_fd, "close inherited fds", errno);
		if (k >= lo)
			lo = k + 1;
	}
	if (syscall(SYS_close_range, lo, ~0U, 0) < 0)
		child_fail(report_fd, "close inherited fds", errno);
}

// place_files gives the program stdio on 0, 1, 2 and the caller's extra
// files from 3 on, closes every other fd but the report pipe (moved above
// them) and returns the report pipe's fd. Every source is first moved above
// the targets so no dup2 overwrites another's source.
static int place_files(const int stdio[3], const int *extra, uint32_t nextra, int report_fd) {
	int nsrc = 3 + (int)nextra, low = nsrc;
	int src[3 + MAX_EXTRA];
	for (int i = 0; i < nsrc; i++) {
		int fd = i < 3 ? stdio[i] : extra[i - 3];
		src[i] = fcntl(fd, F_DUPFD_CLOEXEC, low);
		if (src[i] < 0)
			child_fail(report_fd, "pass files", errno);
	}
	report_fd = fcntl(report_fd, F_DUPFD_CLOEXEC, low);
	if (report_fd < 0)
		_exit(127);
	for (int i = 0; i < nsrc; i++) {
		if (dup2(src[i], i) < 0)
			child_fail(report_fd, "pass files", errno);
	}
	if (report_fd > low && syscall(SYS_close_range, low, report_fd - 1, 0) < 0)
		child_fail(report_fd, "close inherited fds", errno);
	if (syscall(SYS_close_range, report_fd + 1, ~0U, 0) < 0)
		child_fail(report_fd, "close inherited fds", errno);
	return report_fd;
}

// drop_privileges is the exec stage's recipe for the program's process:
// rlimits, no_new_privs and the bounding set, the jail user, no
// capabilities, default signals, seccomp. After it the process may only
// execve the program.
static void drop_privileges(const struct exec_settings *e, int report_fd) {
	rlimit_apply(e, report_fd);
	caps_drop_bounding(report_fd);
	user_become_program(e, report_fd);
	caps_drop_all(report_fd);
	signals_reset_for_program(report_fd);
	seccomp_load_filter(e, report_fd);
}

__attribute__((noreturn)) static void exec_stage(const struct spec *s, const char *path, const int stdio[3], const int *extra,
                                                 int report_fd) {
	if (setsid() < 0)
		child_fail(report_fd, "setsid", errno);
	if (chdir(s->dir) < 0)
		child_fail(report_fd, "chdir", errno);
	report_fd = place_files(stdio, extra, s->exec.nextra, report_fd);
	tty_make_controlling(s, report_fd);
	drop_privileges(&s->exec, report_fd);
	execve(path, s->args, s->env);
	exec_failed(report_fd, path, errno);
}

// prefork_stage is a pooled jail's program process before its request:
// everything a cold exec stage does is done ahead, and the request (its
// stdio, extra files, program, arguments and environment) is read as the
// jail user under seccomp, the program's own policy, which allows it.
__attribute__((noreturn)) static void prefork_stage(struct spec *s, int request_fd, int report_fd) {
	if (setsid() < 0)
		child_fail(report_fd, "setsid", errno);
	if (chdir(s->dir) < 0)
		child_fail(report_fd, "chdir", errno);
	int keep[] = {request_fd, report_fd, STATUS_FD};
	close_all_but(keep, 3, report_fd);
	drop_privileges(&s->exec, report_fd);
	// The jail is ready only now, when nothing of its build is left to run
	// (seccomp's load and JIT took 0.5 ms): a pool's Ready counts it, and a
	// request sent sooner would only wait in the socket. The status pipe
	// goes before the request is read.
	report_simple("ready");
	close(STATUS_FD);
	int files[3 + MAX_EXTRA], nfiles = 0;
	if (read_request(s, request_fd, files, &nfiles) < 0) {
		dprintf(report_fd, "%d %s: %s", failed.errnum, failed.step, failed.err);
		_exit(127);
	}
	char *path = look_path(s);
	if (path == NULL) {
		dprintf(report_fd, "%d %s: %s", failed.errnum, failed.step, failed.err);
		_exit(127);
	}
	report_fd = place_files(files, files + 3, s->exec.nextra, report_fd);
	execve(path, s->args, s->env);
	exec_failed(report_fd, path, errno);
}

// await_exec reads the exec stage's report: empty once execve succeeded,
// else "errno step: cause". It returns pid, or -1 with `failed` set.
static int await_exec(const struct spec *s, pid_t pid, int report_fd) {
	char msg[4096];
	size_t n = 0;
	for (;;) {
		ssize_t r = read(report_fd, msg + n, sizeof msg - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n == sizeof msg - 1)
			break;
	}
	close(report_fd);
	if (n == 0)
		return pid;
	msg[n] = '\0';
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
	}
	char *what = msg, *end;
	long errnum = strtol(msg, &end, 10);
	if (end != msg && *end == ' ' && errnum >= 0 && errnum < 4096)
		what = end + 1;
	else
		errnum = 0;
	char *cause = strstr(what, ": ");
	if (cause == NULL)
		return fail_as((int)errnum, "exec stage", "%s", what);
	*cause = '\0';
	cause += 2;
	if (strcmp(what, "exec") == 0) {
		char step[600];
		snprintf(step, sizeof step, "exec %s", s->path != NULL ? s->path : "");
		return fail_as((int)errnum, step, "%s", cause);
	}
	return fail_as((int)errnum, what, "%s", cause);
}

// A stage child shares init's memory until its execve (CLONE_VM and
// CLONE_VFORK, as posix_spawn does): init sleeps meanwhile, and neither the
// clone nor the execve copies or tears down a copy of init's memory. That
// took 0.2 ms from a pooled request to the program's execve done (a C model
// of supervisor, init and program: 0.40 ms with fork, 0.21 ms this way).
// So a stage never returns (it execs or _exits) and writes nothing init
// reads afterwards but `failed`; its file descriptors, signal dispositions
// and mask, credentials and rlimits are its own (no CLONE_FILES,
// CLONE_SIGHAND or CLONE_THREAD), and it changes credentials with raw
// system calls, not libc's all-threads wrappers.
#define STAGE_STACK (256u << 10)

struct stage_call {
	void (*stage)(void *arg, int report_fd);
	void *arg;
	int report_fd, unused_fd;
};

static int stage_main(void *p) {
	struct stage_call *c = p;
	close(c->unused_fd);
	c->stage(c->arg, c->report_fd);
	_exit(127); // not reached: a stage execs or exits
}

// fork_stage starts a child that runs stage with the write end of a report
// pipe, and returns the read end once the child has exec'd or exited, or -1
// with `failed` set.
static int fork_stage(pid_t *pid, void (*stage)(void *arg, int report_fd), void *arg) {
	int report[2];
	if (pipe2(report, O_CLOEXEC) < 0)
		return fail(errno, "exec stage pipe", NULL);
	// The stack has a guard page below it: an overflow faults instead of
	// writing over init's memory.
	size_t guard = (size_t)sysconf(_SC_PAGESIZE), len = guard + STAGE_STACK;
	char *stack = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack == MAP_FAILED || mprotect(stack, guard, PROT_NONE) < 0) {
		int err = errno;
		close(report[0]);
		close(report[1]);
		return fail(err, "start exec stage", "stack");
	}
	struct stage_call call = {stage, arg, report[1], report[0]};
	*pid = clone(stage_main, stack + len, CLONE_VM | CLONE_VFORK | SIGCHLD, &call);
	int err = errno;
	munmap(stack, len); // the child has its own memory again, or is gone
	close(report[1]);
	if (*pid < 0) {
		close(report[0]);
		return fail(err, "start exec stage", "clone");
	}
	return report[0];
}

struct prefork_args {
	struct spec *s;
	int request_fd;
};

static void run_prefork_stage(void *arg, int report_fd) {
	struct prefork_args *a = arg;
	prefork_stage(a->s, a->request_fd, report_fd);
}

// prefork_program starts a pooled jail's program process, which reports the
// jail ready itself (init sleeps in fork_stage until the program's execve),
// and returns the program's pid once its execve succeeded.
int prefork_program(struct spec *s, int request_fd) {
	struct prefork_args a = {s, request_fd};
	pid_t pid;
	int report = fork_stage(&pid, run_prefork_stage, &a);
	close(request_fd); // the program's process alone reads the request
	if (report < 0)
		return -1;
	return await_exec(s, pid, report);
}

struct exec_args {
	const struct spec *s;
	const char *path;
	const int *stdio, *extra;
};

static void run_exec_stage(void *arg, int report_fd) {
	struct exec_args *a = arg;
	exec_stage(a->s, a->path, a->stdio, a->extra, report_fd);
}

// start_program forks the exec stage and returns the program's pid once its
// execve succeeded, or -1 with `failed` naming the step.
int start_program(struct spec *s, const int stdio[3], const int *extra) {
	char *path = look_path(s);
	if (path == NULL)
		return -1;
	struct exec_args a = {s, path, stdio, extra};
	pid_t pid;
	int report = fork_stage(&pid, run_exec_stage, &a);
	free(path);
	if (report < 0)
		return -1;
	return await_exec(s, pid, report);
}
