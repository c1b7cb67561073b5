package stage

// The messages between the jail's processes, in one place. Names in capitals
// are stage.h's, which defines every value both sides use; wire.go reads
// them through cgo, so Go and C cannot spell one differently.
//
// The Go files named without a package (instance.go, pool.go, rootfs.go,
// tty.go ...) are internal/supervisor's, the host side of the messages.
//
// One rule for every integer on every channel: native byte order and width
// as stated (u16, u32, u64), never text. Both ends are this binary on this
// machine; a stage is never another build. A string (str) is a u32 length
// and that many bytes, no NUL among them; a list (strs) is a u32 count and
// that many strs (wire.go's encoder, wire.c's get_str and get_strs).
//
// # Between the supervisor (Go) and the stages (C)
//
// 1. Stage start. A stage is /proc/self/exe run again with argv[0]
// SPAWNER_ARG0 or HELPER_ARG0 and an empty environment (stageCmd); the
// constructor (stage.c) runs it before the Go runtime starts. A spawned
// helper and init rename themselves to HELPER_ARG0 and INIT_ARG0, which
// are no longer than the name they replace.
//
// 2. Spawner request. Supervisor → spawner, on the SOCK_SEQPACKET socket
// that is the spawner's SPAWNER_FD (spawner.go's spawnHelper, spawner.c): one
// message of one byte (0) carrying, as SCM_RIGHTS, the helper's fds in the
// order of message 3. No reply: the forked helper reports on its status
// pipe, as does the spawner when the fork fails. When: each jail, once the
// process has a spawner; otherwise the supervisor execs the helper itself.
//
// 3. Helper fds. Set by the supervisor (instance.go's startHelper: ExtraFiles
// start at fd 3), read by helper.c: 0-2 stdio (a TTY jail's are
// /dev/null), SPEC_FD the spec's read end, STATUS_FD the status pipe's
// write end, CONTROL_FD the control pipe's read end, then from
// HELPER_EXTRA_FD: a pooled jail's request socket (message 7) or the
// caller's extra files (nextra of the exec settings, at most MAX_EXTRA),
// then the root template's fd when SPEC_TEMPLATE, then the handback socket
// when SPEC_TTY or SPEC_PROXY (message 8). wire.go does not compile unless the fd
// numbers match the order Go passes them in.
//
// 4. Spec. Supervisor → helper on SPEC_FD, read to EOF (wire.go's
// spec.encode, wire.c's parse_spec; init is the helper's clone and has it
// already). When: once, as the helper starts. Layout:
//
//	SPEC_MAGIC (its bytes, no length)
//	u32 flags        SPEC_NEW_NET, SPEC_POOLED, SPEC_PRIVILEGED, SPEC_PREFORK,
//	                 SPEC_JOIN_LATER, SPEC_TEMPLATE, SPEC_TTY, SPEC_PROXY
//	u32 init_id, u32 jail_id, u32 gid   host ids (ids.go)
//	str path, strs args, strs env       empty for a pooled jail (message 7 brings them)
//	str dir, str hostname
//	u64 tmpfs_size
//	u32 nroot, then nroot entries        brig's own part of the root (rootfs.go's
//	                                     rootOwn); none with SPEC_TEMPLATE
//	u32 nmounts, then nmounts entries    the system mounts and the caller's binds
//	each entry (wire.go's mountSpec, wire.c's get_mounts):
//	    str source, str target, str symlink, str content,
//	    u32 flags    MOUNT_WRITABLE, MOUNT_OPTIONAL, MOUNT_COPY (at most MAX_COPY
//	                 bytes), MOUNT_CHECK_ID, MOUNT_IDMAP, MOUNT_TMPFS, MOUNT_DIR,
//	                 MOUNT_FILE, MOUNT_DEVICE
//	    u32 mode     MOUNT_DIR, MOUNT_FILE
//	    u64 dev, u64 ino, u32 owner_uid, u32 owner_gid
//	str cgroup_dir, strs procs_files, strs join_tasks, strs home_tasks
//	strs ipc_sysctls                    "kernel/msgmni=64" (ipclimits.go)
//	u32 length, then the exec settings (execstage.go, wire.c's parse_exec_settings):
//	    EXEC_MAGIC, u32 uid, u32 gid,
//	    u32 nrlimits, per rlimit: u32 resource, u64 cur, u64 max,
//	    u32 nextra, u32 filter_len, filter_len bytes of struct sock_filter
//
// An entry is a bind (source onto target), a copy (MOUNT_COPY), a symlink
// (symlink not empty), a directory of the scratch tmpfs (MOUNT_TMPFS), a
// directory of the given mode (MOUNT_DIR; with MOUNT_TMPFS a tmpfs of its
// own mounted there with source as its options, read-only once the root is
// built), a file of the given mode holding content (MOUNT_FILE) or a host
// device node bound (MOUNT_DEVICE). The supervisor decides every entry; init
// applies them in order (mount.c's apply_mount), as the root template's
// builder does (roottemplate.go's apply), and holds no list of its own.
//
// A spec with bytes left over, or short of any field, is malformed and the
// helper fails with step "helper". The field order is the one thing here
// the compiler does not check: TestSpecRoundTrip parses what encode wrote
// with parse_spec itself (wire_decode.go) and wants every field back.
//
// 5. Events. Helper, init, a prefork program process and the spawner's
// child → supervisor, on the status pipe (STATUS_FD; base.c's report_*,
// wire.go's Event, read by instance.go's readEvents). JSON lines, each one
// write() shorter than PIPE_BUF, so the writers never interleave. Kinds
// ("k"): "init" {pid} from the helper once init exists; "ready" from init
// (or the prefork program) when a pooled jail waits for its request;
// "started" from init once the program's execve succeeded; "exit" {code,
// sig, rss} from init; "warning" {step, err} from init, logged; "error"
// {step, err, errno} from any stage, which then ends, and becomes the
// SetupError; "done" {ut, st} from the helper, last, after it reaped init.
// EOF: the helper is gone.
//
// 6. Control. Supervisor → helper on CONTROL_FD (instance.go, helper.c's
// obey, cgroup.c's cgroup_pass_from_parent): CONTROL_KILL; CONTROL_SIGNAL and one byte, the signal number,
// which init passes to the program's process group; CONTROL_JOIN, a u32
// length (at most MAX_JOIN_LEN) and strs, the cgroup v1 "tasks" files of a
// SPEC_JOIN_LATER jail, sent once, before any command but CONTROL_KILL.
// EOF: the supervisor died; the helper kills the jail.
//
// 7. Pool request. Supervisor → init (or, with SPEC_PREFORK, the
// program's process itself) on a SOCK_STREAM socket, the helper's
// HELPER_EXTRA_FD (pool.go's sendRequest, wire.c's read_request): u64
// length (at most MAX_REQUEST), carrying as SCM_RIGHTS stdin, stdout,
// stderr and the extra files (at most MAX_EXTRA), then the body: str path,
// strs args, strs env. When: once, when a ready pooled jail is taken; the
// jail closes the socket once it has read it.
//
// 8. Handback socket. SOCK_SEQPACKET, the helper's last fd when SPEC_TTY
// or SPEC_PROXY; the one channel that carries fds up from init before the
// program exists (struct spec's tty_fd). In order:
//
//   - SPEC_PROXY (egress.go, proxy.c's proxy_hand_up_listener): init →
//     supervisor, one byte HANDBACK_PROXY ('P') carrying as SCM_RIGHTS a
//     TCP listener bound to 127.0.0.1:EGRESS_PORT in the jail's network
//     namespace (no SO_REUSEPORT), sent once init has entered that
//     namespace, before the tty's message and before the program starts.
//   - SPEC_TTY (tty.go, tty.c's tty_open): supervisor → init, u16 rows
//     and u16 cols, written before the helper starts; init → supervisor,
//     one byte (0) carrying the pty's master as SCM_RIGHTS, before the
//     program starts.
//
// Init closes the socket after its last message. The port is a constant,
// not a spec field: each jail has its own lo.
//
// # Among the stages (C only)
//
// 9. Ready. Helper → init on a pipe: one byte once init's ids are mapped
// and it is placed in its cgroups; EOF means the helper failed and reports
// it.
//
// 10. Cgroup join. Helper → init on a SOCK_SEQPACKET pair, for a
// SPEC_JOIN_LATER jail: one byte, the count, carrying as SCM_RIGHTS the
// opened "tasks" files (at most MAX_JOIN) that init writes "0" into.
//
// 11. Exec report. Exec stage → init on a close-on-exec pipe (execstage.c's
// child_fail, await_exec): nothing when execve succeeded (the pipe closes
// with it), else the text "errno step: cause", which init turns into its
// own failure and so into an "error" event.
//
// 12. Child results. The network maker and the IPC namespace's owner
// (init.c) each write one byte to init: 0, or the errno that stopped them.
//
// # Why these stay separate
//
// Each channel is the one its moment allows: the spec must be whole before
// the helper clones (a pipe read to EOF); events come from several
// processes at once (lines short enough to be atomic, JSON so that a text
// carries anything); control must be readable with poll() by a helper
// that also waits for init (bytes); fds travel only with SCM_RIGHTS on a
// socket (messages 2, 7, 8, 10). The exec report goes to init, not to the
// supervisor: init waits on it to know whether to report "started" or the
// failure, so that one failure is one event. What they can share is
// shared already: one str and strs encoding, one event writer (base.c's
// report_*; the spawner, which has no status pipe of its own, writes the
// same line to a failed helper's), the caps and flags of stage.h.
