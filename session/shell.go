package session

import (
	"bufio"
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/brig-sandbox/brig/jail"
)

//go:embed driver.sh
var shellDriver string

// ShellInterpreter is the shell a session runs.
const ShellInterpreter = "/bin/bash"

// Shell is a persistent, jailed bash: the working directory, variables
// and functions persist from command to command.
type Shell struct {
	*session
	replies *bufio.Reader
	cpu     time.Duration // the shell's cumulative CPU time at the last reply
}

// NewShell starts a jailed bash waiting for commands, in a jail of
// jail.DefaultSupervisor. cfg is used as in NewPython.
func NewShell(ctx context.Context, cfg jail.Config) (*Shell, error) {
	return NewShellWith(ctx, jail.DefaultSupervisor, cfg)
}

// NewShellWith is NewShell in a jail of sup.
func NewShellWith(ctx context.Context, sup *jail.Supervisor, cfg jail.Config) (*Shell, error) {
	return startShell(ctx, sup, cfg, Options{})
}

func startShell(ctx context.Context, sup *jail.Supervisor, cfg jail.Config, opts Options) (*Shell, error) {
	s, err := startSession(ctx, sup, cfg, opts, ShellInterpreter, "--norc", "--noprofile", "-c", shellDriver)
	if err != nil {
		return nil, err
	}
	return &Shell{session: s, replies: bufio.NewReader(s.replies)}, nil
}

// Run executes one command line (or a whole script) in the session's shell.
// A command that exits the shell kills the session. When ctx ends, the
// foreground command is interrupted (^C) and the cell comes back
// CellCanceled; the shell lives on.
func (sh *Shell) Run(ctx context.Context, command string, opts RunOptions) *CellResult {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	var status int
	var cpu time.Duration
	res := sh.runCell(ctx, opts,
		func(nonce string) ([]byte, error) {
			if strings.ContainsRune(command, 0) {
				return nil, fmt.Errorf("command contains a NUL byte")
			}
			return []byte(nonce + "\x00" + command + "\x00"), nil
		},
		func(nonce string) error {
			// The nonce and status line, then the two lines of bash's `times`.
			var lines [3]string
			for i := range lines {
				l, err := readReplyLine(sh.replies)
				if err != nil {
					return err
				}
				lines[i] = strings.TrimSpace(string(l))
			}
			n, st, _ := strings.Cut(lines[0], " ")
			if n != nonce {
				return fmt.Errorf("%q: not this command's reply", clipReply([]byte(lines[0])))
			}
			var err error
			if status, err = strconv.Atoi(st); err != nil {
				return fmt.Errorf("%q: %w", clipReply([]byte(lines[0])), err)
			}
			cpu = parseTimes(lines[1]) + parseTimes(lines[2])
			return nil
		})
	if res.Status == CellDead {
		return res
	}
	res.ExitCode = &status
	res.CPUTime = max(0, cpu-sh.cpu)
	sh.cpu = cpu
	return res
}

// parseTimes adds up one line of bash's `times`: "0m0.010s 0m0.002s".
func parseTimes(line string) time.Duration {
	var total time.Duration
	for _, f := range strings.Fields(line) {
		m, s, ok := strings.Cut(strings.TrimSuffix(f, "s"), "m")
		if !ok {
			continue
		}
		min, _ := strconv.Atoi(m)
		sec, _ := strconv.ParseFloat(s, 64)
		total += time.Duration(min)*time.Minute + time.Duration(sec*float64(time.Second))
	}
	return total
}
