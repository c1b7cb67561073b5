package jail

import (
	"context"
	"fmt"
	"os"

	"github.com/brig-sandbox/brig/hostile"
)

// runSessionPayload sends a session payload ("# session: python|shell")
// as one cell of a session through the Go API (see package hostile).
func runSessionPayload(ctx context.Context, cfg Config, p *hostile.Payload) *hostile.Outcome {
	var sess interface {
		Run(context.Context, string, RunOptions) *CellResult
		Close() error
		Result() *Result
	}
	var err error
	if p.Session == "python" {
		sess, err = NewPythonSession(ctx, cfg)
	} else {
		sess, err = NewShellSession(ctx, cfg)
	}
	if err != nil {
		return &hostile.Outcome{SetupError: fmt.Sprint(err)}
	}
	o := p.RunCellBounded(func() *hostile.Outcome {
		return cellOutcome(sess.Run(ctx, p.Source, RunOptions{Timeout: p.CellTimeout()}))
	}, func() { sess.Close() })
	sess.Close()
	o.Supervisor = os.Getpid()
	if r := sess.Result(); r != nil {
		o.Limiter = string(r.Limiter)
	}
	return o
}

func cellOutcome(r *CellResult) *hostile.Outcome {
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
