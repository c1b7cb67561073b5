package jail

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/cgroup"
	"github.com/brig-sandbox/brig/internal/testenv"
)

// lineCounter counts the lines a jailed counter loop prints.
type lineCounter struct {
	mu sync.Mutex
	n  int
}

func (w *lineCounter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.n += bytes.Count(p, []byte("\n"))
	w.mu.Unlock()
	return len(p), nil
}

func (w *lineCounter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// startCounter starts a jail that prints a line every millisecond until
// killed, and waits for its first lines.
func startCounter(t *testing.T, cfg Config) (*Cmd, *lineCounter, <-chan error) {
	t.Helper()
	requirePython(t)
	cfg.OutputLimit = -1
	var lines lineCounter
	cmd := Command(context.Background(), cfg, python, "-c", jailedPrelude+`
import time
while True:
    print(1, flush=True)
    time.sleep(0.001)
`)
	cmd.Stdout = &lines
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	require.Eventually(t, func() bool { return lines.count() > 10 }, testenv.Scaled(10*time.Second), 5*time.Millisecond, "the loop did not start")
	return cmd, &lines, done
}

// settledCount waits for the count to stop moving (the host's copier may
// still drain what the loop wrote before it was frozen) and returns it.
func settledCount(t *testing.T, w *lineCounter) int {
	t.Helper()
	last := -1
	require.Eventually(t, func() bool {
		n := w.count()
		stable := n == last
		last = n
		return stable
	}, testenv.Scaled(5*time.Second), 50*time.Millisecond, "the frozen loop's output never stopped")
	return last
}

func cpuOf(t *testing.T, cmd *Cmd) time.Duration {
	t.Helper()
	st, err := cmd.inst.Limiter().Stats()
	require.NoError(t, err)
	require.True(t, st.CPUTimeKnown, "the limiter measures no CPU time")
	return st.CPUTime
}

// TestFreezeThaw pauses a Pausable jail under each cgroup limiter: while
// frozen its loop prints nothing and its CPU time stands still; after Thaw
// it goes on; a frozen jail ends by Kill, and neither a process, a mount
// nor its cgroups are left. Under rlimits Freeze says ErrNoFreezer and the
// jail runs on untouched.
func TestFreezeThaw(t *testing.T) {
	testenv.RequireRoot(t)
	for _, kind := range limiters(t) {
		t.Run(string(kind), func(t *testing.T) {
			mounts := countMounts()
			cfg := Config{Limiter: kind, Pausable: true, Limits: cgroup.Limits{CPUTime: time.Hour}}
			cmd, lines, done := startCounter(t, cfg)
			var dirs []string
			if kind != cgroup.RlimitOnly {
				for _, f := range cmd.inst.Limiter().ProcsFiles() {
					dirs = append(dirs, filepath.Dir(f))
				}
				if d := cmd.inst.Limiter().Dir(); d != "" {
					dirs = append(dirs, d)
				}
			}

			err := cmd.Freeze()
			if kind == cgroup.RlimitOnly {
				require.ErrorIs(t, err, cgroup.ErrNoFreezer)
				assert.False(t, cmd.Frozen())
				n := lines.count()
				require.Eventually(t, func() bool { return lines.count() > n+10 }, testenv.Scaled(10*time.Second), 5*time.Millisecond, "a refused Freeze stopped the jail")
			} else {
				require.NoError(t, err)
				assert.True(t, cmd.Frozen())
				n := settledCount(t, lines)
				cpu := cpuOf(t, cmd)
				time.Sleep(testenv.Scaled(300 * time.Millisecond))
				assert.Equal(t, n, lines.count(), "the frozen loop went on")
				assert.Equal(t, cpu, cpuOf(t, cmd), "a frozen jail used CPU")
				require.NoError(t, cmd.Freeze(), "Freeze of a frozen jail is a no-op")

				require.NoError(t, cmd.Thaw())
				assert.False(t, cmd.Frozen())
				require.Eventually(t, func() bool { return lines.count() > n+10 }, testenv.Scaled(10*time.Second), 5*time.Millisecond, "the thawed loop did not go on")
				require.NoError(t, cmd.Thaw(), "Thaw of a running jail is a no-op")
				require.NoError(t, cmd.Freeze())
			}

			cmd.Kill()
			select {
			case err := <-done:
				var exit *ExitError
				require.True(t, errors.As(err, &exit), "%v", err)
				assert.Equal(t, ReasonSignaled, exit.Result.Reason)
			case <-time.After(testenv.Scaled(10 * time.Second)):
				t.Fatal("a frozen jail did not end at Kill")
			}
			assert.Error(t, cmd.Thaw(), "Thaw of an ended jail")
			assertHostClean(t, mounts)
			// An ended jail's v1 cgroups may be kept a moment for the next
			// jail (cgroup.Options.Reuse); then they are removed.
			for _, d := range dirs {
				require.Eventually(t, func() bool { return !dirExists(d) }, testenv.Scaled(5*time.Second), 20*time.Millisecond, "cgroup %s left", d)
			}
		})
	}
}

// TestFreezeNeedsPausable: a v1 jail made without Pausable has no freezer,
// so Freeze says ErrNoFreezer with the fix, and the jail is untouched; the
// same program in a Pausable jail freezes.
func TestFreezeNeedsPausable(t *testing.T) {
	testenv.RequireRoot(t)
	if !cgroup.Detect(cgroup.Options{}).Cgroup1.Usable {
		t.Skip("needs cgroup v1 (a v2 jail can always be frozen)")
	}
	cmd, lines, done := startCounter(t, Config{Limiter: cgroup.Cgroup1})
	err := cmd.Freeze()
	require.ErrorIs(t, err, cgroup.ErrNoFreezer)
	assert.Contains(t, err.Error(), "freezer")
	n := lines.count()
	require.Eventually(t, func() bool { return lines.count() > n+10 }, testenv.Scaled(10*time.Second), 5*time.Millisecond, "a refused Freeze stopped the jail")
	cmd.Kill()
	<-done
}

// TestFreezeHoldsTimeout: time spent frozen does not count against the
// jail's Timeout. A jail frozen for twice its timeout is still alive at
// Thaw, then times out once the rest of its timeout has run; its WallTime
// counts the frozen time.
func TestFreezeHoldsTimeout(t *testing.T) {
	testenv.RequireRoot(t)
	if !cgroup.Detect(cgroup.Options{}).Cgroup1.Usable && !cgroup.Detect(cgroup.Options{}).Cgroup2.Usable {
		t.Skip("needs a cgroup limiter to freeze with")
	}
	timeout := testenv.Scaled(2 * time.Second)
	cmd, _, done := startCounter(t, Config{Pausable: true, Timeout: timeout})
	require.NoError(t, cmd.Freeze())
	time.Sleep(2 * timeout)
	require.NoError(t, cmd.Thaw(), "the jail ended while frozen")
	select {
	case err := <-done:
		var exit *ExitError
		require.True(t, errors.As(err, &exit), "%v", err)
		assert.Equal(t, ReasonTimeout, exit.Result.Reason)
		assert.Greater(t, exit.Result.WallTime, 2*timeout)
	case <-time.After(testenv.Scaled(30 * time.Second)):
		cmd.Kill()
		t.Fatal("the thawed jail never timed out")
	}
}

func dirExists(d string) bool {
	fi, err := os.Stat(d)
	return err == nil && fi.IsDir()
}
