// The jail's cgroups (cgroup.h).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sys/socket.h>

#include "stage.h"
#include "base.h"
#include "wire.h"
#include "cgroup.h"

// cgroup_open_v2 opens the jail's cgroup v2 directory, when it has one, for
// clone3's CLONE_INTO_CGROUP: init is born in it. *fd is -1 without one.
int cgroup_open_v2(const struct spec *s, int *fd) {
	*fd = -1;
	if (s->cgroup_dir[0] == '\0')
		return 0;
	*fd = open(s->cgroup_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (*fd < 0)
		return fail(errno, "open cgroup", "open %s", s->cgroup_dir);
	return 0;
}

// cgroup_move_self moves the helper into the jail's cgroup v1 hierarchies, so that
// init is born there, when it may go back home afterwards: a thread moving
// itself avoids the slow global lock a pid written into cgroup.procs takes
// (cgroup.Limiter's SelfMove). It returns whether it moved.
int cgroup_move_self(const struct spec *s) {
	if (s->join_tasks[0] == NULL)
		return 0;
	for (char **p = s->home_tasks; *p != NULL; p++) {
		if (access(*p, W_OK) < 0)
			return 0;
	}
	int n = 0;
	for (char **p = s->join_tasks; *p != NULL; p++, n++) {
		if (write_file(*p, "0", 0) < 0) {
			for (int i = 0; i < n; i++)
				write_file(s->home_tasks[i], "0", 0);
			return 0; // the pid is written into cgroup.procs instead
		}
	}
	return 1;
}

// cgroup_go_home moves the helper back out of the jail's cgroup v1
// hierarchies once init was born in them (cgroup_move_self).
int cgroup_go_home(const struct spec *s) {
	for (char **p = s->home_tasks; *p != NULL; p++) {
		if (write_file(*p, "0", 0) < 0) {
			char step[600];
			snprintf(step, sizeof step, "leave cgroup %s", *p);
			return fail(errno, step, NULL);
		}
	}
	return 0;
}

// cgroup_place_from_parent writes init's pid into the jail's cgroup v1
// hierarchies, when the helper could not move itself there for the clone.
int cgroup_place_from_parent(long pid, const struct spec *s) {
	for (char **p = s->procs_files; *p != NULL; p++) {
		char num[32];
		snprintf(num, sizeof num, "%ld", pid);
		if (write_file(*p, num, 0) < 0) {
			char step[600];
			snprintf(step, sizeof step, "join cgroup %s", *p);
			return fail(errno, step, NULL);
		}
	}
	return 0;
}

// cgroup_pass_from_parent waits for the supervisor's controlJoin (wire.go) of a
// JoinLater jail, opens the cgroup v1 "tasks" files it names and hands them
// to init on sock: init writes "0" into each, which moves it, checked
// against the credentials of the opener, the helper. It returns 1 when
// they were passed, 0 when the supervisor asked for the jail's end
// instead (or went away), -1 on failure, reported.
int cgroup_pass_from_parent(int sock) {
	unsigned char cmd;
	ssize_t r;
	do
		r = read(CONTROL_FD, &cmd, 1);
	while (r < 0 && errno == EINTR);
	if (r != 1 || cmd != CONTROL_JOIN)
		return 0;
	uint32_t len;
	if (read_full(CONTROL_FD, &len, sizeof len) < 0 || len > MAX_JOIN_LEN)
		return fail(EIO, "join cgroup", "read the cgroup list");
	uint8_t *raw = malloc(len ? len : 1);
	if (raw == NULL || read_full(CONTROL_FD, raw, len) < 0)
		return fail(EIO, "join cgroup", "read the cgroup list");
	struct reader rd = {raw, len, 0};
	char **paths = get_strs(&rd);
	if (rd.bad || rd.n != 0 || paths == NULL || paths[0] == NULL)
		return fail(0, "join cgroup", "malformed cgroup list");
	int fds[MAX_JOIN], n = 0;
	for (char **p = paths; *p != NULL; p++) {
		if (n == MAX_JOIN)
			return fail(0, "join cgroup", "more than %d hierarchies", MAX_JOIN);
		fds[n] = open(*p, O_WRONLY | O_CLOEXEC);
		if (fds[n] < 0) {
			char step[600];
			snprintf(step, sizeof step, "join cgroup %s", *p);
			return fail(errno, step, NULL);
		}
		n++;
	}
	unsigned char count = (unsigned char)n;
	char oob[CMSG_SPACE(sizeof(int) * MAX_JOIN)];
	memset(oob, 0, sizeof oob);
	struct iovec iov = {&count, 1};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = oob, .msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)n);
	do
		r = sendmsg(sock, &msg, 0);
	while (r < 0 && errno == EINTR);
	int err = errno;
	for (int i = 0; i < n; i++)
		close(fds[i]);
	if (r != 1)
		return fail(err, "join cgroup", "hand the cgroups to init");
	return 1;
}

// cgroup_join receives from the helper the jail's cgroup v1 "tasks" files
// (cgroup_pass_from_parent) and moves init into each by writing "0": init
// is single-threaded, so moving the thread moves the process, and a thread
// moving itself takes no global lock. Everything init starts from here on
// is born inside.
int cgroup_join(int sock) {
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

// cgroup_new_namespace is entered only once init sits in the jail's
// cgroups, so the program sees its own cgroup as the root.
int cgroup_new_namespace(void) {
	if (unshare(CLONE_NEWCGROUP) < 0)
		return fail(errno, "create cgroup namespace", NULL);
	return 0;
}
