package sandboxd

import (
	"context"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/brig-sandbox/brig/internal/testenv"
	"github.com/brig-sandbox/brig/jail"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	processv1 "sigs.k8s.io/agent-sandbox/packages/sandboxd/spec/process/v1"
)

// TestSlowClientBackPressures: a client that stops reading a Start stream
// stops the jailed writer in write(2) on its pipe; the server buffers no
// more than the HTTP/2 windows hold, and every byte arrives once the
// client reads again.
func TestSlowClientBackPressures(t *testing.T) {
	ts := startServer(t, Options{Config: jail.Config{OutputLimit: -1}})
	const total = 256 << 20
	ctx := context.Background()
	s := ts.start(t, ctx, &processv1.StartRequest{Config: cfg("/usr/bin/head", "-c", strconv.Itoa(total), "/dev/zero")})
	require.True(t, s.next())
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	// The client reads no more. The writer must end up blocked on its
	// pipe, the output it made so far being nowhere but the pipe and the
	// windows.
	deadline := time.Now().Add(testenv.Scaled(20 * time.Second))
	for !writerBlocked(t) {
		require.True(t, time.Now().Before(deadline), "the jailed writer never blocked: the server kept reading its pipe")
		time.Sleep(20 * time.Millisecond)
	}
	runtime.GC()
	var during runtime.MemStats
	runtime.ReadMemStats(&during)
	grew := int64(during.HeapInuse) - int64(before.HeapInuse)
	assert.Less(t, grew, int64(64<<20), "the heap grew by %d bytes while the client did not read", grew)

	n := s.stdout.Len()
	for {
		ev, err := s.stream.Recv()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		n += len(ev.GetStdout())
	}
	assert.Equal(t, total, n)
}

// writerBlocked reports whether a jailed `head` of this test's server is
// asleep in pipe_write.
func writerBlocked(t testing.TB) bool {
	for _, pid := range jailProcesses() {
		comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		wchan, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/wchan")
		if strings.TrimSpace(string(comm)) == "head" && strings.Contains(string(wchan), "pipe_write") {
			return true
		}
	}
	return false
}
