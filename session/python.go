package session

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/json"

	"fmt"
	"time"

	"github.com/brig-sandbox/brig/jail"
)

//go:embed driver.py
var pythonDriver string

// PythonInterpreter is the Python a session runs.
const PythonInterpreter = "/usr/bin/python3"

// Python is a persistent, jailed Python interpreter, like a Jupyter
// kernel: globals, imports and files persist from cell to cell.
type Python struct {
	*session
	replies *bufio.Reader
}

// NewPython starts a jailed Python waiting for cells, in a jail of
// jail.DefaultSupervisor. Limits in cfg apply to the whole session;
// cfg.Timeout (none by default) bounds its whole life, and each cell has
// its own timeout (RunOptions).
func NewPython(ctx context.Context, cfg jail.Config) (*Python, error) {
	return NewPythonWith(ctx, jail.DefaultSupervisor, cfg)
}

// NewPythonWith is NewPython in a jail of sup.
func NewPythonWith(ctx context.Context, sup *jail.Supervisor, cfg jail.Config) (*Python, error) {
	return startPython(ctx, sup, cfg, Options{})
}

func startPython(ctx context.Context, sup *jail.Supervisor, cfg jail.Config, opts Options) (*Python, error) {
	s, err := startSession(ctx, sup, cfg, opts, PythonInterpreter, "-u", "-c", pythonDriver)
	if err != nil {
		return nil, err
	}
	return &Python{session: s, replies: bufio.NewReader(s.replies)}, nil
}

// pythonReply is the driver's reply to one cell (driver.py's reply).
type pythonReply struct {
	Nonce string  `json:"nonce"`
	Value *string `json:"value"`
	Error *struct {
		Type      string `json:"type"`
		Message   string `json:"message"`
		Traceback string `json:"traceback"`
	} `json:"error"`
	CPU float64 `json:"cpu"`
}

// Run executes code as one cell and returns what it produced. If the code
// ends with an expression, its repr is the Value, as in a REPL. When ctx
// ends, the cell is interrupted (KeyboardInterrupt) and comes back
// CellCanceled; the session and its state live on.
func (p *Python) Run(ctx context.Context, code string, opts RunOptions) *CellResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	var reply pythonReply
	res := p.runCell(ctx, opts,
		func(nonce string) ([]byte, error) {
			b, err := json.Marshal(map[string]string{"code": code, "nonce": nonce})
			return append(b, '\n'), err
		},
		func(nonce string) error {
			line, err := readReplyLine(p.replies)
			if err != nil {
				return err
			}
			if err := json.Unmarshal(line, &reply); err != nil {
				return fmt.Errorf("%q: %w", clipReply(line), err)
			}
			if reply.Nonce != nonce {
				return fmt.Errorf("%q: not this cell's reply", clipReply(line))
			}
			return nil
		})
	if res.Status == CellDead {
		return res
	}
	res.Value = reply.Value
	if e := reply.Error; e != nil {
		res.Error = &CellException{Type: e.Type, Message: e.Message, Traceback: e.Traceback}
	}
	res.CPUTime = time.Duration(reply.CPU * float64(time.Second))
	if res.Error != nil && res.Status == CellOK {
		res.Status = CellError
	}
	if res.Status == CellTimeout && res.Error == nil {
		// The interrupt came as the cell finished: it still timed out.
		res.Error = &CellException{Type: "KeyboardInterrupt", Message: "cell timed out"}
	}
	if res.Status == CellCanceled && res.Error == nil {
		res.Error = &CellException{Type: "KeyboardInterrupt", Message: "cell canceled"}
	}
	return res
}
