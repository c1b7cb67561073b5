package egress_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/brig-sandbox/brig/egress"
	"github.com/brig-sandbox/brig/internal/testenv"
)

const benchDownload = 100 << 20

// getRaw sends a GET for n bytes on c and reads the whole response.
func getRaw(b *testing.B, c net.Conn, br *bufio.Reader, target string, n int) {
	fmt.Fprintf(c, "GET %s/bytes?n=%d HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n", target, n)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		b.Fatal(err)
	}
	got, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || got != int64(n) {
		b.Fatalf("downloaded %d of %d bytes: %v", got, n, err)
	}
}

// BenchmarkDownload: 100 MB from the test internet, straight from the
// test's namespace and through the proxy from the jail's (a CONNECT tunnel
// and a plain-HTTP request), so the proxy's share of the throughput shows.
// The client is the same in all three (one reader of the same size).
// cpu-ms/MB is the whole process's (server, client and, through the proxy,
// the proxy): the proxy's own is the difference from direct's.
func BenchmarkDownload(b *testing.B) {
	lb := startLab(b, labPolicy(b))
	b.Run("direct", func(b *testing.B) {
		b.SetBytes(benchDownload)
		cpu := testenv.ProcessCPU(b)
		for b.Loop() {
			c, err := net.Dial("tcp", "198.51.100.2:80")
			if err != nil {
				b.Fatal(err)
			}
			getRaw(b, c, bufio.NewReaderSize(c, 64<<10), "", benchDownload)
			c.Close()
		}
		testenv.ReportCPUPerMB(b, testenv.ProcessCPU(b)-cpu, benchDownload, "cpu-ms/MB")
	})
	b.Run("proxy-connect", func(b *testing.B) {
		b.SetBytes(benchDownload)
		cpu := testenv.ProcessCPU(b)
		for b.Loop() {
			resp, c, br := lb.raw(b, "CONNECT www.example.com:80 HTTP/1.1\r\n\r\n")
			if resp.StatusCode != 200 {
				b.Fatal(resp.Status)
			}
			c.SetDeadline(time.Time{})
			// The same reader as direct's: raw's small one would make the
			// client, not the proxy, the difference.
			if br.Buffered() != 0 {
				b.Fatalf("%d bytes after the CONNECT response, before any request", br.Buffered())
			}
			getRaw(b, c, bufio.NewReaderSize(c, 64<<10), "", benchDownload)
			c.Close()
		}
		testenv.ReportCPUPerMB(b, testenv.ProcessCPU(b)-cpu, benchDownload, "cpu-ms/MB")
	})
	b.Run("proxy-http", func(b *testing.B) {
		b.SetBytes(benchDownload)
		cpu := testenv.ProcessCPU(b)
		for b.Loop() {
			c := lb.dialProxy(b)
			getRaw(b, c, bufio.NewReaderSize(c, 64<<10), "http://www.example.com", benchDownload)
			c.Close()
		}
		testenv.ReportCPUPerMB(b, testenv.ProcessCPU(b)-cpu, benchDownload, "cpu-ms/MB")
	})
}

// BenchmarkConnectSetup: from dial to a usable connection, straight to the
// test internet and through the proxy's CONNECT (policy, resolver, address
// checks, dial).
func BenchmarkConnectSetup(b *testing.B) {
	lb := startLab(b, labPolicy(b))
	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			c, err := net.Dial("tcp", "198.51.100.2:80")
			if err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
	})
	b.Run("proxy", func(b *testing.B) {
		for b.Loop() {
			resp, c, _ := lb.raw(b, "CONNECT www.example.com:80 HTTP/1.1\r\n\r\n")
			if resp.StatusCode != 200 {
				b.Fatal(resp.Status)
			}
			c.Close()
		}
	})
}

// BenchmarkIdleProxyMemory: the heap and stacks of proxies serving a
// listener each with no connection, per proxy (what an idle jail costs
// the supervisor).
func BenchmarkIdleProxyMemory(b *testing.B) {
	const n = 200
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		proxies := make([]*egress.Proxy, n)
		done := make(chan error, n)
		for i := range proxies {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			proxies[i] = &egress.Proxy{Policy: labPolicy(b)}
			go func() { done <- proxies[i].Serve(l) }()
		}
		time.Sleep(100 * time.Millisecond) // every Serve reaches Accept
		runtime.GC()
		runtime.ReadMemStats(&after)
		perProxy := float64(after.HeapInuse+after.StackInuse-before.HeapInuse-before.StackInuse) / n
		b.ReportMetric(perProxy, "bytes/idle-proxy")
		for _, p := range proxies {
			p.Close()
		}
		for range proxies {
			<-done
		}
	}
}
