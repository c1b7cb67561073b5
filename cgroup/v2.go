package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/cgroups/v3/cgroup2"
	"golang.org/x/sys/unix"
)

// cgroup v2 placement and delegation.
//
// Jails live in <D>/<Parent>/<jail>, where D, the delegation root, is the
// supervisor's own cgroup: whatever limits an operator puts on the
// supervisor (a systemd service's MemoryMax, a container's limits) then
// also bound all of its jails, and brig writes only inside a subtree it was
// given.
//
// v2's "no internal processes" rule says a non-root cgroup that enables
// controllers for its children (cgroup.subtree_control) may not itself hold
// processes. The supervisor sits in D, so D cannot be an inner node as long
// as the supervisor is in it. We considered:
//
//   - jails under a sibling of D: needs write access to D's parent, which
//     we were not delegated, and the jails escape the supervisor's limits.
//   - the supervisor moves itself into a leaf D/brig.supervisor, then
//     enables memory/pids/cpu in D's subtree_control. This is the contract
//     of systemd's Delegate=yes ("the service must move its own processes
//     into a sub-cgroup"), of runc/docker-in-docker entrypoints and of
//     nsjail's --use_cgroupv2. We do this, lazily, on the first New, and
//     only when D has no controllers enabled yet; it is logged.
//
// With systemd >= 254 DelegateSubgroup=brig.supervisor starts the service
// directly in the leaf; brig recognises the name and uses its parent as D.
// If D holds other processes than the supervisor (a container whose
// entrypoint is a shell that starts brig), enabling fails with EBUSY and
// New says so: give brig its own cgroup (Delegate=yes, or run it as the
// container's init). The real root cgroup is exempt from the rule (the VM
// test runs there), so nothing moves in that case.
//
// The jail's first process is born in the jail cgroup with clone3
// CLONE_INTO_CGROUP (Dir), so no process of the jail ever runs unlimited.

// v2Host is what probeV2 learned about the unified hierarchy.
type v2Host struct {
	mount       string // cgroup2 mountpoint
	own         string // the supervisor's cgroup directory
	root        string // delegation root D
	parent      string // D/<Parent>, where jail cgroups are created
	parentRel   string // <Parent>
	controllers []string
	writable    bool
}

func (h v2Host) backend(err error) Backend {
	b := Backend{Mount: h.mount, Controllers: h.controllers, Writable: h.writable, Usable: err == nil}
	if h.parent != "" {
		b.Dirs = []string{h.parent}
	}
	if err != nil {
		b.Problem = strings.TrimPrefix(err.Error(), ErrUnavailable.Error()+": ")
	}
	return b
}

// probeV2 checks the unified hierarchy without changing anything. As with
// probeV1 the host is filled as far as detection got, even on error.
func probeV2(mounts []cgroupMount, opt Options) (v2Host, error) {
	var h v2Host
	var m cgroupMount
	hybrid := false
	for _, x := range mounts {
		if x.fstype == "cgroup2" && h.mount == "" {
			m, h.mount = x, x.mountpoint
		}
		if x.fstype == "cgroup" && len(x.controllers) > 0 {
			hybrid = true
		}
	}
	if h.mount == "" {
		return h, fmt.Errorf("%w: no cgroup2 filesystem is mounted (mount -t cgroup2 none /sys/fs/cgroup, or use cgroup1)", ErrUnavailable)
	}
	own, _, err := ownCgroups()
	if err != nil {
		return h, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if h.own, err = hostPath(m, own); err != nil {
		return h, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	h.root = h.own
	if filepath.Base(h.own) == supervisorLeaf {
		h.root = filepath.Dir(h.own)
	}
	h.parentRel = parentName(opt)
	h.parent = filepath.Join(h.root, h.parentRel)
	h.controllers, err = readControllers(filepath.Join(h.root, "cgroup.controllers"))
	if err != nil {
		return h, fmt.Errorf("%w: read controllers of %s: %v", ErrUnavailable, h.root, err)
	}
	if miss := missing(v2Controllers, h.controllers); len(miss) > 0 {
		have := strings.Join(h.controllers, " ")
		if have == "" {
			have = "none"
		}
		if hybrid {
			return h, fmt.Errorf("%w: cgroup2 at %s offers controllers [%s] but brig needs %s; on this hybrid host they are bound to the cgroup v1 hierarchies (boot with systemd.unified_cgroup_hierarchy=1 or cgroup_no_v1=all for pure v2, or use cgroup1)",
				ErrUnavailable, h.mount, have, strings.Join(miss, " "))
		}
		return h, fmt.Errorf("%w: cgroup %s has controllers [%s] but brig needs %s; they must be enabled in cgroup.subtree_control of every ancestor (systemd: Delegate=yes on the supervisor's unit)",
			ErrUnavailable, h.root, have, strings.Join(miss, " "))
	}
	dir := h.root
	if exists(h.parent) {
		dir = h.parent
	}
	if err := writable(dir); err != nil {
		return h, fmt.Errorf("%w: %v (run the supervisor as root, or delegate its cgroup to its uid: systemd Delegate=yes)", ErrUnavailable, err)
	}
	if err := unix.Access(filepath.Join(dir, "cgroup.subtree_control"), unix.W_OK); err != nil {
		return h, fmt.Errorf("%w: cannot write %s: %v (delegate the cgroup to the supervisor's uid)", ErrUnavailable, filepath.Join(dir, "cgroup.subtree_control"), err)
	}
	h.writable = true
	return h, nil
}

// v2Setup serialises the one-time delegation work (moving the supervisor,
// enabling controllers) between concurrent New calls.
var v2Setup sync.Mutex

// prepare makes D and D/<Parent> inner nodes with memory, pids and cpu
// enabled for their children, and returns the parent directory.
func (h v2Host) prepare() (string, error) {
	v2Setup.Lock()
	defer v2Setup.Unlock()
	err := enableControllers(h.root)
	if errors.Is(err, unix.EBUSY) {
		// D holds processes (see the comment at the top). Move only if we
		// are alone there: moving and then failing would leave the
		// supervisor somewhere new for nothing.
		pids, rerr := readPids(filepath.Join(h.root, "cgroup.procs"))
		if rerr != nil {
			return "", fmt.Errorf("list processes of %s: %w", h.root, rerr)
		}
		var others []int
		for _, p := range pids {
			if p != os.Getpid() {
				others = append(others, p)
			}
		}
		if len(others) > 0 {
			return "", fmt.Errorf("cannot create jails under %s: other processes %v share the supervisor's cgroup and cgroup v2 forbids processes in a cgroup whose children have controllers; give the supervisor a cgroup of its own (systemd Delegate=yes, or run it as the container's init): %w",
				h.root, others, err)
		}
		leaf := filepath.Join(h.root, supervisorLeaf)
		if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("create supervisor cgroup %s: %w", leaf, err)
		}
		if err := os.WriteFile(filepath.Join(leaf, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
			return "", fmt.Errorf("move supervisor into %s: %w", leaf, err)
		}
		slog.Info("brig: moved the supervisor into a leaf cgroup so that its own cgroup can hold the jails (cgroup v2 no-internal-processes rule)",
			"from", h.root, "to", leaf)
		err = enableControllers(h.root)
	}
	if err != nil {
		return "", err
	}
	dir := h.root
	for _, c := range strings.Split(h.parentRel, "/") {
		dir = filepath.Join(dir, c)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("create cgroup parent %s: %w", dir, err)
		}
		if err := enableControllers(dir); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// enableControllers makes memory, pids and cpu available to dir's children.
// We write subtree_control ourselves instead of containerd's
// ToggleControllers, which writes every ancestor up to the mount root:
// those cgroups are not ours to change.
func enableControllers(dir string) error {
	file := filepath.Join(dir, "cgroup.subtree_control")
	have, err := readControllers(file)
	if err != nil {
		return fmt.Errorf("read %s: %w", file, err)
	}
	miss := missing(v2Controllers, have)
	if len(miss) == 0 {
		return nil
	}
	if err := os.WriteFile(file, []byte("+"+strings.Join(miss, " +")), 0); err != nil {
		return fmt.Errorf("enable controllers %v in %s: %w", miss, file, err)
	}
	return nil
}

// v2Limiter is the cgroup of one jail in the unified hierarchy.
type v2Limiter struct {
	mu     sync.Mutex
	dir    string
	mgr    *cgroup2.Manager
	closed bool
	counters
}

func newV2(lim Limits, h v2Host) (*v2Limiter, error) {
	var dir string
	for attempt := 0; ; attempt++ {
		parent, err := h.prepare()
		if err != nil {
			return nil, err
		}
		name, err := jailName()
		if err != nil {
			return nil, err
		}
		dir = filepath.Join(parent, name)
		err = os.Mkdir(dir, 0o755)
		if err == nil {
			break
		}
		// EEXIST: a leftover with our name (pid reuse across a reboot of a
		// container?): take the next. ENOENT: an admin removed the empty
		// parent in between; prepare recreates it.
		if attempt >= 10 || !(errors.Is(err, fs.ErrExist) || errors.Is(err, fs.ErrNotExist)) {
			return nil, fmt.Errorf("create cgroup %s: %w", dir, err)
		}
	}
	mgr, err := cgroup2.Load(relTo(h.mount, dir), cgroup2.WithMountpoint(h.mount))
	if err == nil {
		err = mgr.Update(v2Resources(lim, dir))
	}
	if err != nil {
		os.Remove(dir)
		return nil, fmt.Errorf("set limits on cgroup %s: %w", dir, err)
	}
	return &v2Limiter{dir: dir, mgr: mgr}, nil
}

func v2Resources(lim Limits, dir string) *cgroup2.Resources {
	res := &cgroup2.Resources{Memory: &cgroup2.Memory{}}
	if lim.Memory > 0 {
		m := lim.Memory
		res.Memory.Max = &m
	}
	// No swap for jails, with or without a memory limit: swapping would let
	// a jail use more than Memory and slow the whole host. The file is
	// absent without swap support.
	if exists(filepath.Join(dir, "memory.swap.max")) {
		var zero int64
		res.Memory.Swap = &zero
	}
	if lim.Pids > 0 {
		res.Pids = &cgroup2.Pids{Max: lim.Pids}
	}
	if lim.CPUs > 0 {
		quota, period := cpuQuota(lim.CPUs)
		res.CPU = &cgroup2.CPU{Max: cgroup2.NewCPUMax(&quota, &period)}
	}
	return res
}

func (l *v2Limiter) Kind() Kind                      { return Cgroup2 }
func (l *v2Limiter) Dir() string                     { return l.dir }
func (l *v2Limiter) ProcsFiles() []string            { return nil }
func (l *v2Limiter) SelfMove() (jail, home []string) { return nil, nil }
func (l *v2Limiter) Rlimits() []Rlimit               { return nil }

// Stats reads the four counters directly rather than through containerd's
// Stat, which parses every stat file and PSI data: the jail polls this for
// CPU-time enforcement.
func (l *v2Limiter) Stats() (Stats, error) {
	l.mu.Lock() // Close closes the counters
	defer l.mu.Unlock()
	var s Stats
	if l.closed {
		return s, fmt.Errorf("read stats of %s: %w", l.dir, errClosed)
	}
	if l.peak == nil {
		l.counters = openCounters(filepath.Join(l.dir, "memory.peak"), filepath.Join(l.dir, "cpu.stat"),
			filepath.Join(l.dir, "memory.events"), filepath.Join(l.dir, "pids.events"))
	}
	// memory.peak appeared in 5.19; without it the peak is unknown.
	if v, err := l.peak.int(); err == nil {
		s.MemoryPeak, s.MemoryPeakKnown = v, true
	} else if !errors.Is(err, fs.ErrNotExist) {
		return s, fmt.Errorf("read memory peak of %s: %w", l.dir, err)
	}
	usec, ok, err := l.cpu.key("usage_usec")
	if err != nil {
		return s, fmt.Errorf("read cpu usage of %s: %w", l.dir, err)
	}
	s.CPUTime, s.CPUTimeKnown = time.Duration(usec)*time.Microsecond, ok
	if v, _, err := l.oom.key("oom_kill"); err != nil {
		return s, fmt.Errorf("read oom kills of %s: %w", l.dir, err)
	} else {
		s.OOMKills = v
	}
	if v, ok, err := l.pidsEvents.key("max"); err == nil && ok {
		s.PidsLimitHits = v
	}
	return s, nil
}

// Kill writes cgroup.kill (5.14+): the kernel kills every process, including
// ones being forked at that moment. containerd falls back to freeze + kill +
// thaw on older kernels.
func (l *v2Limiter) Kill() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	if err := l.mgr.Kill(); err != nil {
		return fmt.Errorf("kill cgroup %s: %w", l.dir, err)
	}
	return nil
}

func (l *v2Limiter) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	if !exists(l.dir) {
		l.counters.close()
		l.closed = true
		return nil
	}
	deadline := time.Now().Add(closeTimeout)
	if err := l.mgr.Kill(); err != nil {
		return fmt.Errorf("kill cgroup %s: %w", l.dir, err)
	}
	if err := waitUnpopulated(l.dir, deadline); err != nil {
		return err
	}
	if err := rmdirCgroup(l.dir, deadline); err != nil {
		return err
	}
	l.counters.close()
	l.closed = true
	return nil
}

// waitUnpopulated polls cgroup.events until "populated 0": the kernel's own
// statement that no live process is left in the cgroup or below it.
func waitUnpopulated(dir string, deadline time.Time) error {
	file := filepath.Join(dir, "cgroup.events")
	delay := time.Millisecond
	for {
		v, _, err := readKey(file, "populated")
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("wait for cgroup %s to empty: %w", dir, err)
		}
		if v == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			pids, _ := readPids(filepath.Join(dir, "cgroup.procs"))
			return fmt.Errorf("cgroup %s still has processes %v after SIGKILL and %v (stuck in uninterruptible sleep?)", dir, pids, closeTimeout)
		}
		time.Sleep(delay)
		delay = min(2*delay, 20*time.Millisecond)
	}
}
