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
	requireRoot(t)
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
		require.Less(t, time.Since(killed), scaled(time.Second), "jail outlived its supervisor: %v", jailProcesses())
		time.Sleep(10 * time.Millisecond)
	}
	assertHostClean(t, before)
}
