package supervisor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/brig-sandbox/brig/cgroup"
	"github.com/brig-sandbox/brig/egress"
	"github.com/brig-sandbox/brig/internal/stage"
	"github.com/brig-sandbox/brig/seccomp"
	"golang.org/x/sys/unix"
)

// Instance is one jail on the host side: what package jail's Cmd runs
// its program with. The exported fields are the Cmd's, copied at Start.
type Instance struct {
	Path       string
	Args       []string
	Env        []string
	Dir        string // "" means the plan's WorkDir
	Stdin      io.Reader
	Stdout     io.Writer
	Stderr     io.Writer
	ExtraFiles []*os.File
	TTY        *TTY
	// OnEgress receives every decision of the jail's egress proxy (Plan's
	// Egress), from the proxy's goroutines; EgressResolver resolves its
	// destinations (nil: the system's).
	OnEgress       func(egress.Event)
	EgressResolver egress.Resolver

	// Outcome is set by Wait.
	Outcome *Outcome

	ctx                  context.Context
	sup                  *Supervisor
	cfg                  Plan
	lease                *hostIDLease
	limiter              cgroup.Limiter
	kmsg                 *seccomp.LogCursor
	helper               interface{ Wait() error }
	staleSweep           <-chan struct{} // this process's sweep of stale cgroups
	control              *os.File
	start                time.Time
	events               chan stage.Event // closed when the status pipe reaches EOF
	copiers              sync.WaitGroup
	closers              []io.Closer // parent ends closed after the helper started
	stopOnce             sync.Once
	stopWhy              StopReason
	stdoutCut, stderrCut bool
	stopTimer            func() bool
	pause                pauseState // freeze.go
	initPid              int        // init's pid on the host, for /proc/PID/root
	done                 chan struct{}
	exitEv, doneEv       *stage.Event
	pool                 *Pool    // set by Pool.Instance
	request              *os.File // a pooled jail's request socket (pool.go)
	ttySock              *os.File // TTY or egress: the handback socket init sends the pty's master and the egress listener on (tty.go, egress.go)
	egress               *egress.Proxy
	egressDone           chan struct{} // closed when the proxy's Serve has returned
	egressRefused        []egress.Refusal
	// ttyMaster is the pty's master once Start has it; atomic, since
	// ResizeTTY may be called (on a SIGWINCH) while Start runs.
	ttyMaster atomic.Pointer[os.File]
	// template, when not nil, is the root template whose fd launchHelper
	// hands the helper; fromTemplate stays set after for buildSpec.
	template     *rootTemplate
	fromTemplate bool
}

// Instance returns an Instance that runs a jail of plan, started by this
// supervisor. Cancelling ctx kills the whole jail.
func (s *Supervisor) Instance(ctx context.Context, plan Plan) *Instance {
	return &Instance{ctx: ctx, sup: s, cfg: plan}
}

// supervisor is the Instance's Supervisor.
func (c *Instance) supervisor() *Supervisor { return c.sup }

// Start builds the jail and starts the program in it. It returns once the
// program runs, or with a *StepError naming the step that failed.
func (c *Instance) Start() (err error) {
	if c.helper != nil {
		return errors.New("jail: already started")
	}
	if len(c.ExtraFiles) > MaxExtraFiles {
		return &StepError{Step: "config", Err: fmt.Errorf("%d extra files: at most %d", len(c.ExtraFiles), MaxExtraFiles)}
	}
	if c.sup.early {
		adoptEarlySpawner()
	}
	if c.sup.started.Add(1) > 1 {
		c.sup.warmSpawner() // for the supervisor's next jails
	}
	if c.pool != nil {
		if c.TTY != nil {
			return &StepError{Step: "config", Err: errors.New("a pooled jail has no TTY: start the command with jail.Command instead")}
		}
		return c.startPooled()
	}
	defer func() {
		if err != nil {
			c.cleanup()
		}
	}()
	c.start = time.Now()
	c.takeTemplate()
	// The helper starts first: its exec (or fork) runs on another CPU while
	// this one builds the spec.
	specW, err := c.launchHelper()
	if err != nil {
		if c.events != nil {
			c.drainAfterFailure()
		}
		return err
	}
	s, err := c.buildSpec(true)
	if err != nil {
		specW.Close()
		c.drainAfterFailure()
		return err
	}
	if err := sendSpec(specW, s); err != nil {
		c.drainAfterFailure()
		return err
	}
	if s.JoinLater {
		if err := c.joinLater(); err != nil {
			c.drainAfterFailure()
			return err
		}
	}
	// Stats opens the cgroup's counter files on first use: here, while the
	// helper and init build the jail, rather than between the program's
	// exit and Wait's return (~0.1 ms). A live cold jail holds them open.
	_, _ = c.limiter.Stats()
	if err := c.awaitStart(); err != nil {
		c.drainAfterFailure()
		return err
	}
	return nil
}

// awaitStart reads the jail's events until the program runs (or brig's own
// output cap already stopped it) or the set-up failed, for cold and pooled
// jails alike.
func (c *Instance) awaitStart() error {
	started, err := c.awaitInitAnd("started")
	if err != nil {
		return err
	}
	if started {
		if c.cfg.Egress != nil {
			if err := c.startEgress(); err != nil {
				return err
			}
		}
		if c.TTY != nil {
			if err := c.startTTY(); err != nil {
				return err
			}
		}
		c.watch()
		return nil
	}
	if c.stoppedEarly() {
		c.watch()
		return nil
	}
	return &StepError{Step: "start", Err: errors.New("the jail ended before the program started")}
}

// awaitInitAnd reads the jail's events until the helper's "init" (init's
// pid) and the jail's own event named last have both come, and reports
// whether they did before the status pipe ended; an "error" ends the wait.
// They come from two writers of the status pipe, in either order: the
// helper may still be leaving a cgroup when the jail is built or the
// program started. So may a quick program's "exit", which is kept for
// Wait (without it Wait would report the jail killed). Nothing after the
// two is read: a pooled jail's next event is its request's.
func (c *Instance) awaitInitAnd(last string) (bool, error) {
	seen := false
	for ev := range c.events {
		switch ev.Kind {
		case "init":
			c.initPid = ev.Pid
		case "error":
			return false, setupErrorOf(ev)
		case "warning":
			logWarning(ev)
		case "exit":
			c.exitEv = &ev
		case last:
			seen = true
		}
		if seen && c.initPid != 0 {
			return true, nil
		}
	}
	return false, nil
}

// stoppedEarly reports whether brig itself killed the jail (its output cap
// ran out) before Start saw the "started" event: the program did run, and
// Wait reports why it was stopped. Once the jail has ended there is
// nothing left to stop, so consuming stopOnce here is harmless.
func (c *Instance) stoppedEarly() bool {
	c.stopOnce.Do(func() {})
	return c.stopWhy != ""
}

// buildSpec leases the jail's ids, makes its cgroup (unless a cold jail
// joins it later: cgroup v1) and resolves what it needs.
func (c *Instance) buildSpec(cold bool) (*stage.Spec, error) {
	var err error
	if c.lease, err = leaseHostID(c.cfg.HostIDs); err != nil {
		return nil, &StepError{Step: "lease host id", Err: err}
	}
	opts := c.cgroupOptions(cold)
	// A cold jail on cgroup v1 gets its cgroups while it is built (joinLater):
	// making five of them is ~0.3 ms the helper would otherwise wait for.
	joinLater := false
	if cold {
		kind, err := cgroup.Planned(opts)
		joinLater = err == nil && kind == cgroup.Cgroup1
	}
	if !joinLater {
		c.limiter, err = newLimiter(c.cfg.Limits, opts)
		if err != nil {
			return nil, &StepError{Step: "create cgroup", Err: err}
		}
	}
	// After Planned or New: the sweep finds the parents in their probe.
	c.staleSweep = c.sup.removeStaleOnce(opts)
	resolve := c.sup.rootMounts
	if c.fromTemplate {
		resolve = bindMounts // the template holds the system mounts
	}
	mounts, err := resolve(c.cfg.Binds, c.cfg.Tmpfs)
	if err != nil {
		return nil, &StepError{Step: "resolve binds", Err: err}
	}
	filter, err := c.seccompFilter()
	if err != nil {
		return nil, &StepError{Step: "seccomp", Err: err}
	}
	dir := c.workDir()
	env := []string{"PATH=" + DefaultPath, "HOME=" + c.cfg.WorkDir, "LANG=C.UTF-8"}
	env = append(env, c.Env...)
	if c.cfg.Egress != nil {
		env = withEgressVars(env)
	}
	s := &stage.Spec{
		Path: c.Path, Args: c.Args, Env: env, Dir: dir,
		Hostname:   c.cfg.Hostname,
		IDs:        c.lease.IDs,
		Mounts:     mounts,
		Template:   c.fromTemplate,
		TmpfsSize:  c.cfg.TmpfsSize,
		NewNet:     true,
		TTY:        c.TTY != nil,
		Proxy:      c.cfg.Egress != nil,
		JoinLater:  joinLater,
		IPCSysctls: c.sup.ipcSysctlWrites(c.cfg.Limits.Memory),
		Exec:       stage.ExecSettings{UID: JailUID, GID: JailGID, Rlimits: c.rlimits(), Extra: len(c.ExtraFiles), Seccomp: filter},
	}
	if !c.fromTemplate {
		s.Root = rootOwn(dir, c.cfg.Hostname)
	}
	if !joinLater {
		s.CgroupDir, s.ProcsFiles = c.limiter.Dir(), c.limiter.ProcsFiles()
		s.JoinTasks, s.HomeTasks = c.limiter.SelfMove()
	}
	return s, nil
}

// takeTemplate takes the root template for this jail, if there is one; its
// fd goes to the helper with the others (launchHelper).
func (c *Instance) takeTemplate() {
	c.template = c.sup.acquireTemplate(&c.cfg, c.workDir())
	c.fromTemplate = c.template != nil
}

// workDir is where the program starts and the jail's work tmpfs is bound.
func (c *Instance) workDir() string {
	if c.Dir != "" {
		return c.Dir
	}
	return c.cfg.WorkDir
}

// cgroupOptions: every jail has its own PID namespace, which kills all of
// it when init dies, so none needs the v1 freezer (but a Pausable one,
// for Freeze); a cold jail without a CPU-time budget reports the CPU time
// of the helper's rusage, so it needs no cpuacct either. (A pooled jail reports when its program exits, before
// that rusage exists.) Two cgroups fewer to make, join and remove: 8 at a
// time, 0.94x the time per jail. A process that has started more than one
// jail hands an ended jail's cgroups to its next (Reuse); brig run, which
// starts one, leaves none behind. (Per supervisor: Supervisor.started.)
func (c *Instance) cgroupOptions(cold bool) cgroup.Options {
	opts := c.cfg.Cgroups
	opts.NoFreezer, opts.NoCPUAccounting, opts.Reuse = !c.cfg.Pausable, cold && c.cfg.Limits.CPUTime == 0, c.supervisor().started.Load() > 1
	return opts
}

// logWarning logs what the helper or init reported and got past: the jail
// goes on as if it had not happened.
func logWarning(ev stage.Event) {
	slog.Warn("jail: "+ev.Step, "err", ev.Err)
}

// newLimiter is cgroup.New; a test makes it fail where a cold jail's
// helper is already running (TestFaultCgroupFailsWhileJailIsBuilt).
var newLimiter = cgroup.New

// joinLater makes the cgroup v1 limiter of a JoinLater jail, whose helper
// is already building it, and sends the helper the "tasks" files init is to
// move itself into.
func (c *Instance) joinLater() error {
	l, err := newLimiter(c.cfg.Limits, c.cgroupOptions(true))
	if err != nil {
		return &StepError{Step: "create cgroup", Err: err}
	}
	c.limiter = l
	if l.Kind() != cgroup.Cgroup1 {
		// The spec carries no rlimits of another kind's: never run so.
		return &StepError{Step: "create cgroup", Err: fmt.Errorf("planned a cgroup1 limiter, got %s", l.Kind())}
	}
	join, _ := l.SelfMove()
	var e stage.Encoder
	e.Strs(join)
	if e.Len() > stage.MaxJoinLen {
		return &StepError{Step: "join cgroup", Err: fmt.Errorf("a list of %d cgroup files in %d bytes: at most %d bytes", len(join), e.Len(), stage.MaxJoinLen)}
	}
	msg := binary.NativeEndian.AppendUint32([]byte{stage.ControlJoin}, uint32(e.Len()))
	if _, err := c.control.Write(append(msg, e.Bytes()...)); err != nil {
		if errors.Is(err, syscall.EPIPE) {
			// The helper has ended: it failed a step of its own first (a
			// bind source, say), and its error names the cause where this
			// write's would name only the consequence.
			for ev := range c.events {
				if ev.Kind == "error" {
					return setupErrorOf(ev)
				}
			}
		}
		return &StepError{Step: "join cgroup", Err: err}
	}
	return nil
}

// removeStaleOnce removes, once per supervisor and parent, the cgroups that
// supervisors killed before they could clean up left behind. It sweeps in
// the background, on another CPU than the jail's set-up; the jail waits for
// it in cleanup, so that a process running one jail does not exit mid-sweep.
func (s *Supervisor) removeStaleOnce(opts cgroup.Options) <-chan struct{} {
	done := make(chan struct{})
	sweep, started := s.sweeps.LoadOrStore(opts.Parent, (<-chan struct{})(done))
	if started {
		return sweep.(<-chan struct{})
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		defer close(done)
		if removed, err := cgroup.RemoveStale(opts); err != nil {
			slog.Debug("jail: remove stale cgroups", "err", err)
		} else if len(removed) > 0 {
			s.staleRemoved.Add(uint64(len(removed)))
			slog.Info("jail: removed cgroups of dead supervisors", "count", len(removed))
		}
	}()
	return done
}

func (c *Instance) seccompFilter() ([]byte, error) {
	if c.cfg.SeccompOff {
		slog.Warn("jail: seccomp disabled: the jailed program may use every system call")
		// Only the filter keeps RLIMIT_CORE at 1 (seccomp/coreguard.go).
		if p, err := os.ReadFile(corePatternFile); err == nil && bytes.HasPrefix(p, []byte("|")) {
			slog.Warn("jail: without seccomp the program can lower RLIMIT_CORE: a crash then runs the host's core helper as root",
				"core_pattern", string(bytes.TrimSpace(p)))
		}
		return nil, nil
	}
	if c.cfg.SeccompVariant != seccomp.DefaultEnforce {
		// Only the kernel knows which call was refused; it says so in kmsg.
		if cur, err := seccomp.OpenLogCursor(); err == nil {
			c.kmsg = cur
		} else {
			slog.Debug("jail: cannot read kernel seccomp records", "err", err)
		}
	}
	variant := c.cfg.SeccompVariant
	if c.cfg.Seccomp == nil {
		return seccomp.DefaultProgram(variant)
	}
	return variant.Of(c.cfg.Seccomp).Compile()
}

// jailSigPending is every jail's RLIMIT_SIGPENDING. Pending signals (and
// POSIX timers, which hold one each) are counted per user in the jail's
// user namespace and again for the namespace's owner on the host, the
// caller's uid (root's, when the supervisor is root): a jail with the
// caller's own limit could use all of the caller's quota, and the caller's
// timer_create then fails. This bounds the jail's share.
const jailSigPending = 1024

// rlimits are the limiter's own plus the defence-in-depth ones every jail
// gets; the limiter's replace the defaults of the same resource.
func (c *Instance) rlimits() []cgroup.Rlimit {
	const fsize = cgroup.MaxFileSize
	// POSIX message queues: kernel memory, counted like pending signals.
	// A quarter of the kernel's default (819200 bytes): two queues of the
	// default size, and the owner keeps the rest.
	msgqueue := uint64(819200 / 4)
	if m := c.cfg.Limits.Memory; m > 0 {
		msgqueue = min(msgqueue, uint64(m/64))
	}
	rl := []cgroup.Rlimit{
		coreRlimit(), // 1, not 0: see coredump.go
		{Resource: syscall.RLIMIT_FSIZE, Cur: fsize, Max: fsize},
		{Resource: syscall.RLIMIT_NOFILE, Cur: cgroup.MaxFiles, Max: cgroup.MaxFiles},
		{Resource: unix.RLIMIT_SIGPENDING, Cur: jailSigPending, Max: jailSigPending},
		{Resource: unix.RLIMIT_MSGQUEUE, Cur: msgqueue, Max: msgqueue},
	}
	if c.limiter == nil {
		return rl // a JoinLater jail: cgroup v1, which adds none
	}
	own := c.limiter.Rlimits()
	rl = slices.DeleteFunc(rl, func(d cgroup.Rlimit) bool {
		return slices.ContainsFunc(own, func(o cgroup.Rlimit) bool { return o.Resource == d.Resource })
	})
	return append(rl, own...)
}

// startHelper starts the helper and hands it the spec.
func (c *Instance) startHelper(s *stage.Spec) error {
	specW, err := c.launchHelper()
	if err != nil {
		return err
	}
	return sendSpec(specW, s)
}

func sendSpec(specW *os.File, s *stage.Spec) error {
	_, err := specW.Write(s.Encode())
	specW.Close()
	if err != nil {
		return &StepError{Step: "send spec", Err: err}
	}
	return nil
}

// launchHelper starts the helper with the jail's stdio, status and control
// pipes and extra files; it waits for the spec on the returned pipe, so
// its start overlaps with building the spec. Closing the pipe unwritten
// makes it report an error and exit.
func (c *Instance) launchHelper() (*os.File, error) {
	specR, specW, err := os.Pipe()
	if err != nil {
		return nil, &StepError{Step: "pipe", Err: err}
	}
	c.closers = append(c.closers, specW) // until it is handed back
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return nil, &StepError{Step: "pipe", Err: err}
	}
	fail := func(step string, err error) (*os.File, error) {
		statusR.Close()
		return nil, &StepError{Step: step, Err: err}
	}
	controlR, controlW, err := os.Pipe()
	if err != nil {
		return fail("pipe", err)
	}
	c.control = controlW
	c.closers = append(c.closers, specR, statusW, controlR)
	var stdin, stdout, stderr, ttySock *os.File
	if c.TTY != nil {
		if stdin, stdout, stderr, ttySock, err = c.ttyStdio(); err != nil {
			return fail("open tty", err)
		}
	} else {
		if stdin, err = c.stdinFile(); err != nil {
			return fail("stdin", err)
		}
		if stdout, stderr, err = c.outputFiles(); err != nil {
			return fail("stdout", err)
		}
	}
	extra := c.ExtraFiles
	if c.template != nil {
		// After the extra files: the helper finds it there (helper.c).
		extra = append(extra[:len(extra):len(extra)], c.template.fd)
		defer func() {
			c.template.release() // the helper has its own fd now, or failed
			c.template = nil
		}()
	}
	if ttySock == nil && c.cfg.Egress != nil {
		if ttySock, err = c.handbackSocket(); err != nil {
			return fail("open egress listener", err)
		}
	}
	if ttySock != nil {
		extra = append(extra[:len(extra):len(extra)], ttySock) // last (helper.c)
	}
	if c.sup.spawnHelper(append([]*os.File{stdin, stdout, stderr, specR, statusW, controlR}, extra...)) {
		c.helper = spawnedHelper{}
	} else {
		// No spawner (yet): this jail's helper is an exec of this binary.
		h := stageCmd(stage.HelperArg0)
		h.Stdin, h.Stdout, h.Stderr = stdin, stdout, stderr
		h.ExtraFiles = append([]*os.File{specR, statusW, controlR}, extra...)
		if err := h.Start(); err != nil {
			return fail("start helper", err)
		}
		c.helper = h
	}
	for _, f := range c.closers {
		if f != specW {
			f.Close()
		}
	}
	c.closers = nil
	c.events = make(chan stage.Event, 4)
	go readEvents(statusR, c.events)
	return specW, nil
}

func readEvents(r *os.File, out chan<- stage.Event) {
	defer close(out)
	defer r.Close()
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var ev stage.Event
		if json.Unmarshal(sc.Bytes(), &ev) == nil {
			out <- ev
		}
	}
}

// stdinFile returns the file the jail reads as stdin: the caller's own
// file when it is a pipe or a regular file, /dev/null, or else a pipe fed
// from the caller's reader. A terminal is never handed in: whoever holds
// its fd may change its modes and size (stty), and those are the host's.
func (c *Instance) stdinFile() (*os.File, error) {
	switch in := c.Stdin.(type) {
	case nil:
		f, err := os.Open(os.DevNull)
		c.closers = append(c.closers, f)
		return f, err
	case *os.File:
		if fi, err := in.Stat(); err == nil && (fi.Mode().IsRegular() || fi.Mode()&os.ModeNamedPipe != 0) {
			return in, nil
		}
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	c.closers = append(c.closers, r)
	go func() {
		// Not waited for: a reader that never ends must not hang Wait.
		_, _ = io.Copy(w, c.Stdin)
		w.Close()
	}()
	return r, nil
}

// outputFiles returns the files the jail writes stdout and stderr to. They
// are always pipes that brig reads, so the output cap is exact.
func (c *Instance) outputFiles() (stdout, stderr *os.File, err error) {
	stdout, err = c.outputPipe(c.Stdout, &c.stdoutCut)
	if err != nil {
		return nil, nil, err
	}
	if c.Stderr != nil && sameWriter(c.Stderr, c.Stdout) {
		return stdout, stdout, nil
	}
	stderr, err = c.outputPipe(c.Stderr, &c.stderrCut)
	return stdout, stderr, err
}

// sameWriter is a == b for writers whose dynamic type may not be
// comparable (a struct holding a func or a slice), as os/exec's
// interfaceEqual: those are never the same writer, rather than a panic.
func sameWriter(a, b io.Writer) (same bool) {
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a == b
}

func (c *Instance) outputPipe(w io.Writer, cut *bool) (*os.File, error) {
	if w == nil {
		f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		c.closers = append(c.closers, f)
		return f, err
	}
	r, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	c.closers = append(c.closers, pw)
	c.copiers.Add(1)
	go func() {
		defer c.copiers.Done()
		defer r.Close()
		c.copyCapped(w, r, cut)
	}()
	return pw, nil
}

// copyCapped copies the jail's output to w until the cap, then kills the
// jail and drains the rest so the writers never block.
func (c *Instance) copyCapped(w io.Writer, r io.Reader, cut *bool) {
	limit := c.cfg.OutputLimit
	buf := make([]byte, 32<<10)
	var n int64
	for {
		k, err := r.Read(buf)
		if k > 0 && !*cut {
			chunk := buf[:k]
			if limit > 0 && n+int64(k) > limit {
				chunk = chunk[:limit-n]
				*cut = true
				c.stop(StopOutputLimit)
			}
			n += int64(len(chunk))
			if _, werr := w.Write(chunk); werr != nil {
				// The caller's reader is gone (brig run | head): stop
				// reading, so the program's next write fails with EPIPE
				// or SIGPIPE, as it would in a shell pipeline.
				*cut = true
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// watch enforces the wall clock, the context and the CPU budget while the
// program runs.
func (c *Instance) watch() {
	c.done = make(chan struct{})
	if c.cfg.Timeout > 0 {
		left := c.cfg.Timeout - time.Since(c.start)
		c.pause.mu.Lock()
		c.pause.timer = time.AfterFunc(left, func() { c.stop(StopTimeout) })
		c.pause.deadline = time.Now().Add(left)
		c.pause.mu.Unlock()
		c.stopTimer = c.pause.timer.Stop
	}
	go func() {
		var tick <-chan time.Time
		if c.cfg.Limits.CPUTime > 0 && c.limiter.Kind() != cgroup.RlimitOnly {
			t := time.NewTicker(50 * time.Millisecond)
			defer t.Stop()
			tick = t.C
		}
		for {
			select {
			case <-c.done:
				return
			case <-c.ctx.Done():
				c.stop(StopCanceled)
				return
			case <-tick:
				if st, err := c.limiter.Stats(); err == nil && st.CPUTimeKnown && st.CPUTime >= c.cfg.Limits.CPUTime {
					c.stop(StopCPUTime)
					return
				}
			}
		}
	}()
}

// Signal sends sig to the program's process group in the jail, as ^C in a
// terminal would: SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 or SIGUSR2.
// Use the context or Kill to end the whole jail.
func (c *Instance) Signal(sig syscall.Signal) error {
	if c.done == nil {
		return errors.New("jail: not started")
	}
	select {
	case <-c.done:
		return errors.New("jail: already finished")
	default:
	}
	switch sig {
	case syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2:
	default:
		return fmt.Errorf("jail: signal %v cannot be forwarded; use Kill to end the jail", sig)
	}
	_, err := c.control.Write([]byte{stage.ControlSignal, byte(sig)})
	return err
}

// Kill ends the whole jail now; Wait then reports it stopped (StopKilled).
func (c *Instance) Kill() { c.stop(StopKilled) }

// stop kills the whole jail; the first reason wins.
func (c *Instance) stop(why StopReason) {
	c.stopOnce.Do(func() {
		c.stopWhy = why
		_, _ = c.control.Write([]byte{stage.ControlKill})
		if c.limiter != nil {
			_ = c.limiter.Kill()
		}
	})
}

// Wait waits for the program and everything it started to end, sets
// c.Outcome and releases the jail. Its error says only that the Instance
// was not started or already waited for: how the program ended is the
// Outcome.
func (c *Instance) Wait() error {
	if c.helper == nil || c.done == nil {
		return errors.New("jail: not started")
	}
	if c.Outcome != nil {
		return errors.New("jail: Wait was already called")
	}
	// A pooled jail whose cgroup measures it returns once the program has
	// exited and its output is read: init then takes the rest of the jail
	// down by itself, and the pool reaps it in the background.
	early := c.pool != nil && c.limiter.Kind() != cgroup.RlimitOnly
	for ev := range c.events {
		switch ev.Kind {
		case "exit":
			c.exitEv = &ev
		case "done":
			c.doneEv = &ev
		case "error":
			slog.Warn("jail: init reported an error", "step", ev.Step, "err", ev.Err)
		}
		if early && c.exitEv != nil {
			break
		}
		if ev.Kind == "done" {
			// The helper's last word: it has reaped init, so nothing of
			// the jail runs. Its own exit (0.12 ms p50) is not waited
			// for: the spawner reaps it, or helper.Wait below.
			break
		}
	}
	early = early && c.exitEv != nil
	if !early {
		_ = c.helper.Wait()
	}
	c.copiers.Wait()
	if m := c.ttyMaster.Load(); m != nil {
		m.Close() // ends the copy into it too
	}
	c.closeEgress()
	wall := time.Since(c.start)
	close(c.done)
	if c.stopTimer != nil {
		c.stopTimer()
	}
	c.Outcome = c.outcome(wall)
	if c.pool != nil {
		c.pool.release(c, early) // the rest goes in the background
	} else {
		c.cleanup()
	}
	return nil
}

func (c *Instance) outcome(wall time.Duration) *Outcome {
	r := &Outcome{Stopped: c.stopWhy, WallTime: wall, Limiter: c.limiter.Kind(),
		StdoutCut: c.stdoutCut, StderrCut: c.stderrCut}
	if c.exitEv != nil {
		r.ExitCode, r.Signal = c.exitEv.Code, c.exitEv.Signal
		r.PeakMemory = c.exitEv.MaxRSSKB << 10
	} else {
		// init died before the program: only a kill does that.
		r.ExitCode, r.Signal = -1, int(syscall.SIGKILL)
	}
	if c.doneEv != nil {
		r.CPUTime = time.Duration(c.doneEv.UserUS+c.doneEv.SysUS) * time.Microsecond
	}
	st, err := c.limiter.Stats()
	if err == nil {
		if st.CPUTimeKnown {
			r.CPUTime = st.CPUTime
		}
		if st.MemoryPeakKnown {
			r.PeakMemory = st.MemoryPeak
		}
		r.OOMKills, r.PidsLimitHits = st.OOMKills, st.PidsLimitHits
	}
	// The kernel's audit thread prints seccomp records a few milliseconds
	// after the call, so they are waited for, briefly, when one is due.
	var logged []seccomp.Record
	switch {
	case c.kmsg == nil:
	case r.Signal == int(syscall.SIGSYS):
		logged, _ = c.kmsg.Wait(c.lease.Jail, 250*time.Millisecond)
	case c.cfg.SeccompVariant == seccomp.DefaultLog:
		logged, _ = c.kmsg.Wait(c.lease.Jail, 50*time.Millisecond)
	case c.cfg.SeccompVariant == seccomp.DefaultKill:
		// The program exited, but a process it started may have been
		// killed: that record was printed long before this exit.
		logged, _ = c.kmsg.Records(c.lease.Jail)
	}
	for _, rec := range logged {
		r.Refused = append(r.Refused, rec.Syscall)
	}
	r.EgressRefused = c.egressRefused
	return r
}

// drainAfterFailure reaps a helper whose jail never started the program.
func (c *Instance) drainAfterFailure() {
	if c.control != nil {
		_, _ = c.control.Write([]byte{stage.ControlKill})
	}
	for range c.events {
	}
	if c.helper != nil {
		_ = c.helper.Wait()
	}
	// Our own ends of the jail's output pipes, if the request never took
	// them, would keep the copiers waiting for an EOF.
	for _, f := range c.closers {
		f.Close()
	}
	c.closers = nil
	c.copiers.Wait()
}

// cleanup releases what the jail held on the host; safe to call twice.
func (c *Instance) cleanup() {
	if c.template != nil {
		c.template.release()
		c.template = nil
	}
	for _, f := range c.closers {
		f.Close()
	}
	c.closers = nil
	if c.request != nil {
		c.request.Close()
	}
	c.closeEgress()
	for _, f := range []*os.File{c.ttySock, c.ttyMaster.Load()} {
		if f != nil {
			f.Close()
		}
	}
	if c.control != nil {
		c.control.Close()
	}
	if c.limiter != nil {
		if err := c.limiter.Close(); err != nil {
			slog.Warn("jail: remove cgroup", "err", err)
		}
	}
	if c.kmsg != nil {
		c.kmsg.Close()
	}
	c.lease.release()
	if c.staleSweep != nil {
		<-c.staleSweep
	}
}
