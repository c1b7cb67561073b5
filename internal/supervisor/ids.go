package supervisor

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"

	"golang.org/x/sys/unix"

	"github.com/brig-sandbox/brig/internal/stage"
)

// hostIDLease holds the host ids one live jail maps to. When the supervisor
// is root every jail gets its own pair from the configured range: Init (the
// jail's root, which builds the jail) and Jail (the program's uid/gid 1000),
// so per-uid kernel limits (RLIMIT_NPROC) and signal permissions never cross
// jails, and the program cannot even signal its own init. The pair is held
// by binding an abstract unix socket named after it: the kernel frees the
// name when the holder dies, so a crashed supervisor leaks nothing and
// several supervisors on one host never share ids.
type hostIDLease struct {
	stage.IDs
	fd int
}

func leaseHostID(r IDRange) (*hostIDLease, error) {
	if os.Geteuid() != 0 {
		// An unprivileged supervisor can map only itself.
		return &hostIDLease{IDs: stage.IDs{Jail: uint32(os.Geteuid()), GID: uint32(os.Getegid())}, fd: -1}, nil
	}
	if r.First == 0 || r.Count < 2 || uint64(r.First)+uint64(r.Count) > 1<<32-1 {
		return nil, fmt.Errorf("host id range %d+%d: must hold at least 2 ids, not include root and not overflow 32 bits", r.First, r.Count)
	}
	pairs := r.Count / 2
	start := rand.Uint32N(pairs)
	for i := range pairs {
		id := r.First + 2*((start+i)%pairs)
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("lease host id: %w", err)
		}
		err = unix.Bind(fd, &unix.SockaddrUnix{Name: fmt.Sprintf("@brig/hostid/%d", id)})
		if err == nil {
			return &hostIDLease{IDs: stage.IDs{Init: id, Jail: id + 1, Privileged: true}, fd: fd}, nil
		}
		unix.Close(fd)
		if !errors.Is(err, unix.EADDRINUSE) {
			return nil, fmt.Errorf("lease host id %d: %w", id, err)
		}
	}
	return nil, fmt.Errorf("lease host id: all %d id pairs from %d are in use by live jails; widen Config.HostIDs", pairs, r.First)
}

func (l *hostIDLease) release() {
	if l != nil && l.fd >= 0 {
		unix.Close(l.fd)
		l.fd = -1
	}
}
