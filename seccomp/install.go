package seccomp

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Install loads a program from Compile into the calling process: it sets
// no_new_privs (required to load a filter without CAP_SYS_ADMIN, and what
// stops a setuid binary from running unfiltered privileges) and then calls
// seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, prog).
//
// TSYNC matters for Go callers: the runtime runs many OS threads, and
// without it only the calling thread would be filtered. The kernel also
// copies no_new_privs to every thread it synchronises.
//
// The filter cannot be removed. Call this only in a process that is about to
// become the jailed program (typically right before execve).
func Install(prog []byte) error {
	if len(prog) == 0 || len(prog)%instructionSize != 0 {
		return fmt.Errorf("install seccomp filter: %d bytes is not a BPF program", len(prog))
	}
	n := len(prog) / instructionSize
	if n > maxInstructions {
		return fmt.Errorf("install seccomp filter: %d instructions, the kernel takes at most %d", n, maxInstructions)
	}
	// Copy into properly typed (and aligned) memory rather than pointing the
	// kernel into a byte slice.
	filter := make([]unix.SockFilter, n)
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&filter[0])), len(prog)), prog)
	fprog := unix.SockFprog{Len: uint16(n), Filter: &filter[0]}

	// no_new_privs is per thread; keep both calls on one thread so the
	// thread that calls seccomp is the one that has it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("install seccomp filter: prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(filter)
	if errno != 0 {
		return fmt.Errorf("install seccomp filter: seccomp(SET_MODE_FILTER): %w", errno)
	}
	if r != 0 {
		// With TSYNC, a positive return is the id of a thread that could
		// not be synchronised (it already has a diverging filter).
		return fmt.Errorf("install seccomp filter: thread %d could not be synchronised", r)
	}
	return nil
}
