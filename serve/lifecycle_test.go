package serve

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/audit"
	"github.com/brig-sandbox/brig/internal/hostile"
	"github.com/brig-sandbox/brig/internal/testenv"
)

func TestIdleTimeoutAndMaxLifetime(t *testing.T) {
	ts := startServer(t, func(s string) string {
		return strings.Replace(noPool(s), "lifecycle: {drain_grace: 1s}", "lifecycle: {drain_grace: 1s, idle_timeout: 300ms, max_lifetime: 1500ms}", 1)
	})
	idle := ts.newSandbox(t, nil)
	ts.newContext(t, idle, "shell")
	busy := ts.newSandbox(t, nil)
	// busy is used more often than its idle timeout, so only its maximum
	// lifetime ends it.
	deadline := time.Now().Add(testenv.Scaled(10 * time.Second))
	for time.Now().Before(deadline) && ts.as(t, "GET", "/v1/sandboxes/"+busy+"/files/", nil).status == 200 {
		time.Sleep(50 * time.Millisecond)
	}
	assert.Equal(t, 404, ts.as(t, "GET", "/v1/sandboxes/"+idle, nil).status, "idle sandbox deleted")
	assert.Equal(t, 404, ts.as(t, "GET", "/v1/sandboxes/"+busy, nil).status, "sandbox past its max lifetime deleted")
	// The expiry's event follows the sandbox's removal (after its jails
	// are killed and its workspace unmounted), a moment after its 404.
	for time.Now().Before(deadline) && len(ts.events.find("sandbox.expire")) < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	assert.Len(t, ts.events.find("sandbox.expire"), 2)
	// The audit log says which limit ended each.
	var whys []string
	for _, r := range ofKind(auditRecords(t, filepath.Join(ts.stateDir, DefaultAuditFile)), audit.KindSandboxDelete) {
		assert.Equal(t, "alice", r.Tenant)
		whys = append(whys, r.Sandbox+" "+r.Detail)
	}
	assert.ElementsMatch(t, []string{idle + " idle_timeout", busy + " max_lifetime"}, whys)
	waitNoJails(t)
	entries, err := os.ReadDir(workspacesDir(ts.stateDir))
	require.NoError(t, err)
	assert.Empty(t, entries)
	// The tenant's counts came back: new sandboxes are allowed.
	ts.newSandbox(t, nil)
}

// SIGTERM's drain: new work gets 503, running work its grace, then it is
// killed and everything removed.
func TestDrain(t *testing.T) {
	ts := startServer(t, func(s string) string {
		return strings.Replace(noPool(s), "drain_grace: 1s", "drain_grace: 300ms", 1)
	})
	sb := ts.newSandbox(t, nil)
	ts.newContext(t, sb, "python")
	quick := make(chan answer, 1)
	slow := make(chan answer, 1)
	started := make(chan struct{}, 2)
	streamed := func(body string, out chan answer) {
		req, _ := http.NewRequest("POST", ts.url+"/v1/runs", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+ts.alice)
		req.Header.Set("Accept", NDJSONType)
		resp, err := ts.tcp.Do(req)
		if err != nil {
			started <- struct{}{}
			out <- answer{}
			return
		}
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		first, _ := br.ReadString('\n')
		started <- struct{}{}
		rest, _ := br.ReadString(0)
		out <- answer{status: resp.StatusCode, body: []byte(first + rest)}
	}
	go streamed(`{"command": ["/bin/sh", "-c", "echo up; sleep 0.1; echo done"]}`, quick)
	go streamed(`{"command": ["/bin/sh", "-c", "echo up; sleep 600"]}`, slow)
	<-started
	<-started
	drained := make(chan struct{})
	go func() {
		ts.srv.Drain(context.Background())
		close(drained)
	}()
	deadline := time.Now().Add(testenv.Scaled(5 * time.Second))
	for !ts.srv.draining.Load() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	a := ts.as(t, "POST", "/v1/runs", `{"command": ["/bin/true"]}`)
	assert.Equal(t, 503, a.status)
	assert.Equal(t, "draining", a.code())
	assert.Equal(t, 503, ts.as(t, "GET", "/v1/health", nil).status)
	<-drained
	q := readEvents(t, (<-quick).body)
	assert.Equal(t, "exited", q[len(q)-1]["reason"], "work that ends within the grace finishes")
	s := readEvents(t, (<-slow).body)
	assert.Equal(t, "canceled", s[len(s)-1]["reason"], "work past the grace is killed")
	waitNoJails(t)
	entries, err := os.ReadDir(workspacesDir(ts.stateDir))
	require.NoError(t, err)
	assert.Empty(t, entries)
}

// The host's admission cap queues briefly, then answers 503.
func TestAdmissionCap(t *testing.T) {
	ts := startServer(t, func(s string) string {
		return strings.Replace(noPool(s), "admission: {queue_wait: 100ms}", "admission: {concurrent: 1, queue_wait: 100ms}", 1)
	})
	started := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequest("POST", ts.url+"/v1/runs", strings.NewReader(`{"command": ["/bin/sh", "-c", "echo up; sleep 1"]}`))
		req.Header.Set("Authorization", "Bearer "+ts.alice)
		req.Header.Set("Accept", NDJSONType)
		resp, err := ts.tcp.Do(req)
		if err == nil {
			br := bufio.NewReader(resp.Body)
			br.ReadString('\n')
			close(started)
			br.ReadString(0)
			resp.Body.Close()
		} else {
			close(started)
		}
	}()
	<-started
	a := ts.do(t, ts.tcp, ts.url, "POST", "/v1/runs", ts.bob, `{"command": ["/bin/true"]}`)
	assert.Equal(t, 503, a.status, "%s", a.body)
	assert.Equal(t, "overloaded", a.code())
	assert.NotEmpty(t, a.header.Get("Retry-After"))
	<-done
	assert.Equal(t, 200, ts.do(t, ts.tcp, ts.url, "POST", "/v1/runs", ts.bob, `{"command": ["/bin/true"]}`).status)
}

// Whatever jailed code prints, the server holds at most the template's
// output limit of it.
func TestOutputBounded(t *testing.T) {
	ts := startServer(t, nil)
	a := ts.as(t, "POST", "/v1/runs", `{"command": ["/bin/sh", "-c", "yes | head -c 50M"]}`)
	require.Equal(t, 200, a.status)
	m := a.json(t)
	assert.Equal(t, "output_limit", m["reason"])
	assert.Equal(t, true, m["stdout_truncated"])
	assert.LessOrEqual(t, len(m["stdout"].(string)), DefaultOutputLimit)
	a = ts.as(t, "POST", "/v1/runs", `{"command": ["/bin/sh", "-c", "yes | head -c 50M"]}`, "Accept", NDJSONType)
	evs := readEvents(t, a.body)
	total := 0
	for _, e := range evs[:len(evs)-1] {
		total += len(e["data"].(string))
	}
	assert.LessOrEqual(t, total, DefaultOutputLimit)
	assert.Equal(t, "output_limit", evs[len(evs)-1]["reason"])
}

// A server killed with SIGKILL leaves workspaces mounted; the next start
// on the same state_dir removes them, and its jails died with it.
func TestKilledServerLeftoversRemoved(t *testing.T) {
	testenv.RequireRoot(t)
	if testing.Short() {
		t.Skip("builds brig")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "brig")
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, "../cmd/brig")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	stateDir := filepath.Join(dir, "state")
	token, sum := NewToken()
	config := filepath.Join(dir, "brig.yaml")
	sock := filepath.Join(dir, "brig.sock")
	require.NoError(t, os.WriteFile(config, []byte(fmt.Sprintf(`
state_dir: %s
listen: [unix:%s]
tenants: [{name: a, token_sha256: %s}]
templates: {default: {memory: 128M, workspace-size: 1M}}
`, stateDir, sock, sum)), 0o600))
	srv := exec.Command(bin, "serve", "--config", config)
	srv.Stderr = os.Stderr
	require.NoError(t, srv.Start())
	defer srv.Process.Kill()
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	deadline := time.Now().Add(testenv.Scaled(20 * time.Second))
	for {
		resp, err := client.Get("http://brig/v1/health")
		if err == nil {
			resp.Body.Close()
			break
		}
		require.True(t, time.Now().Before(deadline), "server did not come up: %v", err)
		time.Sleep(20 * time.Millisecond)
	}
	fi, err := os.Stat(sock)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o660), fi.Mode().Perm(), "the socket's mode")
	ts := &testServer{}
	a := ts.do(t, client, "http://brig", "POST", "/v1/sandboxes", token, `{}`)
	require.Equal(t, 201, a.status, "%s", a.body)
	sb := a.json(t)["id"].(string)
	a = ts.do(t, client, "http://brig", "POST", "/v1/sandboxes/"+sb+"/contexts", token, `{"language": "python"}`)
	require.Equal(t, 201, a.status, "%s", a.body)
	require.NotEmpty(t, workspaceUsers(), "the context's interpreter works in /workspace")
	killed := srv.Process.Pid
	require.NotEmpty(t, jailCgroupsAny(killed), "the killed server's jail has cgroups")
	require.NoError(t, srv.Process.Signal(syscall.SIGKILL))
	_ = srv.Wait()
	mounts, err := mountsBeneath(stateDir)
	require.NoError(t, err)
	require.Len(t, mounts, 1, "the killed server's workspace is left mounted")

	// The next server on the same state_dir removes what it left: the
	// workspace at its start, the cgroups at its first jail.
	next := exec.Command(bin, "serve", "--config", config)
	next.Stderr = os.Stderr
	require.NoError(t, next.Start())
	defer next.Process.Kill()
	deadline = time.Now().Add(testenv.Scaled(20 * time.Second))
	for {
		resp, err := client.Get("http://brig/v1/health")
		if err == nil {
			resp.Body.Close()
			break
		}
		require.True(t, time.Now().Before(deadline), "server did not come up: %v", err)
		time.Sleep(20 * time.Millisecond)
	}
	mounts, err = mountsBeneath(stateDir)
	require.NoError(t, err)
	assert.Empty(t, mounts)
	entries, err := os.ReadDir(workspacesDir(stateDir))
	require.NoError(t, err)
	assert.Empty(t, entries)
	a = ts.do(t, client, "http://brig", "POST", "/v1/runs", token, `{"command": ["/bin/true"]}`)
	require.Equal(t, 200, a.status, "%s", a.body)
	assert.Empty(t, jailCgroupsAny(killed), "the killed server's cgroups")
	// Only one server per state_dir.
	cfg, err := LoadConfig(config)
	require.NoError(t, err)
	_, err = New(cfg, Options{})
	assert.ErrorContains(t, err, "another brig serve uses it")
	require.NoError(t, next.Process.Signal(syscall.SIGTERM))
	require.NoError(t, next.Wait())
	// The killed server's jails died with it (the library's helper kills
	// a jail whose supervisor dies): no python of its context is left.
	deadline = time.Now().Add(testenv.Scaled(10 * time.Second))
	for time.Now().Before(deadline) && len(workspaceUsers()) > 0 {
		time.Sleep(20 * time.Millisecond)
	}
	assert.Empty(t, workspaceUsers())
}

// jailCgroupsAny lists the cgroups of jails of the supervisor pid, whatever
// their host ids (brig serve's jails use the library's default range).
func jailCgroupsAny(pid int) []string {
	var dirs []string
	for d := range hostile.Snapshot(hostile.JailIDs{First: 1_500_000_000, Count: 65536}).Cgroups {
		if strings.HasPrefix(filepath.Base(d), fmt.Sprintf("brig-%d-", pid)) {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// workspaceUsers lists processes whose cwd is in a workspace (a context's
// interpreter works in /workspace).
func workspaceUsers() []string {
	links, _ := filepath.Glob("/proc/[0-9]*/cwd")
	var out []string
	for _, l := range links {
		if target, err := os.Readlink(l); err == nil && target == WorkspaceTarget {
			out = append(out, l)
		}
	}
	return out
}

// A streamed client that stays connected but stops reading: once a write
// to it has waited streamWriteTimeout, its run is killed, not left to run
// to its limits.
func TestStalledClientEndsItsRun(t *testing.T) {
	ts := startServer(t, func(s string) string {
		return strings.Replace(noPool(s), "default: {memory: 256M, pids: 64, timeout: 20s,", "default: {memory: 256M, pids: 64, timeout: 20s, output-limit: 16M,", 1)
	})
	saved := streamWriteTimeout
	streamWriteTimeout = 300 * time.Millisecond
	defer func() { streamWriteTimeout = saved }()
	// A small receive buffer, never read: the server's writes block once
	// its send buffer (at most the host's tcp_wmem, below the 16M the
	// program may print) is full.
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	conn, err := d.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	body := `{"command": ["/usr/bin/yes"]}`
	_, err = fmt.Fprintf(conn, "POST /v1/runs HTTP/1.1\r\nHost: brig\r\nAuthorization: Bearer %s\r\nAccept: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		ts.alice, NDJSONType, len(body), body)
	require.NoError(t, err)
	deadline := time.Now().Add(testenv.Scaled(15 * time.Second))
	for len(ts.events.find("run")) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	runs := ts.events.find("run")
	require.Len(t, runs, 1, "the run ended")
	// Killed for its stalled client (the failed write kills the jail, and
	// net/http ends the request's context: whichever comes first names
	// it), not at its output limit or timeout.
	assert.Contains(t, []string{"signaled", "canceled"}, runs[0].Reason)
	waitNoJails(t)
}
