package sandboxd

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/brig-sandbox/brig/internal/testenv"
	"github.com/brig-sandbox/brig/jail"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	processv1 "sigs.k8s.io/agent-sandbox/packages/sandboxd/spec/process/v1"
)

// testServer is a Server on loopback with its gRPC client (the module's
// generated one) and its REST base URL.
type testServer struct {
	*Server
	client    processv1.ProcessServiceClient
	conn      *grpc.ClientConn
	restURL   string
	grpcAddr  string
	workspace string
	served    chan error
}

// workspaceOwner owns the test workspaces: a user that is not root, as
// the idmapped bind needs.
const workspaceOwner = 1000

func newTestWorkspace(t testing.TB) string {
	dir := t.TempDir()
	require.NoError(t, os.Chown(dir, workspaceOwner, workspaceOwner))
	return dir
}

// startServer starts a Server over a fresh workspace. At cleanup it shuts
// the server down and checks that nothing is left: no jailed process, no
// mount the test did not have, no goroutine of the server's.
func startServer(t testing.TB, opts Options) *testServer {
	t.Helper()
	testenv.RequireRoot(t)
	if opts.Workspace == "" {
		opts.Workspace = newTestWorkspace(t)
	}
	if opts.Config.Timeout == 0 {
		opts.Config.Timeout = testenv.Scaled(60 * time.Second)
	}
	mountsBefore := mounts(t)
	goroutinesBefore := runtime.NumGoroutine()
	s, err := New(opts)
	require.NoError(t, err)
	gln, err := Listen("127.0.0.1:0")
	require.NoError(t, err)
	rln, err := Listen("127.0.0.1:0")
	require.NoError(t, err)
	ts := &testServer{Server: s, grpcAddr: gln.Addr().String(), restURL: "http://" + rln.Addr().String(), workspace: opts.Workspace, served: make(chan error, 1)}
	go func() { ts.served <- s.Serve(gln, rln) }()
	ts.conn, err = grpc.NewClient(gln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	ts.client = processv1.NewProcessServiceClient(ts.conn)
	t.Cleanup(func() {
		ts.conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), testenv.Scaled(30*time.Second))
		defer cancel()
		require.NoError(t, s.Shutdown(ctx))
		require.NoError(t, <-ts.served)
		require.Empty(t, jailProcesses(), "jailed processes left after Shutdown")
		// Jails mount only in their own namespaces; the host's mount
		// table must be as it was.
		deadline := time.Now().Add(testenv.Scaled(5 * time.Second))
		mine := filepath.Dir(opts.Workspace)
		for len(newMounts(t, mountsBefore, mine)) > 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		require.Empty(t, newMounts(t, mountsBefore, mine), "host mounts left")
		// The jail package keeps a few goroutines of its own (the spawner's
		// reaper, the idle cgroups' timers); the server's must all be gone.
		for runtime.NumGoroutine() > goroutinesBefore+4 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > goroutinesBefore+4 {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines left, %d before:\n%s", n, goroutinesBefore, buf[:runtime.Stack(buf, true)])
		}
	})
	return ts
}

// mounts lists the host's mounts by id and mount point.
func mounts(t testing.TB) map[string]bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	m := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 {
			m[f[0]+" "+f[4]] = true
		}
	}
	return m
}

// newMounts lists the host's mounts under dir (the test's own temporary
// directory) that were not there before. Other test binaries on the
// machine mount elsewhere, and come and go on their own.
func newMounts(t testing.TB, before map[string]bool, dir string) []string {
	var out []string
	for m := range mounts(t) {
		if !before[m] && strings.Contains(m, " "+dir) {
			out = append(out, m)
		}
	}
	return out
}

func TestListenRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:9090", ":9090", "[::]:8080", "10.0.0.1:80", "localhost:9090", "example.com:1", "127.0.0.1", "[fe80::1%lo]:80"} {
		_, err := Listen(addr)
		require.Error(t, err, addr)
		require.Contains(t, err.Error(), "loopback", addr)
	}
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0", "127.0.0.2:0"} {
		ln, err := Listen(addr)
		if err != nil && strings.Contains(addr, "::1") && !strings.Contains(err.Error(), "loopback") {
			t.Logf("%s: %v (no IPv6 loopback here)", addr, err)
			continue
		}
		require.NoError(t, err, addr)
		ln.Close()
	}
	// Serve checks the listeners it is given, too.
	s, err := New(Options{Workspace: newTestWorkspace(t)})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	require.NoError(t, err)
	defer ln.Close()
	lo, err := Listen("127.0.0.1:0")
	require.NoError(t, err)
	defer lo.Close()
	require.ErrorContains(t, s.Serve(ln, lo), "loopback")
	require.NoError(t, s.Shutdown(context.Background()))
}

func TestNewRefusesRootOwnedWorkspace(t *testing.T) {
	testenv.RequireRoot(t)
	_, err := New(Options{Workspace: t.TempDir()})
	require.ErrorContains(t, err, "owned by root")
	_, err = New(Options{Workspace: "/no/such/dir"})
	require.ErrorContains(t, err, "no such file")
	ws := newTestWorkspace(t)
	_, err = New(Options{Workspace: ws, Config: jail.Config{Binds: []jail.Bind{{Source: "/usr", Target: "/workspace"}}}})
	require.ErrorContains(t, err, "drop that bind")
}

func (ts *testServer) grpcPort() string {
	_, port, _ := net.SplitHostPort(ts.grpcAddr)
	return port
}
