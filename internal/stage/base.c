// The bottom layer: failures, status events, fd reads (base.h).
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stage.h"
#include "base.h"

// write_file writes data to path in one write; flags are added to
// O_WRONLY|O_CLOEXEC (a created file gets mode 0644).
int write_file(const char *path, const char *data, int flags) {
	int fd = open(path, O_WRONLY | O_CLOEXEC | flags, 0644);
	if (fd < 0)
		return -1;
	size_t n = strlen(data);
	ssize_t w = write(fd, data, n);
	int err = errno;
	close(fd);
	if (w != (ssize_t)n) {
		errno = w < 0 ? err : EIO;
		return -1;
	}
	return 0;
}

struct failure failed;

// errstr spells errors as Go does (lower case), so messages read the same
// whichever stage failed.
const char *errstr(int err) {
	static char buf[256];
	snprintf(buf, sizeof buf, "%s", strerror(err));
	buf[0] = (char)tolower((unsigned char)buf[0]);
	return buf;
}

static void record(int err, int spell, const char *step, const char *fmt, va_list ap) {
	snprintf(failed.step, sizeof failed.step, "%s", step);
	failed.errnum = err;
	char what[1024] = "";
	if (fmt != NULL)
		vsnprintf(what, sizeof what, fmt, ap);
	if (!spell)
		err = 0;
	if (what[0] != '\0' && err != 0)
		snprintf(failed.err, sizeof failed.err, "%s: %s", what, errstr(err));
	else if (what[0] != '\0')
		snprintf(failed.err, sizeof failed.err, "%s", what);
	else
		snprintf(failed.err, sizeof failed.err, "%s", errstr(err));
}

int fail(int err, const char *step, const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	record(err, 1, step, fmt, ap);
	va_end(ap);
	return -1;
}

int fail_as(int err, const char *step, const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	record(err, 0, step, fmt, ap);
	va_end(ap);
	return -1;
}

int fail_under(const char *step) {
	char msg[sizeof failed.step + sizeof failed.err + 2];
	snprintf(msg, sizeof msg, "%s: %s", failed.step, failed.err);
	return fail_as(failed.errnum, step, "%s", msg);
}

// Each event is one write shorter than PIPE_BUF, so lines from the helper
// and init never interleave.
#define MAX_EVENT 4000

static void emit(const char *line, size_t n) {
	while (write(STATUS_FD, line, n) < 0 && errno == EINTR) {
	}
}

static size_t put_json_string(char *out, size_t room, const char *s) {
	size_t n = 0;
	if (room < 8)
		return 0;
	out[n++] = '"';
	for (; *s != '\0' && n + 8 < room; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			out[n++] = '\\';
			out[n++] = (char)c;
		} else if (c < 0x20) {
			n += (size_t)snprintf(out + n, room - n, "\\u%04x", c);
		} else {
			out[n++] = (char)c;
		}
	}
	out[n++] = '"';
	return n;
}

void report_simple(const char *kind) {
	char line[64];
	int n = snprintf(line, sizeof line, "{\"k\":\"%s\"}\n", kind);
	emit(line, (size_t)n);
}

void report_init(int pid) {
	char line[64];
	int n = snprintf(line, sizeof line, "{\"k\":\"init\",\"pid\":%d}\n", pid);
	emit(line, (size_t)n);
}

static void report_problem(const char *kind, const char *step, int errnum, const char *err) {
	char line[MAX_EVENT];
	size_t n = (size_t)snprintf(line, sizeof line, "{\"k\":\"%s\",\"errno\":%d,\"step\":", kind, errnum);
	n += put_json_string(line + n, 600, step);
	n += (size_t)snprintf(line + n, sizeof line - n, ",\"err\":");
	n += put_json_string(line + n, sizeof line - n - 3, err);
	line[n++] = '}';
	line[n++] = '\n';
	emit(line, n);
}

void report_error(const char *step, int errnum, const char *err) {
	report_problem("error", step, errnum, err);
}

void report_warning(const char *step, const char *err) {
	report_problem("warning", step, 0, err);
}

void report_exit(int code, int sig, long maxrss_kb) {
	char line[128];
	int n = snprintf(line, sizeof line, "{\"k\":\"exit\",\"code\":%d,\"sig\":%d,\"rss\":%ld}\n", code, sig, maxrss_kb);
	emit(line, (size_t)n);
}

void report_done(long utime_us, long stime_us) {
	char line[128];
	int n = snprintf(line, sizeof line, "{\"k\":\"done\",\"ut\":%ld,\"st\":%ld}\n", utime_us, stime_us);
	emit(line, (size_t)n);
}

void die(void) {
	report_error(failed.step, failed.errnum, failed.err);
	_exit(1);
}

__attribute__((noreturn)) void child_fail(int fd, const char *step, int err) {
	dprintf(fd, "%d %s: %s", err, step, errstr(err));
	_exit(127);
}

int read_full(int fd, void *buf, size_t n) {
	char *p = buf;
	while (n > 0) {
		ssize_t r = read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			errno = r == 0 ? EPIPE : errno;
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

char *read_all(int fd, size_t *len) {
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (buf == NULL)
			return NULL;
		if (n == cap) {
			if (cap >= (256u << 20))
				return NULL;
			cap *= 2;
			buf = realloc(buf, cap);
			continue;
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return NULL;
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*len = n;
	return buf;
}

int received_fds(struct msghdr *msg, int *fds, int max) {
	int n = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (int i = 0; i < k && n < max; i++)
			memcpy(&fds[n++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
	}
	return n;
}

int send_fd(int sock, char tag, int fd) {
	char oob[CMSG_SPACE(sizeof(int))];
	memset(oob, 0, sizeof oob);
	struct iovec iov = {&tag, 1};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = oob, .msg_controllen = sizeof oob};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	ssize_t n;
	while ((n = sendmsg(sock, &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
	}
	if (n == 1)
		return 0;
	if (n >= 0)
		errno = EPIPE;
	return -1;
}
