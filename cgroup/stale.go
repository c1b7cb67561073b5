package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/containerd/cgroups/v3/cgroup2"
	"golang.org/x/sys/unix"
)

// parseJailName returns the supervisor pid and start time of a jail name,
// or ok false for any other name. (Not a regexp: compiling one at package
// init cost every brig process 0.07 ms.)
//
// Jail cgroups are named brig-<supervisor pid>-<supervisor start time>-<n>.
// The start time (clock ticks after boot, field 22 of /proc/PID/stat) makes
// the name safe against pid reuse: a cgroup is stale only when no process
// with that pid *and* that start time exists. A supervisor that was
// SIGKILLed leaves its jails' cgroups (and maybe processes) behind;
// RemoveStale, run by the next supervisor, cleans them up. Names not of
// this form (the admin's own cgroups, other tools') are never touched.
func parseJailName(name string) (pid int, start uint64, ok bool) {
	rest, found := strings.CutPrefix(name, "brig-")
	if !found {
		return 0, 0, false
	}
	f := strings.Split(rest, "-")
	if len(f) != 3 {
		return 0, 0, false
	}
	for _, d := range f {
		if d == "" || strings.Trim(d, "0123456789") != "" {
			return 0, 0, false
		}
	}
	pid, err1 := strconv.Atoi(f[0])
	start, err2 := strconv.ParseUint(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		// Digits, but out of range: a name of ours all the same, which
		// supervisors.alive treats as alive.
		return -1, 0, true
	}
	return pid, start, true
}

func isJailName(name string) bool {
	_, _, ok := parseJailName(name)
	return ok
}

var (
	jailSeq   atomic.Uint64
	selfStart = sync.OnceValues(func() (uint64, error) { return procStartTime(os.Getpid()) })
)

func jailName() (string, error) {
	start, err := selfStart()
	if err != nil {
		return "", fmt.Errorf("name jail cgroup: %w", err)
	}
	return fmt.Sprintf("brig-%d-%d-%d", os.Getpid(), start, jailSeq.Add(1)), nil
}

// procStartTime returns field 22 (starttime) of /proc/PID/stat. The comm
// field may contain spaces and parentheses, so fields are counted after the
// last ')'.
func procStartTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat: no comm", pid)
	}
	// After ") " come fields 3 (state) onwards; starttime is field 22.
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f)+2)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// supervisors remembers, for one sweep, each supervisor's start time (or
// why it could not be read): a live supervisor's jail shows up once per
// hierarchy and a supervisor may run hundreds of jails, while reading
// /proc/PID/stat is the sweep's main cost (a `brig run` among 8 others
// read it 24 times instead of 8).
type supervisors map[int]procStart

type procStart struct {
	ticks uint64
	err   error
}

// alive reports whether the supervisor a jail name refers to still runs.
// Unparseable names count as alive: never remove what we cannot prove is
// ours and abandoned.
func (s supervisors) alive(name string) bool {
	pid, start, ok := parseJailName(name)
	if !ok || pid < 0 {
		return true
	}
	p, seen := s[pid]
	if !seen {
		p.ticks, p.err = procStartTime(pid)
		s[pid] = p
	}
	if errors.Is(p.err, fs.ErrNotExist) {
		return false
	}
	if p.err != nil {
		return true
	}
	return p.ticks == start
}

// RemoveStale removes the jail cgroups under our parent (in the unified
// hierarchy and in every v1 hierarchy) whose supervisor is no longer alive,
// killing their processes first. It returns the directories it removed.
// Cgroups of live supervisors (including this one) are left alone.
func RemoveStale(opt Options) (removed []string, err error) {
	if err := checkParent(opt.Parent); err != nil {
		return nil, err
	}
	h2, h1, err := parentsOf(opt)
	if err != nil {
		return nil, err
	}
	var errs []error
	if h2.parent != "" {
		for _, name := range staleNames([]string{h2.parent}) {
			dir := filepath.Join(h2.parent, name)
			mgr, err := cgroup2.Load(relTo(h2.mount, dir), cgroup2.WithMountpoint(h2.mount))
			if err == nil {
				err = (&v2Limiter{dir: dir, mgr: mgr}).Close()
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("remove stale cgroup %s: %w", dir, err))
				continue
			}
			removed = append(removed, dir)
		}
	}

	parents := h1.distinctParents()
	for _, name := range staleNames(parents) {
		l := &v1Limiter{}
		for c, p := range h1.parents {
			dir := filepath.Join(p, name)
			switch c {
			case "memory":
				l.memDir = dir
			case "freezer":
				l.freezerDir = dir
			}
			if exists(dir) && !slices.Contains(l.dirs, dir) {
				l.dirs = append(l.dirs, dir)
			}
		}
		if l.freezerDir != "" && !exists(l.freezerDir) {
			l.freezerDir = ""
		}
		if l.memDir == "" && len(l.dirs) > 0 {
			l.memDir = l.dirs[0]
		}
		if err := l.Close(); err != nil {
			errs = append(errs, fmt.Errorf("remove stale cgroup %s: %w", name, err))
			continue
		}
		removed = append(removed, l.dirs...)
	}
	return removed, errors.Join(errs...)
}

// parentsOf finds our parents in the unified and the v1 hierarchies: from
// the probe New or Planned made in the last second (a jail's supervisor
// sweeps right after), else from the host. The probes may report the host
// unusable (no controllers, not writable) and still know where our parent
// is; that is all a sweep needs.
func parentsOf(opt Options) (v2Host, v1Host, error) {
	if h, ok := cachedProbe(opt); ok && h.probedV2 && h.probedV1 {
		return h.h2, h.h1, nil
	}
	mounts, err := readCgroupMounts()
	if err != nil {
		return v2Host{}, v1Host{}, err
	}
	h2, _ := probeV2(mounts, opt)
	h1, _ := probeV1(mounts, opt)
	return h2, h1, nil
}

// staleNames lists, across the given parent directories, the jail cgroup
// names whose supervisor is gone.
func staleNames(parents []string) []string {
	var names []string
	known := supervisors{}
	for _, p := range parents {
		ents, err := os.ReadDir(p)
		if err != nil {
			continue // no parent: nothing of ours here
		}
		for _, e := range ents {
			n := e.Name()
			if !e.IsDir() || !isJailName(n) || slices.Contains(names, n) {
				continue
			}
			if !known.alive(n) {
				names = append(names, n)
			}
		}
	}
	return names
}

// RemoveParent removes the (empty) parent cgroups of opt in every
// hierarchy: for tests and uninstall. New never removes the parent itself,
// because an operator may have put limits on it that bound all jails
// together. It fails if a jail cgroup is still inside.
func RemoveParent(opt Options) error {
	if err := checkParent(opt.Parent); err != nil {
		return err
	}
	r := Detect(opt)
	var errs []error
	for _, d := range append(r.Cgroup2.Dirs, r.Cgroup1.Dirs...) {
		if err := unix.Rmdir(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove cgroup parent %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}
