package cgroup

import (
	"time"

	"golang.org/x/sys/unix"
)

// The rlimit fallback: no cgroup at all, only per-process limits applied by
// the jail before exec. It is weaker than a cgroup in three ways, which is
// why Options.Require exists:
//   - RLIMIT_AS bounds address space, not resident memory, per process: a
//     fork bomb of small processes is not bounded by it, and runtimes that
//     reserve big virtual areas (Go, Java, some Python builds) need headroom.
//   - RLIMIT_NPROC counts every process of the real uid; it is a per-jail
//     bound only because each jail runs as its own host uid.
//   - RLIMIT_CPU is per process; the jail's CPUTime budget over all
//     processes is enforced by the jail from rusage.
//
// Kernel memory a process pins without mapping it is not in its address
// space: pipe and socket buffers, memfd and other unlinked in-memory files,
// epoll watches. Of these, the fallback bounds what it can per process:
// RLIMIT_NOFILE (fds, so pipes, sockets and memfds held open) and
// RLIMIT_FSIZE (each file, memfds too) are sized from the memory limit.
// Their product still allows far more than the memory limit in memfds and
// socket buffers, and epoll watches are bounded only per user
// (fs.epoll.max_user_watches); only a memory cgroup counts these. The
// jail's SysV IPC limits are set in its IPC namespace instead (the jail
// package).
type rlimitLimiter struct {
	lim Limits
}

func newRlimit(lim Limits) *rlimitLimiter { return &rlimitLimiter{lim: lim} }

func (r *rlimitLimiter) Kind() Kind                      { return RlimitOnly }
func (r *rlimitLimiter) Dir() string                     { return "" }
func (r *rlimitLimiter) ProcsFiles() []string            { return nil }
func (r *rlimitLimiter) SelfMove() (jail, home []string) { return nil, nil }

// Stats knows nothing: the jail measures with rusage.
func (r *rlimitLimiter) Stats() (Stats, error) { return Stats{}, nil }

// Kill and Close have no cgroup to act on: the jail kills its own process
// tree (PID namespace init) instead.
func (r *rlimitLimiter) Kill() error  { return nil }
func (r *rlimitLimiter) Close() error { return nil }

func (r *rlimitLimiter) Rlimits() []Rlimit {
	var out []Rlimit
	if r.lim.Memory > 0 {
		m := uint64(r.lim.Memory)
		out = append(out, Rlimit{Resource: unix.RLIMIT_AS, Cur: m, Max: m})
		files, fsize := fileRlimits(r.lim.Memory)
		out = append(out, Rlimit{Resource: unix.RLIMIT_NOFILE, Cur: files, Max: files},
			Rlimit{Resource: unix.RLIMIT_FSIZE, Cur: fsize, Max: fsize})
	}
	if r.lim.Pids > 0 {
		p := uint64(r.lim.Pids)
		out = append(out, Rlimit{Resource: unix.RLIMIT_NPROC, Cur: p, Max: p})
	}
	if r.lim.CPUTime > 0 {
		// Round up: a 1.5 s budget must not kill at 1 s. The soft limit
		// sends SIGXCPU (a distinct, reportable signal); the hard limit one
		// second later is the kernel's SIGKILL for programs that ignore it.
		secs := uint64((r.lim.CPUTime + time.Second - 1) / time.Second)
		out = append(out, Rlimit{Resource: unix.RLIMIT_CPU, Cur: secs, Max: secs + 1})
	}
	return out
}

// Bounds of fileRlimits.
const (
	MaxFiles    = 1024 // RLIMIT_NOFILE of every jail
	minFiles    = 64   // enough for an interpreter, its libraries and a few pipes
	bytesPerFD  = 256 << 10
	MaxFileSize = 1 << 30 // RLIMIT_FSIZE of every jail
)

// fileRlimits sizes RLIMIT_NOFILE and RLIMIT_FSIZE from a memory limit for
// the rlimit fallback: one open file per 256 KiB of memory (64 to 1024),
// which keeps the socket buffers a process can fill near half its memory
// limit, and no file larger than the memory limit (at most 1 GiB).
func fileRlimits(memory int64) (files, fsize uint64) {
	m := uint64(max(memory, 0))
	return max(minFiles, min(m/bytesPerFD, MaxFiles)), max(1<<20, min(m, MaxFileSize))
}
