package netlab

import (
	"crypto/tls"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestInternetServesAndLeavesNothing: the servers answer from the
// documentation addresses (HTTP, HTTPS under the test CA, the index and
// its wheel), and after teardown the veth, the namespace and the server
// goroutines are gone.
func TestInternetServesAndLeavesNothing(t *testing.T) {
	before := runtime.NumGoroutine()
	var veth string
	var ino uint64
	t.Run("serve", func(t *testing.T) {
		in := Start(t)
		veth = in.HostVeth
		var err error
		if ino, err = in.NS.Inode(); err != nil {
			t.Fatal(err)
		}
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: in.CAPool}, DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
		for _, u := range []string{
			"http://198.51.100.2/", "https://198.51.100.2/", "http://[2001:db8::2]/", "https://[2001:db8::2]/",
			"http://198.51.100.2/simple/" + in.Wheel.Name + "/", "http://198.51.100.2/packages/" + in.Wheel.File,
		} {
			resp, err := c.Get(u)
			if err != nil {
				t.Fatalf("GET %s: %v", u, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || len(body) == 0 {
				t.Fatalf("GET %s: %s, %d bytes", u, resp.Status, len(body))
			}
			if strings.HasSuffix(u, ".whl") && string(body) != string(in.Wheel.Data) {
				t.Fatalf("GET %s: not the wheel", u)
			}
		}
		// The CA is the test's own: a client without it refuses the server.
		if _, err := (&http.Client{Timeout: 30 * time.Second}).Get("https://198.51.100.2/"); err == nil {
			t.Fatal("a client without the test CA trusted the test server")
		}
		if addrs, err := in.LookupNetIP(t.Context(), "ip4", "www.example.com"); err != nil || len(addrs) != 1 || addrs[0] != ServerAddr4 {
			t.Fatalf("resolver: %v, %v", addrs, err)
		}
		if _, err := in.LookupNetIP(t.Context(), "ip", "absent.example.com"); err == nil {
			t.Fatal("the resolver answered a name it was not given")
		}
	})
	if err := Gone(veth, ino); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines left (%d before):\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}
