// Package seccomp describes, compiles and loads the system call filter of a
// brig jail.
//
// # Model
//
// A Policy is a default Action plus Rules. A rule names system calls, an
// action (allow, errno, kill, log, trap) and optionally conditions on the
// call's arguments (index, operator, value, mask), all of which must hold.
// This is the model of libseccomp and of the OCI runtime spec, so Docker and
// Podman profiles load with ParseOCI / LoadOCIFile and any policy exports
// with Policy.OCI.
//
// Policy.Compile turns a policy into a classic BPF program once per distinct
// policy (the cache key is a hash of its content). Policies of the default's
// shape (unconditional rules, and "allowed only / except for these values"
// of one argument) get a program brig writes itself, a binary search over
// runs of system call numbers that share an action: under 300
// instructions for the default policy where libseccomp writes about 1,000,
// which halves the cost of loading it in every jail (the kernel converts and JIT-compiles the
// program each time). Every other policy is compiled by libseccomp. Both
// give the same verdict for every input: TestGeneratedMatchesLibseccomp
// runs them through a BPF interpreter side by side. The default policy's
// programs (DefaultProgram) are compiled when brig is built, by go
// generate, so that a process's first jail, which is `brig run`'s only one,
// does not spend ~1 ms building and compiling the policy. The
// supervisor compiles; the jail's last step before execve loads the bytes
// with seccomp(SECCOMP_SET_MODE_FILTER) after setting no_new_privs. Install
// does the same for the calling process, for tests and for callers that
// build their own exec path.
//
// Only the native architecture is filtered. On x86_64 a process can also
// make system calls through the i386 ABI (int 0x80) and, on kernels built
// with it, the x32 ABI; those get the default action, i.e. are refused. The
// i386 table numbers calls differently, and a filter written for one table
// is wrong for the other: refusing the foreign ABIs outright removes that
// whole class of mistakes, and no interpreter needs them.
//
// # Allow-list, not deny-list
//
// Default() is an allow-list: about 300 calls that Python and shell
// workloads make are allowed, every other call fails. We chose this over a
// deny-list (allow everything, refuse known-dangerous calls) because:
//
//   - A deny-list is only as good as its author's knowledge on the day it
//     was written. Each kernel release adds calls (io_uring, the new mount
//     API, landlock, mseal, listmount...), and every new call is a new
//     attack surface that a deny-list silently allows. An allow-list fails
//     closed: a new call is refused until someone decides otherwise.
//   - The jail runs code written by a language model for a language
//     runtime, not arbitrary native software; its needs are narrow and
//     well known, and the test suite runs real workloads (threads,
//     multiprocessing, subprocess, asyncio, sqlite3, sockets, ctypes; bash
//     with coreutils, awk, sed, sort, find, tar) under the filter.
//   - Docker made the same choice years ago, and its list is a tested
//     starting point; ours is that list minus everything Docker grants only
//     with a capability (a jail has none), minus a few more risky calls.
//
// The cost of an allow-list is that a legitimate program can hit a missing
// call. Two things keep that cheap. Unknown calls fail with ENOSYS, which
// libc and runtimes treat as "this kernel is older", and fall back (glibc
// does so for clone3, statx, faccessat2, close_range...). And
// Policy.LogOnly runs a workload with every refusal allowed but logged, to
// find what it needs.
//
// The calls we know to be dangerous are named and fail with EPERM, not
// ENOSYS: mounts and the new mount API, chroot and pivot_root, unshare and
// setns, ptrace and the process_vm calls, kcmp, pidfd_getfd, bpf,
// perf_event_open, userfaultfd, io_uring, the key management calls, kexec,
// module loading, reboot, swap, clock setting, host and domain names, acct,
// quotactl, iopl/ioperm, syslog, file handles (open_by_handle_at,
// name_to_handle_at), and sync and syncfs (from a jail, a loop of them keeps
// the host's disks busy writing back; fsync and fdatasync stay allowed, and
// since sync(2) returns nothing in libc, the sync command and os.sync see
// no difference). EPERM tells the program the truth ("not allowed"), and
// makes each refusal visible in tests.
//
// # Calls allowed only with some arguments
//
//   - clone: allowed unless a CLONE_NEW* flag is set. clone3 passes its
//     flags in memory, out of seccomp's sight, so it fails with ENOSYS and
//     glibc falls back to clone.
//   - ioctl: allowed except TIOCSTI (pushes input into a terminal, so into
//     a shell outside the jail, CVE-2017-5226) and TIOCLINUX.
//   - socket: AF_UNIX, AF_INET, AF_INET6 and AF_NETLINK only; notably not
//     AF_VSOCK (the hypervisor) or AF_ALG (the kernel crypto API), nor the
//     many rarely used families whose code (and module autoloading) is
//     reachable by any unprivileged process.
//   - socketpair: AF_UNIX only. It creates a socket of the family before
//     asking for a pair, so it reaches the same family code as socket.
//   - personality: only the values Docker allows (0, 8, 0x20000, 0x20008,
//     and the 0xffffffff query); ADDR_NO_RANDOMIZE and the like are refused.
//   - chmod, fchmod, fchmodat, and the creators open, openat, creat, mknod
//     and mknodat: refused (EPERM) when the mode has S_ISUID or S_ISGID. A
//     writable bind keeps what the jail made, owned by a host uid a later
//     jail may be given. open's mode is checked even without O_CREAT (the
//     filter sees one argument at a time; libcs pass 0 there). mkdir and
//     mkdirat need no rule: the kernel drops the set-id bits of their mode.
//     fchmodat2 is not on the allow-list (ENOSYS; glibc falls back).
//   - openat2 passes its mode in memory, like clone3 its flags: ENOSYS, and
//     callers fall back to openat (glibc's open never uses it).
//
// # The core guard
//
// Every program Compile returns, whatever the policy, starts with a few
// instructions that refuse setrlimit(RLIMIT_CORE, ...) and
// prlimit64(_, RLIMIT_CORE, new != NULL, _) with EPERM (a kill under
// KillOnRefusal, still EPERM under LogOnly), native, x32 and i386 alike;
// reading the limit stays allowed. The jail runs with RLIMIT_CORE = 1, the only value at which the
// kernel skips a piped core_pattern helper (systemd-coredump, apport), which
// would otherwise run as root on the host for every crash in the jail; the
// guard keeps the jail from lowering it. It is not a rule of the policy so
// that no profile can lose it (see coreguard.go). Policy.OCI does not show
// it. Only a jail without seccomp (jail.SeccompOff) is without
// it. A socket core_pattern ("@/path", Linux 6.16 on) is not stopped by any
// RLIMIT_CORE: the kernel connects to the host's socket for every crash.
//
// The kernel reads an int argument (ioctl's cmd, socket's family,
// personality's persona) from the low 32 bits of the register, while seccomp
// sees all 64. A filter that compares all 64 bits is bypassed by setting a
// high bit: ioctl(fd, 0x1_0000_5412) is TIOCSTI to the kernel
// (CVE-2019-10063, flatpak). These conditions therefore compare under a
// 0xffffffff mask.
//
// libseccomp cannot say "allow ioctl except TIOCSTI": an unconditional rule
// for a call overrides every conditional rule for it, and it refuses two
// conditions on the same argument. So such a rule is written as its
// complement: a set of masked-equality tests, one per branch of the binary
// trie of the excluded values, that together match every other value
// exactly once (see complementCubes). The generated OCI profile shows them.
// brig's own program generator folds them back into one compare per value.
//
// # Seeing refusals
//
// The refused process sees only an errno, or SIGSYS when killed. The kernel
// records kills (and SECCOMP_RET_LOG) as audit records of type 1326; with no
// audit daemon they go to the kernel log, which LogCursor reads from
// /dev/kmsg, filtered by the jail's host uid. On the kernels we develop on
// (6.18, actions_logged = "kill_process kill_thread trap errno user_notif
// trace log") a record looks like:
//
//	audit: type=1326 audit(1795316712.606:2): auid=4294967295 uid=61001
//	gid=61001 ses=4294967295 pid=15861 comm="seccomp.test" exe="/tmp/..."
//	sig=31 arch=c000003e syscall=250 compat=0 ip=0x40c1ce code=0x80000000
//
// The default policy's EPERM/ENOSYS refusals are not logged (that would
// need SECCOMP_FILTER_FLAG_LOG, and would flood the log with every libc
// fallback). Use KillOnRefusal to find out which call a workload was
// refused, LogOnly to tune a profile.
package seccomp
