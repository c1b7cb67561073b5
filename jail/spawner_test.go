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
)

// spawnerPid is the running spawner's pid, or 0.
func spawnerPid() int {
	spawner.mu.Lock()
	defer spawner.mu.Unlock()
	if spawner.conn == nil {
		return 0
	}
	return spawner.pid
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
	requireRoot(t)
	before := countMounts()
	run := func() *Cmd {
		cmd := Command(context.Background(), Config{}, "/bin/sleep", "10")
		require.NoError(t, cmd.Start())
		return cmd
	}
	old := spawnerPid()
	require.NotZero(t, old, "TestMain starts the spawner")
	cmd := run()
	helper := parentOf(t, cmd.initPid)
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
	if parent := parentOf(t, parentOf(t, cmd.initPid)); parent != os.Getpid() {
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
	assert.Equal(t, fresh, parentOf(t, parentOf(t, cmd.initPid)), "the new spawner forks the helpers")
	cmd.Kill()
	_ = cmd.Wait()
	assertHostClean(t, before)
}
