// Package promserver runs a real Prometheus for a test: Debian's
// /usr/bin/prometheus on 127.0.0.1, with its storage in the test's temp
// directory, scraping the test's targets and evaluating its rule files,
// stopped and gone when the test ends. The metrics tests use it to see an
// alert rule fire on what brig exposes; the end-to-end test of brig serve
// uses it the same way against the real server.
package promserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/brig-sandbox/brig/internal/testenv"
)

// Binary is Debian's Prometheus (the prometheus package, which `make deps`
// installs).
const Binary = "/usr/bin/prometheus"

// Config is what the Prometheus of a test scrapes and evaluates.
type Config struct {
	// Targets are the host:port addresses of the /metrics endpoints to
	// scrape, under job "brig".
	Targets []string
	// MetricsPath is their path; "/metrics" when "".
	MetricsPath string
	// BearerToken, when set, is sent with every scrape.
	BearerToken string
	// RuleFiles are the rule files to load (absolute, or relative to the
	// test's directory).
	RuleFiles []string
	// Interval is both the scrape and the rule evaluation interval; one
	// second when 0. A short one lets a rule see a change within seconds.
	Interval time.Duration
}

// Prometheus is a Prometheus server started by Start.
type Prometheus struct {
	// URL is its base URL, http://127.0.0.1:PORT.
	URL     string
	dataDir string
	cmd     *exec.Cmd
	log     *testenv.Buffer
	// exited is closed when the process has been waited for.
	exited  chan struct{}
	waitErr error
}

// Start starts Prometheus for cfg and waits until it is ready; the test's
// cleanup stops it and removes its storage. It skips the test without
// Debian's prometheus package, and fails it if Prometheus does not start.
func Start(t testing.TB, cfg Config) *Prometheus {
	t.Helper()
	if _, err := os.Stat(Binary); err != nil {
		t.Skipf("needs Prometheus at %s: the Debian package prometheus (make deps installs it)", Binary)
	}
	dir := t.TempDir()
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, configFile(t, cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	// The free port is found by binding and closing it, so another process
	// may take it before Prometheus binds it; that failure is told apart
	// from any other and the start made again with another port, a bounded
	// number of times.
	for attempt := 1; ; attempt++ {
		p, err := start(t, config, filepath.Join(dir, "data"))
		if err == nil {
			return p
		}
		if !errors.Is(err, errPortTaken) || attempt == 3 {
			t.Fatal(err)
		}
	}
}

var errPortTaken = errors.New("the port was taken before Prometheus bound it")

func start(t testing.TB, config, data string) (*Prometheus, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	p := &Prometheus{URL: "http://" + addr, dataDir: data, log: &testenv.Buffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(Binary,
		"--config.file="+config,
		"--storage.tsdb.path="+data,
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	// Should the test binary die, Prometheus dies with it.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", Binary, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	if err := p.waitReady(testenv.Scaled(30 * time.Second)); err != nil {
		p.stop()
		if strings.Contains(p.log.String(), "address already in use") {
			return nil, fmt.Errorf("%s: %w", addr, errPortTaken)
		}
		return nil, fmt.Errorf("prometheus: %w; its log:\n%s", err, p.log.String())
	}
	t.Cleanup(func() {
		if err := p.stop(); err != nil {
			t.Errorf("stopping prometheus: %v; its log:\n%s", err, p.log.String())
		}
	})
	return p, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func configFile(t testing.TB, cfg Config) []byte {
	interval := cfg.Interval
	if interval == 0 {
		interval = time.Second
	}
	path := cfg.MetricsPath
	if path == "" {
		path = "/metrics"
	}
	var rules []string
	for _, f := range cfg.RuleFiles {
		abs, err := filepath.Abs(f)
		if err != nil {
			t.Fatal(err)
		}
		rules = append(rules, abs)
	}
	// JSON is YAML: every value is quoted and escaped by the encoder.
	scrape := map[string]any{
		"job_name":       "brig",
		"metrics_path":   path,
		"static_configs": []any{map[string]any{"targets": cfg.Targets}},
	}
	if cfg.BearerToken != "" {
		scrape["authorization"] = map[string]any{"type": "Bearer", "credentials": cfg.BearerToken}
	}
	b, err := json.MarshalIndent(map[string]any{
		"global": map[string]any{
			"scrape_interval":     interval.String(),
			"scrape_timeout":      interval.String(),
			"evaluation_interval": interval.String(),
		},
		"rule_files":     rules,
		"scrape_configs": []any{scrape},
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (p *Prometheus) waitReady(d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		select {
		case <-p.exited:
			return fmt.Errorf("exited before it was ready: %v", p.waitErr)
		default:
		}
		resp, err := http.Get(p.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v (last: %v)", d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends Prometheus: SIGTERM, and SIGKILL if it has not exited in time.
// Its storage goes with the test's temp directory.
func (p *Prometheus) stop() error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(testenv.Scaled(15 * time.Second)):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return errors.New("did not exit on SIGTERM; killed")
	}
}

// Pid is the Prometheus process's id, for a test that checks it is gone.
func (p *Prometheus) Pid() int { return p.cmd.Process.Pid }

// DataDir is its storage directory (in the test's temp directory).
func (p *Prometheus) DataDir() string { return p.dataDir }

// Log is what Prometheus logged so far (warnings and errors).
func (p *Prometheus) Log() string { return p.log.String() }

// Alert is one alert of /api/v1/alerts.
type Alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"` // pending or firing
	ActiveAt    time.Time         `json:"activeAt"`
	Value       string            `json:"value"`
}

// maxAPIResponse caps what is read of one API answer: a test's Prometheus
// has a few series and alerts.
const maxAPIResponse = 4 << 20

// Alerts are the alerts pending or firing now.
func (p *Prometheus) Alerts(ctx context.Context) ([]Alert, error) {
	var data struct {
		Alerts []Alert `json:"alerts"`
	}
	if err := p.get(ctx, "/api/v1/alerts", &data); err != nil {
		return nil, err
	}
	return data.Alerts, nil
}

// Sample is one series of an instant query's answer.
type Sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"` // [unix time, "value"]
}

// Query evaluates expr now.
func (p *Prometheus) Query(ctx context.Context, expr string) ([]Sample, error) {
	var data struct {
		ResultType string   `json:"resultType"`
		Result     []Sample `json:"result"`
	}
	if err := p.get(ctx, "/api/v1/query?query="+url.QueryEscape(expr), &data); err != nil {
		return nil, err
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("query %q: a %s, want a vector", expr, data.ResultType)
	}
	return data.Result, nil
}

func (p *Prometheus) get(ctx context.Context, path string, data any) error {
	req, err := http.NewRequestWithContext(ctx, "GET", p.URL+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("prometheus %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIResponse))
	if err != nil {
		return fmt.Errorf("prometheus %s: %w", path, err)
	}
	var answer struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return fmt.Errorf("prometheus %s: %d %.200q: %w", path, resp.StatusCode, body, err)
	}
	if answer.Status != "success" {
		return fmt.Errorf("prometheus %s: %s: %s", path, answer.Status, answer.Error)
	}
	return json.Unmarshal(answer.Data, data)
}

// WaitForAlert polls the alerts until one named name whose labels include
// labels is pending or firing, and returns it; it fails the test after d
// (scaled by testenv.Scaled), showing the alerts and Prometheus's log.
func (p *Prometheus) WaitForAlert(t testing.TB, name string, labels map[string]string, d time.Duration) Alert {
	t.Helper()
	d = testenv.Scaled(d)
	deadline := time.Now().Add(d)
	var last []Alert
	var lastErr error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		last, lastErr = p.Alerts(ctx)
		cancel()
		for _, a := range last {
			if a.Labels["alertname"] == name && hasLabels(a.Labels, labels) {
				return a
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no alert %s%v pending or firing after %v; alerts %+v (%v); prometheus's log:\n%s", name, labels, d, last, lastErr, p.Log())
	return Alert{}
}

func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}
