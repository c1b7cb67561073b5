package jail

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/brig-sandbox/brig/cgroup"
	"github.com/brig-sandbox/brig/egress"
	"github.com/brig-sandbox/brig/seccomp"
)

// Defaults applied to the zero Config. Every loosening is explicit.
const (
	DefaultTimeout     = 30 * time.Second
	DefaultOutputLimit = 16 << 20 // bytes per stream
	DefaultTmpfsSize   = 64 << 20 // bytes of /tmp, the working directory, /dev/shm and Config.Tmpfs together
	DefaultHostname    = "brig"
	DefaultWorkDir     = "/work"
	DefaultMemory      = 512 << 20
	DefaultPids        = 128
	DefaultCPUs        = 1.0
	DefaultPath        = "/usr/local/bin:/usr/bin:/bin"
	// MaxExtraFiles is how many Cmd.ExtraFiles a jail passes on (MAX_EXTRA
	// in stage.h).
	MaxExtraFiles = 64
	// MaxTmpfs is how many Config.Tmpfs paths a jail takes.
	MaxTmpfs = 16
	// MinMemory and MinPids are the smallest limits a jail starts a
	// program with; smaller ones are refused when the Config is checked.
	MinMemory = 1 << 20
	MinPids   = 3
	// JailUID and JailGID are the ids the program runs as inside the jail.
	JailUID = 1000
	JailGID = 1000
	// EgressPort is the port of the egress proxy on a jail's lo (Network
	// "proxy").
	EgressPort = 3128
)

// defaultHostIDs is the range of host uids/gids given to jails when the
// supervisor is root and neither its SupervisorOptions nor the Config name
// one: one id per live jail, so per-uid kernel limits (RLIMIT_NPROC) and
// signal permissions never cross jails. It sits far above the ids that
// distributions and /etc/subuid hand out.
var defaultHostIDs = IDRange{First: 1_500_000_000, Count: 65536}

// Config describes a jail. Its zero value is the safe default: every
// namespace, no network, small limits, the default seccomp policy.
type Config struct {
	// Timeout is the wall-clock limit of a run; 0 means DefaultTimeout and a
	// negative value means none.
	Timeout time.Duration
	// OutputLimit caps stdout and stderr each, in bytes. The program is killed
	// when it passes the cap; what came before is kept. 0 means
	// DefaultOutputLimit and a negative value means none.
	OutputLimit int64
	// TmpfsSize bounds the jail's writable scratch space (/tmp, the working
	// directory, /dev/shm and every Tmpfs path share one tmpfs, in bytes
	// and in files: one inode per KiB, at least 1024); 0 means
	// DefaultTmpfsSize.
	TmpfsSize int64
	// Tmpfs lists paths in the jail that each get a fresh, empty directory
	// of the jail's scratch tmpfs (what docker's and bubblewrap's --tmpfs
	// give, but sized together): owned by the program's user, mode 0755,
	// writable, nosuid and nodev, and executable as /tmp and the working
	// directory are. They share TmpfsSize with /tmp, the working directory
	// and /dev/shm, so asking for more of them never adds writable memory;
	// raise TmpfsSize for more room. Gone with the jail.
	//
	// A path is absolute and at most MaxTmpfs are taken. It may be any new
	// directory, such as /var/cache or /home/brig/.cache (made in the
	// jail's read-only root), lie inside /tmp or the working directory, or
	// inside a bind's target (its mount point is then made in the bind, as
	// a nested bind's is: a read-only bind must have it). It may not be /
	// nor lie in /proc, /dev, /sys, /etc, /usr or the other system
	// directories, nor be a bind's target or another Tmpfs path. /tmp is
	// such a directory already (mode 1777): naming it changes nothing. A
	// tmpfs is mounted before the binds whose targets are inside it, so
	// those show through it, and after the others.
	Tmpfs []string
	// Hostname inside the jail; "" means DefaultHostname.
	Hostname string
	// WorkDir is the program's working directory, a fresh tmpfs directory
	// unless a bind covers it; "" means DefaultWorkDir.
	WorkDir string
	// Binds add host paths to the jail, read-only unless Writable.
	Binds []Bind
	// Network: "" or "none" gives a network namespace with only lo;
	// "proxy" the same namespace plus an HTTP proxy at
	// 127.0.0.1:EgressPort of the jail's lo, served by the supervisor
	// outside the jail, that lets through only what Egress allows
	// (docs/egress.md). The program gets HTTP_PROXY, HTTPS_PROXY,
	// http_proxy, https_proxy, ALL_PROXY, all_proxy, NO_PROXY and no_proxy
	// naming it, over any of Cmd.Env's; a client that ignores them has no
	// route out. Not for a Pool's jails.
	Network string
	// Egress is the policy of Network "proxy" (required there, with at
	// least one allowed destination; an error with any other Network). It
	// is copied at Start: a later change does not reach a running jail.
	Egress *egress.Policy

	// Limits bound memory, processes and CPU; zero fields take the defaults
	// (DefaultMemory, DefaultPids, DefaultCPUs, no CPU-time budget).
	Limits cgroup.Limits
	// Limiter forces a limiter kind; "" means detect (cgroup2, cgroup1, rlimit).
	Limiter cgroup.Kind
	// RequireCgroups makes a run fail instead of falling back to rlimits.
	RequireCgroups bool
	// CgroupParent is the parent cgroup of the jails, relative to the
	// supervisor's own cgroup; "" means "brig".
	CgroupParent string
	// Pausable lets Cmd.Freeze stop the whole jail and Cmd.Thaw resume
	// it. On cgroup v1 it keeps the freezer hierarchy for this jail, one
	// cgroup more to make, join and remove at start-up, which jails
	// otherwise do without (their PID namespace is what kills them). A
	// cgroup v2 jail can always be frozen; the rlimit fallback never can
	// (Freeze then returns an error wrapping cgroup.ErrNoFreezer).
	Pausable bool

	// Seccomp is the system call policy; nil means seccomp.Default().
	Seccomp *seccomp.Policy
	// SeccompMode says what a refused system call does; the zero value,
	// SeccompEnforce, fails it as the policy says.
	SeccompMode SeccompMode

	// HostIDs is the range of host ids jails map to when the supervisor is
	// root; the zero value means the Supervisor's (SupervisorOptions).
	HostIDs IDRange
}

// SeccompMode says what the jail's seccomp policy does with a system call
// it refuses. One value, so that modes that exclude each other (kill and
// log) cannot both be asked for.
type SeccompMode int

const (
	// SeccompEnforce fails a refused call with the policy's error number
	// (EPERM, ENOSYS): the default.
	SeccompEnforce SeccompMode = iota
	// SeccompKill kills the process that makes a refused call (the
	// program's reason is then "seccomp"; Result.SeccompSyscall names the
	// call when the kernel reports it): the policy's
	// seccomp.Policy.KillOnRefusal.
	SeccompKill
	// SeccompLog lets refused calls through and lists them in
	// Result.SeccompLogged, to tune a profile: the policy's
	// seccomp.Policy.LogOnly. It weakens the jail.
	SeccompLog
	// SeccompOff runs without any seccomp filter, so the program may use
	// every system call (and lower RLIMIT_CORE, which only the filter
	// keeps). Loud and explicit; Config.Seccomp must then be nil.
	SeccompOff
)

func (m SeccompMode) String() string {
	switch m {
	case SeccompEnforce:
		return "enforce"
	case SeccompKill:
		return "kill"
	case SeccompLog:
		return "log"
	case SeccompOff:
		return "off"
	}
	return fmt.Sprintf("SeccompMode(%d)", int(m))
}

// Bind makes a host path visible in the jail.
//
// Source is resolved on the host, one component at a time, following only
// symlinks that root owns (such as /lib -> usr/lib on a merged-/usr host):
// a symlink of anyone else's may have been planted by an earlier jail that
// had its directory as a writable bind, and brig opens the source as root.
// Such a source is refused with a *SymlinkError unless FollowSymlinks. The
// resolved source is then opened again without following any symlink and
// checked to be the file that was resolved, so a swap in between fails.
//
// Ownership. Files a jail writes in a writable bind belong, on the host, to
// the jail's user's host id: with a root supervisor a fresh id from
// Config.HostIDs for every jail, so a second jail cannot change what a
// first wrote, and a directory only root may write (a root-owned 0755 one)
// is not writable at all. IDMap gives the bind one stable owner instead.
type Bind struct {
	Source   string // host path, see above
	Target   string // path in the jail; "" means the same as Source
	Writable bool
	// FollowSymlinks follows every symlink in Source, whoever owns it. A
	// loosening: with it a jail that could write in a directory of Source
	// may redirect the bind to any host path, root's secrets included.
	FollowSymlinks bool
	// IDMap makes the bind an idmapped mount (Linux 5.12 and later, on
	// filesystems that support it: ext4, xfs, btrfs, tmpfs since 6.3): on
	// it alone, the jail's user reads and writes as the host owner
	// OwnerUID:OwnerGID, and files it creates belong to that owner on the
	// host, run after run. Only files and directories whose owner and
	// group both are OwnerUID and OwnerGID may be written there (the
	// kernel refuses writes to a file with an id the mount does not map);
	// others show as nobody's. 0 means the owner (group) of Source. Root is never an
	// owner (the jail could change root's files and make them setuid). An
	// idmapped mount needs a root supervisor; unprivileged, the jail's user
	// already is the supervisor on the host, and IDMap is accepted only
	// when the owner is the supervisor (then it changes nothing). Nothing
	// but the mount is left behind: the user namespace brig makes to
	// describe the mapping ends with the set-up. A filesystem that cannot
	// be idmapped fails the jail's set-up (SetupError, step "bind").
	// Bind targets below an idmapped bind cannot be created in it. What
	// the jail writes there is the owner's: executables it leaves, setuid
	// and setgid ones too unless the seccomp policy refuses those modes,
	// run as the owner when a host user runs them; treat the output as
	// untrusted, as any writable bind's.
	IDMap              bool
	OwnerUID, OwnerGID uint32
}

// IDRange is a range of host uids (and the same gids).
type IDRange struct {
	First uint32
	Count uint32
}

// Check returns the error a jail of c would fail its Start with for its
// Config alone (there as a *SetupError of step "config"): a value that
// cannot work, or two that exclude each other. It needs no jail and
// touches nothing, so a program that takes a Config from its users (a
// server's templates) can refuse a bad one when it is given, rather than at
// every start. What only a start can tell (a bind source that is missing,
// a limiter this host lacks) it does not check.
func (c Config) Check() error {
	_, err := c.withDefaults()
	return err
}

// withDefaults returns the config with every zero field replaced by its
// default, checked for values that cannot work.
func (c Config) withDefaults() (Config, error) {
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.OutputLimit == 0 {
		c.OutputLimit = DefaultOutputLimit
	}
	if c.TmpfsSize == 0 {
		c.TmpfsSize = DefaultTmpfsSize
	}
	if c.TmpfsSize < 0 {
		return c, fmt.Errorf("tmpfs size %d: must be positive", c.TmpfsSize)
	}
	if c.Hostname == "" {
		c.Hostname = DefaultHostname
	}
	if c.WorkDir == "" {
		c.WorkDir = DefaultWorkDir
	}
	if !filepath.IsAbs(c.WorkDir) {
		return c, fmt.Errorf("workdir %q: must be an absolute path", c.WorkDir)
	}
	c.WorkDir = filepath.Clean(c.WorkDir)
	switch c.Network {
	case "", "none":
		c.Network = "none"
		if c.Egress != nil {
			return c, errors.New("egress policy with network \"none\": the policy would be ignored; set Network: \"proxy\" to serve it (brig run --net proxy), or drop Egress")
		}
	case "proxy":
		if c.Egress == nil || len(c.Egress.Allow) == 0 {
			return c, errors.New("network \"proxy\" allows nothing without an egress policy that allows a destination: set Config.Egress with AllowDestination or AllowPreset (brig run --allow HOST or --allow-preset NAME)")
		}
		if err := c.Egress.Validate(); err != nil {
			return c, fmt.Errorf("network \"proxy\": %w", err)
		}
		p := *c.Egress
		p.Allow, p.Deny = slices.Clone(p.Allow), slices.Clone(p.Deny)
		c.Egress = &p
	default:
		return c, fmt.Errorf("network %q: want \"none\" (a namespace with lo alone) or \"proxy\" (lo and an egress proxy under Config.Egress)", c.Network)
	}
	if c.Limits.Memory == 0 {
		c.Limits.Memory = DefaultMemory
	}
	if c.Limits.Pids == 0 {
		c.Limits.Pids = DefaultPids
	}
	if c.Limits.CPUs == 0 {
		c.Limits.CPUs = DefaultCPUs
	}
	if c.Limits.Memory < 0 || c.Limits.Pids < 0 || c.Limits.CPUs < 0 || c.Limits.CPUTime < 0 {
		return c, fmt.Errorf("limits %+v: must not be negative", c.Limits)
	}
	if c.Limits.Memory < MinMemory {
		return c, fmt.Errorf("memory limit %d bytes: below the %d MiB a jail needs to start its program; ask for at least that (a Python program needs about 8M)", c.Limits.Memory, MinMemory>>20)
	}
	if c.Limits.Pids < MinPids {
		return c, fmt.Errorf("pids limit %d: a jail needs at least %d (its init, the process that starts the program, and the program)", c.Limits.Pids, MinPids)
	}
	if c.RequireCgroups && c.Limiter == cgroup.RlimitOnly {
		return c, fmt.Errorf("Limiter rlimit and RequireCgroups exclude each other: drop RequireCgroups to run under rlimits, or pick a cgroup limiter (or none, to detect one)")
	}
	switch c.SeccompMode {
	case SeccompEnforce, SeccompKill, SeccompLog:
	case SeccompOff:
		if c.Seccomp != nil {
			return c, fmt.Errorf("seccomp: a policy with SeccompOff: the policy would be ignored; drop one of the two")
		}
	default:
		return c, fmt.Errorf("seccomp mode %v: want SeccompEnforce, SeccompKill, SeccompLog or SeccompOff", c.SeccompMode)
	}
	if err := checkWorkDir(c.WorkDir, c.Binds); err != nil {
		return c, err
	}
	binds := make([]Bind, 0, len(c.Binds))
	for _, b := range c.Binds {
		if b.Target == "" {
			b.Target = b.Source
		}
		if !filepath.IsAbs(b.Source) || !filepath.IsAbs(b.Target) {
			return c, fmt.Errorf("bind %s:%s: paths must be absolute", b.Source, b.Target)
		}
		b.Target = filepath.Clean(b.Target)
		if b.Target == "/" || strings.HasPrefix(b.Target, "/proc") || strings.HasPrefix(b.Target, "/dev") {
			return c, fmt.Errorf("bind %s:%s: cannot cover / or /proc or /dev", b.Source, b.Target)
		}
		binds = append(binds, b)
	}
	c.Binds = binds
	tmpfs, err := checkTmpfs(c.Tmpfs, c.Binds)
	if err != nil {
		return c, err
	}
	c.Tmpfs = tmpfs
	return c, nil
}

// checkTmpfs cleans the Tmpfs paths and refuses those a jail cannot make
// or that would be ambiguous; /tmp is dropped, being such a directory
// already.
func checkTmpfs(paths []string, binds []Bind) ([]string, error) {
	if len(paths) > MaxTmpfs {
		return nil, fmt.Errorf("tmpfs: %d paths, at most %d are taken (they all share the tmpfs size; one tmpfs holding subdirectories does the same)", len(paths), MaxTmpfs)
	}
	var out []string
	seen := map[string]bool{}
	for _, p := range paths {
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("tmpfs %q: must be an absolute path in the jail, such as /var/cache", p)
		}
		if len(p) >= 4096 || strings.ContainsRune(p, 0) {
			return nil, fmt.Errorf("tmpfs %.64q...: must be a path shorter than 4096 bytes without NUL", p)
		}
		clean := filepath.Clean(p)
		if clean == "/" || underSystemTree(clean, systemTrees...) {
			return nil, fmt.Errorf("tmpfs %s: must be a directory outside /, /proc, /dev, /sys, /etc, /usr and the other system directories (such as /var/cache, /home/brig/.cache or /tmp/x)", p)
		}
		if seen[clean] {
			return nil, fmt.Errorf("tmpfs %s: given twice", p)
		}
		seen[clean] = true
		for _, b := range binds {
			if b.Target == clean {
				return nil, fmt.Errorf("tmpfs %s: is also a bind's target; give the path one of the two", p)
			}
		}
		if clean == "/tmp" {
			continue // scratch already
		}
		out = append(out, clean)
	}
	return out, nil
}

// systemTrees are the jail's read-only system directories and kernel
// filesystems: a work directory there could not be written, or would
// cover what programs need.
var systemTrees = []string{"/proc", "/dev", "/sys", "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}

// checkWorkDir refuses a work directory the jail cannot make or write: /,
// or inside a system tree, unless a writable bind provides it.
func checkWorkDir(dir string, binds []Bind) error {
	for _, b := range binds {
		t := filepath.Clean(b.Target)
		if b.Target == "" {
			t = filepath.Clean(b.Source)
		}
		if b.Writable && t != "/" && (dir == t || strings.HasPrefix(dir, t+"/")) && !underSystemTree(t, "/proc", "/dev", "/sys") {
			return nil
		}
	}
	if dir == "/" || underSystemTree(dir, systemTrees...) {
		return fmt.Errorf("workdir %s: must be a new directory outside /, /proc, /dev, /sys, /etc, /usr and the other system directories (the default is %s; any other path such as /home/brig or /tmp/job works), or the target of a writable bind", dir, DefaultWorkDir)
	}
	return nil
}

func underSystemTree(dir string, trees ...string) bool {
	for _, t := range trees {
		if dir == t || strings.HasPrefix(dir, t+"/") {
			return true
		}
	}
	return false
}
