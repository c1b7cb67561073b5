package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/brig-sandbox/brig/cgroup"
	"github.com/brig-sandbox/brig/egress"
	"github.com/brig-sandbox/brig/jail"
	"github.com/brig-sandbox/brig/seccomp"
)

// jailFlags are the flags that shape a jail, shared by `brig run` and
// `brig session`.
type jailFlags struct {
	cfg              *jail.Config
	env              *[]string
	roBinds, rwBinds []string
	network          string
	limiter          string
	seccomp          string
	seccompKill      bool
	seccompLog       bool
	// egress is the policy of --net proxy; egressFlags the egress flags
	// given, which without --net proxy are an error.
	egress      egress.Policy
	egressFlags []string
}

func registerJailFlags(fs *flag.FlagSet, cfg *jail.Config, env *[]string) *jailFlags {
	jf := &jailFlags{cfg: cfg, env: env}
	fs.Var(sizeFlag{&cfg.TmpfsSize}, "tmpfs-size", "size of the writable /tmp, workdir, /dev/shm and every --tmpfs together (default 64M)")
	fs.Func("tmpfs", fmt.Sprintf("give PATH in the jail a fresh, empty, writable directory (repeatable, at most %d; each shares --tmpfs-size)", jail.MaxTmpfs), func(s string) error {
		// Docker's PATH:OPTIONS is refused, not mounted at a path named
		// "PATH:OPTIONS": brig's tmpfs options are fixed, its size shared.
		if strings.Contains(s, ":") {
			return errors.New("brig takes a PATH alone, without :OPTIONS; every --tmpfs is nosuid and nodev and shares --tmpfs-size with /tmp, the workdir and /dev/shm")
		}
		cfg.Tmpfs = append(cfg.Tmpfs, s)
		return nil
	})
	fs.Var(listFlag{&jf.roBinds}, "ro-bind", "bind host SRC[:DST[:OPTS]] read-only (repeatable; OPTS as for --bind)")
	fs.Var(listFlag{&jf.rwBinds}, "bind", "bind host SRC[:DST[:OPTS]] read-write (repeatable); OPTS, comma-separated: "+
		"follow (follow symlinks in SRC that root does not own: a loosening), "+
		"idmap (the jail's user reads and writes as SRC's owner on this bind), uid=N, gid=N (as this owner instead; imply idmap)")
	fs.Var(listFlag{env}, "env", "set KEY=VALUE in the jail, or pass the host's NAME through (repeatable); nothing else of the host's environment goes in")
	fs.StringVar(&cfg.WorkDir, "workdir", "", "working directory in the jail (default /work)")
	fs.StringVar(&cfg.Hostname, "hostname", "", "hostname in the jail (default brig)")
	fs.StringVar(&jf.network, "net", "none", "network: none (a namespace with lo only) or proxy (lo and an HTTP proxy at 127.0.0.1:3128 that lets through only --allow and --allow-preset destinations; see docs/egress.md)")
	jf.registerEgressFlags(fs)
	fs.Var(sizeFlag{&cfg.Limits.Memory}, "memory", "memory limit (default 512M)")
	fs.Func("pids", "maximum processes and threads (default 128)", func(s string) error {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v <= 0 {
			return fmt.Errorf("pids %q: want a positive whole number", s)
		}
		cfg.Limits.Pids = v
		return nil
	})
	fs.Func("cpus", "CPU bandwidth, e.g. 0.5 (default 1)", func(s string) error {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v <= 0 {
			return fmt.Errorf("cpus %q: want a positive number like 0.5", s)
		}
		cfg.Limits.CPUs = v
		return nil
	})
	fs.Var(durationFlag{&cfg.Limits.CPUTime}, "cpu-time", "total CPU time of all processes (e.g. 5s; default none)")
	fs.StringVar(&jf.limiter, "limiter", "auto", "auto, cgroup2, cgroup1 or rlimit")
	fs.BoolVar(&cfg.RequireCgroups, "require-cgroups", false, "fail instead of falling back to rlimits")
	fs.StringVar(&jf.seccomp, "seccomp", "default", "default, none, or an OCI seccomp profile FILE")
	fs.BoolVar(&jf.seccompLog, "seccomp-log", false, "allow refused system calls but record them in the result")
	fs.BoolVar(&jf.seccompKill, "seccomp-kill", false, "kill the program on a refused system call instead of failing the call")
	return jf
}

// finish checks the flags that need more than parsing and fills in cfg.
func (jf *jailFlags) finish() error {
	cfg := jf.cfg
	if err := jf.finishNetwork(); err != nil {
		return err
	}
	switch k := cgroup.Kind(jf.limiter); k {
	case cgroup.Auto, cgroup.Cgroup2, cgroup.Cgroup1, cgroup.RlimitOnly:
		cfg.Limiter = k
	default:
		return fmt.Errorf("--limiter %q: want auto, cgroup2, cgroup1 or rlimit", jf.limiter)
	}
	if cfg.Limiter == cgroup.RlimitOnly && cfg.RequireCgroups {
		return errors.New("--limiter rlimit and --require-cgroups exclude each other: drop --require-cgroups to run under rlimits, or pick --limiter auto, cgroup2 or cgroup1")
	}
	// The modes exclude each other: one refused call cannot both kill the
	// program and be let through, and without a filter nothing is refused.
	switch {
	case jf.seccompKill && jf.seccompLog:
		return errors.New("--seccomp-kill and --seccomp-log exclude each other: kill stops the program at the first refused system call, log lets every one through and lists them; pass one")
	case jf.seccompKill:
		cfg.SeccompMode = jail.SeccompKill
	case jf.seccompLog:
		cfg.SeccompMode = jail.SeccompLog
	}
	switch jf.seccomp {
	case "default":
	case "none":
		if cfg.SeccompMode != jail.SeccompEnforce {
			return fmt.Errorf("--seccomp none with --seccomp-%s: without a filter no system call is refused; drop one of the two", cfg.SeccompMode)
		}
		cfg.SeccompMode = jail.SeccompOff
		fmt.Fprintln(os.Stderr, "brig: warning: --seccomp none: the program may use every system call")
	default:
		p, err := seccomp.LoadOCIFile(jf.seccomp)
		if err != nil {
			return fmt.Errorf("--seccomp: %w", err)
		}
		cfg.Seccomp = p
	}
	for _, spec := range jf.roBinds {
		b, err := parseBind(spec, false)
		if err != nil {
			return fmt.Errorf("--ro-bind %q: %w", spec, err)
		}
		cfg.Binds = append(cfg.Binds, b)
	}
	for _, spec := range jf.rwBinds {
		b, err := parseBind(spec, true)
		if err != nil {
			return fmt.Errorf("--bind %q: %w", spec, err)
		}
		cfg.Binds = append(cfg.Binds, b)
	}
	for i, kv := range *jf.env {
		if strings.Contains(kv, "=") {
			continue
		}
		// A bare NAME passes that one host variable through: the caller
		// names it, so nothing of the host's environment leaks by default.
		v, ok := os.LookupEnv(kv)
		if kv == "" || !ok {
			return fmt.Errorf("--env %q: not set in brig's environment; pass KEY=VALUE, or NAME of a variable brig has", kv)
		}
		(*jf.env)[i] = kv + "=" + v
	}
	return nil
}

// maxBindSpec caps one --bind or --ro-bind value: two paths and options.
const maxBindSpec = 3 * 4096

// parseBind reads SRC[:DST[:OPTS]]; an empty DST is SRC. OPTS are
// comma-separated: follow, idmap, uid=N, gid=N (see jail.Bind).
func parseBind(spec string, writable bool) (jail.Bind, error) {
	if len(spec) > maxBindSpec {
		return jail.Bind{}, fmt.Errorf("longer than %d bytes", maxBindSpec)
	}
	src, rest, _ := strings.Cut(spec, ":")
	dst, opts, hasOpts := strings.Cut(rest, ":")
	b := jail.Bind{Source: src, Target: dst, Writable: writable}
	if src == "" {
		return b, fmt.Errorf("want SRC[:DST[:OPTS]]: no SRC")
	}
	if !hasOpts {
		return b, nil
	}
	for _, o := range strings.Split(opts, ",") {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "ro":
			// Docker's suffix: read-only, whichever flag carried it.
			b.Writable = false
		case "rw":
			if !writable {
				return b, fmt.Errorf("option rw on --ro-bind: use --bind SRC:DST for a writable bind")
			}
		case "follow":
			b.FollowSymlinks = true
		case "idmap":
			b.IDMap = true
		case "uid", "gid":
			id, err := strconv.ParseUint(v, 10, 32)
			if err != nil || id == 0 {
				return b, fmt.Errorf("option %q: want %s=N, a host id other than root's 0", o, k)
			}
			b.IDMap = true
			if k == "uid" {
				b.OwnerUID = uint32(id)
			} else {
				b.OwnerGID = uint32(id)
			}
		default:
			return b, fmt.Errorf("option %q: want ro, rw, follow, idmap, uid=N or gid=N", o)
		}
	}
	return b, nil
}
