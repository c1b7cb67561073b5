package seccomp

// Probes are the system calls the filter tests try inside the filtered
// child. Every probe passes arguments that make the call fail harmlessly
// even if no filter were loaded (a bad magic number, a path that does not
// exist, an invalid flag combination, a length over the limit): the filter is
// what is being tested, but a mistake in the filter must never turn into a
// reboot or a mount on the development machine.

import (
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

type probe struct {
	name string
	run  func() unix.Errno
	// want is the errno expected under Default(); 0 means "must succeed".
	// A refused call must return exactly want; an allowed one must not
	// return EPERM or ENOSYS.
	want unix.Errno
}

// allowed marks a probe that must get through the filter: the kernel may
// still fail it (ENOTTY, EBADF...), but not with the filter's errnos.
const allowed unix.Errno = 1<<31 - 1

func sys(nr uintptr, args ...uintptr) unix.Errno {
	var a [6]uintptr
	copy(a[:], args)
	_, _, e := unix.RawSyscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5])
	return e
}

// sysFD runs a call that returns a file descriptor and closes it.
func sysFD(nr uintptr, args ...uintptr) unix.Errno {
	var a [6]uintptr
	copy(a[:], args)
	fd, _, e := unix.RawSyscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5])
	if e == 0 {
		unix.Close(int(fd))
	}
	return e
}

func str(s string) uintptr {
	p, err := unix.BytePtrFromString(s)
	if err != nil {
		panic(err)
	}
	return uintptr(unsafe.Pointer(p))
}

const (
	noPath = "/nonexistent-brig-probe"
	badFD  = ^uintptr(0) // -1
	// An invalid clone flag combination: CLONE_THREAD needs CLONE_SIGHAND, so
	// without a filter the kernel answers EINVAL before creating anything.
	cloneInvalid    = unix.CLONE_THREAD
	afVsock         = 40
	afAlg           = 38
	tiocsti         = 0x5412
	tioclinux       = 0x541C
	addrNoRandomize = 0x0040000 // personality flags, from <sys/personality.h>
	readImpliesExec = 0x0400000
	// high32 sets a bit the kernel ignores in an int argument.
	high32 = 1 << 32
)

func nullFD() uintptr {
	fd, err := unix.Open("/dev/null", unix.O_RDWR, 0)
	if err != nil {
		panic(err)
	}
	return uintptr(fd)
}

var probes = []probe{
	// mounts
	{"mount", func() unix.Errno { return sys(unix.SYS_MOUNT, str(noPath), str(noPath+"2"), str("tmpfs"), 0, 0) }, unix.EPERM},
	{"umount2", func() unix.Errno { return sys(unix.SYS_UMOUNT2, str(noPath), 0) }, unix.EPERM},
	{"fsopen", func() unix.Errno { return sysFD(unix.SYS_FSOPEN, str("brig-nonexistent-fs"), 0) }, unix.EPERM},
	{"fsconfig", func() unix.Errno { return sys(unix.SYS_FSCONFIG, badFD, 0, 0, 0, 0) }, unix.EPERM},
	{"fsmount", func() unix.Errno { return sysFD(unix.SYS_FSMOUNT, badFD, 0, 0) }, unix.EPERM},
	{"fspick", func() unix.Errno { return sysFD(unix.SYS_FSPICK, badFD, str(noPath), 0) }, unix.EPERM},
	{"move_mount", func() unix.Errno {
		return sys(unix.SYS_MOVE_MOUNT, badFD, str(noPath), badFD, str(noPath+"2"), 0)
	}, unix.EPERM},
	{"open_tree", func() unix.Errno { return sysFD(unix.SYS_OPEN_TREE, badFD, str(noPath), 0) }, unix.EPERM},
	{"mount_setattr", func() unix.Errno { return sys(unix.SYS_MOUNT_SETATTR, badFD, str(noPath), 0, 0, 0) }, unix.EPERM},
	{"pivot_root", func() unix.Errno { return sys(unix.SYS_PIVOT_ROOT, str(noPath), str(noPath+"2")) }, unix.EPERM},
	{"chroot", func() unix.Errno { return sys(unix.SYS_CHROOT, str(noPath)) }, unix.EPERM},

	// namespaces
	{"unshare", func() unix.Errno { return sys(unix.SYS_UNSHARE, unix.CLONE_NEWUSER|cloneInvalid) }, unix.EPERM},
	{"setns", func() unix.Errno { return sys(unix.SYS_SETNS, badFD, 0) }, unix.EPERM},
	{"clone_newuser", func() unix.Errno { return sys(unix.SYS_CLONE, unix.CLONE_NEWUSER|cloneInvalid) }, unix.EPERM},
	{"clone_newns", func() unix.Errno { return sys(unix.SYS_CLONE, unix.CLONE_NEWNS|cloneInvalid) }, unix.EPERM},
	{"clone_newpid", func() unix.Errno { return sys(unix.SYS_CLONE, unix.CLONE_NEWPID|cloneInvalid) }, unix.EPERM},
	{"clone_newnet", func() unix.Errno { return sys(unix.SYS_CLONE, unix.CLONE_NEWNET|cloneInvalid) }, unix.EPERM},
	{"clone_newuts", func() unix.Errno { return sys(unix.SYS_CLONE, unix.CLONE_NEWUTS|cloneInvalid) }, unix.EPERM},
	{"clone_newipc", func() unix.Errno { return sys(unix.SYS_CLONE, unix.CLONE_NEWIPC|cloneInvalid) }, unix.EPERM},
	{"clone_newcgroup", func() unix.Errno { return sys(unix.SYS_CLONE, unix.CLONE_NEWCGROUP|cloneInvalid) }, unix.EPERM},
	{"clone_newuser_high", func() unix.Errno {
		return sys(unix.SYS_CLONE, high32|unix.CLONE_NEWUSER|cloneInvalid)
	}, unix.EPERM},
	{"clone_thread_invalid", func() unix.Errno { return sys(unix.SYS_CLONE, cloneInvalid) }, unix.EINVAL},
	{"fork", rawFork, 0},
	// clone3 with a zero size: EINVAL from the kernel, ENOSYS from the filter.
	{"clone3", func() unix.Errno { return sys(unix.SYS_CLONE3, 0, 0) }, unix.ENOSYS},

	// other processes
	{"ptrace", func() unix.Errno { return sys(unix.SYS_PTRACE, unix.PTRACE_PEEKDATA, 0x7ffffff0, 0, 0) }, unix.EPERM},
	{"process_vm_readv", func() unix.Errno { return sys(unix.SYS_PROCESS_VM_READV, 0x7ffffff0, 0, 0, 0, 0, 0) }, unix.EPERM},
	{"process_vm_writev", func() unix.Errno { return sys(unix.SYS_PROCESS_VM_WRITEV, 0x7ffffff0, 0, 0, 0, 0, 0) }, unix.EPERM},
	{"kcmp", func() unix.Errno { return sys(unix.SYS_KCMP, 0x7ffffff0, 0x7ffffff0, 99, 0, 0) }, unix.EPERM},
	{"pidfd_getfd", func() unix.Errno { return sysFD(unix.SYS_PIDFD_GETFD, badFD, 0, 0) }, unix.EPERM},

	// kernel attack surface
	{"bpf", func() unix.Errno { return sys(unix.SYS_BPF, 0xffff, 0, 0) }, unix.EPERM},
	{"perf_event_open", func() unix.Errno { return sysFD(unix.SYS_PERF_EVENT_OPEN, 0, 0, badFD, badFD, 0) }, unix.EPERM},
	{"userfaultfd", func() unix.Errno { return sysFD(unix.SYS_USERFAULTFD, 0xffffffff) }, unix.EPERM},
	{"io_uring_setup", func() unix.Errno { return sysFD(unix.SYS_IO_URING_SETUP, 0, 0) }, unix.EPERM},
	{"io_uring_enter", func() unix.Errno { return sys(unix.SYS_IO_URING_ENTER, badFD, 0, 0, 0, 0, 0) }, unix.EPERM},
	{"io_uring_register", func() unix.Errno { return sys(unix.SYS_IO_URING_REGISTER, badFD, 0, 0, 0) }, unix.EPERM},
	{"keyctl", func() unix.Errno { return sys(unix.SYS_KEYCTL, 0xffff, 0, 0, 0, 0) }, unix.EPERM},
	{"add_key", func() unix.Errno { return sys(unix.SYS_ADD_KEY, 0, 0, 0, 0, 0) }, unix.EPERM},
	{"request_key", func() unix.Errno { return sys(unix.SYS_REQUEST_KEY, 0, 0, 0, 0) }, unix.EPERM},

	// the machine
	{"kexec_load", func() unix.Errno { return sys(unix.SYS_KEXEC_LOAD, 0, 0, 0, 0xffffffff) }, unix.EPERM},
	{"kexec_file_load", func() unix.Errno { return sys(unix.SYS_KEXEC_FILE_LOAD, badFD, badFD, 0, 0, 0xffffffff) }, unix.EPERM},
	{"init_module", func() unix.Errno { return sys(unix.SYS_INIT_MODULE, 0, 0, 0) }, unix.EPERM},
	{"finit_module", func() unix.Errno { return sys(unix.SYS_FINIT_MODULE, badFD, str(""), 0) }, unix.EPERM},
	{"delete_module", func() unix.Errno {
		return sys(unix.SYS_DELETE_MODULE, str("brig_nonexistent_module"), unix.O_NONBLOCK)
	}, unix.EPERM},
	{"open_by_handle_at", func() unix.Errno { return sysFD(unix.SYS_OPEN_BY_HANDLE_AT, badFD, 0, 0) }, unix.EPERM},
	{"name_to_handle_at", func() unix.Errno { return sys(unix.SYS_NAME_TO_HANDLE_AT, badFD, str(noPath), 0, 0, 0) }, unix.EPERM},
	// A wrong magic number: EINVAL before anything happens.
	{"reboot", func() unix.Errno { return sys(unix.SYS_REBOOT, 0xbad, 0xbad, 0, 0) }, unix.EPERM},
	{"swapon", func() unix.Errno { return sys(unix.SYS_SWAPON, str(noPath), 0) }, unix.EPERM},
	{"swapoff", func() unix.Errno { return sys(unix.SYS_SWAPOFF, str(noPath)) }, unix.EPERM},
	{"settimeofday", func() unix.Errno {
		tv := unix.Timeval{Sec: 0, Usec: 2_000_000} // invalid: usec >= 1e6
		return sys(unix.SYS_SETTIMEOFDAY, uintptr(unsafe.Pointer(&tv)), 0)
	}, unix.EPERM},
	{"clock_settime", func() unix.Errno {
		ts := unix.Timespec{Sec: 0, Nsec: 2_000_000_000}
		return sys(unix.SYS_CLOCK_SETTIME, 0xffff, uintptr(unsafe.Pointer(&ts)))
	}, unix.EPERM},
	{"clock_adjtime", func() unix.Errno {
		var tx unix.Timex // modes 0: a read, and on a bogus clock
		return sys(unix.SYS_CLOCK_ADJTIME, 0xffff, uintptr(unsafe.Pointer(&tx)))
	}, unix.EPERM},
	{"adjtimex", func() unix.Errno {
		var tx unix.Timex // modes 0: only reads the clock state
		return sys(unix.SYS_ADJTIMEX, uintptr(unsafe.Pointer(&tx)))
	}, unix.EPERM},
	// Over __NEW_UTS_LEN: EINVAL without a filter.
	{"sethostname", func() unix.Errno { return sys(unix.SYS_SETHOSTNAME, str("x"), 100000) }, unix.EPERM},
	{"setdomainname", func() unix.Errno { return sys(unix.SYS_SETDOMAINNAME, str("x"), 100000) }, unix.EPERM},
	{"acct", func() unix.Errno { return sys(unix.SYS_ACCT, str(noPath)) }, unix.EPERM},
	{"quotactl", func() unix.Errno { return sys(unix.SYS_QUOTACTL, 0xffffff, str(noPath), 0, 0) }, unix.EPERM},
	{"iopl", func() unix.Errno { return sys(unix.SYS_IOPL, 99) }, unix.EPERM},
	{"ioperm", func() unix.Errno { return sys(unix.SYS_IOPERM, 0xffffffff, 1, 0) }, unix.EPERM},
	{"syslog", func() unix.Errno { return sys(unix.SYS_SYSLOG, 0xffff, 0, 0) }, unix.EPERM},

	// personality: queries and the plain Linux persona pass; the rest fail.
	{"personality_query", func() unix.Errno { return sys(unix.SYS_PERSONALITY, 0xffffffff) }, 0},
	{"personality_linux", func() unix.Errno { return sys(unix.SYS_PERSONALITY, 0) }, 0},
	{"personality_no_aslr", func() unix.Errno { return sys(unix.SYS_PERSONALITY, addrNoRandomize) }, unix.EPERM},
	{"personality_no_aslr_high", func() unix.Errno {
		return sys(unix.SYS_PERSONALITY, high32|addrNoRandomize)
	}, unix.EPERM},
	{"personality_read_implies_exec", func() unix.Errno { return sys(unix.SYS_PERSONALITY, readImpliesExec) }, unix.EPERM},

	// ioctl: the kernel only looks at the low 32 bits of cmd (CVE-2019-10063).
	{"ioctl_tiocsti", func() unix.Errno { return sys(unix.SYS_IOCTL, nullFD(), tiocsti, str("x")) }, unix.EPERM},
	{"ioctl_tiocsti_high", func() unix.Errno { return sys(unix.SYS_IOCTL, nullFD(), high32|tiocsti, str("x")) }, unix.EPERM},
	{"ioctl_tioclinux", func() unix.Errno { return sys(unix.SYS_IOCTL, nullFD(), tioclinux, str("x")) }, unix.EPERM},
	{"ioctl_tioclinux_high", func() unix.Errno { return sys(unix.SYS_IOCTL, nullFD(), high32|tioclinux, str("x")) }, unix.EPERM},
	// TCGETS on /dev/null: ENOTTY from the kernel means the filter let it by.
	{"ioctl_tcgets", func() unix.Errno {
		var t unix.Termios
		return sys(unix.SYS_IOCTL, nullFD(), unix.TCGETS, uintptr(unsafe.Pointer(&t)))
	}, allowed},
	{"ioctl_fionread", func() unix.Errno {
		var n int32
		return sys(unix.SYS_IOCTL, uintptr(os.Stdin.Fd()), unix.TIOCINQ, uintptr(unsafe.Pointer(&n)))
	}, allowed},

	// socket families
	{"socket_vsock", func() unix.Errno { return sysFD(unix.SYS_SOCKET, afVsock, unix.SOCK_STREAM, 0) }, unix.EPERM},
	{"socket_vsock_high", func() unix.Errno { return sysFD(unix.SYS_SOCKET, high32|afVsock, unix.SOCK_STREAM, 0) }, unix.EPERM},
	{"socket_alg", func() unix.Errno { return sysFD(unix.SYS_SOCKET, afAlg, unix.SOCK_SEQPACKET, 0) }, unix.EPERM},
	{"socket_alg_high", func() unix.Errno { return sysFD(unix.SYS_SOCKET, high32|afAlg, unix.SOCK_SEQPACKET, 0) }, unix.EPERM},
	{"socket_packet", func() unix.Errno { return sysFD(unix.SYS_SOCKET, unix.AF_PACKET, unix.SOCK_RAW, 0) }, unix.EPERM},
	{"socket_inet", func() unix.Errno { return sysFD(unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_STREAM, 0) }, 0},
	{"socket_inet6", func() unix.Errno { return sysFD(unix.SYS_SOCKET, unix.AF_INET6, unix.SOCK_DGRAM, 0) }, 0},
	{"socket_unix", func() unix.Errno { return sysFD(unix.SYS_SOCKET, unix.AF_UNIX, unix.SOCK_STREAM, 0) }, 0},
	{"socket_netlink", func() unix.Errno {
		return sysFD(unix.SYS_SOCKET, unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_ROUTE)
	}, 0},

	{"socketpair_unix", func() unix.Errno {
		var fds [2]int32
		e := sys(unix.SYS_SOCKETPAIR, unix.AF_UNIX, unix.SOCK_STREAM, 0, uintptr(unsafe.Pointer(&fds)))
		if e == 0 {
			unix.Close(int(fds[0]))
			unix.Close(int(fds[1]))
		}
		return e
	}, 0},
	{"socketpair_alg", func() unix.Errno {
		var fds [2]int32
		return sys(unix.SYS_SOCKETPAIR, afAlg, unix.SOCK_SEQPACKET, 0, uintptr(unsafe.Pointer(&fds)))
	}, unix.EPERM},
	{"socketpair_vsock_high", func() unix.Errno {
		var fds [2]int32
		return sys(unix.SYS_SOCKETPAIR, high32|afVsock, unix.SOCK_STREAM, 0, uintptr(unsafe.Pointer(&fds)))
	}, unix.EPERM},

	// RLIMIT_CORE (the core guard, coreguard.go): setting it is refused,
	// reading it is not. Each set asks for the limits the child already
	// has, so it changes nothing where it gets through.
	{"setrlimit_core", func() unix.Errno { return setCurrentLimit(unix.SYS_SETRLIMIT, unix.RLIMIT_CORE) }, unix.EPERM},
	{"setrlimit_core_high", func() unix.Errno {
		return setCurrentLimit(unix.SYS_SETRLIMIT, high32|unix.RLIMIT_CORE)
	}, unix.EPERM},
	{"prlimit64_core_set", func() unix.Errno { return setCurrentLimit(unix.SYS_PRLIMIT64, unix.RLIMIT_CORE) }, unix.EPERM},
	{"prlimit64_core_set_high", func() unix.Errno {
		return setCurrentLimit(unix.SYS_PRLIMIT64, high32|unix.RLIMIT_CORE)
	}, unix.EPERM},
	// A new limit at 0x1_0000_0000: not NULL to the kernel (EFAULT there).
	{"prlimit64_core_set_high_pointer", func() unix.Errno {
		return sys(unix.SYS_PRLIMIT64, 0, unix.RLIMIT_CORE, high32, 0)
	}, unix.EPERM},
	{"prlimit64_core_get", func() unix.Errno {
		var old unix.Rlimit
		return sys(unix.SYS_PRLIMIT64, 0, unix.RLIMIT_CORE, 0, uintptr(unsafe.Pointer(&old)))
	}, 0},
	{"getrlimit_core", func() unix.Errno {
		var old unix.Rlimit
		return sys(unix.SYS_GETRLIMIT, unix.RLIMIT_CORE, uintptr(unsafe.Pointer(&old)))
	}, 0},
	{"setrlimit_nofile", func() unix.Errno { return setCurrentLimit(unix.SYS_SETRLIMIT, unix.RLIMIT_NOFILE) }, 0},
	{"prlimit64_nofile_set", func() unix.Errno { return setCurrentLimit(unix.SYS_PRLIMIT64, unix.RLIMIT_NOFILE) }, 0},

	// Whole-filesystem writeback. syncfs on a bad fd: EBADF without a
	// filter; sync cannot fail, and without a filter it is a real (harmless)
	// sync.
	{"sync", func() unix.Errno { return sys(unix.SYS_SYNC) }, unix.EPERM},
	{"syncfs", func() unix.Errno { return sys(unix.SYS_SYNCFS, badFD) }, unix.EPERM},
	{"fsync", func() unix.Errno { return sys(unix.SYS_FSYNC, badFD) }, unix.EBADF},

	// Set-id bits, on paths that do not exist (ENOENT without a filter).
	{"chmod_setuid", func() unix.Errno { return sys(unix.SYS_CHMOD, str(noPath), 0o4755) }, unix.EPERM},
	{"chmod_setgid", func() unix.Errno { return sys(unix.SYS_CHMOD, str(noPath), 0o2755) }, unix.EPERM},
	{"chmod_setuid_high", func() unix.Errno { return sys(unix.SYS_CHMOD, str(noPath), high32|0o4755) }, unix.EPERM},
	{"chmod_plain", func() unix.Errno { return sys(unix.SYS_CHMOD, str(noPath), 0o1777) }, unix.ENOENT},
	{"fchmod_setuid", func() unix.Errno { return sys(unix.SYS_FCHMOD, badFD, 0o4755) }, unix.EPERM},
	{"fchmod_plain", func() unix.Errno { return sys(unix.SYS_FCHMOD, badFD, 0o755) }, unix.EBADF},
	{"fchmodat_setgid", func() unix.Errno {
		return sys(unix.SYS_FCHMODAT, atFDCWD, str(noPath), 0o2700)
	}, unix.EPERM},
	{"fchmodat_plain", func() unix.Errno { return sys(unix.SYS_FCHMODAT, atFDCWD, str(noPath), 0o700) }, unix.ENOENT},
	{"open_creat_setuid", func() unix.Errno {
		return sysFD(unix.SYS_OPEN, str(noPath+"/f"), unix.O_CREAT|unix.O_WRONLY, 0o4755)
	}, unix.EPERM},
	{"openat_creat_setgid", func() unix.Errno {
		return sysFD(unix.SYS_OPENAT, atFDCWD, str(noPath+"/f"), unix.O_CREAT|unix.O_WRONLY, 0o2755)
	}, unix.EPERM},
	{"openat_creat_plain", func() unix.Errno {
		return sysFD(unix.SYS_OPENAT, atFDCWD, str(noPath+"/f"), unix.O_CREAT|unix.O_WRONLY, 0o644)
	}, unix.ENOENT},
	{"openat_read", func() unix.Errno { return sysFD(unix.SYS_OPENAT, atFDCWD, str("/dev/null"), unix.O_RDONLY, 0) }, 0},
	{"creat_setuid", func() unix.Errno { return sysFD(unix.SYS_CREAT, str(noPath+"/f"), 0o6755) }, unix.EPERM},
	{"mknod_reg_setuid", func() unix.Errno {
		return sys(unix.SYS_MKNOD, str(noPath+"/f"), unix.S_IFREG|0o4755, 0)
	}, unix.EPERM},
	{"mknodat_reg_setgid", func() unix.Errno {
		return sys(unix.SYS_MKNODAT, atFDCWD, str(noPath+"/f"), unix.S_IFREG|0o2755, 0)
	}, unix.EPERM},
	{"mknodat_fifo", func() unix.Errno {
		return sys(unix.SYS_MKNODAT, atFDCWD, str(noPath+"/f"), unix.S_IFIFO|0o644, 0)
	}, unix.ENOENT},
	// mkdir keeps no set-id bit of its mode (the kernel drops them): allowed.
	{"mkdir_setgid", func() unix.Errno { return sys(unix.SYS_MKDIR, str(noPath+"/d"), 0o2755) }, unix.ENOENT},
	// openat2's mode is in memory: ENOSYS, so callers fall back to openat.
	{"openat2", func() unix.Errno {
		how := unix.OpenHow{Flags: unix.O_RDONLY}
		return sysFD(unix.SYS_OPENAT2, atFDCWD, str(noPath), uintptr(unsafe.Pointer(&how)), unsafe.Sizeof(how))
	}, unix.ENOSYS},

	// ordinary calls
	{"getpid", func() unix.Errno { return sys(unix.SYS_GETPID) }, 0},
	{"pipe2", func() unix.Errno {
		var fds [2]int32
		e := sys(unix.SYS_PIPE2, uintptr(unsafe.Pointer(&fds)), unix.O_CLOEXEC)
		if e == 0 {
			unix.Close(int(fds[0]))
			unix.Close(int(fds[1]))
		}
		return e
	}, 0},
	// x32 ABI: the same getpid with __X32_SYSCALL_BIT. Whether or not the
	// kernel has x32, the filter must not let it through.
	{"x32_getpid", func() unix.Errno { return sys(0x40000000 | unix.SYS_GETPID) }, unix.ENOSYS},
	// A system call number no kernel has: the default action.
	{"unknown_syscall", func() unix.Errno { return sys(5000) }, unix.ENOSYS},
}

// atFDCWD is AT_FDCWD (-100) as a register value.
const atFDCWD = ^uintptr(99)

// setCurrentLimit sets resource (and any bits above it) to the limits the
// process has, through setrlimit or prlimit64(0, ...).
func setCurrentLimit(nr uintptr, resource uintptr) unix.Errno {
	var cur unix.Rlimit
	if err := unix.Getrlimit(int(uint32(resource)), &cur); err != nil {
		return err.(unix.Errno)
	}
	if nr == unix.SYS_SETRLIMIT {
		return sys(nr, resource, uintptr(unsafe.Pointer(&cur)))
	}
	return sys(nr, 0, resource, uintptr(unsafe.Pointer(&cur)), 0)
}

func probeByName(name string) (probe, bool) {
	for _, p := range probes {
		if p.name == name {
			return p, true
		}
	}
	return probe{}, false
}

// rawFork is what glibc's fork() does: clone(SIGCHLD), no new namespaces.
// The child exits at once with a status the parent checks, touching nothing
// of the Go runtime in between.
func rawFork() unix.Errno {
	pid, e := forkExit(42)
	if e != 0 {
		return e
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil {
		return err.(unix.Errno)
	}
	if !ws.Exited() || ws.ExitStatus() != 42 {
		return unix.ECHILD
	}
	return 0
}

//go:norace
//go:nosplit
func forkExit(status uintptr) (int, unix.Errno) {
	pid, _, e := syscall.RawSyscall6(unix.SYS_CLONE, uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
	if e == 0 && pid == 0 {
		syscall.RawSyscall(unix.SYS_EXIT_GROUP, status, 0, 0)
	}
	return int(pid), unix.Errno(e)
}
