// Package apirun runs hostile corpus payloads through brig's Go API in this
// process: the one translation of a payload's header (limits, outbox and
// two-step binds, tmpfs paths, tty, stdin, session cells) into a jail.Config
// and a jail.Command or session. cmd/brig-hostile and jail's corpus test
// (an external test package, since package jail's own tests cannot import
// a package that imports jail) both use it.
//
// It is apart from package hostile so that hostile stays free of jail:
// jail's internal tests use hostile's host snapshots and core logger.
package apirun

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/brig-sandbox/brig/cgroup"
	"github.com/brig-sandbox/brig/egress"
	"github.com/brig-sandbox/brig/internal/hostile"
	"github.com/brig-sandbox/brig/jail"
	"github.com/brig-sandbox/brig/session"
)

// Runner is the hostile.Runner of the Go API ("api").
type Runner struct{}

func (Runner) Name() string { return "api" }

// Run runs one payload (one step of a two-step one) in a jail of this
// process; a jail that did not start is an Outcome with SetupError.
func (Runner) Run(ctx context.Context, r hostile.Run) (*hostile.Outcome, error) {
	p := r.Payload
	cfg := jail.Config{Timeout: p.Config.Timeout, OutputLimit: p.Config.OutputLimit, TmpfsSize: p.Config.TmpfsSize,
		Tmpfs: p.Config.TmpfsPaths}
	if p.Config.SeccompKill {
		cfg.SeccompMode = jail.SeccompKill
	}
	cfg.Limits = cgroup.Limits{Memory: p.Config.Memory, Pids: p.Config.Pids, CPUs: p.Config.CPUs, CPUTime: p.Config.CPUTime}
	if r.Limiter != "" && r.Limiter != "auto" {
		cfg.Limiter = cgroup.Kind(r.Limiter)
	}
	for _, b := range r.Binds() {
		cfg.Binds = append(cfg.Binds, jail.Bind{Source: b.Source, Target: b.Target, Writable: b.Writable})
	}
	if len(p.Config.Allow) > 0 {
		cfg.Network, cfg.Egress = "proxy", &egress.Policy{}
		for _, a := range p.Config.Allow {
			if err := cfg.Egress.AllowDestination(a); err != nil {
				return nil, fmt.Errorf("config allow: %w", err)
			}
		}
	}
	if p.Session != "" {
		return runSession(ctx, cfg, p), nil
	}
	var stdout, stderr strings.Builder
	cmd := jail.Command(ctx, cfg, hostile.Interpreters[p.Interp], "-c", p.Source)
	cmd.Env = r.Env
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if p.Config.Stdin != "" {
		cmd.Stdin = strings.NewReader(p.Config.Stdin)
	}
	if p.Config.TTY {
		cmd.TTY = &jail.TTY{}
	}
	err := cmd.Run()
	o := &hostile.Outcome{Stdout: stdout.String(), Stderr: stderr.String(), Supervisor: os.Getpid()}
	if cmd.Result == nil {
		o.SetupError = fmt.Sprint(err)
		return o, nil
	}
	res := cmd.Result
	o.Reason, o.ExitCode, o.Signal, o.StdoutTruncated, o.Limiter = string(res.Reason), res.ExitCode, res.Signal, res.StdoutTruncated, string(res.Limiter)
	return o, nil
}

// runSession sends a session payload ("# session: python|shell") as one
// cell of a session, bounded as the corpus README says (RunCellBounded).
func runSession(ctx context.Context, cfg jail.Config, p *hostile.Payload) *hostile.Outcome {
	var sess interface {
		Run(context.Context, string, session.RunOptions) *session.CellResult
		Close() error
		Result() *jail.Result
	}
	var err error
	if p.Session == "python" {
		sess, err = session.NewPython(ctx, cfg)
	} else {
		sess, err = session.NewShell(ctx, cfg)
	}
	if err != nil {
		return &hostile.Outcome{SetupError: fmt.Sprint(err)}
	}
	o := p.RunCellBounded(func() *hostile.Outcome {
		return cellOutcome(sess.Run(ctx, p.Source, session.RunOptions{Timeout: p.CellTimeout()}))
	}, func() { sess.Close() })
	sess.Close()
	o.Supervisor = os.Getpid()
	if r := sess.Result(); r != nil {
		o.Limiter = string(r.Limiter)
	}
	return o
}

func cellOutcome(r *session.CellResult) *hostile.Outcome {
	o := &hostile.Outcome{Cell: string(r.Status), CellReason: r.Reason, Stdout: r.Stdout, Stderr: r.Stderr,
		StdoutTruncated: r.StdoutTruncated}
	if r.Error != nil {
		o.Stderr += r.Error.Traceback
	}
	if r.ExitCode != nil {
		o.ExitCode = *r.ExitCode
	}
	return o
}
