package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/brig-sandbox/brig/cgroup"
	"github.com/brig-sandbox/brig/jail"
	"github.com/brig-sandbox/brig/seccomp"
)

// runMain implements `brig run`; it returns the process exit status: the
// program's own, 128+N when it died of signal N, 125 when brig failed.
func runMain(args []string) int {
	opt, err := parseRunFlags(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "brig: %v\n", err)
		return exitBrigFailed
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	cmd := jail.Command(ctx, opt.cfg, opt.command[0], opt.command[1:]...)
	cmd.Env = opt.env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err = cmd.Run()
	var exitErr *jail.ExitError
	if err != nil && !errors.As(err, &exitErr) && cmd.Result == nil {
		fmt.Fprintf(os.Stderr, "brig: %v\n", err)
		return exitBrigFailed
	}
	r := cmd.Result
	if opt.resultFile != "" {
		if err := writeResult(opt.resultFile, r); err != nil {
			fmt.Fprintf(os.Stderr, "brig: %v\n", err)
			return exitBrigFailed
		}
	}
	if !opt.quiet && r.Reason != jail.ReasonExited {
		fmt.Fprintf(os.Stderr, "brig: %s\n", describe(r))
	}
	if r.Signal != 0 {
		return 128 + r.Signal
	}
	return r.ExitCode
}

func describe(r *jail.Result) string {
	switch r.Reason {
	case jail.ReasonSignaled:
		return fmt.Sprintf("program killed by signal %d", r.Signal)
	case jail.ReasonSeccomp:
		if r.SeccompSyscall != "" {
			return "program killed by seccomp: system call " + r.SeccompSyscall + " is refused"
		}
		return "program killed by seccomp"
	case jail.ReasonOutputLimit:
		return "output limit reached; the jail was killed"
	default:
		return "jail stopped: " + string(r.Reason)
	}
}

func writeResult(path string, r *jail.Result) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}

// runOptions is what `brig run` was asked to do.
type runOptions struct {
	cfg        jail.Config
	env        []string
	quiet      bool
	resultFile string
	command    []string
}

func parseRunFlags(args []string) (opt runOptions, err error) {
	fs := flag.NewFlagSet("brig run", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	cfg := &opt.cfg
	var roBinds, rwBinds []string
	var network, limiter, seccompFlag string
	fs.Var(durationFlag{&cfg.Timeout}, "timeout", "wall-clock limit (Go duration, e.g. 10s; default 30s)")
	fs.Var(sizeFlag{&cfg.OutputLimit}, "output-limit", "cap on stdout and stderr each (e.g. 1M; default 16M)")
	fs.Var(sizeFlag{&cfg.TmpfsSize}, "tmpfs-size", "size of the writable /tmp, workdir and /dev/shm together (default 64M)")
	fs.Var(listFlag{&roBinds}, "ro-bind", "bind host SRC[:DST] read-only (repeatable)")
	fs.Var(listFlag{&rwBinds}, "bind", "bind host SRC[:DST] read-write (repeatable)")
	fs.Var(listFlag{&opt.env}, "env", "set KEY=VALUE in the jail (repeatable); the host environment never leaks in")
	fs.StringVar(&cfg.WorkDir, "workdir", "", "working directory in the jail (default /work)")
	fs.StringVar(&cfg.Hostname, "hostname", "", "hostname in the jail (default brig)")
	fs.StringVar(&network, "net", "none", "network: none (a namespace with lo only)")
	fs.StringVar(&opt.resultFile, "result", "", "write the Result as JSON to FILE")
	fs.BoolVar(&opt.quiet, "quiet", false, "print nothing of brig's own unless brig itself fails")
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
	fs.StringVar(&limiter, "limiter", "auto", "auto, cgroup2, cgroup1 or rlimit")
	fs.BoolVar(&cfg.RequireCgroups, "require-cgroups", false, "fail instead of falling back to rlimits")
	fs.StringVar(&seccompFlag, "seccomp", "default", "default, none, or an OCI seccomp profile FILE")
	fs.BoolVar(&cfg.SeccompLog, "seccomp-log", false, "allow refused system calls but record them in the result")
	fs.BoolVar(&cfg.SeccompKill, "seccomp-kill", false, "kill the program on a refused system call instead of failing the call")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: brig run [flags] -- COMMAND [ARG...]\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err = fs.Parse(args); err != nil {
		return
	}
	opt.command = fs.Args()
	if len(opt.command) == 0 {
		err = errors.New("run: no command given (brig run [flags] -- COMMAND [ARG...])")
		return
	}
	if network != "none" {
		err = fmt.Errorf("--net %q: only none (lo alone) is supported", network)
		return
	}
	switch k := cgroup.Kind(limiter); k {
	case cgroup.Auto, cgroup.Cgroup2, cgroup.Cgroup1, cgroup.RlimitOnly:
		cfg.Limiter = k
	default:
		err = fmt.Errorf("--limiter %q: want auto, cgroup2, cgroup1 or rlimit", limiter)
		return
	}
	switch seccompFlag {
	case "default":
	case "none":
		cfg.DisableSeccomp = true
		fmt.Fprintln(os.Stderr, "brig: warning: --seccomp none: the program may use every system call")
	default:
		if cfg.Seccomp, err = seccomp.LoadOCIFile(seccompFlag); err != nil {
			err = fmt.Errorf("--seccomp: %w", err)
			return
		}
	}
	for _, spec := range roBinds {
		cfg.Binds = append(cfg.Binds, parseBind(spec, false))
	}
	for _, spec := range rwBinds {
		cfg.Binds = append(cfg.Binds, parseBind(spec, true))
	}
	for _, kv := range opt.env {
		if !strings.Contains(kv, "=") {
			err = fmt.Errorf("--env %q: want KEY=VALUE", kv)
			return
		}
	}
	return opt, nil
}

func parseBind(spec string, writable bool) jail.Bind {
	src, dst, _ := strings.Cut(spec, ":")
	return jail.Bind{Source: src, Target: dst, Writable: writable}
}
