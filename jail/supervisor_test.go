package jail

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/brig-sandbox/brig/cgroup"
	"github.com/brig-sandbox/brig/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHelperSupervisor is not a test: the supervisor-death test re-runs the
// test binary into it, to be a supervisor that can be SIGKILLed.
func TestHelperSupervisor(t *testing.T) {
	if os.Getenv("BRIG_TEST_SUPERVISOR") != "1" {
		t.Skip("helper process for TestSupervisorDeathKillsJail")
	}
	cmd := Command(context.Background(), Config{Timeout: time.Minute}, "/bin/sh", "-c", "sleep 300 & sleep 300")
	if err := cmd.Start(); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("started")
	_ = cmd.Wait()
	os.Exit(0)
}

func TestSupervisorDeathKillsJail(t *testing.T) {
	testenv.RequireRoot(t)
	before := countMounts()
	sup := exec.Command(os.Args[0], "-test.run=^TestHelperSupervisor$")
	sup.Env = append(os.Environ(), "BRIG_TEST_SUPERVISOR=1")
	out, err := sup.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, sup.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "started\n", line)
	require.NotEmpty(t, jailProcesses(), "the jail should be running")

	require.NoError(t, sup.Process.Signal(syscall.SIGKILL))
	_ = sup.Wait()
	killed := time.Now()
	for len(jailProcesses()) > 0 {
		require.Less(t, time.Since(killed), testenv.Scaled(time.Second), "jail outlived its supervisor: %v", jailProcesses())
		time.Sleep(10 * time.Millisecond)
	}
	assertHostClean(t, before)
}

// TestHelperShortSupervisor is not a test: TestCloseSpawnerLeavesNothing
// re-runs the test binary into it, to be a program that runs a few jails
// one after another, calls CloseSpawner and exits at once. It prints how
// many of its jails' cgroup directories there were before the call.
func TestHelperShortSupervisor(t *testing.T) {
	if os.Getenv("BRIG_TEST_SUPERVISOR") != "short" {
		t.Skip("helper process for TestCloseSpawnerLeavesNothing")
	}
	for range 3 {
		if err := Command(context.Background(), Config{}, "/bin/true").Run(); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
	}
	kept := len(jailCgroups(os.Getpid()))
	CloseSpawner()
	fmt.Println(os.Getpid(), kept)
	os.Exit(0)
}

// A program that runs jails one after another and exits right away leaves
// no cgroup behind once it called CloseSpawner: the ended jails' cgroups it
// kept for reuse (which would otherwise wait 250 ms, or for the next
// supervisor's sweep once it has exited) go with the spawner.
func TestCloseSpawnerLeavesNothing(t *testing.T) {
	testenv.RequireRoot(t)
	if !cgroup.Detect(cgroup.Options{}).Cgroup1.Usable {
		t.Skip("cgroup reuse needs the v1 limiter; this host has no usable cgroup v1")
	}
	before := countMounts()
	// A set is kept only while at most 512 KiB is charged to it: the test
	// needs a run in which one was.
	for try := 0; try < 5; try++ {
		sup := exec.Command(os.Args[0], "-test.run=^TestHelperShortSupervisor$")
		sup.Env = append(os.Environ(), "BRIG_TEST_SUPERVISOR=short")
		out, err := sup.Output()
		require.NoError(t, err, "%s", out)
		var pid, kept int
		_, err = fmt.Sscanf(string(out), "%d %d", &pid, &kept)
		require.NoError(t, err, "%s", out)
		t.Logf("run %d: supervisor %d had %d cgroup directories before CloseSpawner", try+1, pid, kept)
		assert.Empty(t, jailCgroups(pid), "cgroups left by a program that called CloseSpawner")
		if kept > 0 {
			assertHostClean(t, before)
			return
		}
	}
	t.Skip("no ended jail's cgroups were kept for reuse in 5 runs (more than 512 KiB charged each time): nothing for CloseSpawner to remove")
}
