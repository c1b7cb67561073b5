package session

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/cgroup"
	"github.com/brig-sandbox/brig/internal/testenv"
	"github.com/brig-sandbox/brig/jail"
)

func newPython(t *testing.T, cfg jail.Config) *Python {
	t.Helper()
	testenv.RequireRoot(t)
	requirePython(t)
	p, err := NewPythonWith(context.Background(), testSup, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

func newShell(t *testing.T, cfg jail.Config) *Shell {
	t.Helper()
	testenv.RequireRoot(t)
	sh, err := NewShellWith(context.Background(), testSup, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { sh.Close() })
	return sh
}

func TestPythonSessionState(t *testing.T) {
	before := countMounts()
	p := newPython(t, jail.Config{})
	ctx := context.Background()
	r := p.Run(ctx, "import math\nx = 20\nprint('hi')", RunOptions{})
	require.Equal(t, CellOK, r.Status, "%+v", r)
	assert.Equal(t, "hi\n", r.Stdout)
	assert.Nil(t, r.Value)

	r = p.Run(ctx, "x + math.floor(22.5)", RunOptions{})
	require.Equal(t, CellOK, r.Status)
	require.NotNil(t, r.Value)
	assert.Equal(t, "42", *r.Value)

	r = p.Run(ctx, "import sys; print('to err', file=sys.stderr); 'text'", RunOptions{})
	assert.Equal(t, "to err\n", r.Stderr)
	assert.Equal(t, "'text'", *r.Value)

	r = p.Run(ctx, "def f():\n    raise ValueError('bad thing')\nf()", RunOptions{})
	assert.Equal(t, CellError, r.Status)
	require.NotNil(t, r.Error)
	assert.Equal(t, "ValueError", r.Error.Type)
	assert.Equal(t, "bad thing", r.Error.Message)
	assert.Contains(t, r.Error.Traceback, `File "<cell>", line 2, in f`)
	assert.NotContains(t, r.Error.Traceback, "_run", "driver frames are hidden")

	r = p.Run(ctx, "x = (", RunOptions{})
	assert.Equal(t, "SyntaxError", r.Error.Type)
	r = p.Run(ctx, "raise SystemExit(3)", RunOptions{})
	assert.Equal(t, "SystemExit", r.Error.Type, "exit() ends the cell, not the session")
	r = p.Run(ctx, "import os; os.getcwd(), os.getuid()", RunOptions{})
	assert.Equal(t, "('/work', 1000)", *r.Value)
	require.NoError(t, p.Close())
	assertHostClean(t, before)
}

func TestPythonSessionForgedFrames(t *testing.T) {
	p := newPython(t, jail.Config{})
	ctx := context.Background()
	// Output that looks like the protocol, a driver reply and a nonce of
	// our own making cannot end the cell or inject a result.
	r := p.Run(ctx, `
import sys
print('{"value": "forged", "error": null, "cpu": 0}')
sys.stdout.write("\x1ebrig-cell-00000000000000000000000000000000\x1e")
print("still the same cell")
'real'`, RunOptions{})
	require.Equal(t, CellOK, r.Status)
	assert.Equal(t, "'real'", *r.Value)
	assert.Contains(t, r.Stdout, "still the same cell")
	assert.Contains(t, r.Stdout, `"forged"`)
	r = p.Run(ctx, "1+1", RunOptions{})
	assert.Equal(t, "2", *r.Value)
	assert.Empty(t, r.Stdout)
}

func TestPythonSessionTimeoutInterrupts(t *testing.T) {
	p := newPython(t, jail.Config{})
	ctx := context.Background()
	p.Run(ctx, "kept = 'yes'", RunOptions{})
	start := time.Now()
	r := p.Run(ctx, "import time\nprint('before')\ntime.sleep(60)", RunOptions{Timeout: 300 * time.Millisecond})
	assert.Equal(t, CellTimeout, r.Status, "%+v", r)
	assert.Less(t, time.Since(start), 5*time.Second)
	require.NotNil(t, r.Error)
	assert.Equal(t, "KeyboardInterrupt", r.Error.Type)
	assert.Equal(t, "before\n", r.Stdout)
	r = p.Run(ctx, "kept", RunOptions{})
	require.Equal(t, CellOK, r.Status, "the session survives a timeout")
	assert.Equal(t, "'yes'", *r.Value)
}

func TestPythonSessionIgnoringInterruptIsKilled(t *testing.T) {
	before := countMounts()
	p := newPython(t, jail.Config{})
	ctx := context.Background()
	r := p.Run(ctx, `
import time
while True:
    try:
        time.sleep(60)
    except KeyboardInterrupt:
        pass
`, RunOptions{Timeout: 200 * time.Millisecond})
	assert.Equal(t, CellDead, r.Status)
	assert.Contains(t, r.Reason, "did not stop")
	r = p.Run(ctx, "1", RunOptions{})
	assert.Equal(t, CellDead, r.Status)
	assert.ErrorIs(t, p.Err(), ErrDead)
	assertHostClean(t, before)
}

func TestPythonSessionMemoryBombKillsSession(t *testing.T) {
	cfg := jail.Config{}
	cfg.Limits.Memory = 128 << 20
	if kind, err := cgroup.Planned(cgroup.Options{}); err != nil || kind == cgroup.RlimitOnly {
		t.Skip("needs cgroups: under rlimits the allocation fails inside the cell instead")
	}
	p := newPython(t, cfg)
	r := p.Run(context.Background(), "a = []\nwhile True: a.append(bytearray(8 << 20))", RunOptions{Timeout: 20 * time.Second})
	assert.Equal(t, CellDead, r.Status)
	assert.Equal(t, "oom", r.Reason)
}

func TestPythonSessionOutputCap(t *testing.T) {
	p := newPython(t, jail.Config{})
	r := p.Run(context.Background(), "while True: print('x' * 1000)", RunOptions{OutputLimit: 64 << 10, Timeout: 10 * time.Second})
	assert.True(t, r.StdoutTruncated)
	assert.Len(t, r.Stdout, 64<<10)
	assert.NotEqual(t, CellDead, r.Status, "a flood is interrupted, the session lives on")
	r = p.Run(context.Background(), "print('small')", RunOptions{})
	assert.Equal(t, "small\n", r.Stdout)
	assert.False(t, r.StdoutTruncated)
}

func TestShellSession(t *testing.T) {
	sh := newShell(t, jail.Config{})
	ctx := context.Background()
	r := sh.Run(ctx, "mkdir -p sub && cd sub && X=41 && f() { echo $((X+1)); }", RunOptions{})
	require.Equal(t, CellOK, r.Status, "%+v", r)
	assert.Equal(t, 0, *r.ExitCode)
	r = sh.Run(ctx, "pwd; f; echo oops >&2; false", RunOptions{})
	assert.Equal(t, "/work/sub\n42\n", r.Stdout)
	assert.Equal(t, "oops\n", r.Stderr)
	assert.Equal(t, 1, *r.ExitCode)
	r = sh.Run(ctx, "if then", RunOptions{})
	assert.NotEqual(t, 0, *r.ExitCode, "a syntax error is the command's failure, not the session's")
	r = sh.Run(ctx, "echo alive", RunOptions{})
	assert.Equal(t, "alive\n", r.Stdout)
}

func TestShellSessionCannotForgeEnd(t *testing.T) {
	sh := newShell(t, jail.Config{})
	ctx := context.Background()
	r := sh.Run(ctx, `printf '\036brig-cell-0123456789abcdef0123456789abcdef\036'; echo 0; printf '0\n0m0s 0m0s\n'; echo after`, RunOptions{})
	require.Equal(t, CellOK, r.Status)
	assert.Contains(t, r.Stdout, "after\n")
	assert.Equal(t, 0, *r.ExitCode)
}

func TestShellSessionTimeoutAndExit(t *testing.T) {
	sh := newShell(t, jail.Config{})
	ctx := context.Background()
	r := sh.Run(ctx, "sleep 60", RunOptions{Timeout: 300 * time.Millisecond})
	assert.Equal(t, CellTimeout, r.Status)
	assert.Equal(t, 130, *r.ExitCode)
	r = sh.Run(ctx, "echo still here", RunOptions{})
	assert.Equal(t, "still here\n", r.Stdout)
	r = sh.Run(ctx, "exit 4", RunOptions{})
	assert.Equal(t, CellDead, r.Status)
	assert.Contains(t, r.Reason, "status 4")
}

func TestSessionFiles(t *testing.T) {
	p := newPython(t, jail.Config{})
	ctx := context.Background()
	require.NoError(t, p.WriteFile("data/in.txt", []byte("from host")))
	r := p.Run(ctx, "open('data/in.txt').read()", RunOptions{})
	assert.Equal(t, "'from host'", *r.Value)
	r = p.Run(ctx, `
import os
open("out.txt", "w").write("from jail")
os.symlink("/etc/passwd", "evil")
os.symlink("/proc/1/root/etc/passwd", "evil2")
os.mkdir("d"); os.symlink("/etc", "d/etc")
os.stat("data/in.txt").st_uid`, RunOptions{})
	assert.Equal(t, "1000", *r.Value, "host-written files belong to the jail user")
	b, err := p.ReadFile("out.txt", 0)
	require.NoError(t, err)
	assert.Equal(t, "from jail", string(b))
	for _, bad := range []string{"evil", "evil2", "d/etc/passwd", "../etc/passwd", "/etc/passwd"} {
		_, err := p.ReadFile(bad, 0)
		assert.Error(t, err, bad)
	}
	assert.Error(t, p.WriteFile("evil", []byte("x")), "writing through a planted symlink")
	host, _ := os.ReadFile("/etc/passwd")
	assert.NotContains(t, string(host), "from jail")
	list, err := p.ListDir(".")
	require.NoError(t, err)
	var names []string
	for _, f := range list {
		names = append(names, f.Name)
	}
	assert.ElementsMatch(t, []string{"data", "out.txt", "evil", "evil2", "d"}, names)
	_, err = p.ReadFile("out.txt", 3)
	assert.ErrorContains(t, err, "limit")
	p.Close()
	_, err = p.ReadFile("out.txt", 0)
	assert.True(t, errors.Is(err, ErrDead), "%v", err)
	_ = strings.TrimSpace
}
