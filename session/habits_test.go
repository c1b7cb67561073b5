package session

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/internal/testenv"
	"github.com/brig-sandbox/brig/jail"
)

// A cell's CPU time reaches its result (it was computed before the
// driver's figure was set, so it read 0).
func TestSessionCellCPUTime(t *testing.T) {
	ctx := context.Background()
	p := newPython(t, jail.Config{})
	r := p.Run(ctx, "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.2: pass", RunOptions{})
	require.Equal(t, CellOK, r.Status, "%+v", r)
	assert.GreaterOrEqual(t, r.CPUTime, 150*time.Millisecond, "%+v", r)

	sh := newShell(t, jail.Config{})
	r = sh.Run(ctx, `i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done`, RunOptions{})
	require.Equal(t, CellOK, r.Status, "%+v", r)
	assert.Greater(t, r.CPUTime.Milliseconds(), int64(0), "%+v", r)
}

// A cell whose interpreter dies comes back dead with the output it wrote
// before it died.
func TestSessionDeadCellKeepsOutput(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name, code string
		cfg        jail.Config
	}{
		{"os._exit", "print('before the end')\nimport os\nos._exit(3)", jail.Config{}},
		{"oom", "print('before the end')\na = []\nwhile True: a.append(bytearray(8 << 20))", jail.Config{Limits: limitsOf(96<<20, 0)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newPython(t, c.cfg)
			r := p.Run(ctx, c.code, RunOptions{Timeout: testenv.Scaled(20 * time.Second)})
			require.Equal(t, CellDead, r.Status, "%+v", r)
			assert.Equal(t, "before the end\n", r.Stdout)
		})
	}
	sh := newShell(t, jail.Config{})
	r := sh.Run(ctx, "echo before the end; echo on stderr >&2; exit 7", RunOptions{})
	require.Equal(t, CellDead, r.Status, "%+v", r)
	assert.Equal(t, "before the end\n", r.Stdout)
	assert.Equal(t, "on stderr\n", r.Stderr)
	assert.Contains(t, r.Reason, "status 7")
}

// Ending the context passed to Run interrupts the cell, as a timeout
// does, and the session keeps its state; a cell that ignores the
// interrupt is killed with its session after the grace.
func TestSessionRunContextInterrupts(t *testing.T) {
	p := newPython(t, jail.Config{})
	bg := context.Background()
	require.Equal(t, CellOK, p.Run(bg, "x = 41", RunOptions{}).Status)
	ctx, cancel := context.WithTimeout(bg, 300*time.Millisecond)
	defer cancel()
	r := p.Run(ctx, "import time\nprint('started', flush=True)\ntime.sleep(60)", RunOptions{Timeout: time.Minute})
	assert.Equal(t, CellCanceled, r.Status, "%+v", r)
	assert.Equal(t, "started\n", r.Stdout)
	require.NotNil(t, r.Error)
	assert.Equal(t, "KeyboardInterrupt", r.Error.Type)
	r = p.Run(bg, "x + 1", RunOptions{})
	require.Equal(t, CellOK, r.Status, "%+v", r)
	assert.Equal(t, "42", *r.Value)

	sh := newShell(t, jail.Config{})
	require.Equal(t, CellOK, sh.Run(bg, "y=7", RunOptions{}).Status)
	ctx, cancel = context.WithTimeout(bg, 300*time.Millisecond)
	defer cancel()
	r = sh.Run(ctx, "sleep 60", RunOptions{Timeout: time.Minute})
	assert.Equal(t, CellCanceled, r.Status, "%+v", r)
	r = sh.Run(bg, "echo $y", RunOptions{})
	assert.Equal(t, "7\n", r.Stdout)

	// Ignoring the interrupt: the session ends, and says why.
	ctx, cancel = context.WithTimeout(bg, 300*time.Millisecond)
	defer cancel()
	r = p.Run(ctx, "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(60)", RunOptions{Timeout: time.Minute})
	assert.Equal(t, CellDead, r.Status, "%+v", r)
	assert.Contains(t, r.Reason, "when its context ended")
}
