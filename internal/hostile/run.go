package hostile

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Run is one payload to run under one limiter.
type Run struct {
	Payload *Payload
	Limiter string   // "auto", "cgroup1", "cgroup2" or "rlimit"
	Env     []string // the bait's description
	Outbox  string   // host directory to bind at /out when the payload asks for one
	// Step is 1 or 2 for the runs of a two-step payload
	// (Config.ThenBind), 0 otherwise.
	Step int
}

// BindSpec is a host path bound into a jail.
type BindSpec struct {
	Source, Target string
	Writable       bool
}

// Binds are the binds a run gets: the outbox writable at /out when the
// payload asks for one, except in a two-step payload's second run, which
// gets the outbox's ThenBind source read-only instead.
func (r Run) Binds() []BindSpec {
	cfg := r.Payload.Config
	if !cfg.Outbox || r.Outbox == "" {
		return nil
	}
	if r.Step == 2 {
		return []BindSpec{{Source: filepath.Join(r.Outbox, cfg.ThenBind[0]), Target: cfg.ThenBind[1]}}
	}
	return []BindSpec{{Source: r.Outbox, Target: "/out", Writable: true}}
}

// Runner runs a payload in a jail, one way or another.
type Runner interface {
	Name() string
	Run(ctx context.Context, r Run) (*Outcome, error)
}

// BuildCLI builds brig's CLI (./cmd/brig of the module at root) into out
// as the Makefile's build does (CLI_FLAGS: static, with the pure-Go user
// and DNS lookups), so that tests run the brig that ships.
func BuildCLI(root, out string) error {
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build",
		"-tags", "osusergo,netgo,grpcnotrace", "-ldflags=-extldflags=-static", "-o", out, "./cmd/brig")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/brig: %v: %s", err, b)
	}
	return nil
}

// CLIRunner runs payloads through `brig run`.
type CLIRunner struct {
	Brig string   // path of the brig binary
	Wrap []string // command prefix, e.g. setpriv ... to run brig unprivileged
	Tmp  string   // directory for result files, writable by whoever runs brig
	Tag  string
}

func (c *CLIRunner) Name() string {
	if c.Tag != "" {
		return c.Tag
	}
	return "cli"
}

// Args are the `brig run` arguments for a run.
func cliArgs(r Run) []string {
	p := r.Payload
	args := []string{"run", "--quiet"}
	if r.Limiter != "" {
		args = append(args, "--limiter", r.Limiter)
	}
	cfg := p.Config
	if cfg.Timeout > 0 {
		args = append(args, "--timeout", cfg.Timeout.String())
	}
	if cfg.Memory > 0 {
		args = append(args, "--memory", strconv.FormatInt(cfg.Memory, 10))
	}
	if cfg.Pids > 0 {
		args = append(args, "--pids", strconv.FormatInt(cfg.Pids, 10))
	}
	if cfg.CPUs > 0 {
		args = append(args, "--cpus", strconv.FormatFloat(cfg.CPUs, 'f', -1, 64))
	}
	if cfg.CPUTime > 0 {
		args = append(args, "--cpu-time", cfg.CPUTime.String())
	}
	if cfg.TmpfsSize > 0 {
		args = append(args, "--tmpfs-size", strconv.FormatInt(cfg.TmpfsSize, 10))
	}
	for _, t := range cfg.TmpfsPaths {
		args = append(args, "--tmpfs", t)
	}
	if cfg.OutputLimit > 0 {
		args = append(args, "--output-limit", strconv.FormatInt(cfg.OutputLimit, 10))
	}
	if cfg.SeccompKill {
		args = append(args, "--seccomp-kill")
	}
	if cfg.TTY {
		args = append(args, "--tty")
	}
	if len(cfg.Allow) > 0 {
		args = append(args, "--net", "proxy")
		for _, a := range cfg.Allow {
			args = append(args, "--allow", a)
		}
	}
	for _, b := range r.Binds() {
		flag := "--ro-bind"
		if b.Writable {
			flag = "--bind"
		}
		args = append(args, flag, b.Source+":"+b.Target)
	}
	for _, e := range r.Env {
		args = append(args, "--env", e)
	}
	return args
}

func (c *CLIRunner) Run(ctx context.Context, r Run) (*Outcome, error) {
	if r.Payload.Session != "" {
		return c.runSession(ctx, r) // session.go
	}
	var resName string
	if r.Payload.Config.ResultInOutbox && r.Outbox != "" {
		// Where the jail can write: brig must not write through what it
		// planted there (RunOne empties the outbox afterwards).
		resName = filepath.Join(r.Outbox, resultName)
	} else {
		res, err := os.CreateTemp(c.Tmp, "result-*.json")
		if err != nil {
			return nil, err
		}
		res.Close()
		_ = os.Chmod(res.Name(), 0o666)
		defer os.Remove(res.Name())
		resName = res.Name()
	}
	args := cliArgs(r)
	args = append(args, "--result", resName, "--", Interpreters[r.Payload.Interp], "-c", r.Payload.Source)
	argv := append(append([]string{}, c.Wrap...), c.Brig)
	argv = append(argv, args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if r.Payload.Config.Stdin != "" {
		cmd.Stdin = strings.NewReader(r.Payload.Config.Stdin)
	}
	// The supervisor's environment carries the secret: brig must not pass it on.
	cmd.Env = append(os.Environ(), secretEnv+"="+os.Getenv(secretEnv))
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	o := &Outcome{Supervisor: cmd.Process.Pid}
	err := cmd.Wait()
	o.Stdout, o.Stderr = stdout.String(), stderr.String()
	code := cmd.ProcessState.ExitCode()
	b, rerr := readResult(resName)
	if code == 125 || rerr != nil || len(b) == 0 {
		o.SetupError = fmt.Sprintf("brig exit %d (%v): %s", code, err, strings.TrimSpace(o.Stderr))
		return o, nil
	}
	var jr struct {
		ExitCode        int    `json:"exit_code"`
		Signal          int    `json:"signal"`
		Reason          string `json:"reason"`
		StdoutTruncated bool   `json:"stdout_truncated"`
		Limiter         string `json:"limiter"`
	}
	if err := json.Unmarshal(b, &jr); err != nil {
		return nil, fmt.Errorf("result JSON: %w", err)
	}
	o.Reason, o.ExitCode, o.Signal, o.StdoutTruncated, o.Limiter = jr.Reason, jr.ExitCode, jr.Signal, jr.StdoutTruncated, jr.Limiter
	// brig's own exit status must agree with the result.
	want := jr.ExitCode
	if jr.Signal != 0 {
		want = 128 + jr.Signal
	}
	if code != want {
		o.SetupError = fmt.Sprintf("brig exited %d but its result says %d", code, want)
	}
	return o, nil
}

// readResult reads brig's result file without following a symlink at its
// name (one in the outbox may be the jail's).
func readResult(name string) ([]byte, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 1<<20))
}

// Options of a corpus run.
type Options struct {
	Limiter string
	Unpriv  bool // runs are unprivileged: the jail uid is the caller's
	IDs     JailIDs
	Out     io.Writer // one line per payload
	// MaxProbe is the longest the host may take to start /bin/true and
	// answer on loopback while a payload runs (default 5 s: a wedged host
	// takes far longer, and a shared 2-core machine under other test runs
	// already takes seconds while a rlimit-only jail, which has no CPU
	// cap, spins on every core).
	MaxProbe time.Duration
}

// Report counts a corpus run.
type Report struct {
	Passed, Failed int
	KnownBugs      int // XFAIL: failed as a known bug says it would
	Failures       []string
}

// RunCorpus runs every payload through every runner, one at a time, with
// the bait out, and checks each verdict and the host around it.
func RunCorpus(ctx context.Context, payloads []*Payload, runners []Runner, bait *Bait, opt Options) *Report {
	rep := &Report{}
	for _, rn := range runners {
		for _, p := range payloads {
			fails, o := RunOne(ctx, rn, p, bait, opt)
			tag := fmt.Sprintf("%s/%s %s", rn.Name(), opt.Limiter, p.Name)
			got := ""
			if o != nil {
				got = fmt.Sprintf("reason=%s exit=%d signal=%d limiter=%s", o.Reason, o.ExitCode, o.Signal, o.Limiter)
				if o.SetupError != "" {
					got = "setup error"
				}
				if o.Cell != "" {
					got += " cell=" + o.Cell
				}
			}
			bug := ""
			if o != nil {
				bug = p.KnownBug(o.Limiter, opt.Unpriv)
			}
			if len(fails) == 0 {
				rep.Passed++
				if bug != "" {
					fmt.Fprintf(opt.Out, "XPASS %-43s %s: fixed? drop its bug line: %s\n", tag, got, bug)
					continue
				}
				fmt.Fprintf(opt.Out, "PASS %-44s %s\n", tag, got)
				continue
			}
			if bug != "" {
				rep.KnownBugs++
				fmt.Fprintf(opt.Out, "XFAIL %-43s %s: %s (%s)\n", tag, got, bug, strings.Join(fails, "; "))
				continue
			}
			rep.Failed++
			line := fmt.Sprintf("FAIL %-44s %s: %s", tag, got, strings.Join(fails, "; "))
			rep.Failures = append(rep.Failures, line)
			fmt.Fprintln(opt.Out, line)
			if o != nil && os.Getenv("BRIG_HOSTILE_VERBOSE") != "" {
				fmt.Fprintf(opt.Out, "  stdout: %s\n  stderr: %s\n", clip(o.Stdout), clip(o.Stderr))
			}
		}
	}
	return rep
}

func clip(s string) string {
	if len(s) > 3000 {
		s = s[:3000] + "..."
	}
	return strings.ReplaceAll(s, "\n", "\n          ")
}

// RunOne runs one payload and returns every way it went wrong: the
// verdict, the bait, the host's responsiveness and what was left behind.
func RunOne(ctx context.Context, rn Runner, p *Payload, bait *Bait, opt Options) ([]string, *Outcome) {
	if opt.MaxProbe == 0 {
		opt.MaxProbe = 5 * time.Second
	}
	if p.Config.Outbox && bait.Outbox == "" {
		return []string{"payload needs an outbox"}, nil
	}
	// What a run takes from the host may come back a moment after it
	// ended (the kernel frees inotify instances from a work queue): wait
	// for it, so one payload's harm is not charged to the next.
	settle := time.Now().Add(5 * time.Second)
	for {
		_, err := bait.probe()
		if err == nil {
			break
		}
		if time.Now().After(settle) {
			return []string{"host unresponsive before the run: " + err.Error()}, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	var core *CoreLogger
	if p.Config.CoreLogger {
		l, err := InstallCoreLogger()
		if err != nil {
			return []string{err.Error()}, nil
		}
		defer l.Close()
		core = l
	}
	before := Snapshot(opt.IDs)
	// Watch the host while the jail runs.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var worst time.Duration
	var probeErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(150 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				d, err := bait.probe()
				if err != nil && probeErr == nil {
					probeErr = err
				}
				worst = max(worst, d)
			}
		}
	}()
	var fails []string
	run := Run{Payload: p, Limiter: opt.Limiter, Env: bait.env(), Outbox: bait.Outbox}
	if p.Config.ThenBind[0] != "" {
		// A two-step payload: the first run plants, and must succeed.
		first := run
		first.Step, first.Env = 1, append(slices.Clip(run.Env), "BRIG_STEP=1")
		o, err := rn.Run(ctx, first)
		switch {
		case err != nil:
			fails = append(fails, "step 1: run: "+err.Error())
		case o.SetupError != "" || o.Reason != "exited" || o.ExitCode != 0:
			fails = append(fails, fmt.Sprintf("step 1: reason=%s exit=%d setup=%q stderr=%q, want exit 0", o.Reason, o.ExitCode, o.SetupError, clip(o.Stderr)))
		default:
			fails = append(fails, bait.leaked(o.Stdout, o.Stderr)...)
		}
		run.Step, run.Env = 2, append(slices.Clip(run.Env), "BRIG_STEP=2")
	}
	o, err := rn.Run(ctx, run)
	close(stop)
	wg.Wait()
	if err != nil {
		return append(fails, "run: "+err.Error()), nil
	}
	fails = append(fails, p.verdict(o, opt.Unpriv)...)
	if core != nil {
		fails = append(fails, coreHelperRuns(core, opt.IDs)...)
	}
	fails = append(fails, bait.leaked(o.Stdout, o.Stderr)...)
	fails = append(fails, bait.touched()...)
	if probeErr != nil {
		fails = append(fails, "host unresponsive: "+probeErr.Error())
	} else if worst > opt.MaxProbe {
		fails = append(fails, fmt.Sprintf("host unresponsive: a probe took %v", worst.Round(time.Millisecond)))
	}
	sups := []int{}
	if o.Supervisor != 0 {
		sups = append(sups, o.Supervisor)
	}
	fails = append(fails, SettleLeaks(before, opt.IDs, 2*time.Second, sups...)...)
	if p.Config.Outbox {
		if err := bait.emptyOutbox(); err != nil {
			fails = append(fails, "empty outbox: "+err.Error())
		}
	}
	return fails, o
}

// coreHelperRuns says which crashes of jail processes ran the core
// logger, then proves with a crash on the host that the logger runs at all.
func coreHelperRuns(l *CoreLogger, ids JailIDs) []string {
	crashes, err := l.Crashes()
	if err != nil {
		return []string{err.Error()}
	}
	var fails []string
	for _, c := range crashes {
		if ids.has(c.UID) {
			fails = append(fails, fmt.Sprintf("a crash in the jail ran the host's core helper: pid %d uid %d %q, RLIMIT_CORE %s", c.PID, c.UID, c.Comm, c.Limit))
		}
	}
	if len(fails) > 5 {
		fails = append(fails[:5], fmt.Sprintf("and %d more", len(fails)-5))
	}
	if err := l.Control(); err != nil {
		fails = append(fails, err.Error())
	}
	return fails
}

// Corpus finds testdata/hostile from the working directory upwards.
func Corpus() (string, error) {
	dir, _ := os.Getwd()
	for {
		c := filepath.Join(dir, "testdata", "hostile")
		if _, err := os.Stat(filepath.Join(c, "prelude.py")); err == nil {
			return c, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("testdata/hostile not found above the working directory")
		}
		dir = parent
	}
}
