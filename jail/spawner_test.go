package jail

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/internal/testenv"
)

// spawnerPid is the running spawner's pid, or 0.
func spawnerPid() int {
	return DefaultSupervisor.rt.SpawnerPid()
}

func parentOf(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "PPid:"); ok {
			ppid, err := strconv.Atoi(strings.TrimSpace(v))
			require.NoError(t, err)
			return ppid
		}
	}
	t.Fatalf("no PPid in /proc/%d/status", pid)
	return 0
}

// A jail's helper is the spawner's child once the spawner runs, and a
// spawner killed from outside is replaced without failing a jail.
func TestSpawner(t *testing.T) {
	testenv.RequireRoot(t)
	before := countMounts()
	run := func() *Cmd {
		cmd := Command(context.Background(), Config{}, "/bin/sleep", "10")
		require.NoError(t, cmd.Start())
		return cmd
	}
	old := spawnerPid()
	require.NotZero(t, old, "TestMain starts the spawner")
	cmd := run()
	helper := parentOf(t, cmd.inst.InitPID())
	assert.Equal(t, old, parentOf(t, helper), "the helper is a fork of the spawner")
	comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", helper))
	assert.Equal(t, "brig:helper", strings.TrimRight(string(comm), "\x00"))
	cmd.Kill()
	_ = cmd.Wait()

	require.NoError(t, syscall.Kill(old, syscall.SIGKILL))
	for i := 0; i < 100 && spawnerPid() == old; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	// The next jail execs its own helper while a new spawner starts, or,
	// when that start won the race (it did once in a full run under load),
	// is forked by the new spawner: never by the dead one.
	cmd = run()
	if parent := parentOf(t, parentOf(t, cmd.inst.InitPID())); parent != os.Getpid() {
		assert.NotEqual(t, old, parent)
		assert.Equal(t, spawnerPid(), parent, "helper neither exec'd by the supervisor nor forked by the new spawner")
	}
	cmd.Kill()
	_ = cmd.Wait()
	var fresh int
	for i := 0; i < 300 && (fresh == 0 || fresh == old); i++ {
		time.Sleep(10 * time.Millisecond)
		fresh = spawnerPid()
	}
	require.NotZero(t, fresh)
	assert.NotEqual(t, old, fresh)
	cmd = run()
	assert.Equal(t, fresh, parentOf(t, parentOf(t, cmd.inst.InitPID())), "the new spawner forks the helpers")
	cmd.Kill()
	_ = cmd.Wait()
	assertHostClean(t, before)
}

// CloseSpawner ends the spawner only once its helpers are done: a jail it
// forked runs to its end unharmed, the spawner is reaped (no process of it
// is left), and later jails still run and get a new spawner.
func TestCloseSpawner(t *testing.T) {
	testenv.RequireRoot(t)
	before := countMounts()
	old := spawnerPid()
	require.NotZero(t, old, "TestMain starts the spawner")
	var out strings.Builder
	cmd := Command(context.Background(), Config{}, "/bin/sh", "-c", "sleep 0.3; echo finished")
	cmd.Stdout = &out
	require.NoError(t, cmd.Start())
	require.Equal(t, old, parentOf(t, parentOf(t, cmd.inst.InitPID())), "the helper is a fork of the spawner")

	closed := make(chan struct{})
	go func() {
		CloseSpawner()
		close(closed)
	}()
	select {
	case <-closed:
		t.Fatal("CloseSpawner returned while a helper of its spawner ran")
	case <-time.After(100 * time.Millisecond):
	}
	require.NoError(t, cmd.Wait(), "the jail under way must not be harmed")
	assert.Equal(t, "finished\n", out.String())
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("CloseSpawner did not return after the last helper ended")
	}
	assert.ErrorIs(t, syscall.Kill(old, 0), syscall.ESRCH, "the closed spawner is not reaped")
	assert.Zero(t, spawnerPid())
	CloseSpawner() // none runs: a no-op

	b, err := Command(context.Background(), Config{}, "/bin/echo", "next").Output()
	require.NoError(t, err)
	assert.Equal(t, "next\n", string(b))
	var fresh int
	for i := 0; i < 300 && fresh == 0; i++ {
		time.Sleep(10 * time.Millisecond)
		fresh = spawnerPid()
	}
	require.NotZero(t, fresh, "the next jails warm a new spawner")
	assertHostClean(t, before)
}
