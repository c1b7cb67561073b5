package jail

import (
	"context"

	"github.com/brig-sandbox/brig/internal/supervisor"
)

// A Supervisor starts jails and owns what it keeps between them for its
// next ones: its spawner (a process that forks each jail's helper), the
// root templates, the sweep of cgroups that killed supervisors left, and
// the switch that hands an ended jail's v1 cgroups to the next. Close ends
// all of it. Jails of two Supervisors in one process run side by side and
// share nothing of this; closing one leaves the other's jails running.
//
// Command, NewPool and package session use DefaultSupervisor, as http.Get
// uses http.DefaultClient; a program needs another one only for a second
// host id range, or to close one set of jails' helpers while others run.
// The host ids themselves are leased per jail, machine-wide, and released
// when the jail is cleaned up: two supervisors with overlapping ranges
// never give two live jails one id.
type Supervisor struct {
	opts SupervisorOptions
	rt   *supervisor.Supervisor
}

// SupervisorOptions configures a Supervisor for its whole life.
type SupervisorOptions struct {
	// HostIDs is the range of host ids its jails map to when it runs as
	// root; the zero value means brig's default, 65536 ids from
	// 1,500,000,000 (far above those distributions and /etc/subuid hand
	// out). Config.HostIDs overrides it per jail.
	HostIDs IDRange
}

// NewSupervisor returns a Supervisor with opts. It starts nothing: its
// spawner and templates come with its jails. A Supervisor is used by
// pointer, never copied.
func NewSupervisor(opts SupervisorOptions) *Supervisor {
	return &Supervisor{opts: opts, rt: supervisor.New()}
}

// DefaultSupervisor is the Supervisor of Command, NewPool and package
// session's NewPython and NewShell. A spawner forked before the Go
// runtime started (brig_spawner_at_start, see the package doc) is its.
var DefaultSupervisor = &Supervisor{rt: supervisor.Default}

// HostIDs is the range of host ids the supervisor's jails map to when it
// runs as root (unless their Config names another).
func (s *Supervisor) HostIDs() IDRange {
	if s.opts.HostIDs.Count != 0 {
		return s.opts.HostIDs
	}
	return defaultHostIDs
}

// Command returns a Cmd that runs name with args in a jail of this
// supervisor built from cfg. Cancelling ctx kills the whole jail.
func (s *Supervisor) Command(ctx context.Context, cfg Config, name string, args ...string) *Cmd {
	return &Cmd{Path: name, Args: append([]string{name}, args...), Config: cfg, ctx: ctx, sup: s}
}

// Close ends what the supervisor keeps ready for its next jails and waits
// until it is gone, so that nothing of brig outlives the program: its
// spawner (otherwise it exits only when it sees its supervisor gone), its
// root templates' fds, and the ended jails' cgroups kept for reuse
// (otherwise removed a quarter of a second after their jail, or by the
// next supervisor's sweep if the program has exited by then). The spawner
// exits once the helpers it forked have, so Close returns only after the
// jails they run have ended: a program calls it when it starts no more
// jails and its last one is over (brig run does, before it exits), not
// while another goroutine starts one. A later jail still works: it execs
// its helper and warms a new spawner, the supervisor having started jails
// before.
//
// The cgroups kept for reuse are package cgroup's, shared by the
// process's supervisors (it imports nothing of brig): Close removes all
// that no jail uses now, which costs another supervisor's next jail at
// most making its cgroups afresh.
func (s *Supervisor) Close() error { return s.rt.Close() }

// StaleCgroupsRemoved is how many cgroup directories left by supervisors
// killed before they could clean up (one a hierarchy per jail) this
// supervisor has removed. Its first jail under a cgroup parent sweeps
// that parent in the background; the jail's Wait returns after the sweep.
// brig serve exports it as brig_stale_cgroups_removed_total.
func (s *Supervisor) StaleCgroupsRemoved() uint64 { return s.rt.StaleCgroupsRemoved() }

// CloseSpawner is DefaultSupervisor.Close.
//
// Deprecated: call DefaultSupervisor.Close (or Close of the Supervisor
// that ran the jails).
func CloseSpawner() { _ = DefaultSupervisor.Close() }
