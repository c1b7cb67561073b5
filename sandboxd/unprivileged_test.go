package sandboxd

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/brig-sandbox/brig/internal/hostile"
	"github.com/brig-sandbox/brig/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	processv1 "sigs.k8s.io/agent-sandbox/packages/sandboxd/spec/process/v1"
)

// TestUnprivilegedServer runs `brig serve --sandboxd` as the pod's manifests do:
// as a user that is not root, owning the workspace. Its jails' user is
// that user; a file a jail writes is read over REST and one PUT is read by
// a jail; SIGTERM ends the server and nothing of it is left.
func TestUnprivilegedServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	wrap := testenv.AsNobody(t)
	// Not t.TempDir, whose parent only root may enter.
	dir, err := os.MkdirTemp("", "brig-sandboxd-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	brig := filepath.Join(dir, "brig")
	require.NoError(t, hostile.BuildCLI("..", brig))
	ws := filepath.Join(dir, "ws")
	require.NoError(t, os.Mkdir(ws, 0o755))
	nobody := 65534
	require.NoError(t, os.Chown(ws, nobody, nobody))
	grpcAddr, restAddr := freeLoopbackAddr(t), freeLoopbackAddr(t)
	cmd := exec.Command(wrap[0], append(wrap[1:], brig, "serve", "--sandboxd", "--workspace", ws, "--grpc-listen", grpcAddr, "--rest-listen", restAddr, "--shutdown-grace", "1s")...)
	var stderr testenv.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	var conn *grpc.ClientConn
	deadline := time.Now().Add(testenv.Scaled(10 * time.Second))
	for {
		resp, err := http.Get("http://" + restAddr + "/v1/health")
		if err == nil {
			resp.Body.Close()
			require.Equal(t, 200, resp.StatusCode)
			break
		}
		require.True(t, time.Now().Before(deadline), "the server did not come up: %s", stderr.String())
		time.Sleep(20 * time.Millisecond)
	}
	conn, err = grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	client := processv1.NewProcessServiceClient(conn)
	resp, err := client.Execute(context.Background(), &processv1.ExecuteRequest{Config: cfg("/bin/sh", "-c", "id -u; echo from-jail > out; grep -c Seccomp:.2 /proc/self/status")})
	require.NoError(t, err, stderr.String())
	assert.Equal(t, "1000\n1\n", string(resp.GetStdout()), "the jail's user, under seccomp; stderr %q", resp.GetStderr())
	fi, err := os.Stat(filepath.Join(ws, "out"))
	require.NoError(t, err)
	assert.EqualValues(t, nobody, fileOwner(fi), "the jail wrote as the server's user")
	get, err := http.Get("http://" + restAddr + "/v1/files/out")
	require.NoError(t, err)
	get.Body.Close()
	assert.Equal(t, 200, get.StatusCode)
	req, _ := http.NewRequest("PUT", "http://"+restAddr+"/v1/files/in.txt", strings.NewReader("from-rest"))
	put, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	put.Body.Close()
	require.Equal(t, 204, put.StatusCode)
	resp, err = client.Execute(context.Background(), &processv1.ExecuteRequest{Config: cfg("/bin/sh", "-c", "printf +jail >> in.txt && cat in.txt")})
	require.NoError(t, err)
	assert.Equal(t, "from-rest+jail", string(resp.GetStdout()), "a jail reads and writes what the server put: %s", resp.GetStderr())

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), stderr.String())
	assert.Empty(t, processesOf(nobody, cmd.Process.Pid), "processes of the server left")
}

// freeLoopbackAddr is a loopback address with a port free a moment ago.
func freeLoopbackAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// processesOf lists the processes of uid whose session is sid's (what a
// server started with setsid would leave) or whose parent chain reaches
// pid.
func processesOf(uid, pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat("/proc/"+e.Name(), &st) != nil || int(st.Uid) != uid {
			continue
		}
		for q, n := p, 0; q > 1 && n < 64; n++ {
			if q == pid {
				out = append(out, p)
				break
			}
			b, err := os.ReadFile("/proc/" + strconv.Itoa(q) + "/stat")
			if err != nil {
				break
			}
			f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
			q, _ = strconv.Atoi(f[1])
		}
	}
	return out
}
