// The bottom layer every other C file may use: how a failed step is
// recorded and reported, the status events, and small fd reads. It calls
// nothing of brig's.
#ifndef BRIG_BASE_H
#define BRIG_BASE_H

#include <stddef.h>
#include <stdint.h>

// A failed set-up step: what was being done and why it failed, reported to
// the supervisor as an "error" event whose step becomes SetupError.Step and
// whose errno (0 when there is none) SetupError.Err wraps, so a caller can
// test the cause with errors.Is instead of matching text.
struct failure {
	char step[512];
	char err[2048];
	int errnum;
};
extern struct failure failed;
int write_file(const char *path, const char *data, int flags);
// fail records err's text after the message; fail_as records err as the
// cause but the message alone, for a message that already says it better;
// fail_under makes the recorded failure the cause of step, its old step
// leading the message, its errno kept. Each returns -1.
int fail(int err, const char *step, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int fail_as(int err, const char *step, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int fail_under(const char *step);
const char *errstr(int err);
// child_fail ends a stage child (execstage.c's fork_stage) with "errno
// step: cause" on its report pipe, which init turns into `failed`.
__attribute__((noreturn)) void child_fail(int fd, const char *step, int err);

// read_full reads exactly n bytes (EOF first: -1 with EPIPE).
int read_full(int fd, void *buf, size_t n);
// read_all reads fd to EOF into a buffer of its own (NULL past 256 MiB).
char *read_all(int fd, size_t *len);
// received_fds collects, in order, up to max fds that recvmsg took as
// SCM_RIGHTS into msg.
struct msghdr;
int received_fds(struct msghdr *msg, int *fds, int max);
// send_fd sends one byte, tag, with fd as SCM_RIGHTS on sock: 0, or -1
// with errno set.
int send_fd(int sock, char tag, int fd);

// Events on the status pipe: JSON lines, each one atomic write (wire.go).
void report_simple(const char *kind);
void report_init(int pid);
void report_error(const char *step, int errnum, const char *err);
void report_warning(const char *step, const char *err); // the jail goes on; the supervisor logs it
void report_exit(int code, int sig, long maxrss_kb);
void report_done(long utime_us, long stime_us);
__attribute__((noreturn)) void die(void); // report `failed` and exit 1

#endif
