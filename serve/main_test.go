package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/cgroup"
	"github.com/brig-sandbox/brig/internal/hostile"
	"github.com/brig-sandbox/brig/internal/testenv"
	"github.com/brig-sandbox/brig/jail"
)

// TestMain leaves the host's cgroups as it found them, as the other
// packages' tests do.
func TestMain(m *testing.M) {
	code := m.Run()
	if builtBrig.bin != "" {
		os.RemoveAll(filepath.Dir(builtBrig.bin))
	}
	_ = jail.DefaultSupervisor.Close()
	cgroup.RemoveIdle()
	if os.Geteuid() == 0 {
		if err := cgroup.RemoveParent(cgroup.Options{}); err != nil && !errors.Is(err, syscall.EBUSY) {
			fmt.Fprintln(os.Stderr, "remove cgroup parents:", err)
		}
	}
	os.Exit(code)
}

// testIDs is this test process's own host id range for jails, so that the
// check that nothing is left sees only this process's jails when other
// test runs share the machine.
var testIDs = jail.IDRange{First: 1_700_000_000 + uint32(os.Getpid()%32768)*4096, Count: 4096}

type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) Observe(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) find(action string) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, e := range r.events {
		if e.Action == action {
			out = append(out, e)
		}
	}
	return out
}

type testServer struct {
	srv      *Server
	url      string // over TCP on loopback
	sockURL  string // the same server over a unix socket
	sock     string // that socket's path
	tcp      *http.Client
	unix     *http.Client
	stateDir string
	alice    string // tokens
	bob      string
	events   *recorder
	hs       *http.Server
}

const testConfig = `
state_dir: %s
max_body_bytes: 4K
max_file_bytes: 64K
admission: {queue_wait: 100ms}
lifecycle: {drain_grace: 1s}
tenants:
  - name: alice
    token_sha256: %s
    quotas: {requests_per_second: 1000, burst: 1000, concurrent: 4, sandboxes: 4, contexts: 4}
  - name: bob
    token_sha256: %s
templates:
  default: {memory: 256M, pids: 64, timeout: 20s, workspace-size: 1M, pool: 1}
  tiny: {memory: 64M, timeout: 5s, workspace-size: 128K}
`

// startServer serves a fresh server on loopback TCP and a unix socket;
// edit changes the config text before it is parsed.
func startServer(t testing.TB, edit func(string) string) *testServer {
	t.Helper()
	testenv.RequireRoot(t)
	ts := &testServer{stateDir: t.TempDir(), events: &recorder{}}
	var aliceSum, bobSum string
	ts.alice, aliceSum = NewToken()
	ts.bob, bobSum = NewToken()
	text := fmt.Sprintf(testConfig, ts.stateDir, aliceSum, bobSum)
	if edit != nil {
		text = edit(text)
	}
	cfg, err := ParseConfig("test.yaml", []byte(text))
	require.NoError(t, err)
	for name, tpl := range cfg.Templates {
		tpl.Jail.HostIDs = testIDs
		cfg.Templates[name] = tpl
	}
	ts.srv, err = New(cfg, Options{Observer: ts.events})
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	sock := filepath.Join(t.TempDir(), "brig.sock")
	ul, err := net.Listen("unix", sock)
	require.NoError(t, err)
	ts.hs = &http.Server{Handler: ts.srv}
	go ts.hs.Serve(l)
	go ts.hs.Serve(ul)
	ts.url = "http://" + l.Addr().String()
	ts.sockURL = "http://brig"
	ts.sock = sock
	ts.tcp = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	ts.unix = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	t.Cleanup(func() {
		ts.srv.Close()
		ts.hs.Close()
		ts.assertNothingLeft(t)
	})
	return ts
}

// assertNothingLeft checks the host after the server closed: no jail
// process of this test run, no mount or directory in the state dir.
func (ts *testServer) assertNothingLeft(t testing.TB) {
	t.Helper()
	waitNoJails(t)
	// The jails' cgroups, kept for reuse at their end, go when idle.
	cgroup.RemoveIdle()
	assert.Empty(t, jailCgroups(os.Getpid()), "cgroups left")
	mounts, err := mountsBeneath(ts.stateDir)
	require.NoError(t, err)
	assert.Empty(t, mounts, "mounts left in the state dir")
	entries, err := os.ReadDir(workspacesDir(ts.stateDir))
	require.NoError(t, err)
	assert.Empty(t, entries, "workspaces left")
}

// jailProcesses lists the host's processes running as one of this test
// run's jail ids or as a workspace owner.
func jailProcesses(t testing.TB) []string {
	t.Helper()
	dirs, _ := filepath.Glob("/proc/[0-9]*/status")
	var out []string
	for _, st := range dirs {
		data, err := os.ReadFile(st)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" {
				uid, _ := strconv.ParseUint(f[1], 10, 32)
				if (uid >= uint64(testIDs.First) && uid < uint64(testIDs.First+testIDs.Count)) ||
					(uid >= uint64(WorkspaceIDs.First) && uid < uint64(WorkspaceIDs.First+WorkspaceIDs.Count)) {
					cmdline, _ := os.ReadFile(filepath.Join(filepath.Dir(st), "cmdline"))
					out = append(out, st+" "+strings.ReplaceAll(string(cmdline), "\x00", " "))
				}
			}
		}
	}
	return out
}

// waitNoJails waits for this run's jails to be gone (the server kills
// them, the kernel reaps them a moment later). A template's pool keeps
// jails ready: call it mid-test only on a server without one (noPool).
func waitNoJails(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(testenv.Scaled(10 * time.Second))
	for len(jailProcesses(t)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	assert.Empty(t, jailProcesses(t), "jail processes still running")
}

// jailCgroups lists the cgroup directories of jails of the supervisor pid.
func jailCgroups(pid int) []string {
	var dirs []string
	for d := range hostile.Snapshot(hostile.JailIDs{First: testIDs.First, Count: testIDs.Count}).Cgroups {
		if strings.HasPrefix(filepath.Base(d), fmt.Sprintf("brig-%d-", pid)) {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

type answer struct {
	status int
	body   []byte
	header http.Header
}

func (a answer) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(a.body, &m), "%s", a.body)
	return m
}

func (a answer) code() string {
	var e errorBody
	_ = json.Unmarshal(a.body, &e)
	return e.Error.Code
}

// do sends a request; body is JSON-encoded unless it is a string or
// []byte (sent as is).
func (ts *testServer) do(t testing.TB, c *http.Client, base, method, path, token string, body any, header ...string) answer {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		require.NoError(t, err)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, base+path, rd)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return answer{resp.StatusCode, data, resp.Header}
}

// as is do over TCP with alice's token.
func (ts *testServer) as(t testing.TB, method, path string, body any, header ...string) answer {
	t.Helper()
	return ts.do(t, ts.tcp, ts.url, method, path, ts.alice, body, header...)
}

// newSandbox creates a sandbox of alice's and returns its id.
func (ts *testServer) newSandbox(t testing.TB, body any) string {
	t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	a := ts.as(t, "POST", "/v1/sandboxes", body)
	require.Equal(t, http.StatusCreated, a.status, "%s", a.body)
	return a.json(t)["id"].(string)
}

func (ts *testServer) newContext(t testing.TB, sb, language string) string {
	t.Helper()
	a := ts.as(t, "POST", "/v1/sandboxes/"+sb+"/contexts", map[string]string{"language": language})
	require.Equal(t, http.StatusCreated, a.status, "%s", a.body)
	return a.json(t)["id"].(string)
}

// events reads an NDJSON answer.
func readEvents(t testing.TB, body []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), "%s", sc.Bytes())
		out = append(out, m)
	}
	return out
}

// noPool edits the test config to keep no jails ready.
func noPool(text string) string { return strings.ReplaceAll(text, "pool: 1", "pool: 0") }
