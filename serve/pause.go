package serve

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/brig-sandbox/brig/cgroup"
	"github.com/brig-sandbox/brig/jail"
)

// Idle pause (Lifecycle.IdlePause). A sandbox no request has used for
// IdlePause has its contexts' jails frozen with the cgroup freezer: their
// interpreters, and whatever they left running in the background, keep
// their memory and state and use no CPU. Its next request thaws them
// before it does anything else (sandbox.use), so a client never sees a
// paused context. A sandbox with a background process running (POST
// .../processes) is in use, as it is for idle_timeout, and is never
// paused: a job the client left running goes on.
//
// Pause and resume hold the sandbox's lock: a request cannot slip in
// between the idle check and the freeze, nor see half of the contexts
// thawed.

// pauseIdle pauses the sandboxes idle for IdlePause.
func (s *Server) pauseIdle(now time.Time) {
	if s.cfg.Lifecycle.IdlePause <= 0 {
		return
	}
	s.mu.Lock()
	list := make([]*sandbox, 0, len(s.sandboxes))
	for _, sb := range s.sandboxes {
		list = append(list, sb)
	}
	s.mu.Unlock()
	for _, sb := range list {
		sb.pauseIfIdle(now, s.cfg.Lifecycle.IdlePause)
	}
}

// pauseIfIdle freezes the sandbox's live contexts if it has been idle for
// d. A context that cannot be frozen thaws the others and leaves the
// sandbox running until its next request, which may try again.
func (sb *sandbox) pauseIfIdle(now time.Time, d time.Duration) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.deleted || sb.paused || sb.pauseFailed || sb.busy > 0 || now.Sub(sb.lastUsed) < d || len(sb.contexts) == 0 {
		return
	}
	var frozen []*execContext
	for _, c := range sb.contexts {
		if c.in.err() != nil {
			continue // dead: nothing to freeze
		}
		if err := c.in.pause(); err != nil {
			for _, f := range frozen {
				_ = f.in.resume()
			}
			sb.pauseFailed = true
			sb.srv.log.Warn("pausing an idle sandbox failed; it runs on until its next request", "sandbox", sb.id, "context", c.id, "err", err)
			return
		}
		frozen = append(frozen, c)
	}
	sb.paused = true
	sb.pausedNow.Store(true)
	sb.srv.log.Info("sandbox paused", "sandbox", sb.id, "tenant", sb.tenant.Name, "idle", now.Sub(sb.lastUsed).Round(time.Millisecond))
	sb.srv.observe(nil, Event{Time: now, Tenant: sb.tenant.Name, Action: "sandbox.pause", Sandbox: sb.id, Template: sb.template.Name})
}

// resumeLocked thaws a paused sandbox's contexts; sb.mu is held. A context
// that cannot be thawed is killed (its next cell then answers dead)
// rather than left frozen with a client waiting on it.
func (sb *sandbox) resumeLocked() {
	sb.pauseFailed = false
	if !sb.paused {
		return
	}
	sb.paused = false
	sb.pausedNow.Store(false)
	for _, c := range sb.contexts {
		if err := c.in.resume(); err != nil && c.in.err() == nil {
			sb.srv.log.Error("resuming a paused context failed; killing it", "sandbox", sb.id, "context", c.id, "err", err)
			c.in.close()
		}
	}
	sb.srv.observe(nil, Event{Time: time.Now(), Tenant: sb.tenant.Name, Action: "sandbox.resume", Sandbox: sb.id, Template: sb.template.Name})
}

// checkPausable refuses, at start, an idle_pause the host cannot honour:
// for each template, a cgroup made as its jails' are must freeze and
// thaw. The rlimit fallback (a host without usable cgroups, or a template
// with limiter: rlimit) cannot.
func checkPausable(cfg *Config) error {
	if cfg.Lifecycle.IdlePause <= 0 {
		return nil
	}
	names := make([]string, 0, len(cfg.Templates))
	for name := range cfg.Templates {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		j := cfg.Templates[name].Jail
		l, err := cgroup.New(cgroup.Limits{Memory: jail.DefaultMemory, Pids: jail.DefaultPids, CPUs: 1},
			cgroup.Options{Kind: j.Limiter, Require: j.RequireCgroups, Parent: j.CgroupParent})
		if err != nil {
			return fmt.Errorf("%s: lifecycle.idle_pause: template %s: making a cgroup as its jails' to test the freezer: %w", cfg.File, name, err)
		}
		kind := l.Kind()
		err = l.Freeze()
		if err == nil {
			err = l.Thaw()
		}
		err = errors.Join(err, l.Close())
		if err != nil {
			return fmt.Errorf("%s: lifecycle.idle_pause: template %s: its jails' limiter (%s) cannot freeze them: %w; remove idle_pause, or give every template a cgroup limiter (brig check says what this host offers)", cfg.File, name, kind, err)
		}
	}
	return nil
}
