package supervisor

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// pauseState is a jail's freezer state and the wall-clock timer it holds
// back: time spent frozen does not count against the Timeout, so a
// sandbox paused while idle is not killed for it. The timer is stopped at
// Freeze with what was left of it, and set again to that at Thaw.
type pauseState struct {
	mu       sync.Mutex
	frozen   bool
	timer    *time.Timer // nil without a Timeout
	deadline time.Time   // when the timer fires, while thawed
	left     time.Duration
}

// Freeze stops every process of the jail (cgroup.Limiter.Freeze) and
// holds back its wall-clock timeout. It fails, wrapping
// cgroup.ErrNoFreezer, when the jail's limiter cannot freeze: the plan
// was not Pausable, or the limiter is the rlimit fallback. Freezing a
// frozen jail does nothing.
func (c *Instance) Freeze() error {
	if err := c.running(); err != nil {
		return err
	}
	p := &c.pause
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.frozen {
		return nil
	}
	if err := c.limiter.Freeze(); err != nil {
		return fmt.Errorf("jail: freeze: %w", err)
	}
	p.frozen = true
	if p.timer != nil && p.timer.Stop() {
		p.left = max(time.Until(p.deadline), 0)
	} else {
		p.timer = nil // fired: the jail is being stopped
	}
	return nil
}

// Thaw resumes a jail stopped by Freeze, its timeout counting again from
// where it stood; thawing a running jail does nothing.
func (c *Instance) Thaw() error {
	if err := c.running(); err != nil {
		return err
	}
	p := &c.pause
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.frozen {
		return nil
	}
	if err := c.limiter.Thaw(); err != nil {
		return fmt.Errorf("jail: thaw: %w", err)
	}
	p.frozen = false
	if p.timer != nil {
		p.deadline = time.Now().Add(p.left)
		p.timer.Reset(p.left)
	}
	return nil
}

// Frozen reports whether the jail is stopped by Freeze.
func (c *Instance) Frozen() bool {
	c.pause.mu.Lock()
	defer c.pause.mu.Unlock()
	return c.pause.frozen
}

// running is nil for a jail that has started and not ended.
func (c *Instance) running() error {
	if c.done == nil || c.limiter == nil {
		return errors.New("jail: not started")
	}
	select {
	case <-c.done:
		return errors.New("jail: already finished")
	default:
	}
	return nil
}
