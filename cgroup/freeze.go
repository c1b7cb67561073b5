package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// ErrNoFreezer is returned by Freeze and Thaw of a limiter that cannot stop
// its jail as a whole: the rlimit fallback, and a cgroup v1 set made
// without the freezer hierarchy (Options.NoFreezer).
var ErrNoFreezer = errors.New("cgroup: this limiter has no freezer")

// freezeTimeout bounds how long Freeze waits for every task to stop. A task
// in uninterruptible sleep (a read from a hung NFS server) keeps a cgroup
// FREEZING; the caller is told instead of being held.
var freezeTimeout = 5 * time.Second

// Freeze stops every process of the jail (cgroup v1 freezer.state FROZEN,
// v2 cgroup.freeze 1) and returns once the kernel reports them all
// stopped. A frozen jail uses no CPU, keeps its memory, and cannot tell it
// was stopped except by the clock; Kill and Close still end it.
func (l *v1Limiter) Freeze() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.freezable(); err != nil {
		return err
	}
	ok, err := freeze(l.freezerDir, time.Now().Add(freezeTimeout))
	if err == nil && !ok {
		err = fmt.Errorf("freeze cgroup %s: still FREEZING after %v (a task in uninterruptible sleep?); left thawed", l.freezerDir, freezeTimeout)
	}
	if err != nil {
		return errors.Join(err, writeFreezerState(l.freezerDir, "THAWED"))
	}
	l.frozen = true
	return nil
}

// Thaw resumes a jail stopped by Freeze; it is a no-op on a running jail.
func (l *v1Limiter) Thaw() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.freezable(); err != nil {
		return err
	}
	return l.thaw()
}

func (l *v1Limiter) thaw() error {
	if err := writeFreezerState(l.freezerDir, "THAWED"); err != nil {
		return err
	}
	l.frozen = false
	return nil
}

func (l *v1Limiter) freezable() error {
	if l.closed {
		return fmt.Errorf("cgroup %s: closed", l.memDir)
	}
	if l.freezerDir == "" {
		return fmt.Errorf("%w: cgroup v1 jail made without the freezer hierarchy (Options.NoFreezer)", ErrNoFreezer)
	}
	return nil
}

func writeFreezerState(dir, state string) error {
	err := os.WriteFile(filepath.Join(dir, "freezer.state"), []byte(state), 0)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("set cgroup %s %s: %w", dir, state, err)
	}
	return nil
}

func (l *v2Limiter) Freeze() error { return l.setFrozen(true) }
func (l *v2Limiter) Thaw() error   { return l.setFrozen(false) }

// setFrozen writes cgroup.freeze and waits for cgroup.events to say
// "frozen" with the same value: the write only asks.
func (l *v2Limiter) setFrozen(frozen bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("cgroup %s: closed", l.dir)
	}
	want, verb := int64(0), "thaw"
	if frozen {
		want, verb = 1, "freeze"
	}
	if err := os.WriteFile(filepath.Join(l.dir, "cgroup.freeze"), []byte(fmt.Sprint(want)), 0); err != nil {
		return fmt.Errorf("%s cgroup %s: %w", verb, l.dir, err)
	}
	deadline := time.Now().Add(freezeTimeout)
	delay := 100 * time.Microsecond
	for {
		v, _, err := readKey(filepath.Join(l.dir, "cgroup.events"), "frozen")
		if err != nil {
			return fmt.Errorf("%s cgroup %s: %w", verb, l.dir, err)
		}
		if v == want {
			return nil
		}
		if time.Now().After(deadline) {
			if frozen {
				err := os.WriteFile(filepath.Join(l.dir, "cgroup.freeze"), []byte("0"), 0)
				return errors.Join(fmt.Errorf("freeze cgroup %s: not frozen after %v (a task in uninterruptible sleep?); left thawed", l.dir, freezeTimeout), err)
			}
			return fmt.Errorf("thaw cgroup %s: still frozen after %v", l.dir, freezeTimeout)
		}
		time.Sleep(delay)
		delay = min(2*delay, 10*time.Millisecond)
	}
}

func (r *rlimitLimiter) Freeze() error {
	return fmt.Errorf("%w: the rlimit fallback has no cgroup to stop (use a cgroup limiter)", ErrNoFreezer)
}

func (r *rlimitLimiter) Thaw() error { return r.Freeze() }
