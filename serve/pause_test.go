package serve

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/audit"
	"github.com/brig-sandbox/brig/cgroup"
	"github.com/brig-sandbox/brig/internal/testenv"
)

func requireFreezer(t *testing.T) {
	t.Helper()
	r := cgroup.Detect(cgroup.Options{})
	if !r.Cgroup1.Usable && !r.Cgroup2.Usable {
		t.Skipf("needs a cgroup limiter to freeze with: %s", r.Why)
	}
}

// TestIdlePause over HTTP: an idle sandbox's context, with a thread it
// left ticking, is frozen after idle_pause (GET shows paused, which GET
// itself does not undo; the tick stands still); its next execute thaws it
// transparently, with its state; a background process keeps its sandbox
// awake; a paused sandbox deletes cleanly.
func TestIdlePause(t *testing.T) {
	requireFreezer(t)
	ts := startServer(t, func(s string) string {
		return strings.Replace(noPool(s), "lifecycle: {drain_grace: 1s}", "lifecycle: {drain_grace: 1s, idle_pause: 200ms}", 1)
	})
	sb := ts.newSandbox(t, nil)
	cx := ts.newContext(t, sb, "python")
	exec := "/v1/sandboxes/" + sb + "/contexts/" + cx + "/execute"
	a := ts.as(t, "POST", exec, map[string]any{"code": `
import threading, time, os
def tick():
    i = 0
    while True:
        i += 1
        with open("n.tmp", "w") as f: f.write(str(i))
        os.replace("n.tmp", "n")
        time.sleep(0.001)
threading.Thread(target=tick, daemon=True).start()
secret = 42
`})
	require.Equal(t, 200, a.status, "%s", a.body)
	ts.srv.mu.Lock()
	counter := filepath.Join(ts.srv.sandboxes[sb].dir, "n")
	ts.srv.mu.Unlock()
	count := func() int {
		b, _ := os.ReadFile(counter)
		n, _ := strconv.Atoi(string(b))
		return n
	}

	paused := func() bool {
		a := ts.as(t, "GET", "/v1/sandboxes/"+sb, nil)
		require.Equal(t, 200, a.status, "%s", a.body)
		return a.json(t)["paused"] == true
	}
	require.Eventually(t, paused, testenv.Scaled(10*time.Second), 20*time.Millisecond, "the idle sandbox was not paused")
	require.NotEmpty(t, ts.events.find("sandbox.pause"))
	n := count()
	require.Positive(t, n)
	time.Sleep(testenv.Scaled(300 * time.Millisecond))
	assert.Equal(t, n, count(), "the paused context's thread went on")
	assert.True(t, paused(), "GET of a sandbox must not resume it")

	a = ts.as(t, "POST", exec, map[string]any{"code": "import time; time.sleep(0.2); (secret, int(open('n').read()))"})
	require.Equal(t, 200, a.status, "%s", a.body)
	res := a.json(t)
	require.Equal(t, "ok", res["status"], "%s", a.body)
	var got, after int
	_, err := fmt.Sscanf(res["value"].(string), "(%d, %d)", &got, &after)
	require.NoError(t, err, "%s", a.body)
	assert.Equal(t, 42, got, "the context's state survived the pause")
	assert.Greater(t, after, n, "the resumed thread did not go on")
	require.NotEmpty(t, ts.events.find("sandbox.resume"))

	// A running background process keeps its sandbox awake.
	busy := ts.newSandbox(t, nil)
	ts.newContext(t, busy, "shell")
	a = ts.as(t, "POST", "/v1/sandboxes/"+busy+"/processes", map[string]any{"background": true, "command": []string{"/bin/sleep", "600"}})
	require.Equal(t, 201, a.status, "%s", a.body)
	// The first sandbox pauses again meanwhile: the janitor ran.
	require.Eventually(t, paused, testenv.Scaled(10*time.Second), 20*time.Millisecond, "the idle sandbox was not paused again")
	time.Sleep(testenv.Scaled(400 * time.Millisecond))
	a = ts.as(t, "GET", "/v1/sandboxes/"+busy, nil)
	assert.Equal(t, false, a.json(t)["paused"], "a sandbox running a process was paused")
	for _, e := range ts.events.find("sandbox.pause") {
		assert.NotEqual(t, busy, e.Sandbox)
	}

	// Deleting a paused sandbox ends its frozen jail (Cleanup checks the
	// host).
	require.True(t, paused())
	// The pause and the resume are audited, and the gauge counts the
	// paused sandbox.
	recs := auditRecords(t, filepath.Join(ts.stateDir, DefaultAuditFile))
	assert.NotEmpty(t, ofKind(recs, audit.KindSandboxPause))
	assert.NotEmpty(t, ofKind(recs, audit.KindSandboxResume))
	assert.Equal(t, 1.0, gaugeValue(t, ts.srv.metrics.Registry(), "brig_paused_sandboxes"))
	a = ts.as(t, "DELETE", "/v1/sandboxes/"+sb, nil)
	require.Equal(t, 200, a.status, "%s", a.body)
	a = ts.as(t, "DELETE", "/v1/sandboxes/"+busy, nil)
	require.Equal(t, 200, a.status, "%s", a.body)
	waitNoJails(t)
}

// TestIdlePauseRefused: a server whose jails cannot be frozen (a template
// on the rlimit fallback) refuses to start with idle_pause, naming the
// template and the fix, and leaves no cgroup; the same config without
// idle_pause starts.
func TestIdlePauseRefused(t *testing.T) {
	testenv.RequireRoot(t)
	_, sum := NewToken()
	text := fmt.Sprintf(testConfig, t.TempDir(), sum, strings.Repeat("0", 64))
	text = strings.Replace(noPool(text), "tiny: {memory: 64M,", "tiny: {limiter: rlimit, memory: 64M,", 1)
	paused := strings.Replace(text, "lifecycle: {drain_grace: 1s}", "lifecycle: {drain_grace: 1s, idle_pause: 1m}", 1)
	cfg, err := ParseConfig("test.yaml", []byte(paused))
	require.NoError(t, err)
	_, err = New(cfg, Options{})
	require.ErrorIs(t, err, cgroup.ErrNoFreezer)
	assert.Contains(t, err.Error(), "test.yaml: lifecycle.idle_pause: template tiny")
	assert.Contains(t, err.Error(), "remove idle_pause")
	assert.Empty(t, jailCgroups(os.Getpid()), "the freezer probe left a cgroup")

	cfg, err = ParseConfig("test.yaml", []byte(text))
	require.NoError(t, err)
	srv, err := New(cfg, Options{})
	require.NoError(t, err)
	srv.Close()
}

// gaugeValue is the value of the gauge name in reg (one series).
func gaugeValue(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			require.Len(t, mf.GetMetric(), 1)
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
