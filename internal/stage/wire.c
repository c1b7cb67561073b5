// The readers of the spec and of a pooled jail's request (wire.h).
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stage.h"
#include "base.h"
#include "wire.h"

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
