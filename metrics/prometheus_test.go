package metrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/brig-sandbox/brig/internal/testenv"
	"github.com/brig-sandbox/brig/internal/testenv/promserver"
)

const (
	rulesFile     = "../deploy/prometheus/brig-rules.yml"
	rulesTestFile = "../deploy/prometheus/brig-rules_test.yml"
)

func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("needs promtool: the Debian package prometheus (make deps installs it)")
	}
	return p
}

// The alert rules are valid, and each fires on the inputs of
// brig-rules_test.yml that must fire it and not on those that must not.
func TestAlertRules(t *testing.T) {
	tool := promtool(t)
	for _, args := range [][]string{{"check", "rules", rulesFile}, {"test", "rules", rulesTestFile}} {
		out, err := exec.Command(tool, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if !strings.Contains(string(out), "SUCCESS") {
			t.Fatalf("promtool %s: no SUCCESS in\n%s", strings.Join(args, " "), out)
		}
	}
}

// A real Prometheus scrapes a real loopback server of a Set while tenant
// alice's executions are OOM-killed and bob's exit: the OOM rule of
// brig-rules.yml goes pending (or firing) for alice and not for bob, and
// the Prometheus process and its storage are gone afterwards.
func TestOOMAlertInRealPrometheus(t *testing.T) {
	s := newTestSet(t, Options{LiveSandboxes: func() int { return 2 }})
	const token = "metrics-token-for-prometheus"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", s.Handler(token, nil))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	defer func() {
		srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("metrics server: %v", err)
		}
	}()

	var pid int
	var dataDir string
	t.Run("prometheus", func(t *testing.T) {
		prom := promserver.Start(t, promserver.Config{
			Targets:     []string{l.Addr().String()},
			BearerToken: token,
			RuleFiles:   []string{rulesFile},
			Interval:    time.Second,
		})
		pid, dataDir = prom.Pid(), prom.DataDir()

		// The executions go on while Prometheus scrapes, as a tenant's
		// memory bombs would: whenever the first scrape comes, later ones
		// see the count rise.
		ctx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					s.ExecutionDone("alice", "python", "oom", 300*time.Millisecond, 200*time.Millisecond, 256<<20)
					s.ExecutionDone("bob", "python", "exited", 10*time.Millisecond, 5*time.Millisecond, 8<<20)
				}
			}
		}()
		defer func() { stop(); wg.Wait() }()

		a := prom.WaitForAlert(t, "BrigTenantOOMKills", map[string]string{"tenant": "alice"}, 60*time.Second)
		if a.State != "pending" && a.State != "firing" {
			t.Errorf("alert state %q", a.State)
		}
		if !strings.Contains(a.Annotations["summary"], "alice") || a.Labels["severity"] != "warning" {
			t.Errorf("alert %+v: want alice in its summary and severity warning", a)
		}
		alerts, err := prom.Alerts(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range alerts {
			if a.Labels["tenant"] != "alice" {
				t.Errorf("alert %s for %q: only alice's executions were killed", a.Labels["alertname"], a.Labels["tenant"])
			}
		}
		// The scrape went through the token, and Prometheus holds the
		// callbacks' values too.
		got, err := prom.Query(context.Background(), `brig_live_sandboxes{job="brig"}`)
		if err != nil || len(got) != 1 || got[0].Value[1] != "2" {
			t.Errorf("brig_live_sandboxes in Prometheus: %+v (%v), want 2", got, err)
		}
	})
	if pid == 0 {
		return // skipped or failed before it started
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("prometheus (pid %d) still there after the test: %v", pid, err)
	}
	if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("prometheus's storage %s still there: %v", dataDir, err)
	}
}

// A real Prometheus with the wrong token scrapes nothing (up is 0, no brig
// series), and with the right one it scrapes (up is 1): the token seen from
// the scraper's side.
func TestPrometheusScrapeNeedsToken(t *testing.T) {
	s := newTestSet(t, Options{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: s.Handler("the-right-token", nil), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	defer srv.Close()
	for _, c := range []struct {
		token string
		up    string
	}{{"a-wrong-token", "0"}, {"the-right-token", "1"}} {
		t.Run(c.token, func(t *testing.T) {
			prom := promserver.Start(t, promserver.Config{Targets: []string{l.Addr().String()}, BearerToken: c.token})
			deadline := time.Now().Add(testenv.Scaled(30 * time.Second))
			var got []promserver.Sample
			for {
				got, err = prom.Query(context.Background(), `up{job="brig"}`)
				if err == nil && len(got) == 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no scrape after 30s: %+v (%v); log:\n%s", got, err, prom.Log())
				}
				time.Sleep(200 * time.Millisecond)
			}
			if got[0].Value[1] != c.up {
				t.Fatalf("up with token %q: %v, want %s", c.token, got[0].Value[1], c.up)
			}
			brig, err := prom.Query(context.Background(), `count({job="brig",__name__=~"brig_.*"})`)
			if err != nil {
				t.Fatal(err)
			}
			if (len(brig) > 0) != (c.up == "1") {
				t.Fatalf("brig series with token %q: %+v", c.token, brig)
			}
		})
	}
}
