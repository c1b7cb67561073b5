package jail

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/internal/testenv"
)

func TestExtraFilesReachTheProgram(t *testing.T) {
	testenv.RequireRoot(t)
	toJailR, toJailW, err := os.Pipe()
	require.NoError(t, err)
	fromJailR, fromJailW, err := os.Pipe()
	require.NoError(t, err)
	cmd := Command(context.Background(), Config{}, "/bin/sh", "-c", `read line <&3; echo "got $line" >&4; ls /proc/self/fd | sort -n | tr '\n' ' ' >&4`)
	cmd.ExtraFiles = []*os.File{toJailR, fromJailW}
	require.NoError(t, cmd.Start())
	toJailR.Close()
	fromJailW.Close()
	_, _ = toJailW.WriteString("hello\n")
	toJailW.Close()
	out, err := io.ReadAll(fromJailR)
	require.NoError(t, err)
	require.NoError(t, cmd.Wait())
	// ls itself holds one more fd for the directory it lists.
	assert.Regexp(t, `^got hello\n0 1 2 3 4 5 $`, string(out), "only 0-4 plus ls's own")
}

// The most extra files a jail passes on all arrive; one more is refused
// before anything starts, with a message that says the limit.
func TestExtraFilesLimit(t *testing.T) {
	testenv.RequireRoot(t)
	files := make([]*os.File, MaxExtraFiles+1)
	for i := range files {
		f, err := os.Open(os.DevNull)
		require.NoError(t, err)
		defer f.Close()
		files[i] = f
	}
	cmd := Command(context.Background(), Config{}, "/bin/sh", "-c", `ls /proc/self/fd | wc -l`)
	cmd.ExtraFiles = files[:MaxExtraFiles]
	out, err := cmd.Output()
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprint(3+MaxExtraFiles+1), strings.TrimSpace(string(out)), "0-2, the extra files and ls's own")

	cmd = Command(context.Background(), Config{}, "/bin/true")
	cmd.ExtraFiles = files
	err = cmd.Run()
	var se *SetupError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "config", se.Step)
	assert.Contains(t, se.Err.Error(), "at most 64")
}

func TestSignalReachesProgramGroup(t *testing.T) {
	testenv.RequireRoot(t)
	stdout, w := io.Pipe()
	cmd := Command(context.Background(), Config{Timeout: 10 * time.Second}, "/bin/bash", "-c",
		// Whether ^C lands in a foreground sleep or in bash itself, the
		// trap sets stop and the loop ends.
		`trap 'echo interrupted; stop=1' INT; echo ready; until [ -n "$stop" ]; do sleep 0.05; done; echo after; sleep 30`)
	cmd.Stdout = w
	require.NoError(t, cmd.Start())
	// However the test goes, the reader sees EOF once the jail is gone.
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait(); w.Close() }()
	rd := bufio.NewReader(stdout)
	line, _ := rd.ReadString('\n')
	require.Equal(t, "ready\n", line)
	require.NoError(t, cmd.Signal(syscall.SIGINT))
	line, _ = rd.ReadString('\n')
	assert.Equal(t, "interrupted\n", line)
	line, _ = rd.ReadString('\n')
	assert.Equal(t, "after\n", line)
	assert.Error(t, cmd.Signal(syscall.SIGKILL), "SIGKILL is not forwarded")
	cmd.Kill()
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	require.Error(t, <-waited)
	assert.Equal(t, int(syscall.SIGKILL), cmd.Result.Signal)
	assert.Error(t, cmd.Signal(syscall.SIGINT), "after the end")
}
