package serve

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/brig-sandbox/brig/jail"
	"github.com/brig-sandbox/brig/session"
)

// Every call of the server into the library's session API is in this file
// (and the context pools' bookkeeping in pool.go).

// interpreter is a context's live session.
type interpreter interface {
	// run executes one cell; stdout and stderr receive its output as it
	// comes, when not nil. ctx ending interrupts the cell.
	run(ctx context.Context, code string, timeout time.Duration, outputLimit int64, stdout, stderr io.Writer) CellJSON
	// err says why the interpreter can run no more cells, or nil.
	err() error
	// pause freezes the interpreter's whole jail; resume thaws it.
	pause() error
	resume() error
	close()
}

// startInterpreter starts a Python or shell session in a jail of cfg; ctx
// bounds its whole life.
func startInterpreter(ctx context.Context, language string, cfg jail.Config) (interpreter, error) {
	return startInterpreterWith(ctx, language, cfg, session.Options{})
}

// startInterpreterWith is startInterpreter with the session's options (its
// egress hook, serve/egress.go).
func startInterpreterWith(ctx context.Context, language string, cfg jail.Config, opts session.Options) (interpreter, error) {
	var (
		s   session.Session
		err error
	)
	switch language {
	case "python":
		s, err = session.NewPythonWithOptions(ctx, jail.DefaultSupervisor, cfg, opts)
	case "shell":
		s, err = session.NewShellWithOptions(ctx, jail.DefaultSupervisor, cfg, opts)
	default:
		return nil, fmt.Errorf("language %q: want python or shell", language)
	}
	if err != nil {
		return nil, err
	}
	return libraryInterpreter{s}, nil
}

// newContextPool keeps size started sessions of language for new contexts
// of a template; ctx bounds their lives.
func newContextPool(ctx context.Context, language string, cfg jail.Config, size int) (*session.Pool, error) {
	return session.NewPool(ctx, language, cfg, size)
}

// takeInterpreter hands a pooled session over: it is the context's alone.
func takeInterpreter(p *session.Pool) (interpreter, error) {
	s, err := p.Take()
	if err != nil {
		return nil, err
	}
	return libraryInterpreter{s}, nil
}

type libraryInterpreter struct{ s session.Session }

func (l libraryInterpreter) run(ctx context.Context, code string, timeout time.Duration, outputLimit int64, stdout, stderr io.Writer) CellJSON {
	return NewCellJSON(nil, l.s.Run(ctx, code, session.RunOptions{Timeout: timeout, OutputLimit: outputLimit, Stdout: stdout, Stderr: stderr}))
}

func (l libraryInterpreter) err() error    { return l.s.Err() }
func (l libraryInterpreter) close()        { _ = l.s.Close() }
func (l libraryInterpreter) pause() error  { return l.s.Pause() }
func (l libraryInterpreter) resume() error { return l.s.Resume() }

// NewCellJSON is c in the shape of `brig session --jsonl`, with the
// request's id.
func NewCellJSON(id *string, c *session.CellResult) CellJSON {
	j := CellJSON{ID: id, Status: string(c.Status), Stdout: c.Stdout, Stderr: c.Stderr, Value: c.Value, ExitCode: c.ExitCode,
		Reason: c.Reason, WallTimeMS: c.WallTime.Milliseconds(), CPUTimeMS: c.CPUTime.Milliseconds(),
		StdoutTruncated: c.StdoutTruncated, StderrTruncated: c.StderrTruncated, EgressRefused: newEgressRefusalsJSON(c.EgressRefused)}
	if e := c.Error; e != nil {
		j.Error = &ExceptionJSON{Type: e.Type, Message: e.Message, Traceback: e.Traceback}
	}
	return j
}

// readWorkspaceFile and listWorkspaceDir read beneath a host directory the
// jails wrote, with the session file API's safety (openat2 beneath it, no
// symlink followed, only a regular file read, capped).
func readWorkspaceFile(dir, rel string, limit int64) ([]byte, error) {
	return session.ReadFileIn(dir, rel, limit)
}

func listWorkspaceDir(dir, rel string) ([]session.FileInfo, error) {
	return session.ListDirIn(dir, rel)
}

// fileKind describes a workspace path without following it.
type fileKind struct {
	dir  bool
	size int64
}

func statBeneath(ws, rel string) (fileKind, error) {
	fi, err := session.StatIn(ws, dotIfEmpty(rel))
	if err != nil {
		return fileKind{}, err
	}
	return fileKind{dir: fi.IsDir, size: fi.Size}, nil
}

// writeBeneath writes body to rel beneath the workspace as its owner,
// making missing parent directories; at most max bytes.
func writeBeneath(ws, rel string, owner uint32, body io.Reader, max int64) (int64, error) {
	return session.WriteFileIn(ws, dotIfEmpty(rel), body, max, &session.Owner{UID: owner, GID: owner})
}

// removeBeneath removes a file, or an empty directory, beneath the
// workspace, as its owner.
func removeBeneath(ws, rel string, owner uint32) error {
	return session.RemoveIn(ws, dotIfEmpty(rel), &session.Owner{UID: owner, GID: owner})
}
