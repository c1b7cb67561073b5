package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// cgroup v1: one directory per controller hierarchy, each placed beneath the
// supervisor's own cgroup in that hierarchy (so a memory limit put on the
// supervisor also bounds its jails: memory.use_hierarchy is always 1 on
// kernels >= 6.x).
//
// cgroup v1 uses plain files, not containerd's cgroup1 package (v2 uses its
// cgroup2), because here the library gets in the way:
//   - its New creates every directory again and writes the limits through
//     the OCI resource types: 0.9-1.4 ms per jail, five writes take 0.2.
//   - its Freeze spins forever until the cgroup reports FROZEN, which never
//     happens while a task sits in uninterruptible sleep; Close must be bounded.
//   - its Stat reads every file of every controller in goroutines; the jail
//     polls Stats for CPU-time enforcement and needs three numbers.
//   - its Create uses MkdirAll, which would silently adopt an existing
//     directory; we create with Mkdir so a name clash is an error, never a
//     shared cgroup.
//   - its Delete uses os.RemoveAll for 310 ms; we retry rmdir until a deadline.

// v1Host is what probeV1 learned about the v1 hierarchies.
type v1Host struct {
	root        string            // directory holding the hierarchies, e.g. /sys/fs/cgroup
	mounts      map[string]string // controller -> mountpoint
	parents     map[string]string // controller -> parent cgroup dir for jails
	own         map[string]string // controller -> the supervisor's own cgroup dir
	freezer     bool              // the freezer hierarchy exists (race-free Kill)
	controllers []string
	writable    bool
	memsw       bool // memory.memsw.* exist (swap accounting is on)
}

func (h v1Host) backend(err error) Backend {
	b := Backend{Mount: h.root, Controllers: h.controllers, Writable: h.writable, Usable: err == nil}
	for _, d := range h.distinctParents() {
		b.Dirs = append(b.Dirs, d)
	}
	if err != nil {
		b.Problem = strings.TrimPrefix(err.Error(), ErrUnavailable.Error()+": ")
	}
	return b
}

// distinctParents returns one parent dir per hierarchy; co-mounted
// controllers (cpu,cpuacct) share one.
func (h v1Host) distinctParents() []string {
	var out []string
	for _, c := range slices.Sorted(maps.Keys(h.parents)) {
		if !slices.Contains(out, h.parents[c]) {
			out = append(out, h.parents[c])
		}
	}
	return out
}

// probeV1 finds the v1 hierarchies brig needs and checks brig may write
// there. The returned host is filled as far as detection got, even on error,
// so that Detect and RemoveStale can still show and use the directories.
func probeV1(mounts []cgroupMount, opt Options) (v1Host, error) {
	h := v1Host{mounts: map[string]string{}, parents: map[string]string{}, own: map[string]string{}}
	byCtrl := map[string]cgroupMount{}
	for _, m := range mounts {
		if m.fstype != "cgroup" {
			continue
		}
		for _, c := range m.controllers {
			if _, dup := byCtrl[c]; !dup {
				byCtrl[c] = m
			}
		}
	}
	_, own, err := ownCgroups()
	if err != nil {
		return h, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	var missingCtrl []string
	for _, c := range append(slices.Clone(v1Controllers), "freezer") {
		m, ok := byCtrl[c]
		if !ok {
			if c != "freezer" {
				missingCtrl = append(missingCtrl, c)
			}
			continue
		}
		ownDir, err := hostPath(m, own[c])
		if err != nil {
			return h, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		if h.root == "" {
			h.root = filepath.Dir(m.mountpoint)
		}
		h.mounts[c] = m.mountpoint
		h.parents[c] = filepath.Join(ownDir, parentName(opt))
		h.own[c] = ownDir
		h.controllers = append(h.controllers, c)
		if c == "freezer" {
			h.freezer = true
		}
	}
	if len(missingCtrl) > 0 {
		if len(byCtrl) == 0 {
			return h, fmt.Errorf("%w: no cgroup v1 hierarchy is mounted (a pure cgroup2 host: use cgroup2)", ErrUnavailable)
		}
		return h, fmt.Errorf("%w: no cgroup v1 hierarchy for %s (mount it, e.g. mount -t cgroup -o %s cgroup /sys/fs/cgroup/%s)",
			ErrUnavailable, strings.Join(missingCtrl, ", "), missingCtrl[0], missingCtrl[0])
	}
	// containerd's cgroup1 addresses each controller as <root>/<name>; make
	// sure that is where the hierarchy really is (symlinks such as
	// cpu -> cpu,cpuacct are fine). One stat each, which the kernel
	// resolves, rather than EvalSymlinks' lstat per path element: a
	// one-shot `brig run` probes on its critical path.
	for c, mp := range h.mounts {
		got, err1 := os.Stat(filepath.Join(h.root, c))
		want, err2 := os.Stat(mp)
		if err1 != nil || err2 != nil || !os.SameFile(got, want) {
			return h, fmt.Errorf("%w: the %s hierarchy is mounted at %s, not at %s; brig expects all v1 hierarchies side by side",
				ErrUnavailable, c, mp, filepath.Join(h.root, c))
		}
	}
	h.writable = true
	h.memsw = exists(filepath.Join(h.own["memory"], "memory.memsw.limit_in_bytes"))
	for _, p := range h.distinctParents() {
		dir := p
		if !exists(p) {
			dir = filepath.Dir(p) // the supervisor's own cgroup, where Parent will be created
		}
		if err := writable(dir); err != nil {
			h.writable = false
			return h, fmt.Errorf("%w: %v (run the supervisor as root, or chown its cgroups to its uid)", ErrUnavailable, err)
		}
	}
	return h, nil
}

// v1Limiter is the set of v1 cgroups (one per hierarchy) of one jail.
type v1Limiter struct {
	mu         sync.Mutex
	dirs       []string // one per hierarchy
	homes      []string // the supervisor's own cgroup in the same hierarchies
	memDir     string
	cpuacctDir string // "" without CPU accounting (Options.NoCPUAccounting)
	pidsDir    string
	cpuDir     string
	freezerDir string // "" without the freezer hierarchy
	frozen     bool   // by Freeze, until Thaw or a kill
	closed     bool
	counters

	// Reuse (reuse.go): the set may go to the next jail of its key; the
	// counters that cannot be reset are measured from these.
	reuse                          bool
	key                            reuseKey
	idleTimer                      *time.Timer
	oomKillsBefore, pidsHitsBefore int64
}

func newV1(lim Limits, h v1Host, reuse bool) (*v1Limiter, error) {
	key := keyOf(h.distinctParents(), lim)
	if reuse {
		if l := takeIdle(key); l != nil {
			return l, nil
		}
	}
	// Create the jail's directory in every hierarchy ourselves, with Mkdir:
	// an existing directory means a name clash, and we try the next name.
	// The parents are created when a Mkdir finds one missing (the first
	// jail, or after an operator removed them), not checked for every jail.
	var (
		name string
		made []string
	)
	for attempt := 0; ; attempt++ {
		var err error
		name, err = jailName()
		if err != nil {
			return nil, err
		}
		made, err = mkdirAll1(h.distinctParents(), name)
		if errors.Is(err, fs.ErrNotExist) {
			for _, p := range h.distinctParents() {
				if err := os.MkdirAll(p, 0o755); err != nil {
					return nil, fmt.Errorf("create cgroup parent %s: %w", p, err)
				}
			}
			made, err = mkdirAll1(h.distinctParents(), name)
		}
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || attempt >= 10 {
			return nil, err
		}
	}
	l := &v1Limiter{
		reuse:   reuse,
		key:     key,
		dirs:    made,
		homes:   h.ownDirs(),
		memDir:  filepath.Join(h.parents["memory"], name),
		pidsDir: filepath.Join(h.parents["pids"], name),
	}
	if p, ok := h.parents["cpuacct"]; ok {
		l.cpuacctDir = filepath.Join(p, name)
	}
	if h.freezer {
		l.freezerDir = filepath.Join(h.parents["freezer"], name)
	}
	l.cpuDir = filepath.Join(h.parents["cpu"], name)
	if err := l.setLimits(lim, h.memsw); err != nil {
		l.removeDirs(time.Now().Add(time.Second))
		return nil, err
	}
	return l, nil
}

// without returns h less the hierarchies opt does without. The probe
// finds them all: the stale sweep looks in every one.
func (h v1Host) without(opt Options) v1Host {
	drop := func(c string) {
		h.parents, h.own = maps.Clone(h.parents), maps.Clone(h.own)
		delete(h.parents, c)
		delete(h.own, c)
		h.controllers = slices.DeleteFunc(slices.Clone(h.controllers), func(d string) bool { return d == c })
	}
	if opt.NoFreezer && h.freezer {
		drop("freezer")
		h.freezer = false
	}
	if opt.NoCPUAccounting && h.parents["cpuacct"] != h.parents["cpu"] {
		drop("cpuacct")
	}
	return h
}

// ownDirs returns the supervisor's own cgroup in each hierarchy, in the
// order of distinctParents.
func (h v1Host) ownDirs() []string {
	var out []string
	for _, p := range h.distinctParents() {
		for c, q := range h.parents {
			if q == p {
				out = append(out, h.own[c])
				break
			}
		}
	}
	return out
}

// mkdirAll1 creates name in each parent; on failure it removes what it made.
func mkdirAll1(parents []string, name string) ([]string, error) {
	var made []string
	for _, p := range parents {
		dir := filepath.Join(p, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			for _, d := range made {
				os.Remove(d)
			}
			return nil, fmt.Errorf("create cgroup %s: %w", dir, err)
		}
		made = append(made, dir)
	}
	return made, nil
}

// setLimits writes the jail's limits: five small writes where containerd's
// cgroup1.New took 0.9-1.4 ms per jail here (it creates every directory
// again and goes through the OCI resource types).
func (l *v1Limiter) setLimits(lim Limits, memsw bool) error {
	type setting struct{ dir, file, value string }
	var todo []setting
	if lim.Memory > 0 {
		mem := fmt.Sprint(lim.Memory)
		todo = append(todo, setting{l.memDir, "memory.limit_in_bytes", mem})
		// memsw limits memory+swap; equal to the memory limit it allows no
		// swap at all. It is absent when swap accounting is off (then there
		// is nothing to limit).
		if memsw {
			todo = append(todo, setting{l.memDir, "memory.memsw.limit_in_bytes", mem})
		}
	}
	if lim.Pids > 0 {
		todo = append(todo, setting{l.pidsDir, "pids.max", fmt.Sprint(lim.Pids)})
	}
	if lim.CPUs > 0 {
		// The quota is over the period a new cgroup starts with, the
		// kernel's 100 ms default; cpuQuota assumes that period.
		quota, _ := cpuQuota(lim.CPUs)
		todo = append(todo, setting{l.cpuDir, "cpu.cfs_quota_us", fmt.Sprint(quota)})
	}
	for _, t := range todo {
		if err := os.WriteFile(filepath.Join(t.dir, t.file), []byte(t.value), 0); err != nil {
			return fmt.Errorf("set limits on cgroup %s: %w", t.dir, err)
		}
	}
	return nil
}

// cpuQuota converts a CPU count to a CFS quota over the default 100 ms
// period. The kernel refuses quotas below 1 ms.
func cpuQuota(cpus float64) (quota int64, period uint64) {
	period = 100_000
	quota = int64(cpus * float64(period))
	return max(quota, 1000), period
}

func (l *v1Limiter) Kind() Kind        { return Cgroup1 }
func (l *v1Limiter) Dir() string       { return "" }
func (l *v1Limiter) Rlimits() []Rlimit { return nil }

func (l *v1Limiter) SelfMove() (jail, home []string) {
	for i, d := range l.dirs {
		jail = append(jail, filepath.Join(d, "tasks"))
		home = append(home, filepath.Join(l.homes[i], "tasks"))
	}
	return jail, home
}

func (l *v1Limiter) ProcsFiles() []string {
	out := make([]string, len(l.dirs))
	for i, d := range l.dirs {
		out[i] = filepath.Join(d, "cgroup.procs")
	}
	return out
}

func (l *v1Limiter) Stats() (Stats, error) {
	l.mu.Lock() // Close closes the counters
	defer l.mu.Unlock()
	var s Stats
	if l.closed {
		return s, fmt.Errorf("read stats of %s: %w", l.memDir, errClosed)
	}
	if l.peak == nil {
		cpu := ""
		if l.cpuacctDir != "" {
			cpu = filepath.Join(l.cpuacctDir, "cpuacct.usage")
		}
		l.counters = openCounters(filepath.Join(l.memDir, "memory.max_usage_in_bytes"),
			cpu,
			filepath.Join(l.memDir, "memory.oom_control"),
			filepath.Join(l.pidsDir, "pids.events"))
	}
	peak, err := l.peak.int()
	if err != nil {
		return s, fmt.Errorf("read memory peak of %s: %w", l.memDir, err)
	}
	s.MemoryPeak, s.MemoryPeakKnown = peak, true
	if l.cpuacctDir != "" {
		ns, err := l.cpu.int()
		if err != nil {
			return s, fmt.Errorf("read cpu usage of %s: %w", l.cpuacctDir, err)
		}
		s.CPUTime, s.CPUTimeKnown = time.Duration(ns), true
	}
	// The kernel's own OOM-kill counter for this memcg (since 4.13).
	if v, ok, err := l.oom.key("oom_kill"); err != nil {
		return s, fmt.Errorf("read oom kills of %s: %w", l.memDir, err)
	} else if ok {
		s.OOMKills = v - l.oomKillsBefore
	}
	if v, ok, err := l.pidsEvents.key("max"); err == nil && ok {
		s.PidsLimitHits = v - l.pidsHitsBefore
	}
	return s, nil
}

func (l *v1Limiter) Kill() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	return l.kill()
}

// kill freezes the jail so nothing in it can fork while we read the pid
// lists, SIGKILLs every process of every hierarchy, then thaws: the pending
// SIGKILLs are delivered on thaw. Without a freezer a fork racing with the
// kill can escape one round; Close loops until the cgroups are empty.
func (l *v1Limiter) kill() error {
	if l.freezerDir != "" {
		if _, err := freeze(l.freezerDir, time.Now().Add(2*time.Second)); err != nil {
			return err
		}
	}
	var pids []int
	for _, d := range l.dirs {
		p, err := readPids(filepath.Join(d, "cgroup.procs"))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("list processes of cgroup %s: %w", d, err)
		}
		pids = append(pids, p...)
	}
	slices.Sort(pids)
	killErr := killPids(slices.Compact(pids))
	if l.freezerDir != "" {
		if err := l.thaw(); err != nil {
			return errors.Join(killErr, err)
		}
	}
	if killErr != nil {
		return fmt.Errorf("kill cgroup %s: %w", l.memDir, killErr)
	}
	return nil
}

// freeze asks for FROZEN and waits for it until the deadline. A cgroup that
// stays FREEZING (a task in D state) is reported as not frozen rather than
// an error: we kill anyway and Close's loop catches stragglers.
func freeze(dir string, deadline time.Time) (bool, error) {
	state := filepath.Join(dir, "freezer.state")
	if err := os.WriteFile(state, []byte("FROZEN"), 0); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("freeze cgroup %s: %w", dir, err)
	}
	for polls := 1; ; polls++ {
		b, err := os.ReadFile(state)
		if err != nil {
			return false, fmt.Errorf("freeze cgroup %s: %w", dir, err)
		}
		if strings.TrimSpace(string(b)) == "FROZEN" {
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		time.Sleep(time.Millisecond)
		// The v1 freezer freezes the tasks it finds when FROZEN is
		// written; one forked meanwhile can be missed, and the cgroup
		// then stays FREEZING. Writing FROZEN again freezes the
		// stragglers (the freezer's documentation: retry or thaw).
		if polls%10 == 0 {
			if err := os.WriteFile(state, []byte("FROZEN"), 0); err != nil {
				return false, fmt.Errorf("freeze cgroup %s: %w", dir, err)
			}
		}
	}
}

func (l *v1Limiter) empty() (bool, error) {
	for _, d := range l.dirs {
		p, err := readPids(filepath.Join(d, "cgroup.procs"))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("list processes of cgroup %s: %w", d, err)
		}
		if len(p) > 0 {
			return false, nil
		}
	}
	return true, nil
}

func (l *v1Limiter) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	// A paused jail is thawed first: its processes die on thaw, and a set
	// kept for reuse must not freeze the next jail.
	if l.frozen {
		if err := l.thaw(); err != nil {
			return err
		}
	}
	// A jail's set kept for the next one (reuse.go).
	if l.putIdle() {
		return nil
	}
	// The usual case: the jail has ended and its cgroups are empty, which
	// rmdir finds out by itself (EBUSY otherwise) without reading any list.
	if l.removeEmpty() {
		l.counters.close()
		l.closed = true
		return nil
	}
	deadline := time.Now().Add(closeTimeout)
	delay := time.Millisecond
	for {
		empty, err := l.empty()
		if err != nil {
			return err
		}
		if empty {
			break
		}
		if err := l.kill(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("close cgroup %s: processes still alive after SIGKILL and %v (stuck in uninterruptible sleep?)", l.memDir, closeTimeout)
		}
		time.Sleep(delay)
		delay = min(2*delay, 20*time.Millisecond)
	}
	if err := l.removeDirs(deadline); err != nil {
		return err
	}
	l.counters.close()
	l.closed = true
	return nil
}

// removeEmpty removes the jail's directories if they are empty and reports
// whether all are gone.
func (l *v1Limiter) removeEmpty() bool {
	for _, d := range l.dirs {
		if err := unix.Rmdir(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false
		}
	}
	return true
}

func (l *v1Limiter) removeDirs(deadline time.Time) error {
	var errs []error
	for _, d := range l.dirs {
		if err := rmdirCgroup(d, deadline); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
