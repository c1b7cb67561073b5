package session

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/cgroup"
	"github.com/brig-sandbox/brig/internal/testenv"
	"github.com/brig-sandbox/brig/jail"
)

// startTicker starts a thread in the session that writes a growing count
// to the file n of its working directory every millisecond.
func startTicker(t *testing.T, p *Python) func() int {
	t.Helper()
	r := p.Run(context.Background(), `
import threading, time, os
def tick():
    i = 0
    while True:
        i += 1
        with open("n.tmp", "w") as f: f.write(str(i))
        os.replace("n.tmp", "n")
        time.sleep(0.001)
threading.Thread(target=tick, daemon=True).start()
`, RunOptions{})
	require.Equal(t, CellOK, r.Status, "%+v", r)
	count := func() int {
		b, err := p.ReadFile("n", 64)
		if err != nil {
			return -1
		}
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return n
	}
	require.Eventually(t, func() bool { return count() > 10 }, testenv.Scaled(10*time.Second), 5*time.Millisecond, "the ticker did not start")
	return count
}

// TestPausePythonSession: a Pausable session's background thread stands
// still while paused (its file API still reads the workspace), goes on at
// Resume; the next Run resumes a paused session by itself, with its state
// kept; Close of a paused session ends it and leaves nothing.
func TestPausePythonSession(t *testing.T) {
	if !cgroup.Detect(cgroup.Options{}).Cgroup1.Usable && !cgroup.Detect(cgroup.Options{}).Cgroup2.Usable {
		t.Skip("needs a cgroup limiter to freeze with")
	}
	before := countMounts()
	p := newPython(t, jail.Config{Pausable: true})
	count := startTicker(t, p)

	require.NoError(t, p.Pause())
	assert.True(t, p.Paused())
	n := count()
	time.Sleep(testenv.Scaled(300 * time.Millisecond))
	assert.Equal(t, n, count(), "the paused session's thread went on")
	require.NoError(t, p.Resume())
	assert.False(t, p.Paused())
	require.Eventually(t, func() bool { return count() > n+10 }, testenv.Scaled(10*time.Second), 5*time.Millisecond, "the resumed thread did not go on")

	require.NoError(t, p.Pause())
	r := p.Run(context.Background(), "int(open('n').read()) > 0", RunOptions{Timeout: testenv.Scaled(10 * time.Second)})
	require.Equal(t, CellOK, r.Status, "%+v", r)
	assert.Equal(t, "True", *r.Value)
	assert.False(t, p.Paused(), "Run resumes a paused session")

	require.NoError(t, p.Pause())
	require.NoError(t, p.Close())
	require.ErrorIs(t, p.Err(), ErrDead)
	require.Error(t, p.Resume(), "Resume of a closed session")
	assertHostClean(t, before)
}

// TestPauseNeedsPausable: a session without Pausable (on cgroup v1) or
// under rlimits cannot be paused: the error wraps cgroup.ErrNoFreezer, and
// the session runs on.
func TestPauseNeedsPausable(t *testing.T) {
	cases := map[string]jail.Config{"rlimit": {Limiter: cgroup.RlimitOnly, Pausable: true}}
	if cgroup.Detect(cgroup.Options{}).Cgroup1.Usable {
		cases["cgroup1 not pausable"] = jail.Config{Limiter: cgroup.Cgroup1}
	}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			p := newPython(t, cfg)
			count := startTicker(t, p)
			require.ErrorIs(t, p.Pause(), cgroup.ErrNoFreezer)
			assert.False(t, p.Paused())
			n := count()
			require.Eventually(t, func() bool { return count() > n+10 }, testenv.Scaled(10*time.Second), 5*time.Millisecond, "a refused Pause stopped the session")
			r := p.Run(context.Background(), "1 + 1", RunOptions{})
			require.Equal(t, CellOK, r.Status, "%+v", r)
		})
	}
}
