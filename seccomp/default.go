package seccomp

import (
	"math/bits"
	"slices"

	"golang.org/x/sys/unix"
)

const (
	eperm  = uint(unix.EPERM)
	enosys = uint(unix.ENOSYS)

	// low32 is the mask for arguments the kernel declares as int or unsigned
	// int: it ignores the upper half of the register, so must we.
	low32 = 0xffffffff

	// cloneNewMask is every CLONE_NEW* flag clone(2) accepts. CLONE_NEWTIME
	// (0x80) is missing on purpose: in clone(2) that bit is part of the exit
	// signal; only clone3 and unshare take CLONE_NEWTIME, and both are refused
	// outright.
	cloneNewMask = unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS |
		unix.CLONE_NEWIPC | unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET
)

// allowedSyscalls are the calls a Python or shell workload makes, allowed
// without conditions. The list started from Docker's default profile (which
// years of real workloads have shaped) minus everything it only grants with a
// capability, minus io_uring, name_to_handle_at, adjtimex/clock_adjtime,
// fanotify_mark, memfd_secret, remap_file_pages and modify_ldt, and restricted
// to names of 64-bit ABIs since only the native ABI is filtered. Names that
// the running libseccomp or architecture does not know are skipped by Compile.
var allowedSyscalls = []string{
	// processes and threads (clone is conditional, below)
	"fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid",
	"getpid", "getppid", "gettid", "getpgid", "setpgid", "getpgrp", "getsid", "setsid",
	"set_tid_address", "set_robust_list", "get_robust_list", "rseq", "arch_prctl",
	"set_thread_area", "get_thread_area", "prctl", "seccomp", "restart_syscall",
	"kill", "tkill", "tgkill", "pidfd_open", "pidfd_send_signal", "process_mrelease",
	"landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
	// credentials: harmless without capabilities, and libraries call them
	"getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups",
	"setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setgroups",
	"setfsuid", "setfsgid", "capget", "capset",
	// signals
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigsuspend",
	"rt_sigtimedwait", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "sigaltstack",
	"signalfd", "signalfd4", "pause",
	// memory
	"brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "msync", "mincore",
	"mlock", "mlock2", "munlock", "mlockall", "munlockall", "membarrier", "memfd_create",
	"pkey_alloc", "pkey_free", "pkey_mprotect",
	// files and directories
	"read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev",
	"preadv2", "pwritev2", "lseek", "close",
	"close_range", "dup", "dup2", "dup3", "pipe", "pipe2", "fcntl", "flock",
	"stat", "fstat", "lstat", "newfstatat", "statx", "statfs", "fstatfs",
	"access", "faccessat", "faccessat2", "getdents", "getdents64", "getcwd", "chdir",
	"fchdir", "mkdir", "mkdirat", "rmdir", "rename", "renameat", "renameat2",
	"link", "linkat", "unlink", "unlinkat", "symlink", "symlinkat", "readlink",
	"readlinkat", "chown", "fchown", "fchownat",
	"lchown", "umask", "truncate", "ftruncate", "fallocate", "fadvise64", "readahead",
	"fsync", "fdatasync", "sync_file_range", "utime", "utimes",
	"utimensat", "futimesat", "copy_file_range", "sendfile",
	"splice", "tee", "vmsplice",
	"getxattr", "lgetxattr", "fgetxattr", "setxattr", "lsetxattr", "fsetxattr",
	"listxattr", "llistxattr", "flistxattr", "removexattr", "lremovexattr", "fremovexattr",
	// Not inotify_init/inotify_init1: inotify instances are charged up the
	// user namespace chain to the namespace's owner, host root, whose 128
	// (fs.inotify.max_user_instances) one jail could take from every root
	// daemon. Without an instance, add_watch and rm_watch do nothing.
	"inotify_add_watch", "inotify_rm_watch",
	// polling, events, timers, time
	"poll", "ppoll", "select", "pselect6", "epoll_create", "epoll_create1", "epoll_ctl",
	"epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2",
	"timerfd_create", "timerfd_settime", "timerfd_gettime",
	"timer_create", "timer_settime", "timer_gettime", "timer_getoverrun", "timer_delete",
	"getitimer", "setitimer", "alarm", "nanosleep", "clock_nanosleep", "clock_gettime",
	"clock_getres", "gettimeofday", "time", "times",
	"futex", "futex_waitv",
	// asynchronous I/O (the old io_* interface; io_uring is refused)
	"io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "io_pgetevents",
	// sockets (socket and socketpair are conditional, below)
	"bind", "connect", "listen", "accept", "accept4", "getsockname",
	"getpeername", "getsockopt", "setsockopt", "sendto", "recvfrom", "sendmsg",
	"recvmsg", "sendmmsg", "recvmmsg", "shutdown",
	// System V and POSIX IPC, confined by the jail's IPC namespace
	"shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop", "semctl",
	"msgget", "msgsnd", "msgrcv", "msgctl", "mq_open", "mq_unlink", "mq_timedsend",
	"mq_timedreceive", "mq_notify", "mq_getsetattr",
	// scheduling, limits, system information
	"sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getparam",
	"sched_setparam", "sched_getscheduler", "sched_setscheduler", "sched_getattr",
	"sched_setattr", "sched_get_priority_max", "sched_get_priority_min",
	"sched_rr_get_interval", "getpriority", "setpriority", "ioprio_get", "ioprio_set",
	"getrlimit", "setrlimit", "prlimit64", "getrusage", "getcpu", "getrandom",
	"sysinfo", "uname",
}

// refusedSyscalls fail with EPERM whatever their arguments. Most would get
// ENOSYS from the default action anyway; naming them makes the refusal
// explicit, testable, and tells a program "not allowed" rather than "no such
// call", which is the truth.
var refusedSyscalls = []string{
	// mounts and filesystem views
	"mount", "umount2", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount",
	"open_tree", "mount_setattr", "pivot_root", "chroot",
	// namespaces: the way to a fresh set of capabilities and a wider kernel
	// attack surface (CVE-2022-0185 went through a nested user namespace)
	"unshare", "setns",
	// looking into or controlling other processes
	"ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
	"process_madvise",
	// large kernel attack surfaces with no use in an interpreter sandbox
	"bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter",
	"io_uring_register", "keyctl", "add_key", "request_key", "fanotify_init",
	"lookup_dcookie", "modify_ldt", "uselib",
	// the machine itself
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
	"reboot", "swapon", "swapoff", "acct", "quotactl", "quotactl_fd", "vhangup",
	"settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
	"sethostname", "setdomainname", "iopl", "ioperm", "syslog",
	// file handles bypass path-based confinement (the 2014 Docker breakout)
	"open_by_handle_at", "name_to_handle_at",
	// Writing back every dirty page of a filesystem: from a jail, a loop of
	// them keeps the host's disks flushing. Nothing in a jail needs them;
	// fsync and fdatasync of its own files stay allowed. sync(2) returns
	// nothing in libc, so to its callers (the sync command, os.sync) the
	// refusal is the no-op they cannot tell apart; syncfs callers check its
	// result and are told the truth.
	"sync", "syncfs",
}

const (
	// setidBits are S_ISUID and S_ISGID. A jail must not make a file with
	// either: a writable bind keeps it on the host, owned by a host uid that
	// a later jail may be given. The kernel reads a mode as umode_t, the low
	// 16 bits, and the mask only looks at two of them.
	setidBits = unix.S_ISUID | unix.S_ISGID
)

// modeCalls are the calls that set a file's mode from an argument, and
// its index. mkdir and mkdirat are not among them: the kernel keeps only
// the permission and sticky bits of their mode (vfs_mkdir), and a new
// directory is setgid only under a setgid parent, which a jail cannot make.
var modeCalls = []struct {
	name  string
	index uint
}{
	{"chmod", 1}, {"fchmod", 1}, {"fchmodat", 2},
	// The mode of a file they create. It is refused with S_ISUID or S_ISGID
	// even without O_CREAT or O_TMPFILE, where the kernel ignores it: the
	// filter sees one argument at a time, and libcs pass 0 there.
	{"open", 2}, {"openat", 3}, {"creat", 1},
	// mknod makes regular files too (S_IFREG), with the mode's set-id bits.
	{"mknod", 1}, {"mknodat", 2},
}

// Default returns the policy for Python and shell interpreter workloads. It is
// an allow-list: see doc.go for why. Each call returns a fresh copy.
func Default() *Policy {
	p := &Policy{
		DefaultAction: ActErrno,
		DefaultErrno:  enosys,
	}
	add := func(r ...Rule) { p.Rules = append(p.Rules, r...) }

	add(Rule{Names: slices.Clone(allowedSyscalls), Action: ActAllow})
	add(Rule{Names: slices.Clone(refusedSyscalls), Action: ActErrno, Errno: eperm})

	// clone: threads and fork are fine, new namespaces are not.
	add(allowOnly("clone", 0, cloneNewMask, []uint64{0}, eperm, "clone with a CLONE_NEW* flag")...)

	// clone3 passes its flags in memory, where seccomp cannot look. ENOSYS
	// makes glibc fall back to clone, whose flags we can check.
	add(Rule{
		Names: []string{"clone3"}, Action: ActErrno, Errno: enosys,
		Comment: "clone3 flags are out of seccomp's reach; libc falls back to clone",
	})

	// openat2 passes its mode in a struct open_how, out of seccomp's sight.
	// Like clone3: ENOSYS, and the caller falls back to openat (glibc never
	// uses openat2 for open; systemd and others that do fall back on
	// ENOSYS).
	add(Rule{
		Names: []string{"openat2"}, Action: ActErrno, Errno: enosys,
		Comment: "openat2's mode is out of seccomp's reach; callers fall back to openat",
	})

	// Set-user-ID and set-group-ID bits, on an existing file or a new one.
	for _, c := range modeCalls {
		add(allowOnly(c.name, c.index, setidBits, []uint64{0}, eperm, c.name+" with S_ISUID or S_ISGID")...)
	}

	// ioctl: the two terminal ioctls that inject input into or reconfigure a
	// terminal the jail may share with its parent (CVE-2017-5226).
	add(allowExcept("ioctl", 1, low32, []uint64{unix.TIOCSTI, unix.TIOCLINUX}, eperm,
		"ioctl TIOCSTI/TIOCLINUX")...)

	// socket: only the families an interpreter needs. Every other family is
	// kernel code an unprivileged process can reach (and some autoload
	// modules); AF_VSOCK reaches the hypervisor, AF_ALG the crypto API.
	add(allowOnly("socket", 0, low32,
		[]uint64{unix.AF_UNIX, unix.AF_INET, unix.AF_INET6, unix.AF_NETLINK}, eperm,
		"socket families other than unix, inet, inet6, netlink")...)

	// socketpair creates a socket of the family before asking it for a
	// pair, so it reaches the same family code; only AF_UNIX makes pairs.
	add(allowOnly("socketpair", 0, low32, []uint64{unix.AF_UNIX}, eperm,
		"socketpair families other than unix")...)

	// personality: the values Docker allows (PER_LINUX, PER_LINUX32, each
	// with and without UNAME26, and 0xffffffff, which only queries). Anything
	// else, ADDR_NO_RANDOMIZE or READ_IMPLIES_EXEC for instance, weakens the
	// process's own defences.
	add(allowOnly("personality", 0, low32,
		[]uint64{0x0, 0x8, 0x20000, 0x20008, 0xffffffff}, eperm,
		"personality other than the harmless values")...)

	return p
}

// allowExcept allows name unless (arg & mask) is one of refused, which fail
// with errno. libseccomp cannot express "allowed except" (an unconditional
// allow swallows every conditional rule for the same call), so the allowed
// complement is spelled out as masked-equality cubes.
func allowExcept(name string, index uint, mask uint64, refused []uint64, errno uint, comment string) []Rule {
	var rules []Rule
	for _, c := range complementCubes(mask, refused) {
		rules = append(rules, Rule{Names: []string{name}, Action: ActAllow, Comment: name + ": every value not refused",
			Args: []Arg{{Index: index, Op: OpMaskedEqual, Mask: c.mask, Value: c.value}}})
	}
	for _, v := range refused {
		rules = append(rules, Rule{Names: []string{name}, Action: ActErrno, Errno: errno, Comment: "refuse " + comment,
			Args: []Arg{{Index: index, Op: OpMaskedEqual, Mask: mask, Value: v & mask}}})
	}
	return rules
}

// allowOnly allows name when (arg & mask) is one of allowed; every other
// value fails with errno.
func allowOnly(name string, index uint, mask uint64, allowed []uint64, errno uint, comment string) []Rule {
	var rules []Rule
	for _, v := range allowed {
		rules = append(rules, Rule{Names: []string{name}, Action: ActAllow, Comment: name + ": an allowed value",
			Args: []Arg{{Index: index, Op: OpMaskedEqual, Mask: mask, Value: v & mask}}})
	}
	for _, c := range complementCubes(mask, allowed) {
		rules = append(rules, Rule{Names: []string{name}, Action: ActErrno, Errno: errno, Comment: "refuse " + comment,
			Args: []Arg{{Index: index, Op: OpMaskedEqual, Mask: c.mask, Value: c.value}}})
	}
	return rules
}

type cube struct{ mask, value uint64 }

// complementCubes returns masked-equality tests (x&c.mask == c.value) that
// together match exactly the x whose x&mask is not in values, with no two
// tests matching the same x. It walks the binary trie of values from the
// highest bit of mask down: wherever a branch holds none of the values, the
// whole branch is one cube. The result has at most bits(mask)*len(values)
// cubes.
func complementCubes(mask uint64, values []uint64) []cube {
	var vs []uint64
	for _, v := range values {
		vs = append(vs, v&mask)
	}
	slices.Sort(vs)
	vs = slices.Compact(vs)

	var maskBits []uint64 // highest first
	for m := mask; m != 0; m &^= 1 << (63 - bits.LeadingZeros64(m)) {
		maskBits = append(maskBits, 1<<(63-bits.LeadingZeros64(m)))
	}

	var out []cube
	var walk func(depth int, prefixMask, prefix uint64, vs []uint64)
	walk = func(depth int, prefixMask, prefix uint64, vs []uint64) {
		if len(vs) == 0 {
			out = append(out, cube{prefixMask, prefix})
			return
		}
		if depth == len(maskBits) {
			return // this exact value is one of vs
		}
		b := maskBits[depth]
		var zeros, ones []uint64
		for _, v := range vs {
			if v&b == 0 {
				zeros = append(zeros, v)
			} else {
				ones = append(ones, v)
			}
		}
		walk(depth+1, prefixMask|b, prefix, zeros)
		walk(depth+1, prefixMask|b, prefix|b, ones)
	}
	walk(0, 0, 0, vs)
	return out
}
