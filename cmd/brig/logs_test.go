package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/internal/testenv"
)

func cgroupEmpty(dir string) bool {
	procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	return err != nil || len(bytes.TrimSpace(procs)) == 0
}

// The library sweeps the cgroups a killed brig left when the next brig run
// starts a jail, and logs it; that line is brig's, not the program's, and
// must not appear in the stderr the jailed program shares with brig.
func TestStaleSweepStaysOutOfProgramStderr(t *testing.T) {
	testenv.RequireRoot(t)
	bin := buildBrig(t)
	killed := exec.Command(bin, "run", "--", "/bin/sh", "-c", "echo up; exec sleep 60")
	out, err := killed.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, killed.Start())
	defer killed.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "up\n", line)
	stale := cgroupsOf(killed.Process.Pid)
	if len(stale) == 0 {
		t.Skip("brig run made no cgroup here (rlimit limiter): nothing for the sweep to remove")
	}
	require.NoError(t, killed.Process.Signal(syscall.SIGKILL))
	_ = killed.Wait()
	// The jail dies with its supervisor; its cgroups stay, empty.
	deadline := time.Now().Add(testenv.Scaled(10 * time.Second))
	for time.Now().Before(deadline) {
		empty := true
		for _, d := range stale {
			empty = empty && cgroupEmpty(d)
		}
		if empty {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.NotEmpty(t, cgroupsOf(killed.Process.Pid), "the killed brig's cgroups are left for the next to sweep")

	next := exec.Command(bin, "run", "--", "/bin/sh", "-c", "sleep 0.5; echo program-err >&2")
	var stdout, stderr bytes.Buffer
	next.Stdout, next.Stderr = &stdout, &stderr
	require.NoError(t, next.Run(), "stderr: %s", stderr.String())
	assert.Empty(t, cgroupsOf(killed.Process.Pid), "the next brig run swept the dead one's cgroups")
	assert.Equal(t, "program-err\n", stderr.String(), "the program's stderr carries the program's lines alone")
	assert.NotContains(t, stderr.String(), "removed cgroups")
}
