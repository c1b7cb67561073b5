package serve

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/internal/testenv"
	"github.com/brig-sandbox/brig/jail"
)

// The measurements (bench/ runs them; ratios from one run, never
// asserted): the HTTP service against the library on the same machine.

func benchServer(b *testing.B) *testServer {
	b.Helper()
	ts := startServer(b, func(s string) string {
		return s + benchTemplate
	})
	waitPoolsFull(b, ts)
	return ts
}

// waitPoolsFull waits for the server's jail pools to be full: a server's
// pools fill long before the requests a benchmark times.
func waitPoolsFull(b *testing.B, ts *testServer) {
	b.Helper()
	for name, p := range ts.srv.pools {
		size := ts.srv.cfg.Templates[name].Pool
		for deadline := time.Now().Add(time.Minute); p.Stats().Ready < size; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatalf("the %s pool holds %d of %d jails after a minute", name, p.Stats().Ready, size)
			}
		}
	}
}

// benchTemplate is the template of the runs measured against the
// in-process pool.
const benchTemplate = "  bench: {memory: 256M, timeout: 20s, pool: 16}\n"

// print(1) in a live Python context over HTTP (the unix socket).
func BenchmarkHTTPExecutePrint1(b *testing.B) {
	ts := benchServer(b)
	sb := ts.newSandbox(b, nil)
	cx := ts.newContext(b, sb, "python")
	path := "/v1/sandboxes/" + sb + "/contexts/" + cx + "/execute"
	// The first cell may still wait for the interpreter to come up.
	ts.do(b, ts.unix, ts.sockURL, "POST", path, ts.alice, `{"code": "pass"}`)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		a := ts.do(b, ts.unix, ts.sockURL, "POST", path, ts.alice, `{"code": "print(1)"}`)
		lat = append(lat, time.Since(t0))
		if a.status != 200 || a.json(b)["stdout"] != "1\n" {
			b.Fatalf("%d %s", a.status, a.body)
		}
	}
	b.StopTimer()
	testenv.ReportMedian(b, lat)
}

// The library's Run on the same kind of session, for the ratio.
func BenchmarkLibraryExecutePrint1(b *testing.B) {
	ts := benchServer(b)
	in, err := startInterpreter(context.Background(), "python", ts.srv.cfg.Templates["default"].Jail)
	require.NoError(b, err)
	defer in.close()
	in.run(context.Background(), "pass", 0, 0, nil, nil)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		r := in.run(context.Background(), "print(1)", 0, 0, nil, nil)
		lat = append(lat, time.Since(t0))
		if r.Status != "ok" || r.Stdout != "1\n" {
			b.Fatalf("%+v", r)
		}
	}
	b.StopTimer()
	testenv.ReportMedian(b, lat)
}

// Create a sandbox, a Python context, execute print(1), delete.
func BenchmarkHTTPSandboxLifecycle(b *testing.B) {
	ts := benchServer(b)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		sb := ts.newSandbox(b, nil)
		cx := ts.newContext(b, sb, "python")
		a := ts.do(b, ts.unix, ts.sockURL, "POST", "/v1/sandboxes/"+sb+"/contexts/"+cx+"/execute", ts.alice, `{"code": "print(1)"}`)
		if a.status != 200 {
			b.Fatalf("%d %s", a.status, a.body)
		}
		if d := ts.do(b, ts.unix, ts.sockURL, "DELETE", "/v1/sandboxes/"+sb, ts.alice, nil); d.status >= 300 {
			b.Fatalf("delete: %d %s", d.status, d.body)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	testenv.ReportMedian(b, lat)
}

// The same with the context from the template's context pool (a private
// /workspace): the refill is waited for untimed, so each iteration measures
// a hand-over, as a server that is not saturated gives.
func BenchmarkHTTPSandboxLifecyclePooled(b *testing.B) {
	ts := startServer(b, func(s string) string {
		return s + "  bench: {memory: 256M, timeout: 20s, context-pool: 1}\n"
	})
	pool := ts.srv.contextPools[contextPoolKey("bench", "python")]
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		for pool.Stats().Ready == 0 {
			time.Sleep(100 * time.Microsecond)
		}
		b.StartTimer()
		sb := ts.newSandbox(b, map[string]any{"template": "bench"})
		a := ts.as(b, "POST", "/v1/sandboxes/"+sb+"/contexts", map[string]string{"language": "python"})
		if a.status != 201 || a.json(b)["workspace"] != "private" {
			b.Fatalf("%d %s", a.status, a.body)
		}
		a = ts.do(b, ts.unix, ts.sockURL, "POST", "/v1/sandboxes/"+sb+"/contexts/"+a.json(b)["id"].(string)+"/execute", ts.alice, `{"code": "print(1)"}`)
		if a.status != 200 {
			b.Fatalf("%d %s", a.status, a.body)
		}
		ts.do(b, ts.unix, ts.sockURL, "DELETE", "/v1/sandboxes/"+sb, ts.alice, nil)
	}
}

// A one-shot /bin/true from the warm pool over HTTP.
func BenchmarkHTTPRunTrue(b *testing.B) {
	ts := benchServer(b)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		a := ts.do(b, ts.unix, ts.sockURL, "POST", "/v1/runs", ts.alice, `{"command": ["/bin/true"], "template": "bench"}`)
		lat = append(lat, time.Since(t0))
		if a.status != 200 {
			b.Fatalf("%d %s", a.status, a.body)
		}
	}
	b.StopTimer()
	testenv.ReportMedian(b, lat)
}

// The in-process pool of the same template, for the ratio beside the jail
// package's BenchmarkWarmTrue (whose jail has no limits).
func BenchmarkPoolRunTrue(b *testing.B) {
	p := benchPool(b, 16)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		err := p.Command(context.Background(), "/bin/true").Run()
		lat = append(lat, time.Since(t0))
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	testenv.ReportMedian(b, lat)
}

// benchPool is a jail pool of the bench template's jail settings, as the
// server's own pool of that template holds them.
func benchPool(b *testing.B, size int) *jail.Pool {
	b.Helper()
	testenv.RequireRoot(b)
	_, alice := NewToken()
	_, bob := NewToken()
	cfg, err := ParseConfig("bench.yaml", []byte(fmt.Sprintf(testConfig, b.TempDir(), alice, bob)+benchTemplate))
	require.NoError(b, err)
	jc := cfg.Templates["bench"].Jail
	jc.HostIDs = testIDs
	p, err := jail.NewPool(context.Background(), jc, size)
	require.NoError(b, err)
	b.Cleanup(p.Close)
	// Full before the timer starts, as the server's pools are long before
	// the benchmark's first request.
	for deadline := time.Now().Add(time.Minute); p.Stats().Ready < size && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	return p
}

// 16 clients of one-shot print(1) runs at once.
func BenchmarkHTTPRunParallel16(b *testing.B) {
	ts := startServer(b, func(s string) string {
		s = strings.Replace(s, "concurrent: 4,", "concurrent: 16,", 1)
		s = strings.Replace(s, "admission: {queue_wait: 100ms}", "admission: {concurrent: 16, queue_wait: 10s}", 1)
		return s + benchTemplate
	})
	waitPoolsFull(b, ts)
	b.ResetTimer()
	var wg sync.WaitGroup
	next := make(chan struct{})
	go func() {
		for range b.N {
			next <- struct{}{}
		}
		close(next)
	}()
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				a := ts.do(b, ts.unix, ts.sockURL, "POST", "/v1/runs", ts.alice, `{"language": "python", "code": "print(1)", "template": "bench"}`)
				if a.status != 200 {
					errs <- fmt.Errorf("%d %s", a.status, a.body)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// The in-process pool with 16 goroutines of the same one-shot print(1).
func BenchmarkPoolRunPython16(b *testing.B) {
	p := benchPool(b, 16)
	b.ResetTimer()
	next := make(chan struct{})
	go func() {
		for range b.N {
			next <- struct{}{}
		}
		close(next)
	}()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				out, err := p.Command(context.Background(), "/usr/bin/python3", "-c", "print(1)").Output()
				if err != nil || string(out) != "1\n" {
					errs <- fmt.Errorf("%q %v", out, err)
					for range next {
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// The server's own memory per idle sandbox with one Python context (the
// interpreter's memory is its jail's): Go heap in use, after a GC, per
// sandbox. Run with -benchtime=200x for the 200 idle sandboxes.
func BenchmarkIdleSandboxMemory(b *testing.B) {
	ts := startServer(b, func(s string) string {
		s = strings.Replace(s, "sandboxes: 4, contexts: 4", "sandboxes: 1000, contexts: 1000, workspace_bytes: 100G", 1)
		return strings.Replace(s, "concurrent: 4,", "concurrent: 64,", 1)
	})
	var before, after runtime.MemStats
	runtime.GC()
	debug.FreeOSMemory()
	runtime.ReadMemStats(&before)
	rssBefore := selfRSS(b)
	b.ResetTimer()
	for range b.N {
		sb := ts.newSandbox(b, nil)
		ts.newContext(b, sb, "python")
	}
	b.StopTimer()
	runtime.GC()
	debug.FreeOSMemory()
	runtime.ReadMemStats(&after)
	// The server's process (this one: the jails and their interpreters
	// are processes of their own): its heap and its resident set.
	b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/float64(b.N), "heap-bytes/sandbox")
	b.ReportMetric(float64(selfRSS(b)-rssBefore)/float64(b.N), "rss-bytes/sandbox")
	b.ReportMetric(float64(b.N), "sandboxes")
}

func selfRSS(b *testing.B) int64 {
	b.Helper()
	data, err := os.ReadFile("/proc/self/status")
	require.NoError(b, err)
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			require.NoError(b, err)
			return kb << 10
		}
	}
	b.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// print(1) in a live Python context over HTTP with the audit log (fsync
// per interval, the default) and without it: the issue asks that the log
// add at most 5% to the median. One server and one context serve both,
// the log switched on and off between requests, so that the two medians
// share the machine's drift; the ratio is reported as audit/off.
func BenchmarkHTTPExecutePrint1Audit(b *testing.B) {
	ts := startServer(b, func(s string) string {
		// A quick server passes the test config's request rate.
		return strings.Replace(s, "requests_per_second: 1000, burst: 1000", "requests_per_second: 100000, burst: 100000", 1) +
			"audit: {fsync: interval}\n"
	})
	sb := ts.newSandbox(b, nil)
	cx := ts.newContext(b, sb, "python")
	path := "/v1/sandboxes/" + sb + "/contexts/" + cx + "/execute"
	ts.do(b, ts.unix, ts.sockURL, "POST", path, ts.alice, `{"code": "pass"}`)
	log := ts.srv.audit
	require.NotNil(b, log)
	// Nothing else runs on this server while the benchmark does: the
	// switch between requests races with no handler.
	defer func() { ts.srv.audit = log }()
	seqBefore, _ := log.Head()
	on, off := make([]time.Duration, 0, b.N), make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range 2 * b.N {
		audited := i%2 == 0
		if audited {
			ts.srv.audit = log
		} else {
			ts.srv.audit = nil
		}
		t0 := time.Now()
		a := ts.do(b, ts.unix, ts.sockURL, "POST", path, ts.alice, `{"code": "print(1)"}`)
		d := time.Since(t0)
		if a.status != 200 {
			b.Fatalf("%d %s", a.status, a.body)
		}
		if audited {
			on = append(on, d)
		} else {
			off = append(off, d)
		}
	}
	b.StopTimer()
	if seq, _ := log.Head(); seq-seqBefore != uint64(b.N) {
		b.Fatalf("%d records for %d audited requests", seq-seqBefore, b.N)
	}
	b.ReportMetric(float64(testenv.Median(on).Microseconds())/1000, "audit-p50-ms")
	b.ReportMetric(float64(testenv.Median(off).Microseconds())/1000, "off-p50-ms")
	b.ReportMetric(float64(testenv.Median(on))/float64(testenv.Median(off)), "audit/off")
}

// One /metrics scrape of a server with 200 sandboxes (the issue asks for
// under 50 ms), over loopback HTTP as Prometheus scrapes.
func BenchmarkMetricsScrape200Sandboxes(b *testing.B) {
	ts := startServer(b, func(s string) string {
		return noPool(strings.Replace(s, "sandboxes: 4, contexts: 4", "sandboxes: 1000, contexts: 1000, workspace_bytes: 100G", 1))
	})
	for range 200 {
		ts.newSandbox(b, nil)
	}
	url := httpServe(b, ts.srv.MetricsHandler())
	b.ResetTimer()
	for range b.N {
		a := ts.do(b, ts.tcp, url, "GET", "/metrics", "", nil)
		if a.status != 200 || !strings.Contains(string(a.body), "brig_live_sandboxes 200") {
			b.Fatalf("%d %.300s", a.status, a.body)
		}
	}
}
