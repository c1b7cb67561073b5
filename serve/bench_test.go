package serve

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The measurements (bench/ runs them; ratios from one run, never
// asserted): the HTTP service against the library on the same machine.

func benchServer(b *testing.B) *testServer {
	b.Helper()
	return startServer(b, func(s string) string {
		return s + "  bench: {memory: 256M, timeout: 20s, pool: 16}\n"
	})
}

// print(1) in a live Python context over HTTP (the unix socket).
func BenchmarkHTTPExecutePrint1(b *testing.B) {
	ts := benchServer(b)
	sb := ts.newSandbox(b, nil)
	cx := ts.newContext(b, sb, "python")
	path := "/v1/sandboxes/" + sb + "/contexts/" + cx + "/execute"
	b.ResetTimer()
	for range b.N {
		a := ts.do(b, ts.unix, ts.sockURL, "POST", path, ts.alice, `{"code": "print(1)"}`)
		if a.status != 200 {
			b.Fatalf("%d %s", a.status, a.body)
		}
	}
}

// The library's Run on the same kind of session, for the ratio.
func BenchmarkLibraryExecutePrint1(b *testing.B) {
	ts := benchServer(b)
	in, err := startInterpreter(context.Background(), "python", ts.srv.cfg.Templates["default"].Jail)
	require.NoError(b, err)
	defer in.close()
	b.ResetTimer()
	for range b.N {
		if r := in.run(context.Background(), "print(1)", 0, 0, nil, nil); r.Status != "ok" {
			b.Fatalf("%+v", r)
		}
	}
}

// Create a sandbox, a Python context, execute print(1), delete.
func BenchmarkHTTPSandboxLifecycle(b *testing.B) {
	ts := benchServer(b)
	b.ResetTimer()
	for range b.N {
		sb := ts.newSandbox(b, nil)
		cx := ts.newContext(b, sb, "python")
		a := ts.do(b, ts.unix, ts.sockURL, "POST", "/v1/sandboxes/"+sb+"/contexts/"+cx+"/execute", ts.alice, `{"code": "print(1)"}`)
		if a.status != 200 {
			b.Fatalf("%d %s", a.status, a.body)
		}
		ts.do(b, ts.unix, ts.sockURL, "DELETE", "/v1/sandboxes/"+sb, ts.alice, nil)
	}
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
	b.ResetTimer()
	for range b.N {
		a := ts.do(b, ts.unix, ts.sockURL, "POST", "/v1/runs", ts.alice, `{"command": ["/bin/true"], "template": "bench"}`)
		if a.status != 200 {
			b.Fatalf("%d %s", a.status, a.body)
		}
	}
}

// 16 clients of one-shot print(1) runs at once.
func BenchmarkHTTPRunParallel16(b *testing.B) {
	ts := startServer(b, func(s string) string {
		s = strings.Replace(s, "concurrent: 4,", "concurrent: 16,", 1)
		s = strings.Replace(s, "admission: {queue_wait: 100ms}", "admission: {concurrent: 16, queue_wait: 10s}", 1)
		return s + "  bench: {memory: 256M, timeout: 20s, pool: 16}\n"
	})
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
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for range b.N {
		sb := ts.newSandbox(b, nil)
		ts.newContext(b, sb, "python")
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/float64(b.N), "heap-bytes/sandbox")
}
