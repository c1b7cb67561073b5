package cgroup

import (
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
)

// TestFreezeThaw pauses a busy jail and resumes it: while frozen its counter
// file and its CPU time stand still and the kernel says frozen; after Thaw
// it goes on where it was; a frozen jail still dies by Kill, and Close
// leaves no directory.
func TestFreezeThaw(t *testing.T) {
	forEachCgroupKind(t, func(t *testing.T, k Kind) {
		l, err := New(Limits{Pids: 20}, testOpts(k))
		require.NoError(t, err)
		dirs := cgroupDirs(l)
		counter := filepath.Join(t.TempDir(), "n")
		c := startIn(t, l, exec.Command("/bin/sh", "-c",
			`read x; i=0; while :; do i=$((i+1)); echo $i > `+counter+`.tmp && mv `+counter+`.tmp `+counter+`; done`))
		count := func() int {
			b, _ := os.ReadFile(counter)
			n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			return n
		}
		require.Eventually(t, func() bool { return count() > 10 }, testenv.Scaled(10*time.Second), 10*time.Millisecond, "the loop did not start: %s", c.out)

		require.NoError(t, l.Freeze())
		assert.Equal(t, "frozen", kernelFreezeState(t, l, k))
		before := count()
		cpuBefore := cpuTime(t, l)
		time.Sleep(testenv.Scaled(200 * time.Millisecond))
		assert.Equal(t, before, count(), "the frozen loop went on")
		assert.Equal(t, cpuBefore, cpuTime(t, l), "a frozen jail used CPU")

		require.NoError(t, l.Thaw())
		assert.Equal(t, "thawed", kernelFreezeState(t, l, k))
		require.Eventually(t, func() bool { return count() > before+10 }, testenv.Scaled(10*time.Second), 10*time.Millisecond, "the thawed loop did not go on")
		require.NoError(t, l.Thaw(), "Thaw of a running jail is a no-op")

		require.NoError(t, l.Freeze())
		require.NoError(t, l.Kill(), "a frozen jail must still be killable")
		ws := c.wait(t, testenv.Scaled(5*time.Second))
		assert.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "%v", ws)
		require.NoError(t, l.Close())
		for _, d := range dirs {
			assert.NoDirExists(t, d)
		}
		require.Error(t, l.Freeze(), "Freeze after Close")
	})
}

// TestFreezeCloseWhileFrozen: Close of a paused jail ends it (v1 must thaw
// for its SIGKILLs to land) and removes the cgroup.
func TestFreezeCloseWhileFrozen(t *testing.T) {
	forEachCgroupKind(t, func(t *testing.T, k Kind) {
		l, err := New(Limits{Pids: 20}, testOpts(k))
		require.NoError(t, err)
		dirs := cgroupDirs(l)
		c := startIn(t, l, exec.Command("/bin/sh", "-c", "read x; sleep 100 & exec sleep 100"))
		require.Eventually(t, func() bool { return len(procsOf(t, l)) >= 2 }, testenv.Scaled(10*time.Second), 10*time.Millisecond)
		require.NoError(t, l.Freeze())
		require.NoError(t, l.Close())
		ws := c.wait(t, testenv.Scaled(5*time.Second))
		assert.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "%v", ws)
		for _, d := range dirs {
			assert.NoDirExists(t, d)
		}
	})
}

// TestNoFreezer: the limiters without a freezer say so with ErrNoFreezer,
// and their jails still run and end as before.
func TestNoFreezer(t *testing.T) {
	r, err := New(Limits{Memory: 64 * mib, Pids: 20}, Options{Kind: RlimitOnly})
	require.NoError(t, err)
	assert.ErrorIs(t, r.Freeze(), ErrNoFreezer)
	assert.ErrorIs(t, r.Thaw(), ErrNoFreezer)
	require.NoError(t, r.Close())

	skipUnlessUsable(t, Cgroup1)
	opts := testOpts(Cgroup1)
	opts.NoFreezer = true
	l, err := New(Limits{Pids: 20}, opts)
	require.NoError(t, err)
	c := startIn(t, l, exec.Command("/bin/sh", "-c", "read x; exec sleep 100"))
	require.Eventually(t, func() bool { return len(procsOf(t, l)) >= 1 }, testenv.Scaled(10*time.Second), 10*time.Millisecond)
	err = l.Freeze()
	require.ErrorIs(t, err, ErrNoFreezer)
	assert.Contains(t, err.Error(), "NoFreezer")
	require.NoError(t, l.Close())
	ws := c.wait(t, testenv.Scaled(5*time.Second))
	assert.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "%v", ws)
}

// kernelFreezeState is what the kernel reports: "frozen" or "thawed".
func kernelFreezeState(t *testing.T, l Limiter, k Kind) string {
	t.Helper()
	if k == Cgroup2 {
		v, _, err := readKey(filepath.Join(l.Dir(), "cgroup.events"), "frozen")
		require.NoError(t, err)
		return map[int64]string{0: "thawed", 1: "frozen"}[v]
	}
	b, err := os.ReadFile(filepath.Join(l.(*v1Limiter).freezerDir, "freezer.state"))
	require.NoError(t, err)
	return strings.ToLower(strings.TrimSpace(string(b)))
}

func cpuTime(t *testing.T, l Limiter) time.Duration {
	t.Helper()
	st, err := l.Stats()
	require.NoError(t, err)
	require.True(t, st.CPUTimeKnown)
	return st.CPUTime
}
