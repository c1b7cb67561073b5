// The jail's filesystem (mount.h). Parent side: the helper clones the bind
// sources on the host (mount_clone_sources_from_parent) and holds the
// jail's mount namespace. Child side: init builds the root in its private
// mount namespace (mount_build_root).
//
// Layout while init builds it:
//
//	/            staging tmpfs (the first pivot_root put it here)
//	/oldroot     the host's whole tree, where bind sources are found
//	/newroot     the jail's root (tmpfs, read-only once built)
//	/scratch     the jail's writable tmpfs: tmp/, work/, shm/ and tmpfsN/ (Config.Tmpfs) are bound into /newroot
//
// The second pivot_root makes /newroot the root and detaches the rest, host
// tree included. Pivoting first (as bubblewrap does) lets bind sources under
// the host's /tmp stay reachable although the staging tmpfs covers /tmp.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stage.h"
#include "base.h"
#include "user.h"
#include "mount.h"

#define STAGING "/tmp"
#define OLD_ROOT "/oldroot"
#define NEW_ROOT "/newroot"
#define SCRATCH "/scratch"

// Hidden behind /dev/null (files) or an empty read-only tmpfs (directories):
// they disclose kernel memory, keys or timing (runc's list), or identify the
// host without any program needing them: the kernel's command line and
// configuration, the boot id, and the host's pressure stall figures.
// /proc/meminfo, /proc/loadavg, /proc/stat and /proc/uptime stay: free,
// psutil, os.getloadavg and thread-pool sizing read them and fail outright
// on an empty file; they show how busy the host is, not which host it is.
static const char *proc_masked[] = {
    "/proc/acpi",       "/proc/asound", "/proc/kcore",      "/proc/keys",       "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/proc/kallsyms",
    "/proc/kmsg",       "/proc/interrupts", "/proc/vmallocinfo", "/proc/cmdline", "/proc/config.gz",
    "/proc/pressure",   "/proc/sys/kernel/random/boot_id", NULL,
};

// Kernel knobs the jail may read but never write.
static const char *proc_read_only[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL};

static uint64_t mount_attr_of(const struct mount_spec *m) {
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
static int open_source(const char *path, const struct mount_spec *m, const char *step) {
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

// detached_clone makes a detached copy of the mount tree at path (relative
// to fd; flags are open_tree's lookup flags) with attr set and private
// propagation.
static int detached_clone(int fd, const char *path, unsigned flags, uint64_t attr, const char *src, const char *target) {
	int tree = (int)syscall(SYS_open_tree, fd, path, flags | OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
	if (tree < 0)
		return fail(errno, target, "open_tree %s", src);
	struct mount_attr ma = {.attr_set = attr, .propagation = MS_PRIVATE};
	if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &ma, sizeof ma) < 0) {
		int err = errno;
		close(tree);
		return fail(err, target, "set attributes of %s", src);
	}
	return tree;
}

// clone_tree makes a detached copy of the mount tree at src with attr set,
// src opened by open_source.
static int clone_tree(const char *src, const struct mount_spec *m, uint64_t attr, const char *target) {
	int fd = open_source(src, m, target);
	if (fd < 0)
		return -1;
	int tree = detached_clone(fd, "", AT_EMPTY_PATH, attr, src, target);
	close(fd);
	return tree;
}

// idmap_tree makes the detached tree an idmapped mount for m's owner.
static int idmap_tree(int tree, const struct mount_spec *m, uint32_t jail_id, const char *step) {
	int userns = user_idmap_ns(m->owner_uid, m->owner_gid, jail_id, step);
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

// mount_clone_sources_from_parent clones every bind source here, on the host, as root. The
// jail's own root is an unprivileged host uid that could not even traverse
// a 0700 directory such as /root on the way to a source the caller asked
// for; what the jail may read inside is still decided by its uid. Each
// source is opened without following a symlink (open_source).
void mount_clone_sources_from_parent(struct spec *s) {
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

// mount_hold_from_parent opens the jail's mount namespace, so that the helper, not
// init, holds its last reference. init's exit then ends every process of the
// jail without also undoing ~40 mounts (and waiting for an expedited RCU
// grace period): that happens when the helper closes it, after its done
// report, on its way out (0.2-0.4 ms of a cold jail, A/B). Nothing of it is
// on the host, as a network namespace's deferred cleanup is not. -1 when it
// cannot be opened: then init's exit undoes the mounts, as before.
int mount_hold_from_parent(long pid) {
	char path[64];
	snprintf(path, sizeof path, "/proc/%ld/ns/mnt", pid);
	return open(path, O_RDONLY | O_CLOEXEC);
}

static int mount_tmpfs(const char *dir, const char *data, unsigned long flags) {
	if (mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV | flags, data) < 0) {
		char step[600];
		snprintf(step, sizeof step, "mount tmpfs %s", dir);
		return fail(errno, step, NULL);
	}
	return 0;
}

static int set_attr(const char *path, uint64_t attr) {
	struct mount_attr ma = {.attr_set = attr};
	return (int)syscall(SYS_mount_setattr, AT_FDCWD, path, 0, &ma, sizeof ma);
}

// Jail paths are relative to the new root's fd: "/a/b" -> "a/b", "/" -> ".".
static const char *rel(const char *path) {
	while (*path == '/')
		path++;
	return *path == '\0' ? "." : path;
}

// open_beneath opens path (a jail path) relative to root, never leaving it
// and never following a symlink or a magic link.
static int open_beneath(int root, const char *path, int flags) {
	struct open_how how = {
	    .flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW),
	    .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	return (int)syscall(SYS_openat2, root, rel(path), &how, sizeof how);
}

// make_parents creates the directories above target, refusing symlinks.
static int make_parents(int root, const char *target) {
	char step[4200];
	snprintf(step, sizeof step, "create mount point %s", target);
	char path[4096];
	snprintf(path, sizeof path, "%s", target);
	char *last = strrchr(path, '/');
	if (last == NULL)
		return 0;
	*last = '\0';
	int dir = open_beneath(root, "/", O_DIRECTORY);
	if (dir < 0)
		return fail(errno, step, "open / in jail");
	for (char *save = NULL, *name = strtok_r(path, "/", &save); name != NULL; name = strtok_r(NULL, "/", &save)) {
		if (mkdirat(dir, name, 0755) < 0 && errno != EEXIST) {
			int err = errno;
			close(dir);
			return fail(err, step, NULL);
		}
		int next = open_beneath(dir, name, O_DIRECTORY);
		int err = errno;
		close(dir);
		if (next < 0)
			return fail(err, step, "open %s in jail", name);
		dir = next;
	}
	close(dir);
	return 0;
}

// open_parent opens the directory that is to hold target, beneath root,
// creating what is missing of it; *name is target's last component.
static int open_parent(int root, const char *target, const char *step, const char **name) {
	const char *slash = strrchr(target, '/');
	*name = slash != NULL ? slash + 1 : target;
	size_t len = slash != NULL ? (size_t)(slash - target) : 0;
	char parent_path[4096] = "/";
	if (len >= sizeof parent_path)
		return fail(ENAMETOOLONG, step, NULL);
	if (len > 0) {
		memcpy(parent_path, target, len);
		parent_path[len] = '\0';
	}
	int parent = open_beneath(root, parent_path, O_DIRECTORY);
	if (parent < 0 && errno == ENOENT) {
		if (make_parents(root, target) < 0)
			return -1;
		parent = open_beneath(root, parent_path, O_DIRECTORY);
	}
	if (parent < 0)
		return fail(errno, step, "open %s in jail", parent_path);
	return parent;
}

// attach_tree attaches a detached mount tree at target. The target is
// created and opened beneath the new root without following any symlink,
// and the tree is attached to that open file, so nothing can redirect it
// (CVE-2021-30465).
static int attach_tree(int root, int tree, const char *target) {
	char step[4200];
	snprintf(step, sizeof step, "bind %s", target);
	struct stat st;
	if (fstat(tree, &st) < 0)
		return fail(errno, step, NULL);
	const char *name;
	int parent = open_parent(root, target, step, &name);
	if (parent < 0)
		return -1;
	// The mount point: a directory or an empty file; an existing one is reused.
	int rc;
	if (S_ISDIR(st.st_mode)) {
		rc = mkdirat(parent, name, 0755);
	} else {
		rc = openat(parent, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (rc >= 0)
			close(rc);
	}
	if (rc < 0 && errno != EEXIST) {
		int err = errno;
		close(parent);
		char mkstep[4200];
		snprintf(mkstep, sizeof mkstep, "create mount point %s", target);
		return fail(err, mkstep, NULL);
	}
	int dst = open_beneath(parent, name, O_PATH);
	int err = errno;
	close(parent);
	if (dst < 0)
		return fail(err, step, "open %s in jail", target);
	// O_PATH|O_NOFOLLOW opens a symlink itself: one in a writable bind
	// may have been planted there by an earlier jail.
	if (fstat(dst, &st) == 0 && S_ISLNK(st.st_mode)) {
		close(dst);
		return fail(ELOOP, step, "%s is a symlink (in a writable bind, a jail may have put it there): nothing is mounted over it", target);
	}
	rc = (int)syscall(SYS_move_mount, tree, "", dst, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
	err = errno;
	close(dst);
	if (rc < 0)
		return fail(err, step, "move_mount");
	return 0;
}

// bind_from binds src (a path in init's current view) onto target (a path
// in the jail) with the given mount attributes, recursively; m, when not
// NULL, is the caller's bind whose source src is (clone_tree checks it).
static int bind_from(int root, const char *src, const struct mount_spec *m, const char *target, uint64_t attr) {
	char step[4200];
	snprintf(step, sizeof step, "bind %s", target);
	int tree = clone_tree(src, m, attr, step);
	if (tree < 0)
		return -1;
	int rc = attach_tree(root, tree, target);
	close(tree);
	return rc;
}

// bind_onto binds src onto dst by path; for paths inside the freshly built
// jail that nothing untrusted has touched yet. With attr 0 the clone keeps
// src's mount attributes as they are.
static int bind_onto(const char *src, const char *dst, uint64_t attr) {
	int tree = (int)syscall(SYS_open_tree, AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
	if (tree < 0)
		return -1;
	struct mount_attr ma = {.attr_set = attr};
	int rc = attr == 0 ? 0 : (int)syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &ma, sizeof ma);
	if (rc == 0)
		rc = (int)syscall(SYS_move_mount, tree, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH);
	int err = errno;
	close(tree);
	errno = err;
	return rc;
}

static int mount_devpts(void) {
	if (mount("devpts", NEW_ROOT "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,max=64") < 0)
		return fail(errno, "mount /dev/pts", NULL);
	return 0;
}

// bind_scratch gives the jail its writable places, all on one size-limited
// tmpfs so a disk fill anywhere hits the same cap.
static int bind_scratch(int root, const char *work_dir) {
	struct {
		const char *name, *target;
		mode_t mode;
		int owned;
	} dirs[] = {{"tmp", "/tmp", 01777, 0}, {"shm", "/dev/shm", 01777, 0}, {"work", work_dir, 0755, 1}};
	for (size_t i = 0; i < 3; i++) {
		char src[64], step[4200];
		snprintf(src, sizeof src, SCRATCH "/%s", dirs[i].name);
		if (mkdir(src, 0) < 0) {
			snprintf(step, sizeof step, "mkdir scratch %s", dirs[i].name);
			return fail(errno, step, NULL);
		}
		// mkdir's mode passes through the umask; sticky bits need chmod.
		if (chmod(src, dirs[i].mode) < 0) {
			snprintf(step, sizeof step, "chmod scratch %s", dirs[i].name);
			return fail(errno, step, NULL);
		}
		if (dirs[i].owned && chown(src, JAIL_UID, JAIL_GID) < 0) {
			snprintf(step, sizeof step, "chown scratch %s", dirs[i].name);
			return fail(errno, step, NULL);
		}
		// Cloned by path: src is init's own, on a tmpfs that only init's
		// mount namespace has, so nothing can have put a symlink in it
		// (open_source's check is for the caller's sources).
		snprintf(step, sizeof step, "bind %s", dirs[i].target);
		int tree = detached_clone(AT_FDCWD, src, 0, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, src, step);
		if (tree < 0)
			return -1;
		int rc = attach_tree(root, tree, dirs[i].target);
		close(tree);
		if (rc < 0)
			return -1;
	}
	return 0;
}

// bind_tmpfs gives target a fresh directory of the scratch tmpfs
// (Config.Tmpfs): the program's, writable as the work directory, and
// counted in the one size and inode cap with /tmp, the work directory and
// /dev/shm, however many the caller asks for.
static int bind_tmpfs(int root, const char *target) {
	static unsigned n;
	char src[64], step[4200];
	snprintf(src, sizeof src, SCRATCH "/tmpfs%u", n++);
	snprintf(step, sizeof step, "tmpfs %s", target);
	if (mkdir(src, 0) < 0)
		return fail(errno, step, "mkdir %s", src);
	if (chmod(src, 0755) < 0 || chown(src, JAIL_UID, JAIL_GID) < 0)
		return fail(errno, step, "chmod and chown %s", src);
	if (bind_from(root, src, NULL, target, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV) < 0) {
		// Named as the caller asked for it; the bind it is made of says why.
		return fail_under(step);
	}
	return 0;
}

// copy_data copies size bytes (at most MAX_COPY) from in to out. sendfile
// copies in the kernel: no buffer of init's is touched, so no page of it
// faults in (a jail copies ~150 KB of /etc); read and write are the fallback.
static int copy_data(int in, int out, off_t size) {
	size_t left = size < (off_t)MAX_COPY ? (size_t)size : MAX_COPY;
	if (left == 0)
		return 0;
	size_t want = left;
	ssize_t n = 0;
	while (left > 0 && (n = sendfile(out, in, NULL, left)) > 0)
		left -= (size_t)n;
	if (left == 0 || n == 0)
		return 0;
	if (left != want || (errno != EINVAL && errno != ENOSYS))
		return -1;
	static char buf[MAX_COPY];
	n = read(in, buf, want);
	if (n < 0)
		return -1;
	ssize_t w = write(out, buf, (size_t)n);
	if (w != n) {
		errno = w < 0 ? errno : EIO;
		return -1;
	}
	return 0;
}

// The jail directory the last entry went into, kept open for the next
// entries into the same directory (most go to /etc or /dev): each then
// costs one openat beneath the root less. apply_mount forgets it before
// anything is mounted over a directory, which could be this one.
static struct {
	char path[4096];
	int fd;
} entry_dir = {"", -1};

static void forget_entry_dir(void) {
	if (entry_dir.fd >= 0)
		close(entry_dir.fd);
	entry_dir.fd = -1;
	entry_dir.path[0] = '\0';
}

// entry_parent is open_parent through entry_dir: the caller must not
// close what it returns.
static int entry_parent(int root, const char *target, const char *step, const char **name) {
	const char *slash = strrchr(target, '/');
	size_t dirlen = slash != NULL ? (size_t)(slash - target) : 0;
	*name = slash != NULL ? slash + 1 : target;
	if (entry_dir.fd >= 0 && strlen(entry_dir.path) == dirlen && strncmp(entry_dir.path, target, dirlen) == 0)
		return entry_dir.fd;
	forget_entry_dir();
	if (dirlen >= sizeof entry_dir.path)
		return fail(ENAMETOOLONG, step, NULL);
	int parent = open_parent(root, target, step, name);
	if (parent < 0)
		return -1;
	memcpy(entry_dir.path, target, dirlen);
	entry_dir.path[dirlen] = '\0';
	entry_dir.fd = parent;
	return parent;
}

// make_dir makes a MOUNT_DIR entry; with MOUNT_TMPFS it mounts a tmpfs of
// its own there (/dev: devices allowed), by path, as nothing but init has
// touched the new root yet.
static int make_dir(int root, const struct mount_spec *m) {
	char step[4200];
	snprintf(step, sizeof step, "mkdir %s", m->target);
	const char *name;
	int parent = entry_parent(root, m->target, step, &name);
	if (parent < 0)
		return -1;
	if (mkdirat(parent, name, m->mode) < 0)
		return fail(errno, step, NULL);
	if (!(m->flags & MOUNT_TMPFS))
		return 0;
	forget_entry_dir();
	char path[4200];
	snprintf(path, sizeof path, NEW_ROOT "%s", m->target);
	snprintf(step, sizeof step, "mount %s", m->target);
	if (mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NOEXEC, m->source) < 0)
		return fail(errno, step, NULL);
	return 0;
}

// write_entry makes a MOUNT_FILE entry: content, in one write.
static int write_entry(int root, const struct mount_spec *m) {
	char step[4200];
	snprintf(step, sizeof step, "write %s", m->target);
	const char *name;
	int parent = entry_parent(root, m->target, step, &name);
	if (parent < 0)
		return -1;
	int fd = openat(parent, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, m->mode);
	if (fd < 0)
		return fail(errno, step, NULL);
	size_t n = strlen(m->content);
	ssize_t w = write(fd, m->content, n);
	int err = w < 0 ? errno : EIO;
	close(fd);
	return w != (ssize_t)n ? fail(err, step, NULL) : 0;
}

// bind_device binds a MOUNT_DEVICE entry's host node onto a file of the
// tmpfs just mounted, which nothing but init has touched: by path, as
// bind_onto does for /proc's masks, without attach_tree's checks against
// a jail that could race it.
static int bind_device(int root, const struct mount_spec *m) {
	char step[4200], src[4200], dst[4200];
	snprintf(step, sizeof step, "bind %s", m->target);
	const char *name;
	int parent = entry_parent(root, m->target, step, &name);
	if (parent < 0)
		return -1;
	int point = openat(parent, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (point < 0)
		return fail(errno, step, "create mount point");
	close(point);
	snprintf(src, sizeof src, OLD_ROOT "%s", m->source);
	snprintf(dst, sizeof dst, NEW_ROOT "%s", m->target);
	if (bind_onto(src, dst, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC) < 0)
		return fail(errno, step, NULL);
	return 0;
}

static int make_symlink(int root, const struct mount_spec *m) {
	char step[4200];
	snprintf(step, sizeof step, "symlink %s", m->target);
	const char *name;
	int parent = entry_parent(root, m->target, step, &name);
	if (parent < 0)
		return -1;
	return symlinkat(m->symlink, parent, name) < 0 ? fail(errno, step, NULL) : 0;
}

// copy_file copies a small host file (src, in init's view) to target in
// the jail, created beneath root without following symlinks. An optional
// source that is absent is skipped.
static int copy_file(int root, const char *src, const char *target, int optional) {
	char step[4200];
	snprintf(step, sizeof step, "copy %s", target);
	// O_NONBLOCK: a FIFO put in a file's place must not hang the jail.
	int in = open(src, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (in < 0 && optional && (errno == ENOENT || errno == ENOTDIR))
		return 0;
	if (in < 0)
		return fail(errno, step, "open %s", src);
	struct stat st;
	if (fstat(in, &st) < 0) {
		int err = errno;
		close(in);
		return fail(err, step, "stat %s", src);
	}
	if (!S_ISREG(st.st_mode)) {
		close(in);
		return fail(EINVAL, step, "%s is not a regular file", src);
	}
	const char *name;
	int parent = entry_parent(root, target, step, &name);
	if (parent < 0) {
		close(in);
		return -1;
	}
	int out = openat(parent, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, st.st_mode & 0755);
	if (out < 0) {
		int err = errno;
		close(in);
		return fail(err, step, NULL);
	}
	int rc = copy_data(in, out, st.st_size);
	int err = errno;
	close(in);
	close(out);
	return rc < 0 ? fail(err, step, "copy from %s", src) : 0;
}

// apply_mount applies one entry of the root's description (wire.go's
// mountSpec): the supervisor decided it; this is only the mechanism.
static int apply_mount(int root, struct mount_spec *m) {
	if (m->flags & MOUNT_DIR)
		return make_dir(root, m);
	if (m->flags & MOUNT_FILE)
		return write_entry(root, m);
	if (m->flags & MOUNT_DEVICE)
		return bind_device(root, m);
	if (m->symlink[0] != '\0')
		return make_symlink(root, m);
	char src[4200];
	snprintf(src, sizeof src, OLD_ROOT "%s", m->source);
	if (m->flags & MOUNT_COPY)
		return copy_file(root, src, m->target, (m->flags & MOUNT_OPTIONAL) != 0);
	// What follows mounts over a directory, maybe the one entry_dir holds.
	forget_entry_dir();
	if (m->flags & MOUNT_TMPFS)
		return bind_tmpfs(root, m->target);
	if (m->tree_fd >= 0) {
		int rc = attach_tree(root, m->tree_fd, m->target);
		close(m->tree_fd);
		m->tree_fd = -1;
		return rc;
	}
	struct stat st;
	if ((m->flags & MOUNT_OPTIONAL) && lstat(src, &st) < 0)
		return 0;
	if (m->flags & MOUNT_IDMAP) // only a privileged helper makes one (mount_clone_sources_from_parent)
		return fail(EPERM, "bind", "%s: an idmapped bind needs a supervisor running as root", m->target);
	return bind_from(root, src, m, m->target, mount_attr_of(m));
}

// apply_root applies brig's own entries of the root (rootfs.go's rootOwn)
// and makes each tmpfs of their own read-only: nothing may be created in
// /dev. Mount points in it (/dev/shm, /dev/pts) exist already.
static int apply_root(int root, struct spec *s) {
	for (uint32_t i = 0; i < s->nroot; i++) {
		if (apply_mount(root, &s->root[i]) < 0)
			return -1;
	}
	forget_entry_dir();
	for (uint32_t i = 0; i < s->nroot; i++) {
		const struct mount_spec *m = &s->root[i];
		char path[4200], step[4200];
		snprintf(path, sizeof path, NEW_ROOT "%s", m->target);
		if ((m->flags & (MOUNT_DIR | MOUNT_TMPFS)) == (MOUNT_DIR | MOUNT_TMPFS) && set_attr(path, MOUNT_ATTR_RDONLY) < 0) {
			snprintf(step, sizeof step, "remount %s read-only", m->target);
			return fail(errno, step, NULL);
		}
	}
	return 0;
}

// mount_proc mounts a /proc of the jail's own PID namespace, then masks and
// write-protects the parts that reach the host kernel. It must happen
// before the host tree is detached: the kernel lets a user namespace mount
// proc only while an unobstructed proc is visible.
static int mount_proc(void) {
	if (mkdir(NEW_ROOT "/proc", 0555) < 0 && errno != EEXIST) // a template has it
		return fail(errno, "mkdir /proc", NULL);
	if (mount("proc", NEW_ROOT "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return fail(errno, "mount /proc", NULL);
	// Read-only first: its recursive nodev would reach the /dev/null masks
	// below it (/proc/sys/kernel/random/boot_id) and make them unreadable.
	for (const char **p = proc_read_only; *p != NULL; p++) {
		char path[128], step[128];
		snprintf(path, sizeof path, NEW_ROOT "%s", *p);
		struct stat st;
		if (lstat(path, &st) < 0)
			continue;
		if (bind_onto(path, path, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC) < 0) {
			snprintf(step, sizeof step, "make %s read-only", *p);
			return fail(errno, step, NULL);
		}
	}
	// The first file mask is a read-only clone of /dev/null; the others
	// are clones of that mount, which carry its attributes: one
	// mount_setattr for all of them. Likewise the first directory mask is
	// an empty read-only tmpfs and the others are clones of it: the same
	// empty directory, whose superblock is read-only too, so nothing
	// written through one can show in another, and one tmpfs to make and
	// tear down instead of one per directory.
	const char *null_mask = NEW_ROOT "/dev/null";
	uint64_t null_attr = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC;
	char first_mask[128], first_dir_mask[128] = "";
	for (const char **p = proc_masked; *p != NULL; p++) {
		char path[128], step[128];
		snprintf(path, sizeof path, NEW_ROOT "%s", *p);
		struct stat st;
		if (lstat(path, &st) < 0)
			continue; // not on this kernel
		int rc;
		if (S_ISDIR(st.st_mode) && first_dir_mask[0] != '\0') {
			rc = bind_onto(first_dir_mask, path, 0);
		} else if (S_ISDIR(st.st_mode)) {
			rc = mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=0555");
			if (rc == 0)
				snprintf(first_dir_mask, sizeof first_dir_mask, "%s", path);
		} else {
			rc = bind_onto(null_mask, path, null_attr);
			if (rc == 0 && null_attr != 0) {
				snprintf(first_mask, sizeof first_mask, "%s", path);
				null_mask = first_mask;
				null_attr = 0;
			}
		}
		if (rc < 0) {
			snprintf(step, sizeof step, "mask %s", *p);
			return fail(errno, step, NULL);
		}
	}
	return 0;
}

// attach_template attaches a clone of the root template (roottemplate.go)
// at the new root. The clone is the jail's alone; the template's tmpfs and
// files belong to the host's root, so no jail can change what others see.
static int attach_template(struct spec *s) {
	int tree = (int)syscall(SYS_open_tree, s->template_fd, "",
	                        OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
	int err = errno;
	close(s->template_fd);
	s->template_fd = -1;
	if (tree < 0)
		return fail(err, "clone root template", NULL);
	int rc = (int)syscall(SYS_move_mount, tree, "", AT_FDCWD, NEW_ROOT, MOVE_MOUNT_F_EMPTY_PATH);
	err = errno;
	close(tree);
	return rc < 0 ? fail(err, "attach root template", NULL) : 0;
}

// mount_build_root builds the jail's root and makes it init's: staging
// tmpfs, the root (a template's clone or a tmpfs and brig's own entries),
// scratch binds, the caller's binds, /proc, read-only, pivot_root.
int mount_build_root(struct spec *s) {
	if (mount("", "/", "", MS_REC | MS_PRIVATE, NULL) < 0)
		return fail(errno, "make mounts private", NULL);
	if (mount_tmpfs(STAGING, "mode=0700,size=64k", 0) < 0)
		return -1;
	const char *dirs[] = {STAGING OLD_ROOT, STAGING NEW_ROOT, STAGING SCRATCH};
	for (int i = 0; i < 3; i++) {
		if (mkdir(dirs[i], 0700) < 0) {
			char step[64];
			snprintf(step, sizeof step, "mkdir %s", dirs[i] + strlen(STAGING));
			return fail(errno, step, NULL);
		}
	}
	if (syscall(SYS_pivot_root, STAGING, STAGING OLD_ROOT) < 0)
		return fail(errno, "pivot_root to staging", NULL);
	if (chdir("/") < 0)
		return fail(errno, "chdir /", NULL);
	// The root: a clone of the supervisor's root template, or a tmpfs
	// built below.
	if (s->template_fd >= 0) {
		if (attach_template(s) < 0)
			return -1;
	} else if (mount_tmpfs(NEW_ROOT, "mode=0755,size=4m", 0) < 0) {
		return -1;
	}
	char data[128];
	uint64_t inodes = s->tmpfs_size >> 10;
	snprintf(data, sizeof data, "mode=0755,size=%llu,nr_inodes=%llu", (unsigned long long)s->tmpfs_size,
	         (unsigned long long)(inodes > 1024 ? inodes : 1024));
	if (mount_tmpfs(SCRATCH, data, 0) < 0)
		return -1;
	int root = open(NEW_ROOT, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return fail(errno, "open new root", NULL);
	// The description's modes are the modes made, whatever the
	// supervisor's umask; the program gets that umask back.
	mode_t umask_was = umask(0);
	int rc = -1;
	if (s->flags & SPEC_TEMPLATE) {
		// The template has /etc, /dev's nodes, the system mounts and
		// every mount point; devpts, the scratch binds and the caller's
		// binds (all that s->mounts holds then) are the jail's own.
		if (mount_devpts() < 0 || bind_scratch(root, s->dir) < 0)
			goto out;
	} else if (apply_root(root, s) < 0 || mount_devpts() < 0 || bind_scratch(root, s->dir) < 0) {
		goto out;
	}
	for (uint32_t i = 0; i < s->nmounts; i++) {
		if (apply_mount(root, &s->mounts[i]) < 0)
			goto out;
	}
	forget_entry_dir();
	if (mount_proc() < 0)
		goto out;
	if (set_attr(NEW_ROOT, MOUNT_ATTR_RDONLY) < 0) {
		fail(errno, "remount / read-only", NULL);
		goto out;
	}
	// pivot_root(".", ".") stacks the old root on the new one; detaching
	// "." then takes the staging tmpfs, the host tree and /scratch with it.
	if (chdir(NEW_ROOT) < 0) {
		fail(errno, "chdir new root", NULL);
		goto out;
	}
	if (syscall(SYS_pivot_root, ".", ".") < 0) {
		fail(errno, "pivot_root", NULL);
		goto out;
	}
	if (umount2(".", MNT_DETACH) < 0) {
		fail(errno, "detach old root", NULL);
		goto out;
	}
	if (chdir("/") < 0) {
		fail(errno, "chdir /", NULL);
		goto out;
	}
	rc = 0;
out:
	umask(umask_was);
	close(root);
	return rc;
}
