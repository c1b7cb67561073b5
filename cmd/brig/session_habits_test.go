package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/internal/testenv"
	"github.com/brig-sandbox/brig/jail"
	"github.com/brig-sandbox/brig/session"
)

// newSession starts a session of kind for a test (skipped with -short or
// without root) and closes it at the end.
func newSession(t *testing.T, kind string) cellRunner {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a jail")
	}
	requireRootCLI(t)
	var s cellRunner
	var err error
	if kind == "python" {
		s, err = session.NewPython(context.Background(), jail.Config{})
	} else {
		s, err = session.NewShell(context.Background(), jail.Config{})
	}
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestInteractiveShellPrompt(t *testing.T) {
	sh := newSession(t, "shell")
	in := "for i in 1 2; do\necho item $i\ndone\nfalse\necho status $?\nif true\nthen echo yes; fi\n"
	var out strings.Builder
	interact(context.Background(), sh, "shell", strings.NewReader(in), &out, 5*time.Second, nil)
	assert.Contains(t, out.String(), "item 1\nitem 2\n", "a multi-line for loop is one command")
	assert.Contains(t, out.String(), "status 1\n", "$? carries over from the previous command")
	assert.Contains(t, out.String(), "yes\n")
	assert.NotContains(t, out.String(), "eval")
	assert.NotContains(t, out.String(), "syntax error")
}

func TestInteractivePythonExitAndInterrupt(t *testing.T) {
	p := newSession(t, "python")

	// Ctrl-C at the prompt drops the line being typed; the prompt goes on.
	pr, pw := io.Pipe()
	interrupts := make(chan os.Signal, 1)
	var out testenv.Buffer
	done := make(chan struct{})
	go func() {
		interact(context.Background(), interruptible{sess: p, interrupts: interrupts}, "python", pr, &out, 5*time.Second, interrupts)
		close(done)
	}()
	testenv.WaitFor(t, &out, ">>> ", 15*time.Second)
	interrupts <- syscall.SIGINT
	testenv.WaitFor(t, &out, "KeyboardInterrupt\n>>> ", 15*time.Second)
	// Ctrl-C during a cell interrupts it; the session keeps its state.
	io.WriteString(pw, "x = 41\n")
	io.WriteString(pw, "import time; print('sleeping', flush=True); time.sleep(60)\n")
	testenv.WaitFor(t, &out, "sleeping\n", 15*time.Second)
	interrupts <- syscall.SIGINT
	testenv.WaitFor(t, &out, "KeyboardInterrupt", 15*time.Second)
	io.WriteString(pw, "x + 1\n")
	testenv.WaitFor(t, &out, "42\n", 15*time.Second)
	// exit() leaves without a traceback.
	io.WriteString(pw, "exit()\nprint('after exit')\n")
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("exit() did not leave the prompt")
	}
	assert.NotContains(t, out.String(), "after exit")
	assert.NotContains(t, out.String(), "SystemExit")
}

// brig session: SIGINT interrupts the running cell and the session goes
// on; SIGHUP ends it with a clean teardown (no cgroup left), 128+1.
func TestSessionCLISignals(t *testing.T) {
	requireRootCLI(t)
	bin := buildBrig(t)
	cmd := exec.Command(bin, "session", "python", "--jsonl", "--quiet")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	lines := bufio.NewScanner(stdout)
	ask := func(code string) map[string]any {
		b, _ := json.Marshal(map[string]string{"code": code})
		_, err := stdin.Write(append(b, '\n'))
		require.NoError(t, err)
		require.True(t, lines.Scan(), "no answer: %v", lines.Err())
		var m map[string]any
		require.NoError(t, json.Unmarshal(lines.Bytes(), &m))
		return m
	}
	assert.Equal(t, "ok", ask("x = 41")["status"])
	go func() {
		time.Sleep(500 * time.Millisecond)
		cmd.Process.Signal(syscall.SIGINT)
	}()
	r := ask("import time; time.sleep(60)")
	assert.Equal(t, "canceled", r["status"], "%v", r)
	assert.Equal(t, "42", ask("x + 1")["value"])

	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	err = cmd.Wait()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 128+int(syscall.SIGHUP), ee.ExitCode())
	assert.Empty(t, cgroupsOf(cmd.Process.Pid), "brig session left its jail's cgroups")
}

// cgroupsOf lists the jail cgroup directories of supervisor pid (named
// brig-PID-START-N) anywhere under /sys/fs/cgroup.
func cgroupsOf(pid int) []string {
	var found []string
	prefix := "brig-" + strconv.Itoa(pid) + "-"
	_ = filepath.WalkDir("/sys/fs/cgroup", func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if strings.HasPrefix(d.Name(), prefix) {
			found = append(found, path)
			return filepath.SkipDir
		}
		return nil
	})
	return found
}

// "stream": true sends the cell's output as event lines, in order, before
// the result line, which holds the same output.
func TestJSONLStream(t *testing.T) {
	p := newSession(t, "python")
	in := `{"id": "s1", "stream": true, "code": "import sys, time\nfor i in range(3):\n    print('line', i, flush=True); time.sleep(0.05)\nprint('err', file=sys.stderr)"}` + "\n" +
		`{"id": "s2", "code": "print('quiet')"}` + "\n"
	var out strings.Builder
	serveJSONL(context.Background(), p, strings.NewReader(in), &out, 5*time.Second)
	var stdout, stderr strings.Builder
	var results []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		switch m["type"] {
		case "stdout":
			require.Empty(t, results, "an event after its result")
			stdout.WriteString(m["data"].(string))
		case "stderr":
			stderr.WriteString(m["data"].(string))
		default:
			results = append(results, m)
		}
	}
	require.Len(t, results, 2)
	assert.Equal(t, "line 0\nline 1\nline 2\n", stdout.String())
	assert.Equal(t, "err\n", stderr.String())
	assert.Equal(t, stdout.String(), results[0]["stdout"])
	assert.Equal(t, "quiet\n", results[1]["stdout"], "no events without stream")
}
