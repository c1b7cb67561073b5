package hostile

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// sessionArgs are the `brig session --jsonl` arguments for a session
// payload: the jail flags of cliArgs (not --env: a session's variables are
// set by its cells) and the cell timeout.
func sessionArgs(r Run) []string {
	run := cliArgs(r)
	args := []string{"session", r.Payload.Session, "--jsonl", "--cell-timeout", r.Payload.CellTimeout().String()}
	for i := 0; i < len(run); i++ {
		switch run[i] {
		case "run", "--quiet":
		case "--env":
			i++
		default:
			args = append(args, run[i])
		}
	}
	return args
}

// cellResponse is the part of a `brig session --jsonl` result the corpus
// judges.
type cellResponse struct {
	Status   string `json:"status"`
	Stdout   string `json:"stdout"`
	Stderr   string `json:"stderr"`
	Reason   string `json:"reason"`
	ExitCode *int   `json:"exit_code"`
	Error    *struct {
		Type      string `json:"type"`
		Traceback string `json:"traceback"`
	} `json:"error"`
	StdoutTruncated bool `json:"stdout_truncated"`
}

// runSession sends the payload as one cell to `brig session --jsonl`, then,
// with stdin still open, sends SIGTERM: brig must end within sessionGrace
// with status 143 whatever the cell left behind. A cell that overruns its
// bound gets the SIGTERM early; SIGKILL comes only when that fails too.
func (c *CLIRunner) runSession(ctx context.Context, r Run) (*Outcome, error) {
	argv := append(append([]string{}, c.Wrap...), c.Brig)
	argv = append(argv, sessionArgs(r)...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), secretEnv+"="+os.Getenv(secretEnv))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer stdin.Close()
	exited := make(chan error, 1)
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReaderSize(stdout, 64<<10).ReadString('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, stdout)
		exited <- cmd.Wait()
	}()
	req, _ := json.Marshal(map[string]string{"id": "hostile", "code": r.Payload.Source})
	if _, err := stdin.Write(append(req, '\n')); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return nil, fmt.Errorf("send the cell: %w", err)
	}
	o := r.Payload.RunCellBounded(func() *Outcome {
		o := &Outcome{Supervisor: cmd.Process.Pid}
		line := <-lines
		var res cellResponse
		if err := json.Unmarshal([]byte(line), &res); err != nil {
			o.SetupError = fmt.Sprintf("brig session answered %q (%v): %s", line, err, strings.TrimSpace(stderr.String()))
			return o
		}
		o.Cell, o.CellReason, o.Stdout, o.Stderr, o.StdoutTruncated = res.Status, res.Reason, res.Stdout, res.Stderr, res.StdoutTruncated
		if res.Error != nil {
			o.Stderr += res.Error.Traceback
		}
		if res.ExitCode != nil {
			o.ExitCode = *res.ExitCode
		}
		return o
	}, func() { _ = cmd.Process.Signal(syscall.SIGTERM) })
	o.Supervisor = cmd.Process.Pid
	if r.Limiter == "rlimit" {
		o.Limiter = "rlimit"
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		if code := cmd.ProcessState.ExitCode(); code != 128+int(syscall.SIGTERM) && len(o.Overrun) == 0 {
			o.Overrun = append(o.Overrun, fmt.Sprintf("brig session exited %d after SIGTERM, want 143: %s", code, strings.TrimSpace(stderr.String())))
		}
	case <-time.After(sessionGrace):
		o.Overrun = append(o.Overrun, fmt.Sprintf("brig session did not end within %v of SIGTERM (stdin open)", sessionGrace))
		_ = cmd.Process.Kill()
		<-exited
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-exited
		return nil, ctx.Err()
	}
	return o, nil
}
