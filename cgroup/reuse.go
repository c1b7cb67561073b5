package cgroup

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Reuse of v1 cgroups (Options.Reuse). Making a jail's v1 cgroups and
// removing them afterwards is kernel work the size of a quarter of a cold
// jail's own (a memory cgroup most of all: its control files, per-CPU
// statistics, and an offline pass in a worker after rmdir). A supervisor
// that starts jails one after another may instead hand an ended jail's
// cgroups to its next jail of the same limits: a jail is never reused, its
// empty cgroup directories may be.
//
// Only an empty set is kept, and only while next to nothing is charged to
// its memory cgroup (page cache the ended jail read stays charged to it:
// more than reuseMaxCharge, and the set is removed as before, so that no
// jail starts with another's cache counted against its limit). The next
// jail gets it with its peak memory reset to what is still charged (at most
// reuseMaxCharge), its CPU time reset, and its OOM-kill and pids-limit
// counters measured from where they stand. No jail can change a cgroup's
// settings: its files belong to the host's root. A set unused for
// reuseIdle is removed; RemoveIdle removes the rest at once.
const (
	reuseIdle      = 250 * time.Millisecond
	reuseMaxCharge = 512 << 10
	reuseMaxSets   = 8 // per key
)

// reuseKey: sets are handed on between jails of the same hierarchies and
// the same limits only, so nothing needs to be written but the resets.
type reuseKey struct {
	dirs string // the parents, joined
	lim  Limits
}

var idle struct {
	sync.Mutex
	sets map[reuseKey][]*v1Limiter
}

func keyOf(parents []string, lim Limits) reuseKey {
	return reuseKey{dirs: strings.Join(parents, "\x00"), lim: lim}
}

// takeIdle returns an idle set for key, made ready for a new jail, or nil.
func takeIdle(key reuseKey) *v1Limiter {
	for {
		idle.Lock()
		sets := idle.sets[key]
		if len(sets) == 0 {
			idle.Unlock()
			return nil
		}
		l := sets[len(sets)-1]
		idle.sets[key] = sets[:len(sets)-1]
		idle.Unlock()
		l.idleTimer.Stop()
		l.mu.Lock() // until its last user's Close has returned
		err := l.resetForReuse()
		l.mu.Unlock()
		if err != nil {
			// Removed behind our back, say: not usable, try the next.
			_ = l.removeDirs(time.Now().Add(time.Second))
			continue
		}
		return l
	}
}

// putIdle keeps the ended jail's set for the next jail of its key, if it is
// empty and nearly uncharged; it reports whether it did. l.mu is held.
func (l *v1Limiter) putIdle() bool {
	if !l.reuse {
		return false
	}
	tasks, err := readInt(filepath.Join(l.pidsDir, "pids.current"))
	if err != nil || tasks != 0 {
		return false
	}
	charged, err := readInt(filepath.Join(l.memDir, "memory.usage_in_bytes"))
	if err != nil || charged > reuseMaxCharge {
		return false
	}
	idle.Lock()
	defer idle.Unlock()
	if idle.sets == nil {
		idle.sets = map[reuseKey][]*v1Limiter{}
	}
	if len(idle.sets[l.key]) >= reuseMaxSets {
		return false
	}
	l.counters.close()
	l.counters = counters{}
	l.closed = true // before another jail can take it
	idle.sets[l.key] = append(idle.sets[l.key], l)
	if l.idleTimer == nil {
		l.idleTimer = time.AfterFunc(reuseIdle, l.removeIfIdle)
	} else {
		l.idleTimer.Reset(reuseIdle)
	}
	return true
}

// removeIfIdle removes l's directories unless a jail took it meanwhile.
func (l *v1Limiter) removeIfIdle() {
	idle.Lock()
	sets := idle.sets[l.key]
	i := slices.Index(sets, l)
	if i >= 0 {
		idle.sets[l.key] = slices.Delete(sets, i, i+1)
	}
	idle.Unlock()
	if i >= 0 {
		_ = l.removeDirs(time.Now().Add(time.Second))
	}
}

// RemoveIdle removes at once the cgroups kept for reuse (Options.Reuse)
// that no jail uses now, instead of after their idle time: for a program
// about to exit, and for tests that check the host is as they found it.
func RemoveIdle() {
	idle.Lock()
	var all []*v1Limiter
	for k, sets := range idle.sets {
		all = append(all, sets...)
		delete(idle.sets, k)
	}
	idle.Unlock()
	for _, l := range all {
		l.idleTimer.Stop()
		_ = l.removeDirs(time.Now().Add(time.Second))
	}
}

// resetForReuse readies a kept set for its next jail: the peak and CPU time
// restart, the OOM-kill and pids-limit counters are measured from here.
func (l *v1Limiter) resetForReuse() error {
	if err := os.WriteFile(filepath.Join(l.memDir, "memory.max_usage_in_bytes"), []byte("0"), 0); err != nil {
		return err
	}
	if l.cpuacctDir != "" {
		if err := os.WriteFile(filepath.Join(l.cpuacctDir, "cpuacct.usage"), []byte("0"), 0); err != nil {
			return err
		}
	}
	oom := openCounter(filepath.Join(l.memDir, "memory.oom_control"))
	defer oom.close()
	kills, _, err := oom.key("oom_kill")
	if err != nil {
		return err
	}
	events := openCounter(filepath.Join(l.pidsDir, "pids.events"))
	defer events.close()
	hits, _, err := events.key("max")
	if err != nil {
		return err
	}
	l.oomKillsBefore, l.pidsHitsBefore = kills, hits
	l.closed = false
	return nil
}
