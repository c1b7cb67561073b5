package egress_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/brig-sandbox/brig/egress"
	"github.com/brig-sandbox/brig/internal/testenv"
	"github.com/brig-sandbox/brig/internal/testenv/netlab"
)

// TestProxyAllowsAndRefuses: allowed names and named addresses get through
// (HTTPS through CONNECT, plain HTTP as absolute URIs, IPv4 and IPv6);
// every other destination is refused with a 403 naming it and why, the
// refusals are listed for the run's result, and the allowed ones still
// work after the hostile ones.
func TestProxyAllowsAndRefuses(t *testing.T) {
	lb := startLab(t, labPolicy(t))

	benign := func() {
		t.Helper()
		for _, u := range []string{"https://www.example.com/", "http://www.example.com/", "https://198.51.100.2/", "https://files.example.com/"} {
			code, body, err := lb.get(t, u)
			if err != nil || code != 200 || !strings.Contains(body, "hello from the test internet") {
				t.Fatalf("GET %s through the proxy: %d %q %v", u, code, body, err)
			}
		}
	}
	benign()

	refusals := []struct{ target, want string }{
		{"other.example.net:443", "not on the allow list; add --allow other.example.net"},
		{"blocked.example.com:443", "denied by --deny blocked.example.com"},
		{"inrange.example.com:443", "resolves to 192.0.2.9, denied by --deny 192.0.2.0/24"},
		{"www.example.com:8443", "port 8443 is not allowed for www.example.com"},
		{"198.51.100.2:80", "port 80 is not allowed for 198.51.100.2"},
		{"203.0.113.5:443", "IP address the policy does not name"},
		{"[2001:db8::2]:443", "IP address the policy does not name"},
		{"10.0.0.5:443", "10.0.0.5 is a private address"},
		{"127.0.0.1:443", "127.0.0.1 is a loopback address"},
		{"[::ffff:127.0.0.1]:443", "127.0.0.1 is a loopback address"},
		{"169.254.169.254:80", "the cloud metadata address"},
		{"198.51.100.1:443", "an address of this host"},
		{"private.example.com:443", "resolves to 10.0.0.5, a private address"},
		{"loop.example.com:443", "resolves to 127.0.0.1, a loopback address"},
		{"mapped.example.com:443", "resolves to 127.0.0.1, a loopback address"},
		{"meta.example.com:80", "resolves to 169.254.169.254, the cloud metadata address"},
		{"meta6.example.com:443", "resolves to fd00:ec2::254, the cloud metadata address"},
		{"rebind.example.com:443", "resolves to 192.168.1.1, a private address"},
		{"hostaddr.example.com:443", "an address of this host"},
		{"nxdomain.example.com:443", "cannot resolve nxdomain.example.com"},
		{"2130706433:443", "looks like a number"},
		{"www.example.com", "want host:port"},
	}
	for _, r := range refusals {
		code, reason := lb.connect(t, r.target)
		if code == 200 || !strings.Contains(reason, r.want) {
			t.Errorf("CONNECT %s: %d %q; want a refusal saying %q", r.target, code, reason, r.want)
		}
	}
	// Plain HTTP: the same checks, plus the Host header must be the target.
	plain := []struct{ header, want string }{
		{"GET http://private.example.com/ HTTP/1.1\r\nHost: private.example.com\r\n\r\n", "resolves to 10.0.0.5"},
		{"GET http://www.example.com/ HTTP/1.1\r\nHost: private.example.com\r\n\r\n", "does not match"},
		{"GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n", "absolute http:// URLs are served"},
		{"GET https://www.example.com/ HTTP/1.1\r\nHost: www.example.com\r\n\r\n", "goes through CONNECT"},
		{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "absolute http:// URLs are served"},
	}
	for _, p := range plain {
		resp, c, _ := lb.raw(t, p.header)
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		c.Close()
		if resp.StatusCode < 400 || !strings.Contains(resp.Status+string(body), p.want) {
			t.Errorf("%q: %s %q; want a refusal saying %q", p.header, resp.Status, body, p.want)
		}
	}
	// The jail's own namespace has no route: a client ignoring the proxy
	// fails closed.
	if c, err := lb.jail.DialContext(t.Context(), "tcp", "198.51.100.2:80"); err == nil {
		c.Close()
		t.Error("the jail's namespace reached the test internet without the proxy")
	}
	benign()

	refused := lb.proxy.Refused()
	for _, r := range refusals[:19] {
		host, _, _ := net.SplitHostPort(r.target)
		host = strings.Trim(host, "[]")
		if host == "::ffff:127.0.0.1" {
			host = "127.0.0.1"
		}
		if !slices.ContainsFunc(refused, func(x egress.Refusal) bool { return x.Host == host && strings.Contains(x.Reason, r.want) }) {
			t.Errorf("Refused() lacks %s (%s): %+v", r.target, r.want, refused)
		}
	}
	// The allowed connections were events too, with their bytes.
	ev := lb.waitEvent(t, "allowed CONNECT www.example.com:443", func(ev egress.Event) bool {
		return ev.Allowed && ev.Method == http.MethodConnect && ev.Host == "www.example.com" && ev.Port == 443
	})
	if ev.BytesUp == 0 || ev.BytesDown == 0 || !ev.Addr.IsValid() || ev.Reason != "" {
		t.Errorf("allowed event %+v: want bytes both ways, the address, no reason", ev)
	}
	for _, ev := range lb.eventsCopy() {
		if ev.Allowed && ev.Addr != netlab.ServerAddr4 && ev.Addr != netlab.ServerAddr6 {
			t.Errorf("an allowed connection went to %s: %+v", ev.Addr, ev)
		}
	}
}

// TestProxyConnectionCaps: MaxConcurrent refuses the connection over the
// cap while the others stay open and lets one in once one closes;
// MaxConnections refuses any connection after the budget.
func TestProxyConnectionCaps(t *testing.T) {
	pol := labPolicy(t)
	pol.MaxConcurrent = 2
	pol.MaxConnections = 5
	lb := startLab(t, pol)

	open := func() net.Conn {
		resp, c, _ := lb.raw(t, "CONNECT www.example.com:443 HTTP/1.1\r\nHost: www.example.com:443\r\n\r\n")
		if resp.StatusCode != 200 {
			c.Close()
			t.Fatalf("CONNECT under the cap: %s", resp.Status)
		}
		return c
	}
	a, b := open(), open()                                                  // 2 of 5
	resp, c, _ := lb.raw(t, "CONNECT www.example.com:443 HTTP/1.1\r\n\r\n") // not counted
	c.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(resp.Status, "2 connections at once") {
		t.Fatalf("third concurrent CONNECT: %s; want 503 naming the cap", resp.Status)
	}
	a.Close()
	// Once the proxy has seen a's end, a new connection fits again.
	lb.waitEvent(t, "the end of the first tunnel", func(ev egress.Event) bool { return ev.Allowed })
	d := open() // 3 of 5
	b.Close()
	d.Close()
	lb.waitEvent(t, "three tunnels ended", func(egress.Event) bool {
		n := 0
		for _, ev := range lb.eventsCopy() {
			if ev.Allowed {
				n++
			}
		}
		return n == 3
	})
	open().Close() // 4 of 5
	lb.waitEvent(t, "four tunnels ended", func(egress.Event) bool {
		n := 0
		for _, ev := range lb.eventsCopy() {
			if ev.Allowed {
				n++
			}
		}
		return n == 4
	})
	open().Close() // 5 of 5
	resp, c, _ = lb.raw(t, "CONNECT www.example.com:443 HTTP/1.1\r\n\r\n")
	c.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(resp.Status, "5 connections are used up") {
		t.Fatalf("CONNECT past MaxConnections: %s; want 403 naming the budget", resp.Status)
	}
	if !slices.ContainsFunc(lb.proxy.Refused(), func(r egress.Refusal) bool { return strings.Contains(r.Reason, "MaxConnections") }) {
		t.Errorf("Refused() lacks the budget: %+v", lb.proxy.Refused())
	}
}

// TestProxyTimeouts: a client that sends its header slowly (slowloris) is
// answered 408 and cut, a tunnel nobody uses is closed at the idle
// timeout; a prompt client's download is unaffected.
func TestProxyTimeouts(t *testing.T) {
	pol := labPolicy(t)
	pol.HeaderTimeout = testenv.Scaled(300 * time.Millisecond)
	pol.IdleTimeout = testenv.Scaled(300 * time.Millisecond)
	lb := startLab(t, pol)

	slow := lb.dialProxy(t)
	defer slow.Close()
	slow.SetDeadline(time.Now().Add(testenv.Scaled(30 * time.Second)))
	io.WriteString(slow, "CONNECT www.exa")
	got, _ := io.ReadAll(slow) // the proxy answers and closes
	if !strings.HasPrefix(string(got), "HTTP/1.1 408 ") {
		t.Errorf("slow header: %q; want a 408 and the end of the connection", got)
	}

	resp, tun, br := lb.raw(t, "CONNECT www.example.com:443 HTTP/1.1\r\n\r\n")
	defer tun.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %s", resp.Status)
	}
	if n, err := io.Copy(io.Discard, br); err != nil || n != 0 {
		t.Errorf("idle tunnel: read %d bytes, %v; want the proxy to end it (EOF)", n, err)
	}
	lb.waitEvent(t, "an idle tunnel cut", func(ev egress.Event) bool { return strings.Contains(ev.Reason, "IdleTimeout") })

	// An upload that trickles, taking several idle timeouts in all but
	// never pausing for one, is not idle.
	up := lb.dialProxy(t)
	defer up.Close()
	up.SetDeadline(time.Now().Add(testenv.Scaled(60 * time.Second)))
	const pieces = 30
	fmt.Fprintf(up, "POST http://www.example.com/sink HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: %d\r\n\r\n", pieces)
	for range pieces {
		time.Sleep(pol.IdleTimeout / 10)
		io.WriteString(up, "x")
	}
	if got, _ := io.ReadAll(up); !strings.Contains(string(got), fmt.Sprintf("got %d bytes", pieces)) {
		t.Errorf("a trickling upload: %q; want the server to get all %d bytes", got, pieces)
	}

	// A download that keeps moving is not idle, however long it takes.
	code, body, err := lb.get(t, "https://www.example.com/bytes?n=4000000")
	if err != nil || code != 200 || len(body) != 4000000 {
		t.Errorf("download with short timeouts: %d, %d bytes, %v", code, len(body), err)
	}
}

// TestProxyByteCap: the run's bytes stop at MaxBytesDown and MaxBytesUp,
// on plain HTTP (copied through the proxy's buffers) and in a CONNECT
// tunnel (copied in the kernel); what fits under the caps arrives whole.
func TestProxyByteCap(t *testing.T) {
	for _, via := range []string{"http", "connect"} {
		t.Run(via, func(t *testing.T) {
			pol := labPolicy(t)
			pol.MaxBytesDown = 3 << 20
			pol.MaxBytesUp = 1 << 20
			lb := startLab(t, pol)
			// An upload under MaxBytesUp arrives whole (before the caps are
			// used up: they are the run's).
			hc, done := lb.client()
			resp, err := hc.Post("http://www.example.com/sink", "application/octet-stream", strings.NewReader(strings.Repeat("s", 100000)))
			if err != nil {
				t.Fatalf("a small upload: %v", err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			done()
			if string(got) != "got 100000 bytes\n" {
				t.Fatalf("a small upload: the server %q", got)
			}
			download := func(n int) (int64, error) {
				var c net.Conn
				var br *bufio.Reader
				target := "http://www.example.com"
				if via == "connect" {
					var resp *http.Response
					resp, c, br = lb.raw(t, "CONNECT www.example.com:80 HTTP/1.1\r\n\r\n")
					if resp.StatusCode != 200 {
						t.Fatalf("CONNECT: %s", resp.Status)
					}
					target = ""
				} else {
					c = lb.dialProxy(t)
					br = bufio.NewReader(c)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(testenv.Scaled(30 * time.Second)))
				fmt.Fprintf(c, "GET %s/bytes?n=%d HTTP/1.1\r\nHost: www.example.com\r\n\r\n", target, n)
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					return 0, err
				}
				defer resp.Body.Close()
				return io.Copy(io.Discard, resp.Body)
			}
			if got, err := download(1 << 20); err != nil || got != 1<<20 {
				t.Fatalf("1 MiB under a 3 MiB cap: %d bytes, %v", got, err)
			}
			if got, err := download(8 << 20); err == nil && got == 8<<20 {
				t.Fatal("8 MiB arrived whole under a 3 MiB cap")
			}
			lb.waitEvent(t, "the byte cap", func(ev egress.Event) bool { return strings.Contains(ev.Reason, "byte cap") })
			if up, down := lb.proxy.Bytes(); down > pol.MaxBytesDown || up > pol.MaxBytesUp {
				t.Errorf("%d bytes down, %d up; the caps are %d and %d", down, up, pol.MaxBytesDown, pol.MaxBytesUp)
			}
			// An upload over MaxBytesUp is cut.
			c := lb.dialProxy(t)
			defer c.Close()
			c.SetDeadline(time.Now().Add(testenv.Scaled(30 * time.Second)))
			body := strings.Repeat("u", 2<<20)
			go fmt.Fprintf(c, "POST http://www.example.com/sink HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
			io.Copy(io.Discard, c)
			if up, _ := lb.proxy.Bytes(); up > pol.MaxBytesUp {
				t.Errorf("%d bytes up; the cap is %d", up, pol.MaxBytesUp)
			}
			lb.waitEvent(t, "the upload cut", func(ev egress.Event) bool {
				return ev.Method == http.MethodPost && strings.Contains(ev.Reason, "byte cap")
			})
		})
	}
}

// TestProxyHeaderCap: a request header over MaxHeaderBytes is refused
// without being buffered whole.
func TestProxyHeaderCap(t *testing.T) {
	lb := startLab(t, labPolicy(t))
	big := "CONNECT www.example.com:443 HTTP/1.1\r\nX-Pad: " + strings.Repeat("a", egress.MaxHeaderBytes) + "\r\n\r\n"
	c := lb.dialProxy(t)
	defer c.Close()
	c.SetDeadline(time.Now().Add(testenv.Scaled(30 * time.Second)))
	go io.WriteString(c, big) // the proxy may stop reading before the end
	got, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(got), "HTTP/1.1 431 ") {
		t.Errorf("oversized header: %.80q; want a 431", got)
	}
	if code, _, err := lb.get(t, "https://www.example.com/"); err != nil || code != 200 {
		t.Errorf("after the oversized header, a normal request: %d %v", code, err)
	}
}

// TestProxyCloseCutsTunnels: Close ends open tunnels and returns only
// when every goroutine of the proxy has (startLab's cleanup counts them).
func TestProxyCloseCutsTunnels(t *testing.T) {
	lb := startLab(t, labPolicy(t))
	resp, tun, br := lb.raw(t, "CONNECT www.example.com:443 HTTP/1.1\r\n\r\n")
	defer tun.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %s", resp.Status)
	}
	lb.proxy.Close()
	if n, _ := io.Copy(io.Discard, br); n != 0 {
		t.Errorf("read %d bytes from a tunnel the proxy closed", n)
	}
	if _, err := lb.jail.DialContext(t.Context(), "tcp", lb.addr); err == nil {
		t.Error("the proxy's listener still accepts after Close")
	}
}

// TestProxyOnlyInItsNamespace: the proxy's listener lives in its jail's
// namespace: from another jail's namespace its address reaches nothing,
// while from its own the proxy answers.
func TestProxyOnlyInItsNamespace(t *testing.T) {
	lb := startLab(t, labPolicy(t))
	other, err := netlab.NewNamespace()
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if c, err := other.DialContext(t.Context(), "tcp", lb.addr); err == nil {
		c.Close()
		t.Fatalf("another namespace reached the proxy at %s", lb.addr)
	}
	resp, c, _ := lb.raw(t, "CONNECT www.example.com:443 HTTP/1.1\r\n\r\n")
	c.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("from its own namespace, CONNECT: %s", resp.Status)
	}
}

// TestProxyRefusesBadPolicy: a policy that does not validate is never
// served; the listener is closed and nothing runs.
func TestProxyRefusesBadPolicy(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &egress.Proxy{Policy: egress.Policy{MaxConcurrent: -1}}
	if err := p.Serve(l); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Fatalf("Serve with a negative cap: %v; want the policy's error", err)
	}
	if c, err := net.Dial("tcp", l.Addr().String()); err == nil {
		c.Close()
		t.Error("the listener of a refused policy still accepts")
	}
	p.Close()
}

// TestProxyIdleWhileBothWaysBlocked: a tunnel whose two ends both stop
// reading while both send has bytes waiting each way and none moving: it
// is idle, and cut at the idle timeout, while a tunnel that moves bytes
// under the same timeout is not.
func TestProxyIdleWhileBothWaysBlocked(t *testing.T) {
	pol := labPolicy(t)
	pol.IdleTimeout = testenv.Scaled(300 * time.Millisecond)
	lb := startLab(t, pol)
	resp, tun, _ := lb.raw(t, "CONNECT www.example.com:80 HTTP/1.1\r\n\r\n")
	defer tun.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %s", resp.Status)
	}
	tun.SetDeadline(time.Now().Add(testenv.Scaled(30 * time.Second)))
	// The server writes its 1 GB answer without reading the request's
	// body; the client writes that body without reading the answer.
	fmt.Fprintf(tun, "POST /bytes?n=%d HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: %d\r\n\r\n", 1<<30, 1<<30)
	chunk := make([]byte, 64<<10)
	var sent int64
	var err error
	for sent < 1<<30 && err == nil {
		var n int
		n, err = tun.Write(chunk)
		sent += int64(n)
	}
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("sent %d bytes, then %v; want the proxy to cut the tunnel at its idle timeout", sent, err)
	}
	ev := lb.waitEvent(t, "the blocked tunnel cut", func(ev egress.Event) bool {
		return ev.Method == http.MethodConnect && strings.Contains(ev.Reason, "IdleTimeout")
	})
	if ev.BytesUp == 0 || ev.BytesDown == 0 {
		t.Errorf("event %+v; want bytes moved both ways before the tunnel blocked", ev)
	}

	// The benign side: a download under the same timeout arrives whole.
	if code, body, err := lb.get(t, "https://www.example.com/bytes?n=4000000"); err != nil || code != 200 || len(body) != 4000000 {
		t.Errorf("download with a short idle timeout: %d, %d bytes, %v", code, len(body), err)
	}
}
