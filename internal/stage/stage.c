// What every C stage shares: the dispatch on argv[0], the spec reader and
// the status events.
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stage.h"

// A program that imports jail needs no line in main: the spawner's and the
// helper's argv[0] are caught here, before the Go runtime (and the embedding program's main)
// would start.
__attribute__((constructor)) static void brig_stage_dispatch(int argc, char **argv, char **envp) {
	if (argc >= 1 && strcmp(argv[0], SPAWNER_ARG0) == 0) {
		prctl(PR_SET_NAME, SPAWNER_ARG0, 0, 0, 0);
		run_spawner(argv);
	}
	if (argc >= 1 && strcmp(argv[0], HELPER_ARG0) == 0)
		run_helper(argv);
	// Go's runtime puts /dev/null on a closed stdin, stdout or stderr when
	// it starts (checkfds), after this constructor. Done here, the early
	// spawner's socket cannot land on them.
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
			int null = open("/dev/null", O_RDWR);
			if (null >= 0 && null != fd) {
				dup2(null, fd);
				close(null);
			}
		}
	}
	if (brig_spawner_at_start && brig_spawner_at_start(argc, argv))
		start_early_spawner(argc, argv, envp);
}

// take copies the next n bytes to out, or marks r bad.
static void take(struct reader *r, void *out, size_t n) {
	if (r->bad || r->n < n) {
		r->bad = 1;
		memset(out, 0, n);
		return;
	}
	memcpy(out, r->p, n);
	r->p += n;
	r->n -= n;
}

uint32_t get_u32(struct reader *r) {
	uint32_t v;
	take(r, &v, sizeof v);
	return v;
}

uint64_t get_u64(struct reader *r) {
	uint64_t v;
	take(r, &v, sizeof v);
	return v;
}

char *get_str(struct reader *r) {
	uint32_t len = get_u32(r);
	if (r->bad || len > r->n) {
		r->bad = 1;
		return NULL;
	}
	char *s = malloc((size_t)len + 1);
	if (s == NULL) {
		r->bad = 1;
		return NULL;
	}
	memcpy(s, r->p, len);
	s[len] = '\0';
	if (memchr(s, '\0', len) != NULL)
		r->bad = 1; // execve and paths could not carry it
	r->p += len;
	r->n -= len;
	return s;
}

char **get_strs(struct reader *r) {
	uint32_t count = get_u32(r);
	if (r->bad || count > r->n / 4) {
		r->bad = 1;
		return NULL;
	}
	char **v = calloc((size_t)count + 1, sizeof *v);
	if (v == NULL) {
		r->bad = 1;
		return NULL;
	}
	for (uint32_t i = 0; i < count && !r->bad; i++)
		v[i] = get_str(r);
	return v;
}

// take_magic consumes magic (a string literal's bytes) or reports false.
static int take_magic(struct reader *r, const char *magic) {
	size_t n = strlen(magic);
	if (r->bad || r->n < n || memcmp(r->p, magic, n) != 0)
		return 0;
	r->p += n;
	r->n -= n;
	return 1;
}

int parse_exec_settings(struct reader *r, struct exec_settings *e) {
	if (!take_magic(r, EXEC_MAGIC))
		return -1;
	e->uid = get_u32(r);
	e->gid = get_u32(r);
	e->nrlimits = get_u32(r);
	if (r->bad || e->nrlimits > 64)
		return -1;
	e->rlimits = calloc(e->nrlimits + 1, sizeof *e->rlimits);
	if (e->rlimits == NULL)
		return -1;
	for (uint32_t i = 0; i < e->nrlimits; i++) {
		e->rlimits[i].resource = get_u32(r);
		e->rlimits[i].cur = get_u64(r);
		e->rlimits[i].max = get_u64(r);
	}
	e->nextra = get_u32(r);
	e->filter_len = get_u32(r);
	if (r->bad || e->nextra > MAX_EXTRA || e->filter_len % 8 != 0 || e->filter_len > r->n)
		return -1;
	e->filter = NULL;
	if (e->filter_len > 0) {
		e->filter = malloc(e->filter_len);
		if (e->filter == NULL)
			return -1;
		memcpy(e->filter, r->p, e->filter_len);
		r->p += e->filter_len;
		r->n -= e->filter_len;
	}
	return 0;
}

// get_mounts reads a u32 count and that many root entries (wire.go's
// encoder.mounts).
static int get_mounts(struct reader *r, struct mount_spec **out, uint32_t *count) {
	uint32_t n = get_u32(r);
	if (r->bad || n > r->n / 16)
		return -1;
	struct mount_spec *ms = calloc((size_t)n + 1, sizeof *ms);
	if (ms == NULL)
		return -1;
	for (uint32_t i = 0; i < n; i++) {
		struct mount_spec *m = &ms[i];
		m->source = get_str(r);
		m->target = get_str(r);
		m->symlink = get_str(r);
		m->content = get_str(r);
		m->flags = get_u32(r);
		m->mode = get_u32(r);
		m->dev = get_u64(r);
		m->ino = get_u64(r);
		m->owner_uid = get_u32(r);
		m->owner_gid = get_u32(r);
		m->tree_fd = -1;
	}
	*out = ms;
	*count = n;
	return r->bad ? -1 : 0;
}

int parse_spec(struct reader *r, struct spec *s) {
	memset(s, 0, sizeof *s);
	s->template_fd = -1;
	s->tty_fd = -1;
	if (!take_magic(r, SPEC_MAGIC))
		return -1;
	s->flags = get_u32(r);
	s->init_id = get_u32(r);
	s->jail_id = get_u32(r);
	s->gid = get_u32(r);
	s->path = get_str(r);
	s->args = get_strs(r);
	s->env = get_strs(r);
	s->dir = get_str(r);
	s->hostname = get_str(r);
	s->tmpfs_size = get_u64(r);
	if (get_mounts(r, &s->root, &s->nroot) < 0 || get_mounts(r, &s->mounts, &s->nmounts) < 0)
		return -1;
	s->cgroup_dir = get_str(r);
	s->procs_files = get_strs(r);
	s->join_tasks = get_strs(r);
	s->home_tasks = get_strs(r);
	s->ipc_sysctls = get_strs(r);
	uint32_t exec_len = get_u32(r);
	if (r->bad || exec_len != r->n)
		return -1;
	return parse_exec_settings(r, &s->exec) < 0 || r->n != 0 ? -1 : 0;
}

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
