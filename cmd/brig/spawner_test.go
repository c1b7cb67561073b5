package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/brig-sandbox/brig/internal/hostile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

var built struct {
	once sync.Once
	bin  string
	err  error
}

// buildBrig builds this command once per test binary (TestMain removes
// it): the early spawner
// exists only in a real `brig run` process, not in runMain called here.
func buildBrig(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "brig-cli-")
		if err != nil {
			built.err = err
			return
		}
		built.bin = filepath.Join(dir, "brig")
		built.err = hostile.BuildCLI(filepath.Join("..", ".."), built.bin)
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin
}

// brig run forks its spawner before the Go runtime starts, and the jail's
// helper from it; neither carries brig's arguments or environment (a
// jail's pid 1 is forked from them), and neither outlives brig. A closed
// stdin changes nothing: the spawner's socket never takes its place.
func TestRunForksHelperFromEarlySpawner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: jails use a private host uid range")
	}
	bin := buildBrig(t)
	const marker = "brig-test-marker-7f3a"
	for _, name := range []string{"stdio open", "stdin closed"} {
		t.Run(name, func(t *testing.T) {
			args := []string{bin, "run", "--quiet", "--", "/bin/sh", "-c", `tr '\0' ' ' </proc/1/cmdline; echo; echo up; sleep 1`, marker}
			if name == "stdin closed" {
				args = append([]string{"/bin/sh", "-c", `exec <&-; exec "$@"`, "sh"}, args...)
			}
			cli := exec.Command(args[0], args[1:]...)
			cli.Env = append(os.Environ(), "BRIG_TEST_SECRET="+marker)
			out, err := cli.StdoutPipe()
			require.NoError(t, err)
			require.NoError(t, cli.Start())
			r := bufio.NewReader(out)
			pid1, err := r.ReadString('\n')
			require.NoError(t, err)
			up, err := r.ReadString('\n')
			require.NoError(t, err)
			require.Equal(t, "up\n", up)

			var spawner int
			for pid, arg0 := range hostile.Children(cli.Process.Pid) {
				require.Equal(t, "brig:spawner", arg0, "brig run's only child is its spawner")
				spawner = pid
			}
			require.NotZero(t, spawner, "brig run has no spawner: it exec'd its helper")
			helpers := hostile.Children(spawner)
			require.Len(t, helpers, 1)
			for _, arg0 := range helpers {
				assert.Equal(t, "brig:helper", arg0)
			}
			cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", spawner))
			require.NoError(t, err)
			assert.Equal(t, "brig:spawner", strings.TrimRight(string(cmdline), "\x00"))
			environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", spawner))
			require.NoError(t, err)
			assert.NotContains(t, string(environ), marker)
			assert.Equal(t, "brig:init", strings.TrimSpace(pid1), "the jail's pid 1 shows brig's own arguments")

			require.NoError(t, cli.Wait())
			assert.ErrorIs(t, syscall.Kill(spawner, 0), syscall.ESRCH, "the spawner outlived brig run, or was not reaped")
			deadline := time.Now().Add(time.Second)
			for len(hostile.Children(spawner)) > 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			assert.Empty(t, hostile.Children(spawner))
		})
	}
}

// Nothing of brig outlives the command, whether or not it started a jail:
// with this test process as the subreaper, an orphaned spawner would show
// up as its child.
func TestRunLeavesNoSpawner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: jails use a private host uid range")
	}
	bin := buildBrig(t)
	require.NoError(t, unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))
	defer unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	for _, c := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"run", "--quiet", "--", "/bin/true"}, true},
		// Longer than any timeout a close of the spawner might have.
		{[]string{"run", "--quiet", "--", "/bin/sleep", "1.5"}, true},
		{[]string{"run", "--no-such-flag", "--", "/bin/true"}, false},
		{[]string{"run", "--quiet", "--", "/no/such/program"}, false},
	} {
		args := c.args
		before := hostile.Children(os.Getpid()) // this process's own spawner, from the tests that call runMain
		err := exec.Command(bin, args...).Run()
		if c.ok {
			require.NoError(t, err)
		} else {
			require.Error(t, err)
		}
		for pid, arg0 := range hostile.Children(os.Getpid()) {
			if _, ours := before[pid]; !ours {
				t.Errorf("brig %v left a process behind: %d %q", args, pid, arg0)
			}
		}
	}
}
