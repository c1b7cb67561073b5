package cgroup

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ErrUnavailable is wrapped by every error that says a cgroup limiter cannot
// be used on this host (or by this user). Callers can test it with errors.Is.
var ErrUnavailable = errors.New("cgroup limiter unavailable")

// DefaultParent is the parent cgroup used when Options.Parent is empty.
const DefaultParent = "brig"

// supervisorLeaf is the child cgroup the supervisor moves itself into on
// cgroup v2 when its own cgroup must become an inner node (see v2.go). If the
// supervisor already runs in a cgroup of this name (systemd's
// DelegateSubgroup=brig.supervisor does that), its parent is the delegation
// root.
const supervisorLeaf = "brig.supervisor"

// v2Controllers and v1Controllers are the controllers a cgroup limiter needs.
// All are required: a limiter that silently drops one of memory, pids or CPU
// would give a false sense of safety. freezer is optional on v1 (Kill then
// loops over SIGKILL instead of freezing first); Options.NoFreezer and
// NoCPUAccounting leave it and cpuacct out of a jail's cgroup.
var (
	v2Controllers = []string{"cpu", "memory", "pids"}
	v1Controllers = []string{"cpu", "cpuacct", "memory", "pids"}
)

// Report describes what this host offers brig: the cgroup mode, each
// implementation's status and what New would pick with the same Options.
type Report struct {
	// Mode is "v2" (unified hierarchy only), "hybrid" (v1 controller
	// hierarchies plus a cgroup2 mount), "v1" (legacy only) or "none".
	Mode    string
	Cgroup2 Backend
	Cgroup1 Backend
	// Pick is the Kind New would use with these Options; "" if New would fail.
	Pick Kind
	// Why explains Pick and why the kinds before it in the detection order
	// were not used.
	Why string
}

// Backend is the status of one cgroup implementation on this host.
type Backend struct {
	Mount       string   // cgroup2 mountpoint, or the directory holding the v1 hierarchies
	Controllers []string // controllers available where brig would create cgroups
	Dirs        []string // the parent cgroup directories jails would be created in
	Writable    bool     // brig may create cgroups there
	Usable      bool
	Problem     string // why it is not usable and how to fix that; "" when Usable
}

// String renders the report for humans (brig check).
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cgroup mode: %s\n", r.Mode)
	for _, x := range []struct {
		name string
		be   Backend
	}{{"cgroup2", r.Cgroup2}, {"cgroup1", r.Cgroup1}} {
		status := "usable"
		if !x.be.Usable {
			status = "unusable: " + x.be.Problem
		}
		fmt.Fprintf(&b, "%s: %s\n", x.name, status)
		if x.be.Mount != "" {
			fmt.Fprintf(&b, "  mount: %s\n  controllers: %s\n  writable: %v\n",
				x.be.Mount, strings.Join(x.be.Controllers, " "), x.be.Writable)
			for _, d := range x.be.Dirs {
				fmt.Fprintf(&b, "  parent: %s\n", d)
			}
		}
	}
	pick := string(r.Pick)
	if pick == "" {
		pick = "none (New fails)"
	}
	fmt.Fprintf(&b, "pick: %s\nwhy: %s\n", pick, r.Why)
	return b.String()
}

// Detect reports what this host supports. It creates nothing.
func Detect(opt Options) Report {
	var r Report
	mounts, err := readCgroupMounts()
	if err != nil {
		r.Mode = "none"
		r.Cgroup2.Problem = err.Error()
		r.Cgroup1.Problem = err.Error()
	} else {
		r.Mode = cgroupMode(mounts)
		h2, err2 := probeV2(mounts, opt)
		r.Cgroup2 = h2.backend(err2)
		h1, err1 := probeV1(mounts, opt)
		r.Cgroup1 = h1.without(opt).backend(err1)
	}
	kind, why, err := choose(opt, r)
	if err == nil {
		r.Pick = kind
	}
	r.Why = why
	return r
}

// choose applies the detection order (v2, v1, rlimit) and opt.Kind/Require
// to a report. err is non-nil when New must fail.
func choose(opt Options, r Report) (kind Kind, why string, err error) {
	switch opt.Kind {
	case "", Auto:
	case Cgroup2:
		if !r.Cgroup2.Usable {
			return "", "cgroup2 was requested but is unusable", fmt.Errorf("%w: cgroup2: %s", ErrUnavailable, r.Cgroup2.Problem)
		}
		return Cgroup2, "cgroup2 was requested", nil
	case Cgroup1:
		if !r.Cgroup1.Usable {
			return "", "cgroup1 was requested but is unusable", fmt.Errorf("%w: cgroup1: %s", ErrUnavailable, r.Cgroup1.Problem)
		}
		return Cgroup1, "cgroup1 was requested", nil
	case RlimitOnly:
		if opt.Require {
			return "", "contradictory options", fmt.Errorf("Options.Require asks for cgroups but Kind is %q, which uses none", RlimitOnly)
		}
		return RlimitOnly, "rlimit was requested", nil
	default:
		return "", "unknown kind", fmt.Errorf("unknown cgroup kind %q (want auto, cgroup2, cgroup1 or rlimit)", opt.Kind)
	}
	if r.Cgroup2.Usable {
		return Cgroup2, "cgroup2 is usable", nil
	}
	not2 := "cgroup2 unusable: " + r.Cgroup2.Problem
	if r.Cgroup1.Usable {
		return Cgroup1, "cgroup1 is usable; " + not2, nil
	}
	not1 := "cgroup1 unusable: " + r.Cgroup1.Problem
	if opt.Require {
		return "", not2 + "; " + not1,
			fmt.Errorf("%w: cgroups are required (Options.Require) but neither works: %s; %s", ErrUnavailable, not2, not1)
	}
	return RlimitOnly, "falling back to per-process rlimits (weaker: no memory peak, per-process CPU time); " + not2 + "; " + not1, nil
}

var fallbackWarning sync.Once

// FallbackExplained keeps New from logging its fallback warning in this
// process: the caller tells its user itself what the rlimit fallback does
// not enforce (brig run's start line).
func FallbackExplained() { fallbackWarning.Do(func() {}) }

// Planned reports the kind New would create for opt now, from the same
// (briefly cached) probe, without creating anything: a caller can start
// work that depends only on the kind while the cgroup is being made.
func Planned(opt Options) (Kind, error) {
	if err := checkParent(opt.Parent); err != nil {
		return "", err
	}
	h, err := probeHost(opt)
	if err != nil {
		return "", err
	}
	kind, _, err := choose(opt, h.r)
	return kind, err
}

// New creates the limiter of one jail. See the package documentation for
// the detection order.
func New(lim Limits, opt Options) (Limiter, error) {
	if err := checkParent(opt.Parent); err != nil {
		return nil, err
	}
	if lim.Memory < 0 || lim.Pids < 0 || lim.CPUs < 0 || lim.CPUTime < 0 {
		return nil, fmt.Errorf("negative limit in %+v", lim)
	}
	h, err := probeHost(opt)
	if err != nil {
		return nil, err
	}
	kind, why, err := choose(opt, h.r)
	if err != nil {
		return nil, err
	}
	switch kind {
	case Cgroup2:
		return newV2(lim, h.h2)
	case Cgroup1:
		if opt.NoCPUAccounting && lim.CPUTime > 0 {
			return nil, fmt.Errorf("a CPU-time budget of %v needs CPU accounting: NoCPUAccounting is set", lim.CPUTime)
		}
		l, err := newV1(lim, h.h1.without(opt), opt.Reuse)
		if err != nil {
			forgetHost(opt)
		}
		return l, err
	default:
		if opt.Kind != RlimitOnly {
			// Once per process: the reason does not change between jails.
			fallbackWarning.Do(func() {
				slog.Warn("brig: no usable cgroup, limiting with rlimits only", "why", why)
			})
		}
		return newRlimit(lim), nil
	}
}

// probedHost is what New learned about the host's cgroups for one Options.
type probedHost struct {
	at                 time.Time
	r                  Report
	h2                 v2Host
	h1                 v1Host
	probedV2, probedV1 bool // the detection order may stop before either
}

// A v1 or rlimit verdict is reused for a second: probing the hierarchies
// (mountinfo, /proc/self/cgroup, symlinks, writability) cost ~0.3 ms per
// jail, and a supervisor starting many jails asks the same question each
// time. A v2 verdict is not kept: creating a v2 cgroup may move the
// supervisor itself into a leaf, which changes the answer.
var probed struct {
	sync.Mutex
	m map[Options]probedHost
}

const probeReuse = time.Second

func forgetHost(opt Options) {
	probed.Lock()
	delete(probed.m, opt)
	probed.Unlock()
}

// cachedProbe returns the probe for opt made in the last probeReuse.
func cachedProbe(opt Options) (probedHost, bool) {
	probed.Lock()
	h, ok := probed.m[opt]
	probed.Unlock()
	return h, ok && time.Since(h.at) < probeReuse
}

func probeHost(opt Options) (probedHost, error) {
	h, ok := cachedProbe(opt)
	if ok {
		return h, nil
	}
	mounts, err := readCgroupMounts()
	if err != nil && opt.Kind != RlimitOnly && (opt.Kind == Cgroup1 || opt.Kind == Cgroup2 || opt.Require) {
		return h, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	h = probedHost{at: time.Now(), r: Report{Mode: cgroupMode(mounts)}}
	var e2, e1 error
	// Probe only as far as the detection order needs: a forced kind or a
	// usable v2 saves the v1 probe.
	if opt.Kind != Cgroup1 && opt.Kind != RlimitOnly {
		h.h2, e2 = probeV2(mounts, opt)
		h.r.Cgroup2 = h.h2.backend(e2)
		h.probedV2 = true
	}
	if opt.Kind != Cgroup2 && opt.Kind != RlimitOnly && !h.r.Cgroup2.Usable {
		h.h1, e1 = probeV1(mounts, opt)
		h.r.Cgroup1 = h.h1.without(opt).backend(e1)
		h.probedV1 = true
	}
	if !h.r.Cgroup2.Usable {
		probed.Lock()
		if probed.m == nil {
			probed.m = map[Options]probedHost{}
		}
		probed.m[opt] = h
		probed.Unlock()
	}
	return h, nil
}

func checkParent(p string) error {
	if p == "" {
		return nil
	}
	if filepath.IsAbs(p) || filepath.Clean(p) != p || p == "." || strings.HasPrefix(p, "..") {
		return fmt.Errorf("Options.Parent %q: want a clean relative path such as %q", p, DefaultParent)
	}
	return nil
}

func parentName(opt Options) string {
	if opt.Parent == "" {
		return DefaultParent
	}
	return opt.Parent
}

// cgroupMount is one cgroup or cgroup2 line of /proc/self/mountinfo.
type cgroupMount struct {
	fstype      string   // "cgroup" or "cgroup2"
	root        string   // path of the mounted cgroup inside its hierarchy
	mountpoint  string   // where it is mounted
	controllers []string // v1 only: controllers bound to this hierarchy
}

// readCgroupMounts parses /proc/self/mountinfo (see proc(5)) rather than
// assuming /sys/fs/cgroup/<name>: containers and hybrid systems differ.
func readCgroupMounts() ([]cgroupMount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	var out []cgroupMount
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent maj:min root mountpoint opts [optional...] - fstype source superopts
		fields := strings.Fields(sc.Text())
		sep := slices.Index(fields, "-")
		if sep < 5 || len(fields) < sep+2 {
			continue
		}
		fstype := fields[sep+1]
		if fstype != "cgroup" && fstype != "cgroup2" {
			continue
		}
		m := cgroupMount{fstype: fstype, root: unescapeMount(fields[3]), mountpoint: unescapeMount(fields[4])}
		if fstype == "cgroup" && len(fields) > sep+3 {
			for _, o := range strings.Split(fields[sep+3], ",") {
				switch {
				case o == "rw" || o == "ro" || strings.HasPrefix(o, "release_agent=") ||
					o == "clone_children" || o == "noprefix" || o == "xattr" || o == "cpuset_v2_mode":
				default:
					m.controllers = append(m.controllers, o)
				}
			}
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	return out, nil
}

// unescapeMount undoes the octal escapes (\040 for space...) of mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%o", &c); err == nil {
				b.WriteByte(byte(c))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func cgroupMode(mounts []cgroupMount) string {
	var v1, v2 bool
	for _, m := range mounts {
		if m.fstype == "cgroup2" {
			v2 = true
		} else if len(m.controllers) > 0 && !(len(m.controllers) == 1 && strings.HasPrefix(m.controllers[0], "name=")) {
			v1 = true
		}
	}
	switch {
	case v1 && v2:
		return "hybrid"
	case v2:
		return "v2"
	case v1:
		return "v1"
	}
	return "none"
}

// ownCgroups parses /proc/self/cgroup: the v2 path ("0::/x") and, for v1,
// one path per controller ("4:memory:/x", "1:cpu,cpuacct:/y").
func ownCgroups() (v2 string, v1 map[string]string, err error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", nil, fmt.Errorf("read own cgroup: %w", err)
	}
	v1 = map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2 = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			v1[c] = parts[2]
		}
	}
	return v2, v1, nil
}

// hostPath maps a cgroup path as seen in /proc/self/cgroup to a directory
// under the mount of that hierarchy. In a container the mount's root may be
// a sub-tree of the hierarchy; a path outside it cannot be reached.
func hostPath(m cgroupMount, cgPath string) (string, error) {
	rel, err := filepath.Rel(m.root, cgPath)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("own cgroup %s is outside the mounted part %s of the hierarchy at %s", cgPath, m.root, m.mountpoint)
	}
	return filepath.Join(m.mountpoint, rel), nil
}

// writable says whether this process may create cgroups in dir, and if not,
// why (as an error naming the directory).
func writable(dir string) error {
	if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
		return fmt.Errorf("cannot create cgroups in %s: %w", dir, err)
	}
	return nil
}

func readControllers(file string) ([]string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(b)), nil
}

func missing(want, have []string) []string {
	var out []string
	for _, w := range want {
		if !slices.Contains(have, w) {
			out = append(out, w)
		}
	}
	return out
}
