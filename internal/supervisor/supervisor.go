package supervisor

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/brig-sandbox/brig/cgroup"
)

// A Supervisor is the runtime of a jail.Supervisor: what it keeps between
// jails for its next ones (its spawner, the root templates, the sweep of
// cgroups that killed supervisors left, the switch that hands an ended
// jail's v1 cgroups to the next) and Close, which ends all of it.
type Supervisor struct {
	// early: the spawner the constructor forked before the Go runtime
	// started is this one's (Default).
	early bool

	spawner   spawnerState
	templates templateCache
	// templatesOpen counts its templates whose fd is open.
	templatesOpen atomic.Int64
	system        systemMountCache
	// ipcWrites holds the IPC limits of the last memory limit asked for
	// (ipcSysctlWrites): a supervisor's jails mostly share one.
	ipcWrites atomic.Pointer[ipcWriteList]
	// sweeps holds, per cgroup parent, the sweep of stale cgroups this
	// supervisor started (a channel closed when it is done).
	sweeps sync.Map
	// staleRemoved counts the cgroup directories its sweeps removed.
	staleRemoved atomic.Uint64
	// started counts Start calls: a supervisor that starts one jail only
	// (brig run) never starts a spawner nor keeps cgroups for reuse; from
	// the second on, it does both.
	started atomic.Int64
	// bg counts the background work Close waits for: a spawner starting,
	// a template being built, a stale-cgroup sweep.
	bg sync.WaitGroup
}

// StaleCgroupsRemoved is how many cgroup directories of dead supervisors
// its sweeps have removed (one a hierarchy per jail). A sweep runs in the
// background; a jail's Wait returns after the sweep its start began.
func (s *Supervisor) StaleCgroupsRemoved() uint64 { return s.staleRemoved.Load() }

// New returns a Supervisor. It starts nothing: its spawner and templates
// come with its jails.
func New() *Supervisor { return &Supervisor{} }

// Default is jail.DefaultSupervisor's runtime: a spawner forked before
// the Go runtime started (brig_spawner_at_start, see jail's package doc)
// is its.
var Default = &Supervisor{early: true}

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
func (s *Supervisor) Close() error {
	if s.early {
		adoptEarlySpawner() // one no jail has used yet
	}
	s.bg.Wait() // a spawner or template that is starting would outlive Close
	s.closeSpawner()
	s.closeTemplates()
	cgroup.RemoveIdle()
	return nil
}

// systemMountCache keeps the system mounts resolved for a second
// (systemMounts).
type systemMountCache struct {
	sync.Mutex
	at     time.Time
	mounts []mountSpec
}
