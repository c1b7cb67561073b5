package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/brig-sandbox/brig/cgroup"
	"github.com/brig-sandbox/brig/jail"
)

// runMain implements `brig run`; it returns the process exit status: the
// program's own, 128+N when it died of signal N, 125 when brig failed.
func runMain(args []string) int {
	defer jail.DefaultSupervisor.Close() // also when no jail starts: leave no process behind
	opt, err := parseRunFlags(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "brig: %v\n", err)
		return exitBrigFailed
	}
	setLogging(os.Stderr, opt.quiet)
	var result *resultFile
	if opt.resultFile != "" {
		if result, err = openResultFile(opt.resultFile); err != nil {
			fmt.Fprintf(os.Stderr, "brig: --result: %v\n", err)
			return exitBrigFailed
		}
		defer result.close()
	}
	if !opt.quiet {
		if note := unenforcedLimits(opt.cfg); note != "" {
			fmt.Fprintf(os.Stderr, "brig: %s\n", note)
		}
	}
	// Every signal that would end brig cancels the jail instead, so that
	// brig tears it down (processes, cgroups) before it exits.
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer cancel()
	cmd := jail.Command(ctx, opt.cfg, opt.command[0], opt.command[1:]...)
	cmd.Env = opt.env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if opt.tty {
		term, terr := attachTerminal(cmd)
		if terr != nil {
			fmt.Fprintf(os.Stderr, "brig: -t: put the terminal in raw mode: %v\n", terr)
			return exitBrigFailed
		}
		// Before brig's own messages below, and on every way out.
		defer term.release()
		err = cmd.Run()
		term.release()
	} else {
		err = cmd.Run()
	}
	var exitErr *jail.ExitError
	if err != nil && !errors.As(err, &exitErr) && cmd.Result == nil {
		fmt.Fprintf(os.Stderr, "brig: %v\n", err)
		return exitBrigFailed
	}
	r := cmd.Result
	if result != nil {
		if err := result.commit(r); err != nil {
			fmt.Fprintf(os.Stderr, "brig: %v\n", err)
			return exitBrigFailed
		}
	}
	if !opt.quiet {
		if r.Reason != jail.ReasonExited {
			fmt.Fprintf(os.Stderr, "brig: %s\n", describe(r))
		}
		if note := limitNote(r); note != "" {
			fmt.Fprintf(os.Stderr, "brig: %s\n", note)
		}
		printEgressRefused(r)
	}
	if r.Signal != 0 {
		return 128 + r.Signal
	}
	return r.ExitCode
}

// unenforcedLimits says in one line which limits the jail's limiter cannot
// enforce, or nothing when it enforces them all. The rlimit fallback's
// reasons for being chosen are brig check's to explain.
func unenforcedLimits(cfg jail.Config) string {
	kind, err := cgroup.Planned(cgroup.Options{Kind: cfg.Limiter, Require: cfg.RequireCgroups, Parent: cfg.CgroupParent,
		NoFreezer: true, NoCPUAccounting: cfg.Limits.CPUTime == 0})
	if err != nil || kind != cgroup.RlimitOnly {
		return "" // a failure is the run's to report
	}
	cgroup.FallbackExplained()
	why := "no usable cgroup, see brig check"
	if cfg.Limiter == cgroup.RlimitOnly {
		why = "as requested"
	}
	return "rlimits only (" + why + "): memory is per-process address space without kernel memory; " +
		"CPU time is per process; --cpus is not enforced"
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

// limitNote says which limits acted on the jail's other processes while
// the program itself was not killed for them, or "".
func limitNote(r *jail.Result) string {
	var what []string
	if r.OOMKills > 0 && r.Reason != jail.ReasonOOM {
		what = append(what, fmt.Sprintf("%d process(es) killed for memory (oom)", r.OOMKills))
	}
	if r.PidsLimitHits > 0 {
		what = append(what, fmt.Sprintf("%d fork(s) refused by the pids limit", r.PidsLimitHits))
	}
	if r.SeccompSyscall != "" && r.Reason != jail.ReasonSeccomp {
		what = append(what, "a process killed by seccomp (system call "+r.SeccompSyscall+")")
	}
	if len(what) == 0 {
		return ""
	}
	return "in the jail: " + strings.Join(what, "; ")
}

// runOptions is what `brig run` was asked to do.
type runOptions struct {
	cfg        jail.Config
	env        []string
	quiet      bool
	tty        bool
	resultFile string
	command    []string
}

func parseRunFlags(args []string) (opt runOptions, err error) {
	fs := flag.NewFlagSet("brig run", flag.ContinueOnError)
	jf := registerJailFlags(fs, &opt.cfg, &opt.env)
	fs.Var(durationFlag{&opt.cfg.Timeout}, "timeout", "wall-clock limit (Go duration, e.g. 10s; default 30s)")
	fs.Var(sizeFlag{&opt.cfg.OutputLimit}, "output-limit", "cap on stdout and stderr each (e.g. 1M; default 16M)")
	fs.StringVar(&opt.resultFile, "result", "", "write the Result as JSON to FILE (- for stdout, after the program's output)")
	fs.BoolVar(&opt.quiet, "quiet", false, "print nothing of brig's own unless brig itself fails")
	fs.BoolVar(&opt.tty, "tty", false, "give the program a terminal: a pty of the jail's own (stdout and stderr merged); "+
		"a terminal on stdin is put in raw mode for the run")
	fs.BoolVar(&opt.tty, "t", false, "short for --tty")
	if err = parseFlags(fs, args, "brig run [flags] -- COMMAND [ARG...]"); err != nil {
		return
	}
	opt.command = fs.Args()
	if len(opt.command) == 0 {
		err = errors.New("run: no command given (brig run [flags] -- COMMAND [ARG...])")
		return
	}
	return opt, jf.finish()
}
