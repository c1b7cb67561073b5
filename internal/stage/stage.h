// The jail's own stages (helper, init, program set-up) are C that runs in a
// constructor of the embedding binary, before the Go runtime starts: a re-exec
// of the binary then costs what an exec of a tiny C program costs, and init
// forks the program without a second exec. See wire.go for the stages and
// the spec they read, wire_doc.go for every message between them.
//
// The C is layered, and calls only go down (layers_test.go checks the
// includes): this header (constants and wire structs); base.h (failures,
// events, fd reads) and wire.h (the readers of the spec and of a pooled
// request); one file per isolation concern (user, cgroup, mount, net, ipc,
// tty, pid, signals, rlimit, caps, seccomp), each with a parent-side entry
// the helper calls on the host and a child-side entry init or the exec stage
// calls in the jail; and the stages, recipes that call the concerns in
// order: execstage.c, init.c (containProc's shape), helper.c, spawner.c and
// stage.c's dispatch on argv[0].
//
// Every value the supervisor (Go) and the stages (C) must agree on is
// defined here, once; wire.go reads them through cgo, so a change here is a
// change of both sides. Integers on every channel are in the machine's own
// byte order: both ends are the same binary on the same machine.
#ifndef BRIG_STAGE_H
#define BRIG_STAGE_H

#include <stddef.h>
#include <stdint.h>

#define SPAWNER_ARG0 "brig:spawner"
#define HELPER_ARG0 "brig:helper" // what a spawned helper calls itself: no longer than SPAWNER_ARG0
#define INIT_ARG0 "brig:init"     // what init calls itself: no longer than HELPER_ARG0
#define SPEC_MAGIC "BRIGSPEC4"
#define EXEC_MAGIC "BRIGEXEC1"

#define SPAWNER_FD 3 // the spawner's socket (spawner.go's startSpawner)

// fds of the helper (wire.go)
#define SPEC_FD 3
#define STATUS_FD 4
#define CONTROL_FD 5
#define HELPER_EXTRA_FD 6

#define SPEC_NEW_NET 1u
#define SPEC_POOLED 2u
#define SPEC_PRIVILEGED 4u
#define SPEC_PREFORK 8u // pooled, and the program's process waits for the request itself
#define SPEC_JOIN_LATER 16u // cgroup v1 tasks files come on the control pipe; init joins itself
#define SPEC_TEMPLATE 32u   // the root template's fd follows the extra files (roottemplate.go)
#define SPEC_TTY 128u // the program gets a pty of the jail's devpts; its socket follows the template's fd (tty.c's tty_open)
#define SPEC_PROXY 256u // init hands up a listener at 127.0.0.1:EGRESS_PORT of the jail's network (proxy.c)
#define EGRESS_PORT 3128 // the egress proxy's port on the jail's lo
#define HANDBACK_PROXY 'P' // the handback socket's message carrying the egress listener (the pty's master: 0)
#define MAX_JOIN 8          // cgroup v1 hierarchies a JoinLater jail joins, at most
#define MAX_JOIN_LEN (64u << 10) // bytes of CONTROL_JOIN's list, at most

// Commands on the control pipe (CONTROL_FD), a byte each and what the
// comment says follows it; EOF means the supervisor died, and kills the
// jail like CONTROL_KILL.
#define CONTROL_KILL 'k'   // kill the whole jail
#define CONTROL_SIGNAL 's' // followed by a signal number byte: for the program's process group
#define CONTROL_JOIN 'j'   // followed by a u32 length and a JoinLater jail's "tasks" files (strs)

#define MAX_REQUEST (64u << 20) // bytes of a pooled jail's request body, at most

#define MOUNT_WRITABLE 1u
#define MOUNT_OPTIONAL 2u
#define MOUNT_COPY 4u
#define MOUNT_CHECK_ID 8u // source must open, following no symlink, to dev:ino (wire.go's mountSpec)
#define MOUNT_IDMAP 16u   // an idmapped mount: owner_uid:owner_gid on the host is the jail's user
#define MOUNT_TMPFS 32u   // no source: target gets a fresh directory of the scratch tmpfs (Config.Tmpfs);
                          // with MOUNT_DIR: a tmpfs of its own, source its options (/dev)
#define MOUNT_DIR 64u     // target is made a directory of the given mode
#define MOUNT_FILE 128u   // target is made a file of the given mode holding content
#define MOUNT_DEVICE 256u // the host's device node source is bound onto target (nosuid, noexec)
#define MAX_COPY (128u << 10) // bytes of a file copied into the root rather than bound, at most

#define JAIL_UID 1000
#define JAIL_GID 1000
#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"
#define MAX_EXTRA 64 // extra files a jail passes on (Cmd.ExtraFiles), at most

// One entry of the jail's root (wire.go's mountSpec): the supervisor
// decides every entry; init only applies them (mount.c's apply_mount).
struct mount_spec {
	char *source, *target, *symlink, *content;
	uint32_t flags;
	uint32_t mode;                // MOUNT_DIR, MOUNT_FILE
	uint64_t dev, ino;            // MOUNT_CHECK_ID
	uint32_t owner_uid, owner_gid; // MOUNT_IDMAP
	int tree_fd; // a clone of source made on the host by a privileged helper, or -1
};

struct rlimit_spec {
	uint32_t resource;
	uint64_t cur, max;
};

struct exec_settings {
	uint32_t uid, gid;
	uint32_t nrlimits;
	struct rlimit_spec *rlimits;
	uint32_t nextra;
	uint32_t filter_len; // bytes of struct sock_filter
	void *filter;
};

struct spec {
	uint32_t flags;
	uint32_t init_id, jail_id, gid; // host ids (ids.go's hostIDLease)
	char *path;
	char **args, **env;
	char *dir, *hostname;
	uint64_t tmpfs_size;
	uint32_t nroot; // brig's own entries of the root (rootfs.go's rootOwn), applied first
	struct mount_spec *root;
	uint32_t nmounts; // the system mounts and the caller's binds
	struct mount_spec *mounts;
	char *cgroup_dir;
	char **procs_files;
	char **join_tasks, **home_tasks;
	char **ipc_sysctls; // "kernel/msgmni=64": paths under /proc/sys (ipclimits.go)
	struct exec_settings exec;
	int template_fd; // not in the spec: the helper's fd of the root template, or -1
	int tty_fd;      // not in the spec: the handback socket to the supervisor (SPEC_TTY, SPEC_PROXY), or -1
};

// A reader over bytes in memory; the first malformed field sets bad.
struct reader {
	const uint8_t *p;
	size_t n;
	int bad;
};

#endif
