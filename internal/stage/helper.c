// The helper stage. It exists so that the clone with a new user namespace
// happens in a small fresh process, never in the embedding program (whose
// page tables a fork would copy, whatever its size). It clones the bind
// sources while it can still see them as root, starts init in every
// namespace, maps its users, places it in its cgroups, kills the jail when
// the supervisor says so (or vanishes), and reports how much CPU the whole
// jail used.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stage.h"

static char *read_all(int fd, size_t *len) {
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


uint64_t mount_attr_of(const struct mount_spec *m) {
	uint64_t attr = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
	if (!(m->flags & MOUNT_WRITABLE))
		attr |= MOUNT_ATTR_RDONLY;
	return attr;
}

// open_source opens path (absolute, in this process's view) without
// following a symlink or magic link in any component: the supervisor
// resolved every symlink it trusts (rootfs.go's resolveBindSource), so one
// met here was put there since. With MOUNT_CHECK_ID it must also be the
// file the supervisor resolved (m->dev, m->ino): a source swapped for
// another in between fails too.
int open_source(const char *path, const struct mount_spec *m, const char *step) {
	struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
	int fd = (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
	if (fd < 0 && errno == ELOOP)
		return fail(ELOOP, step, "open %s: a symlink has appeared in the path since brig resolved it", path);
	if (fd < 0)
		return fail(errno, step, "open %s", path);
	if (m == NULL || !(m->flags & MOUNT_CHECK_ID))
		return fd;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int err = errno;
		close(fd);
		return fail(err, step, "stat %s", path);
	}
	if ((uint64_t)st.st_dev != m->dev || (uint64_t)st.st_ino != m->ino) {
		close(fd);
		return fail(0, step, "%s is no longer the file brig resolved (replaced in between): not bound", path);
	}
	return fd;
}

// clone_tree makes a detached copy of the mount tree at src with attr set,
// src opened by open_source.
int clone_tree(const char *src, const struct mount_spec *m, uint64_t attr, const char *target) {
	int fd = open_source(src, m, target);
	if (fd < 0)
		return -1;
	int tree = (int)syscall(SYS_open_tree, fd, "", AT_EMPTY_PATH | OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
	int err = errno;
	close(fd);
	if (tree < 0)
		return fail(err, target, "open_tree %s", src);
	struct mount_attr ma = {.attr_set = attr, .propagation = MS_PRIVATE};
	if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &ma, sizeof ma) < 0) {
		int err = errno;
		close(tree);
		return fail(err, target, "set attributes of %s", src);
	}
	return tree;
}

// idmap_userns returns an fd of a new user namespace that maps, and only
// maps, the host owner uid:gid to the jail user's host id: an idmapped
// mount with it shows the owner's files as the jail user's, and files the
// jail user creates land on disk as the owner's. Its only process, a child
// that waits on a pipe, is reaped before this returns; the mount keeps a
// copy of the map, not the namespace.
static int idmap_userns(uint32_t uid, uint32_t gid, uint32_t jail_id, const char *step) {
	int sync[2];
	if (pipe2(sync, O_CLOEXEC) < 0)
		return fail(errno, step, "idmap: pipe");
	struct clone_args args = {.flags = CLONE_NEWUSER, .exit_signal = SIGCHLD};
	long pid = syscall(SYS_clone3, &args, sizeof args);
	if (pid < 0) {
		int err = errno;
		close(sync[0]);
		close(sync[1]);
		return fail(err, step, "idmap: clone a user namespace");
	}
	if (pid == 0) {
		char b;
		close(sync[1]);
		while (read(sync[0], &b, 1) < 0 && errno == EINTR) {
		}
		_exit(0);
	}
	close(sync[0]);
	char path[64], map[64];
	int fd = -1, err = 0;
	snprintf(path, sizeof path, "/proc/%ld/uid_map", pid);
	snprintf(map, sizeof map, "%u %u 1\n", uid, jail_id);
	if (write_file(path, map, 0) < 0) {
		err = errno;
		goto out;
	}
	snprintf(path, sizeof path, "/proc/%ld/setgroups", pid);
	if (write_file(path, "deny", 0) < 0) {
		err = errno;
		goto out;
	}
	snprintf(path, sizeof path, "/proc/%ld/gid_map", pid);
	snprintf(map, sizeof map, "%u %u 1\n", gid, jail_id);
	if (write_file(path, map, 0) < 0) {
		err = errno;
		goto out;
	}
	snprintf(path, sizeof path, "/proc/%ld/ns/user", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	err = errno;
out:
	close(sync[1]); // the child exits
	while (waitpid((pid_t)pid, NULL, 0) < 0 && errno == EINTR) {
	}
	if (fd < 0)
		return fail(err, step, "idmap: map %u:%u in a user namespace", uid, gid);
	return fd;
}

// idmap_tree makes the detached tree an idmapped mount for m's owner.
static int idmap_tree(int tree, const struct mount_spec *m, uint32_t jail_id, const char *step) {
	int userns = idmap_userns(m->owner_uid, m->owner_gid, jail_id, step);
	if (userns < 0)
		return -1;
	struct mount_attr ma = {.attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t)userns};
	int rc = (int)syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &ma, sizeof ma);
	int err = errno;
	close(userns);
	if (rc == 0)
		return 0;
	if (err == EINVAL || err == EOPNOTSUPP)
		return fail(err, step, "idmapped mount of %s (owner %u:%u): its filesystem, or one mounted below it, cannot be idmapped "
		            "on this kernel; bind a directory on ext4, xfs, btrfs or tmpfs, or drop the idmap option",
		            m->source, m->owner_uid, m->owner_gid);
	return fail(err, step, "idmapped mount of %s (owner %u:%u)", m->source, m->owner_uid, m->owner_gid);
}

// clone_sources clones every bind source here, on the host, as root. The
// jail's own root is an unprivileged host uid that could not even traverse
// a 0700 directory such as /root on the way to a source the caller asked
// for; what the jail may read inside is still decided by its uid. Each
// source is opened without following a symlink (open_source).
static void clone_sources(struct spec *s) {
	for (uint32_t i = 0; i < s->nmounts; i++) {
		struct mount_spec *m = &s->mounts[i];
		struct stat st;
		if (m->symlink[0] != '\0' || (m->flags & (MOUNT_COPY | MOUNT_TMPFS)) ||
		    ((m->flags & MOUNT_OPTIONAL) && lstat(m->source, &st) < 0))
			continue;
		char step[600];
		snprintf(step, sizeof step, "%s", m->target);
		m->tree_fd = clone_tree(m->source, m, mount_attr_of(m), step);
		if (m->tree_fd >= 0 && (m->flags & MOUNT_IDMAP) && idmap_tree(m->tree_fd, m, s->jail_id, step) < 0) {
			close(m->tree_fd);
			m->tree_fd = -1;
		}
		if (m->tree_fd < 0) {
			// "bind" names the step; the target leads the message.
			fail_under("bind");
			die();
		}
	}
}

static int map_ids(int pid, const struct spec *s) {
	char path[64], uid_map[128], gid_map[128];
	if (s->flags & SPEC_PRIVILEGED) {
		// The jail's root is one unprivileged host id, its user 1000
		// another; host root is never mapped.
		snprintf(uid_map, sizeof uid_map, "0 %u 1\n%d %u 1\n", s->init_id, JAIL_UID, s->jail_id);
		snprintf(gid_map, sizeof gid_map, "0 %u 1\n%d %u 1\n", s->init_id, JAIL_GID, s->jail_id);
	} else {
		// An unprivileged supervisor can map only itself.
		snprintf(uid_map, sizeof uid_map, "%d %u 1\n", JAIL_UID, s->jail_id);
		snprintf(gid_map, sizeof gid_map, "%d %u 1\n", JAIL_GID, s->gid);
	}
	snprintf(path, sizeof path, "/proc/%d/setgroups", pid);
	if (write_file(path, "deny", 0) < 0)
		return fail(errno, "create namespaces", "write %s", path);
	snprintf(path, sizeof path, "/proc/%d/uid_map", pid);
	if (write_file(path, uid_map, 0) < 0)
		return fail(errno, "create namespaces", "write %s", path);
	snprintf(path, sizeof path, "/proc/%d/gid_map", pid);
	if (write_file(path, gid_map, 0) < 0)
		return fail(errno, "create namespaces", "write %s", path);
	return 0;
}

// move_self moves the helper into the jail's cgroup v1 hierarchies, so that
// init is born there, when it may go back home afterwards: a thread moving
// itself avoids the slow global lock a pid written into cgroup.procs takes
// (cgroup.Limiter's SelfMove). It returns whether it moved.
static int move_self(const struct spec *s) {
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

// become_init runs in the cloned child: it waits until the helper mapped
// its ids and placed it, then takes the jail's root id (or, unprivileged,
// the jail user's), keeping the namespace's capabilities without an execve.
static void become_init(struct spec *s, char **argv, int ready_fd, int request_fd, int join_fd) {
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
	uid_t uid = (s->flags & SPEC_PRIVILEGED) ? 0 : JAIL_UID;
	gid_t gid = (s->flags & SPEC_PRIVILEGED) ? 0 : JAIL_GID;
	if (setresgid(gid, gid, gid) < 0) {
		fail(errno, "create namespaces", "setresgid");
		die();
	}
	if (setresuid(uid, uid, uid) < 0) {
		fail(errno, "create namespaces", "setresuid");
		die();
	}
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
	run_init(s, request_fd, join_fd);
}

// pass_cgroups waits for the supervisor's controlJoin (wire.go) of a
// JoinLater jail, opens the cgroup v1 "tasks" files it names and hands them
// to init on sock: init writes "0" into each, which moves it, checked
// against the credentials of the opener, the helper. It returns 1 when
// they were passed, 0 when the supervisor asked for the jail's end
// instead (or went away), -1 on failure, reported.
static int pass_cgroups(int sock) {
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

// hold_mounts opens the jail's mount namespace, so that the helper, not
// init, holds its last reference. init's exit then ends every process of the
// jail without also undoing ~40 mounts (and waiting for an expedited RCU
// grace period): that happens when the helper closes it, after its done
// report, on its way out (0.2-0.4 ms of a cold jail, A/B). Nothing of it is
// on the host, as a network namespace's deferred cleanup is not. -1 when it
// cannot be opened: then init's exit undoes the mounts, as before.
static int hold_mounts(long pid) {
	char path[64];
	snprintf(path, sizeof path, "/proc/%ld/ns/mnt", pid);
	return open(path, O_RDONLY | O_CLOEXEC);
}

// obey carries out the supervisor's control commands and waits for init.
// EOF on control is the supervisor dying: nothing of the jail may outlive it.
static void obey(int pid, int pidfd) {
	struct pollfd p[2] = {{.fd = pidfd, .events = POLLIN}, {.fd = CONTROL_FD, .events = POLLIN}};
	int nfds = 2;
	for (;;) {
		int n = poll(p, (nfds_t)nfds, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || (p[0].revents & POLLIN))
			break;
		if (nfds < 2 || p[1].revents == 0)
			continue;
		unsigned char cmd[2];
		ssize_t r = read(CONTROL_FD, cmd, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 1 && cmd[0] == CONTROL_SIGNAL) {
			do
				r = read(CONTROL_FD, cmd + 1, 1);
			while (r < 0 && errno == EINTR);
			if (r == 1) {
				// init forwards it to the program's process group.
				kill(pid, cmd[1]);
				continue;
			}
		} else if (r == 1 && cmd[0] != CONTROL_KILL) {
			continue;
		}
		kill(pid, SIGKILL);
		nfds = 1; // nothing more to obey; wait for init
	}
	int status;
	struct rusage ru;
	while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
	}
	report_done(ru.ru_utime.tv_sec * 1000000L + ru.ru_utime.tv_usec, ru.ru_stime.tv_sec * 1000000L + ru.ru_stime.tv_usec);
	// The last word: its EOF lets the supervisor close its end now, not
	// after the jail's mounts are undone on the way out (hold_mounts).
	close(STATUS_FD);
}

void run_helper(char **argv) {
	fcntl(STATUS_FD, F_SETFD, FD_CLOEXEC);
	fcntl(CONTROL_FD, F_SETFD, FD_CLOEXEC);
	size_t len = 0;
	char *raw = read_all(SPEC_FD, &len);
	close(SPEC_FD);
	if (raw == NULL) {
		fail(errno, "helper", "read spec");
		die();
	}
	struct spec s;
	struct reader rd = {(const uint8_t *)raw, len, 0};
	if (parse_spec(&rd, &s) < 0) {
		fail(0, "helper", "read spec: malformed");
		die();
	}
	int nextra = (int)s.exec.nextra;
	int request_fd = (s.flags & SPEC_POOLED) ? HELPER_EXTRA_FD : -1;
	if (s.flags & SPEC_TEMPLATE)
		s.template_fd = HELPER_EXTRA_FD + nextra + (request_fd >= 0);
	int last_fd = HELPER_EXTRA_FD + nextra + (request_fd >= 0) + (s.template_fd >= 0);
	if (s.flags & (SPEC_TTY | SPEC_PROXY))
		s.tty_fd = last_fd++;
	for (int fd = HELPER_EXTRA_FD; fd < last_fd; fd++)
		fcntl(fd, F_SETFD, FD_CLOEXEC);

	// The network namespace is made in the jail by a child of init
	// (init.c's start_net_maker), not here.
	uint64_t flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_PIDFD;
	int cgroup_fd = -1;
	if (s.cgroup_dir[0] != '\0') {
		// cgroup v2: init is born in the jail's cgroup.
		cgroup_fd = open(s.cgroup_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (cgroup_fd < 0) {
			fail(errno, "open cgroup", "open %s", s.cgroup_dir);
			die();
		}
		flags |= CLONE_INTO_CGROUP;
	}
	if (geteuid() == 0)
		clone_sources(&s);
	int moved = move_self(&s);
	int ready[2];
	if (pipe2(ready, O_CLOEXEC) < 0) {
		fail(errno, "helper: pipe", NULL);
		die();
	}
	int join[2] = {-1, -1};
	if ((s.flags & SPEC_JOIN_LATER) && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, join) < 0) {
		fail(errno, "helper: socketpair", NULL);
		die();
	}
	int pidfd = -1;
	struct clone_args args = {
		.flags = flags,
		.pidfd = (uint64_t)(uintptr_t)&pidfd,
		.exit_signal = SIGCHLD,
		.cgroup = (uint64_t)(cgroup_fd < 0 ? 0 : cgroup_fd),
	};
	long pid = syscall(SYS_clone3, &args, sizeof args);
	if (pid < 0) {
		fail(errno, "create namespaces", "clone3");
		die();
	}
	if (pid == 0) {
		close(ready[1]);
		if (join[0] >= 0)
			close(join[0]);
		if (cgroup_fd >= 0)
			close(cgroup_fd);
		become_init(&s, argv, ready[0], request_fd, join[1]);
	}
	close(ready[0]);
	if (join[1] >= 0)
		close(join[1]);
	int mounts = hold_mounts(pid);
	if (cgroup_fd >= 0)
		close(cgroup_fd);
	// Only init needs these.
	for (uint32_t i = 0; i < s.nmounts; i++) {
		if (s.mounts[i].tree_fd >= 0)
			close(s.mounts[i].tree_fd);
	}
	for (int fd = HELPER_EXTRA_FD; fd < last_fd; fd++)
		close(fd);
	int ok = 1;
	if (moved) {
		// init was born in the jail's cgroups; the helper goes home.
		for (char **p = s.home_tasks; ok && *p != NULL; p++) {
			if (write_file(*p, "0", 0) < 0) {
				char step[600];
				snprintf(step, sizeof step, "leave cgroup %s", *p);
				fail(errno, step, NULL);
				ok = 0;
			}
		}
	}
	ok = ok && map_ids((int)pid, &s) == 0;
	for (char **p = s.procs_files; ok && !moved && *p != NULL; p++) {
		char num[32];
		snprintf(num, sizeof num, "%ld", pid);
		if (write_file(*p, num, 0) < 0) {
			char step[600];
			snprintf(step, sizeof step, "join cgroup %s", *p);
			fail(errno, step, NULL);
			ok = 0;
		}
	}
	if (!ok || write(ready[1], "g", 1) != 1) {
		kill((pid_t)pid, SIGKILL);
		waitpid((pid_t)pid, NULL, 0);
		if (ok)
			fail(errno, "helper: start init", NULL);
		die();
	}
	if (join[0] >= 0) {
		// init builds the jail meanwhile and waits for these before it
		// starts anything of the caller's.
		int rc = pass_cgroups(join[0]);
		if (rc < 0) {
			kill((pid_t)pid, SIGKILL);
			waitpid((pid_t)pid, NULL, 0);
			die();
		}
		if (rc == 0)
			kill((pid_t)pid, SIGKILL); // obey reaps it and reports done
		close(join[0]);
	}
	// ready[1] stays open (close-on-exec, and the helper never execs) until
	// the helper exits: init polls it to learn that the helper is alive.
	report_init((int)pid);
	// The program's stdio is init's business now.
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		close(null);
	}
	obey((int)pid, pidfd);
	if (mounts >= 0)
		close(mounts); // the jail's mounts are undone here
	_exit(0);
}
