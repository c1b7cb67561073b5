package serve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/audit"
	"github.com/brig-sandbox/brig/internal/testenv"
	"github.com/brig-sandbox/brig/internal/testenv/promserver"
	"github.com/brig-sandbox/brig/jail"
)

var builtBrig struct {
	once sync.Once
	bin  string
	err  error
}

// brigBinary builds the brig command once per test binary (TestMain
// removes it), for tests of a real brig serve process.
func brigBinary(t testing.TB) string {
	t.Helper()
	testenv.RequireRoot(t)
	if testing.Short() {
		t.Skip("builds brig")
	}
	builtBrig.once.Do(func() {
		dir, err := os.MkdirTemp("", "brig-serve-test-")
		if err != nil {
			builtBrig.err = err
			return
		}
		builtBrig.bin = filepath.Join(dir, "brig")
		out, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", builtBrig.bin, "../cmd/brig").CombinedOutput()
		if err != nil {
			builtBrig.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if builtBrig.err != nil {
		t.Fatal(builtBrig.err)
	}
	return builtBrig.bin
}

// freeLoopbackPort finds a port on 127.0.0.1 nobody listens on now.
func freeLoopbackPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// brigServe is a brig serve process of a test.
type brigServe struct {
	cmd      *exec.Cmd
	client   *http.Client
	stderr   *testenv.Buffer
	stateDir string
	config   string
	token    string
}

// startBrigServe runs brig serve on config (its text, %[1]s the state
// dir, %[2]s the socket, %[3]s the tenant's token hash) and waits for its
// health.
func startBrigServe(t testing.TB, dir, configText string, args ...string) *brigServe {
	t.Helper()
	bin := brigBinary(t)
	s := &brigServe{stateDir: filepath.Join(dir, "state"), config: filepath.Join(dir, "brig.yaml"), stderr: &testenv.Buffer{}}
	sock := filepath.Join(dir, "brig.sock")
	token, sum := NewToken()
	s.token = token
	if _, err := os.Stat(s.config); err != nil {
		require.NoError(t, os.WriteFile(s.config, []byte(fmt.Sprintf(configText, s.stateDir, sock, sum)), 0o600))
	} else {
		// A restart: the same config, so the same token.
		data, _ := os.ReadFile(s.config + ".token")
		s.token = string(data)
	}
	require.NoError(t, os.WriteFile(s.config+".token", []byte(s.token), 0o600))
	s.cmd = exec.Command(bin, append([]string{"serve", "--config", s.config}, args...)...)
	s.cmd.Stderr = s.stderr
	require.NoError(t, s.cmd.Start())
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			_ = s.cmd.Process.Kill()
			_ = s.cmd.Wait()
		}
	})
	s.client = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	deadline := time.Now().Add(testenv.Scaled(20 * time.Second))
	for {
		resp, err := s.client.Get("http://brig/v1/health")
		if err == nil {
			resp.Body.Close()
			return s
		}
		require.True(t, time.Now().Before(deadline), "brig serve did not come up: %v\n%s", err, s.stderr.String())
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *brigServe) post(t testing.TB, path, body string) answer {
	t.Helper()
	return (&testServer{}).do(t, s.client, "http://brig", "POST", path, s.token, body)
}

// stop ends the server as SIGTERM does and checks it left no jail.
func (s *brigServe) stop(t testing.TB) {
	t.Helper()
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, s.cmd.Wait(), "%s", s.stderr.String())
	deadline := time.Now().Add(testenv.Scaled(10 * time.Second))
	for time.Now().Before(deadline) && len(jailCgroupsAny(s.cmd.Process.Pid)) > 0 {
		time.Sleep(20 * time.Millisecond)
	}
	assert.Empty(t, jailCgroupsAny(s.cmd.Process.Pid), "cgroups of the server's jails left")
	mounts, err := mountsBeneath(s.stateDir)
	require.NoError(t, err)
	assert.Empty(t, mounts, "workspaces left mounted")
}

// A brig serve killed with SIGKILL mid-traffic leaves a log that brig
// audit verify passes (a record a crash cut is reported as torn, not as
// tampering), and the next start continues the chain.
func TestServeKilledMidTrafficAuditVerifies(t *testing.T) {
	dir := t.TempDir()
	const config = `
state_dir: %s
listen: [unix:%s]
tenants: [{name: a, token_sha256: %s, quotas: {requests_per_second: 1000, burst: 1000, concurrent: 8}}]
templates: {default: {memory: 128M, timeout: 10s, pool: 1}}
audit: {fsync: never}
`
	srv := startBrigServe(t, dir, config)
	logPath := filepath.Join(srv.stateDir, DefaultAuditFile)
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, "POST", "http://brig/v1/runs", strings.NewReader(`{"command": ["/bin/echo", "traffic"]}`))
				req.Header.Set("Authorization", "Bearer "+srv.token)
				if resp, err := srv.client.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		}()
	}
	deadline := time.Now().Add(testenv.Scaled(20 * time.Second))
	for time.Now().Before(deadline) {
		if fi, err := os.Stat(logPath); err == nil && fi.Size() > 8<<10 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGKILL))
	_ = srv.cmd.Wait()
	stop()
	wg.Wait()

	brig := brigBinary(t)
	verify := func() string {
		t.Helper()
		out, err := exec.Command(brig, "audit", "verify", logPath).CombinedOutput()
		require.NoError(t, err, "brig audit verify: %s", out)
		return string(out)
	}
	verify()
	// A crash inside a record's write(2) leaves part of a line: the
	// kill above rarely lands there, so its bytes are put there as such a
	// crash leaves them.
	f, err := os.OpenFile(logPath, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"time":"2026-12-03T13:00:00Z","seq":99999,"kind":"run","ten`)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	assert.Contains(t, verify(), "torn:")
	before, err := audit.Verify(logPath)
	require.NoError(t, err)

	next := startBrigServe(t, dir, config)
	a := next.post(t, "/v1/runs", `{"command": ["/bin/true"]}`)
	require.Equal(t, 200, a.status, "%s", a.body)
	next.stop(t)
	out := verify()
	assert.NotContains(t, out, "torn:")
	after, err := audit.Verify(logPath)
	require.NoError(t, err)
	assert.Equal(t, before.LastSeq+2, after.LastSeq, "the torn tail's record and the run's continue the chain")
	recs := auditRecords(t, logPath)
	assert.Equal(t, audit.KindTornTail, recs[len(recs)-2].Kind)
	assert.Equal(t, audit.KindRun, recs[len(recs)-1].Kind)
}

// /metrics is served on its own listener, with the token the config holds
// the hash of: 401 without it or with another, the metrics with it; the
// API's listener does not serve it.
func TestMetricsListener(t *testing.T) {
	token, sum := NewToken()
	port := freeLoopbackPort(t)
	ts := startServer(t, func(s string) string {
		return s + fmt.Sprintf("metrics: {listen: tcp:127.0.0.1:%d, token_sha256: %s}\n", port, sum)
	})
	require.Equal(t, fmt.Sprintf("tcp:127.0.0.1:%d", port), ts.srv.cfg.Metrics.Listen)
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	require.NoError(t, err)
	hs := &http.Server{Handler: ts.srv.MetricsHandler()}
	go hs.Serve(l)
	defer hs.Close()
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)

	a := ts.as(t, "POST", "/v1/runs", map[string]any{"command": []string{"/bin/true"}})
	require.Equal(t, 200, a.status, "%s", a.body)
	for _, tok := range []string{"", "brig_wrong"} {
		a = ts.do(t, ts.tcp, url, "GET", "", tok, nil)
		assert.Equal(t, 401, a.status, "token %q", tok)
		assert.NotContains(t, string(a.body), "brig_executions_total")
	}
	staleBefore := jail.DefaultSupervisor.StaleCgroupsRemoved()
	a = ts.do(t, ts.tcp, url, "GET", "", token, nil)
	staleAfter := jail.DefaultSupervisor.StaleCgroupsRemoved()
	require.Equal(t, 200, a.status, "%s", a.body)
	body := string(a.body)
	assert.Contains(t, body, `brig_executions_total{reason="exited",template="default",tenant="alice"} 1`)
	assert.Contains(t, body, `brig_live_sandboxes 0`)
	assert.Contains(t, body, `brig_audit_write_seconds_count 1`)
	assert.Contains(t, body, `brig_jail_setup_seconds_count{template="default"} 1`)
	assert.Contains(t, body, `brig_pool_size{template="default"} 1`)
	assert.Regexp(t, `brig_limiter_info\{kind="(cgroup1|cgroup2|rlimit)"\} 1`, body)
	// The library's count, read at the scrape (TestFaultSupervisorKilledMidRun
	// holds the count itself to the cgroups a sweep removed). A pooled
	// jail's sweep may still be running: the count only grows, so the
	// scraped one lies between those read around the scrape.
	m := regexp.MustCompile(`(?m)^brig_stale_cgroups_removed_total (\d+)$`).FindStringSubmatch(body)
	if assert.NotNil(t, m, "brig_stale_cgroups_removed_total") {
		stale, err := strconv.ParseUint(m[1], 10, 64)
		require.NoError(t, err)
		assert.True(t, staleBefore <= stale && stale <= staleAfter, "scraped %d, the library's %d before and %d after", stale, staleBefore, staleAfter)
	}
	a = ts.as(t, "GET", "/metrics", nil)
	assert.Equal(t, 404, a.status, "the API's listener serves no metrics")
}

// Without a token in the config, the metrics are open.
func TestMetricsWithoutToken(t *testing.T) {
	open := startServer(t, func(s string) string { return noPool(s) + "metrics: {listen: tcp:127.0.0.1:1}\n" })
	osrv := httpServe(t, open.srv.MetricsHandler())
	a := open.do(t, open.tcp, osrv+"/metrics", "GET", "", "", nil)
	require.Equal(t, 200, a.status)
	assert.Contains(t, string(a.body), "brig_admission_capacity")
}

func httpServe(t testing.TB, h http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	hs := &http.Server{Handler: h}
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	return "http://" + l.Addr().String()
}

// The end to end test: a real Prometheus, with brig's alert rules, scrapes
// a real brig serve through its metrics token while a tenant runs memory
// bombs (python past a small template's memory limit) and another runs
// clean code; the OOM alert goes pending or firing for the first, and
// nothing of either server is left afterwards.
func TestOOMAlertEndToEnd(t *testing.T) {
	if _, err := os.Stat(promserver.Binary); err != nil {
		t.Skipf("needs Prometheus at %s: the Debian package prometheus (make test-deps installs it)", promserver.Binary)
	}
	dir := t.TempDir()
	port := freeLoopbackPort(t)
	metricsToken, metricsSum := NewToken()
	cleanToken, cleanSum := NewToken()
	config := `
state_dir: %s
listen: [unix:%s]
tenants:
  - {name: bomber, token_sha256: %s, quotas: {requests_per_second: 1000, burst: 1000, concurrent: 2}}
  - {name: clean, token_sha256: ` + cleanSum + `, quotas: {requests_per_second: 1000, burst: 1000, concurrent: 2}}
templates:
  default: {memory: 128M, timeout: 10s}
  small: {memory: 32M, timeout: 10s, pool: 2}
` + fmt.Sprintf("metrics: {listen: tcp:127.0.0.1:%d, token_sha256: %s}\n", port, metricsSum)
	srv := startBrigServe(t, dir, config, "--log-format", "json")

	var promPid int
	var promData string
	t.Run("prometheus", func(t *testing.T) {
		prom := promserver.Start(t, promserver.Config{
			Targets:     []string{fmt.Sprintf("127.0.0.1:%d", port)},
			BearerToken: metricsToken,
			RuleFiles:   []string{"../deploy/prometheus/brig-rules.yml"},
			Interval:    time.Second,
		})
		promPid, promData = prom.Pid(), prom.DataDir()
		ctx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var mu sync.Mutex
		reasons := map[string]int{}
		// Two of the bomber's clients, and one of a tenant whose code
		// exits cleanly on the same template.
		for i := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body, token := `{"language": "python", "template": "small", "code": "a = []\nwhile True:\n    a.append(b'x' * (4 << 20))"}`, srv.token
				if i == 2 {
					body, token = `{"language": "python", "template": "small", "code": "print(1)"}`, cleanToken
				}
				for ctx.Err() == nil {
					req, _ := http.NewRequestWithContext(ctx, "POST", "http://brig/v1/runs", strings.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+token)
					resp, err := srv.client.Do(req)
					if err != nil {
						continue
					}
					var b bytes.Buffer
					_, _ = b.ReadFrom(resp.Body)
					resp.Body.Close()
					mu.Lock()
					switch {
					case strings.Contains(b.String(), `"reason":"oom"`):
						reasons["oom"]++
					case strings.Contains(b.String(), `"reason":"exited"`):
						reasons["exited"]++
					default:
						reasons[b.String()]++
					}
					mu.Unlock()
				}
			}()
		}
		defer func() { stop(); wg.Wait() }()
		a := prom.WaitForAlert(t, "BrigTenantOOMKills", map[string]string{"tenant": "bomber"}, 120*time.Second)
		assert.Contains(t, []string{"pending", "firing"}, a.State)
		mu.Lock()
		assert.Positive(t, reasons["oom"], "the bombs were OOM-killed: %v", reasons)
		assert.Positive(t, reasons["exited"], "the clean tenant's runs exited: %v", reasons)
		mu.Unlock()
		alerts, err := prom.Alerts(context.Background())
		require.NoError(t, err)
		for _, a := range alerts {
			assert.NotEqual(t, "clean", a.Labels["tenant"], "alert %s for the tenant whose code exits", a.Labels["alertname"])
		}
	})
	srv.stop(t)
	if promPid != 0 {
		assert.True(t, errors.Is(syscall.Kill(promPid, 0), syscall.ESRCH), "prometheus still running")
		_, err := os.Stat(promData)
		assert.True(t, errors.Is(err, os.ErrNotExist), "prometheus's storage left")
	}
	// The server's log was JSON, with request ids.
	first, _, _ := strings.Cut(srv.stderr.String(), "\n")
	assert.True(t, strings.HasPrefix(first, "{"), "a JSON log line: %s", first)
	assert.Contains(t, srv.stderr.String(), `"request_id":"req_`)
}
