// Package session keeps one interpreter alive in its own jail and runs
// cell after cell in it, as code-running agents do: Python, like a Jupyter
// kernel, and bash, like a persistent shell. Variables, imports, the
// working directory and files persist between cells; limits (the
// jail.Config) apply to the whole session, output caps and timeouts to
// each cell.
//
//	p, err := session.NewPython(ctx, jail.Config{})
//	defer p.Close()
//	r := p.Run(ctx, "x = 6 * 7\nx", session.RunOptions{})
//	fmt.Println(*r.Value) // 42
//
// The file API (ReadFile, WriteFile, ListDir) reaches the session's
// working directory from the host, through the jail's root as its init
// sees it, and trusts nothing the jail may have planted there.
//
// A session started with jail.Config.Pausable can be paused between cells
// (Pause, Resume): its jail is stopped whole by the cgroup freezer, keeps
// its memory and uses no CPU, and the next Run resumes it. A Pool keeps
// started sessions ready, so that a new one costs a hand-over.
package session

import (
	"context"

	"github.com/brig-sandbox/brig/jail"
)

// Session is what a Python and a Shell session share: a persistent
// interpreter in a jail of its own, run a cell at a time.
type Session interface {
	// Run executes one cell (Python code, or a shell command line) and
	// returns what it produced.
	Run(ctx context.Context, code string, opts RunOptions) *CellResult
	// ReadFile, WriteFile and ListDir act on the session's working
	// directory.
	ReadFile(name string, limit int64) ([]byte, error)
	WriteFile(name string, data []byte) error
	ListDir(name string) ([]FileInfo, error)
	// Pause stops the whole session with the cgroup freezer until Resume
	// or the next Run (it needs jail.Config.Pausable); Paused reports it.
	Pause() error
	Resume() error
	Paused() bool
	// Err is nil while the session lives, or wraps ErrDead saying why it
	// ended.
	Err() error
	// Result is the jail's Result once the session has ended, else nil.
	Result() *jail.Result
	// Close ends the session and its jail.
	Close() error
}

var (
	_ Session = (*Python)(nil)
	_ Session = (*Shell)(nil)
)
