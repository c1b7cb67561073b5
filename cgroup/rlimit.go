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
