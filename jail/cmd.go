package jail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/brig-sandbox/brig/egress"
	"github.com/brig-sandbox/brig/internal/supervisor"
)

// Cmd is a program to run in a jail, shaped like os/exec.Cmd.
type Cmd struct {
	Path   string   // program: a path in the jail, or a name looked up in the jail's PATH
	Args   []string // argv, Args[0] included
	Env    []string // added to PATH, HOME and LANG; the host environment never leaks in
	Dir    string   // working directory in the jail; "" means Config.WorkDir
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// ExtraFiles are open files the program gets as fds 3, 4, ... (as in
	// os/exec, at most MaxExtraFiles): the way to give it a channel of its
	// own to the host.
	ExtraFiles []*os.File
	// TTY, when not nil, gives the program a pty of the jail's own devpts
	// as stdin, stdout, stderr and controlling terminal, never the
	// caller's terminal: brig copies Stdin into it and its output to
	// Stdout (stdout and stderr merged, as a terminal shows them; Stderr
	// is unused), under OutputLimit. The pty echoes what it is sent, as a
	// terminal does; the end of Stdin reaches the program as the
	// terminal's end-of-file character. The caller who passes its own
	// terminal as Stdin puts it in raw mode itself (cmd/brig's run -t).
	// ResizeTTY changes the window size. Not for a Pool's jails.
	TTY    *TTY
	Config Config
	// OnEgress, if set, receives every decision of the jail's egress proxy
	// (Config.Network "proxy"): a refusal at once, an allowed connection
	// when it ends. Called from the proxy's goroutines: it must return
	// quickly. The audit log takes these events.
	OnEgress func(egress.Event)
	// EgressResolver resolves the names the egress proxy is asked for; nil
	// means the system's resolver (of the supervisor's host: the jail has
	// none).
	EgressResolver egress.Resolver

	// Result is set by Wait.
	Result *Result

	ctx  context.Context
	sup  *Supervisor // nil means DefaultSupervisor
	pool *Pool       // set by Pool.Command
	// inst is the jail on the host side, from Start on.
	inst *supervisor.Instance
}

// TTY is the terminal a program gets with Cmd.TTY: a pty of the jail's own
// devpts instance, never the caller's terminal.
type TTY struct {
	// Rows and Cols are the initial window size; 0 means 24 rows, 80
	// columns. Cmd.ResizeTTY changes it while the program runs.
	Rows, Cols uint16
}

// Command returns a Cmd that runs name with args in a jail built from cfg,
// by DefaultSupervisor. Cancelling ctx kills the whole jail.
func Command(ctx context.Context, cfg Config, name string, args ...string) *Cmd {
	return DefaultSupervisor.Command(ctx, cfg, name, args...)
}

// Run starts the command and waits for it.
func (c *Cmd) Run() error {
	if err := c.Start(); err != nil {
		return err
	}
	return c.Wait()
}

// Output runs the command and returns its standard output.
func (c *Cmd) Output() ([]byte, error) {
	if c.Stdout != nil {
		return nil, errors.New("jail: Stdout already set")
	}
	var b bytes.Buffer
	c.Stdout = &b
	err := c.Run()
	return b.Bytes(), err
}

// CombinedOutput runs the command and returns stdout and stderr together.
func (c *Cmd) CombinedOutput() ([]byte, error) {
	if c.Stdout != nil || c.Stderr != nil {
		return nil, errors.New("jail: Stdout or Stderr already set")
	}
	var b bytes.Buffer
	c.Stdout = &b
	c.Stderr = &b
	err := c.Run()
	return b.Bytes(), err
}

// Start builds the jail and starts the program in it. It returns once the
// program runs, or with a *SetupError naming the step that failed.
func (c *Cmd) Start() error {
	if c.ctx == nil {
		c.ctx = context.Background()
	}
	if c.inst != nil {
		return errors.New("jail: already started")
	}
	if err := c.ctx.Err(); err != nil {
		return err
	}
	if c.sup == nil {
		c.sup = DefaultSupervisor
	}
	var inst *supervisor.Instance
	if c.pool != nil {
		if c.TTY != nil {
			return &SetupError{Step: "config", Err: errors.New("a pooled jail has no TTY: start the command with jail.Command instead")}
		}
		inst = c.pool.rt.Instance(c.ctx)
	} else {
		plan, err := c.sup.plan(c.Config)
		if err != nil {
			return &SetupError{Step: "config", Err: err}
		}
		inst = c.sup.rt.Instance(c.ctx, plan)
	}
	inst.Path, inst.Args, inst.Env, inst.Dir = c.Path, c.Args, c.Env, c.Dir
	inst.Stdin, inst.Stdout, inst.Stderr, inst.ExtraFiles = c.Stdin, c.Stdout, c.Stderr, c.ExtraFiles
	inst.TTY = (*supervisor.TTY)(c.TTY)
	inst.OnEgress, inst.EgressResolver = c.OnEgress, c.EgressResolver
	c.inst = inst
	if err := inst.Start(); err != nil {
		return publicError(err)
	}
	return nil
}

// Wait waits for the program and everything it started to end, fills in
// c.Result and releases the jail. The error is nil when the program exited
// with status 0 by itself, an *ExitError otherwise.
func (c *Cmd) Wait() error {
	if c.inst == nil {
		return errors.New("jail: not started")
	}
	if err := c.inst.Wait(); err != nil {
		return err
	}
	cfg := c.Config
	if c.pool != nil {
		cfg = c.pool.cfg
	}
	c.Result = resultOf(c.inst.Outcome, cfg)
	if c.Result.Reason == ReasonCanceled {
		return c.ctx.Err()
	}
	if !c.Result.Success() {
		return &ExitError{Result: c.Result}
	}
	return nil
}

// Signal sends sig to the program's process group in the jail, as ^C in a
// terminal would: SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 or SIGUSR2.
// Use the context or Kill to end the whole jail.
func (c *Cmd) Signal(sig syscall.Signal) error {
	if c.inst == nil {
		return errors.New("jail: not started")
	}
	return c.inst.Signal(sig)
}

// Kill ends the whole jail now; Wait then reports ReasonSignaled.
func (c *Cmd) Kill() {
	if c.inst != nil {
		c.inst.Kill()
	}
}

// Freeze stops every process of the jail at once, with the cgroup
// freezer, until Thaw: a frozen jail uses no CPU, keeps its memory, and
// sees nothing but the clock jump. Time spent frozen does not count
// against Config.Timeout (the timer stops at Freeze and goes on at Thaw
// from where it stood); Result.WallTime counts it. Kill, the context and
// Wait's clean-up end a frozen jail as any other.
//
// It needs Config.Pausable, and a cgroup limiter: otherwise it returns an
// error wrapping cgroup.ErrNoFreezer and the jail runs on untouched. A
// task the kernel cannot stop within a few seconds (uninterruptible
// sleep) fails it too, leaving the jail running.
func (c *Cmd) Freeze() error {
	if c.inst == nil {
		return errors.New("jail: Freeze: not started")
	}
	return c.inst.Freeze()
}

// Thaw resumes a jail stopped by Freeze; on a running jail it does
// nothing.
func (c *Cmd) Thaw() error {
	if c.inst == nil {
		return errors.New("jail: Thaw: not started")
	}
	return c.inst.Thaw()
}

// Frozen reports whether the jail is stopped by Freeze.
func (c *Cmd) Frozen() bool { return c.inst != nil && c.inst.Frozen() }

// ResizeTTY sets the window size of the program's pty (Cmd.TTY); the
// kernel sends SIGWINCH to the program's foreground process group, as a
// terminal emulator's resize does.
func (c *Cmd) ResizeTTY(rows, cols uint16) error {
	if c.TTY == nil {
		return errors.New("jail: ResizeTTY: the command has no TTY")
	}
	if c.inst == nil {
		return errors.New("jail: ResizeTTY: not started")
	}
	return c.inst.ResizeTTY(rows, cols)
}

// String describes the command for logs.
func (c *Cmd) String() string { return fmt.Sprintf("jail %v", c.Args) }
