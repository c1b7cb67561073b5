// User ids (user.h). The jail's root is one unprivileged host id and its
// user another; host root is never mapped.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stage.h"
#include "base.h"
#include "user.h"

// user_map_from_parent writes the maps of init's user namespace (pid is
// init's, still waiting for the helper's go-ahead).
int user_map_from_parent(int pid, const struct spec *s) {
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

// user_idmap_ns returns an fd of a new user namespace that maps, and only
// maps, the host owner uid:gid to the jail user's host id: an idmapped
// mount with it shows the owner's files as the jail user's, and files the
// jail user creates land on disk as the owner's. Its only process, a child
// that waits on a pipe, is reaped before this returns; the mount keeps a
// copy of the map, not the namespace.
int user_idmap_ns(uint32_t uid, uint32_t gid, uint32_t jail_id, const char *step) {
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

// user_enter_as_init runs in init once the helper mapped its ids: it takes
// the jail's root id (or, unprivileged, the jail user's), keeping the
// namespace's capabilities without an execve.
int user_enter_as_init(const struct spec *s) {
	uid_t uid = (s->flags & SPEC_PRIVILEGED) ? 0 : JAIL_UID;
	gid_t gid = (s->flags & SPEC_PRIVILEGED) ? 0 : JAIL_GID;
	if (setresgid(gid, gid, gid) < 0)
		return fail(errno, "create namespaces", "setresgid");
	if (setresuid(uid, uid, uid) < 0)
		return fail(errno, "create namespaces", "setresuid");
	return 0;
}

// user_own_ns_as_root makes the calling process (a child of init) the root
// of a new user namespace below the jail's whose root is the jail user's id
// (ipc.c's own_ipc_namespace). It is made dumpable first, so that its
// /proc/self files are its own to write (init is not: init.c's
// become_init). It returns 0 or the errno of the step that failed.
int user_own_ns_as_root(void) {
	char map[32];
	snprintf(map, sizeof map, "0 %d 1\n", JAIL_UID);
	if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0 || unshare(CLONE_NEWUSER) < 0 || write_file("/proc/self/setgroups", "deny", 0) < 0 ||
	    write_file("/proc/self/uid_map", map, 0) < 0)
		return errno;
	snprintf(map, sizeof map, "0 %d 1\n", JAIL_GID);
	if (write_file("/proc/self/gid_map", map, 0) < 0)
		return errno;
	return 0;
}

// user_set_loginuid gives the jail the audit login uid of its user before
// anything of the caller's runs; every process of the jail inherits it. A
// task whose login uid is unset may set it once without privilege, so a
// jail that inherited an unset one could otherwise claim any. Once set,
// changing it needs CAP_AUDIT_CONTROL in the host's user namespace, which
// nothing in a jail has: when the host had set it already, the jail keeps
// that one (shown as unmapped) and cannot change it either.
int user_set_loginuid(void) {
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

// user_become_program switches the exec stage to the program's ids (the
// jail user), with raw system calls: the stage shares init's memory
// (execstage.c), and libc's wrappers would change every thread's.
void user_become_program(const struct exec_settings *e, int report_fd) {
	// setgroups is denied in the jail's user namespace; the supplementary
	// groups were already emptied on the host before the namespace existed.
	if (syscall(SYS_setresgid, e->gid, e->gid, e->gid) < 0)
		child_fail(report_fd, "setresgid", errno);
	if (syscall(SYS_setresuid, e->uid, e->uid, e->uid) < 0)
		child_fail(report_fd, "setresuid", errno);
}
