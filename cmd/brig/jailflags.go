package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/brig-sandbox/brig/cgroup"
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
}

func registerJailFlags(fs *flag.FlagSet, cfg *jail.Config, env *[]string) *jailFlags {
	jf := &jailFlags{cfg: cfg, env: env}
	fs.Var(sizeFlag{&cfg.TmpfsSize}, "tmpfs-size", "size of the writable /tmp, workdir and /dev/shm together (default 64M)")
	fs.Var(listFlag{&jf.roBinds}, "ro-bind", "bind host SRC[:DST] read-only (repeatable)")
	fs.Var(listFlag{&jf.rwBinds}, "bind", "bind host SRC[:DST] read-write (repeatable)")
	fs.Var(listFlag{env}, "env", "set KEY=VALUE in the jail, or pass the host's NAME through (repeatable); nothing else of the host's environment goes in")
	fs.StringVar(&cfg.WorkDir, "workdir", "", "working directory in the jail (default /work)")
	fs.StringVar(&cfg.Hostname, "hostname", "", "hostname in the jail (default brig)")
	fs.StringVar(&jf.network, "net", "none", "network: none (a namespace with lo only)")
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
	fs.BoolVar(&cfg.SeccompLog, "seccomp-log", false, "allow refused system calls but record them in the result")
	fs.BoolVar(&cfg.SeccompKill, "seccomp-kill", false, "kill the program on a refused system call instead of failing the call")
	return jf
}

// finish checks the flags that need more than parsing and fills in cfg.
func (jf *jailFlags) finish() error {
	cfg := jf.cfg
	if jf.network != "none" {
		return fmt.Errorf("--net %q: only none (lo alone) is supported", jf.network)
	}
	switch k := cgroup.Kind(jf.limiter); k {
	case cgroup.Auto, cgroup.Cgroup2, cgroup.Cgroup1, cgroup.RlimitOnly:
		cfg.Limiter = k
	default:
		return fmt.Errorf("--limiter %q: want auto, cgroup2, cgroup1 or rlimit", jf.limiter)
	}
	switch jf.seccomp {
	case "default":
	case "none":
		cfg.DisableSeccomp = true
		fmt.Fprintln(os.Stderr, "brig: warning: --seccomp none: the program may use every system call")
	default:
		p, err := seccomp.LoadOCIFile(jf.seccomp)
		if err != nil {
			return fmt.Errorf("--seccomp: %w", err)
		}
		cfg.Seccomp = p
	}
	for _, spec := range jf.roBinds {
		cfg.Binds = append(cfg.Binds, parseBind(spec, false))
	}
	for _, spec := range jf.rwBinds {
		cfg.Binds = append(cfg.Binds, parseBind(spec, true))
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

func parseBind(spec string, writable bool) jail.Bind {
	src, dst, _ := strings.Cut(spec, ":")
	return jail.Bind{Source: src, Target: dst, Writable: writable}
}
