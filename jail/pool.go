package jail

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/brig-sandbox/brig/internal/supervisor"
)

// A Pool keeps jails of one Config built ahead of use. Each pooled jail is
// built exactly as a cold one (same helper, namespaces, root, cgroup,
// host ids, seccomp filter), except that its init stops right before the
// exec stage and waits on a request socket. Pool.Command takes a ready jail,
// sends it the program, its arguments, environment, stdio and extra files
// (SCM_RIGHTS), and the program starts at once. A jail serves one command
// and is then destroyed; the pool builds a replacement in the background.
// Nothing of one run can reach the next: they never share a jail.
//
// The wall-clock timeout, the context and the result's wall time count from
// the request, not from when the jail was built. CPU time and peak memory
// include init's own work building the jail, as they do for a cold jail.
type Pool struct {
	sup *Supervisor
	cfg Config
	rt  *supervisor.Pool
}

// PoolStats are a pool's counters.
type PoolStats struct {
	Ready    int   // jails built and waiting now
	Hits     int64 // commands that got a ready jail
	Misses   int64 // commands that found none ready (or could not use one) and were built cold
	Built    int64 // jails built ahead
	Failures int64 // builds that failed, and ready jails found dead
	// RefillTime is the mean time to build one jail ahead.
	RefillTime time.Duration
	LastError  error // the last build failure, if any
}

// NewPool builds size jails of cfg ahead and keeps that many ready until
// Close or until ctx is done. The first jail is built before NewPool
// returns, so a Config that cannot work fails here.
func NewPool(ctx context.Context, cfg Config, size int) (*Pool, error) {
	return DefaultSupervisor.NewPool(ctx, cfg, size)
}

// NewPool is the package's NewPool with jails of this supervisor.
func (s *Supervisor) NewPool(ctx context.Context, cfg Config, size int) (*Pool, error) {
	if size < 1 {
		return nil, fmt.Errorf("jail: pool size %d: must be at least 1", size)
	}
	plan, err := s.plan(cfg)
	if err != nil {
		return nil, &SetupError{Step: "config", Err: err}
	}
	if plan.Egress != nil {
		// A pooled jail is built before its program is known, and its
		// proxy would have to outlive the pool's idle time: not yet.
		return nil, &SetupError{Step: "config", Err: errors.New("network \"proxy\" is not for a Pool's jails: start them with jail.Command (a cold jail serves its own proxy)")}
	}
	rt, err := s.rt.NewPool(ctx, plan, size)
	if err != nil {
		return nil, publicError(err)
	}
	return &Pool{sup: s, cfg: cfg, rt: rt}, nil
}

// Command returns a Cmd that runs name with args in one of the pool's jails,
// or in a cold jail of the same Config when none is ready. Cmd.Dir must be
// "" or the Config's WorkDir for a pooled jail to be used (the scratch
// directory is mounted there while the jail is built); Config changes made
// on the returned Cmd are ignored.
func (p *Pool) Command(ctx context.Context, name string, args ...string) *Cmd {
	c := p.sup.Command(ctx, p.cfg, name, args...)
	c.pool = p
	return c
}

// Stats returns the pool's counters.
func (p *Pool) Stats() PoolStats {
	st := PoolStats(p.rt.Stats())
	if st.LastError != nil {
		st.LastError = publicError(st.LastError)
	}
	return st
}

// Close destroys the ready jails, stops refilling and waits until every
// jail the pool built is gone from the host, with the ended jails' cgroups
// the process kept for reuse (cgroup.RemoveIdle). Commands already started
// keep running; their jails are cleaned up by their own Wait.
func (p *Pool) Close() { p.rt.Close() }
