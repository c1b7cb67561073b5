package egress_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/brig-sandbox/brig/egress"
	"github.com/brig-sandbox/brig/internal/testenv"
	"github.com/brig-sandbox/brig/internal/testenv/netlab"
)

// lab is a proxy serving a listener made inside a namespace that stands
// in for a jail's (only lo, no route out), in front of the test internet.
type lab struct {
	in    *netlab.Internet
	jail  *netlab.Namespace
	proxy *egress.Proxy
	addr  string // the proxy's address inside the jail's namespace

	mu     sync.Mutex
	events []egress.Event
}

// Names the lab's resolver gives beyond netlab.ServerNames: allowed by the
// lab's policy, each leads somewhere the proxy must never dial.
var labNames = map[string][]netip.Addr{
	"private.example.com":  {netip.MustParseAddr("10.0.0.5")},
	"loop.example.com":     {netip.MustParseAddr("127.0.0.1")},
	"mapped.example.com":   {netip.MustParseAddr("::ffff:127.0.0.1")},
	"meta.example.com":     {netip.MustParseAddr("169.254.169.254")},
	"meta6.example.com":    {netip.MustParseAddr("fd00:ec2::254")},
	"rebind.example.com":   {netlab.ServerAddr4, netip.MustParseAddr("192.168.1.1")},
	"hostaddr.example.com": {netlab.HostAddr4},
	"blocked.example.com":  {netlab.ServerAddr4},
	"inrange.example.com":  {netip.MustParseAddr("192.0.2.9")},
}

// labPolicy allows the test internet's names and, on purpose, names that
// lead to forbidden addresses and forbidden literals: the address checks
// must stop them although the policy allows them.
func labPolicy(t testing.TB) egress.Policy {
	var p egress.Policy
	for _, s := range []string{"www.example.com", "index.example.com", "files.example.com", "*.example.com",
		"198.51.100.2:443", "10.0.0.0/8", "127.0.0.1", "169.254.169.254:80", "198.51.100.1"} {
		if err := p.AllowDestination(s); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []string{"blocked.example.com", "192.0.2.0/24"} {
		if err := p.DenyDestination(s); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func startLab(t testing.TB, pol egress.Policy) *lab {
	t.Helper()
	before := runtime.NumGoroutine()
	// Registered first, so it runs last: after the proxy and the internet
	// are gone, nothing of theirs may be left.
	t.Cleanup(func() { checkGoroutines(t, before) })
	in := netlab.Start(t)
	for name, addrs := range labNames {
		in.SetName(name, addrs...)
	}
	jail, err := netlab.NewNamespace()
	if err != nil {
		t.Fatal(err)
	}
	l, err := jail.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		jail.Close()
		t.Fatal(err)
	}
	lb := &lab{in: in, jail: jail, addr: l.Addr().String()}
	lb.proxy = &egress.Proxy{Policy: pol, Resolver: in, OnEvent: func(ev egress.Event) {
		lb.mu.Lock()
		lb.events = append(lb.events, ev)
		lb.mu.Unlock()
	}}
	served := make(chan error, 1)
	go func() { served <- lb.proxy.Serve(l) }()
	t.Cleanup(func() {
		lb.proxy.Close()
		if err := <-served; !errors.Is(err, egress.ErrProxyClosed) {
			t.Errorf("Serve returned %v after Close; want ErrProxyClosed", err)
		}
		jail.Close()
	})
	return lb
}

func checkGoroutines(t testing.TB, before int) {
	deadline := time.Now().Add(testenv.Scaled(10 * time.Second))
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines left (%d before):\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// client is an HTTP client inside the jail's namespace using the proxy.
func (lb *lab) client() (*http.Client, func()) {
	pu, _ := url.Parse("http://" + lb.addr)
	tr := &http.Transport{
		Proxy:             http.ProxyURL(pu),
		DialContext:       lb.jail.DialContext,
		TLSClientConfig:   &tls.Config{RootCAs: lb.in.CAPool},
		DisableKeepAlives: true,
	}
	return &http.Client{Transport: tr, Timeout: testenv.Scaled(30 * time.Second)}, tr.CloseIdleConnections
}

func (lb *lab) get(t testing.TB, u string) (int, string, error) {
	t.Helper()
	c, done := lb.client()
	defer done()
	resp, err := c.Get(u)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// dialProxy connects to the proxy from inside the jail's namespace.
func (lb *lab) dialProxy(t testing.TB) net.Conn {
	t.Helper()
	c, err := lb.jail.DialContext(t.Context(), "tcp", lb.addr)
	if err != nil {
		t.Fatalf("dial the proxy: %v", err)
	}
	return c
}

// raw sends a request header to the proxy and reads the response header;
// the connection is returned open (a tunnel after a 200).
func (lb *lab) raw(t testing.TB, header string) (*http.Response, net.Conn, *bufio.Reader) {
	t.Helper()
	c := lb.dialProxy(t)
	c.SetDeadline(time.Now().Add(testenv.Scaled(30 * time.Second)))
	if _, err := io.WriteString(c, header); err != nil {
		c.Close()
		t.Fatalf("write %q: %v", header, err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: strings.Fields(header)[0]})
	if err != nil {
		c.Close()
		t.Fatalf("response to %q: %v", header, err)
	}
	return resp, c, br
}

// connect asks for a tunnel the test expects refused: the body of a
// refusal is read to its end (a tunnel's would never end).
func (lb *lab) connect(t testing.TB, target string) (status int, reason string) {
	t.Helper()
	resp, c, _ := lb.raw(t, fmt.Sprintf("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target))
	defer c.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, resp.Status + " / " + string(body)
}

func (lb *lab) eventsCopy() []egress.Event {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return append([]egress.Event(nil), lb.events...)
}

// waitEvent waits for an event that ok accepts (events come when a
// connection ends, after the client has seen its end).
func (lb *lab) waitEvent(t testing.TB, what string, ok func(egress.Event) bool) egress.Event {
	t.Helper()
	deadline := time.Now().Add(testenv.Scaled(10 * time.Second))
	for time.Now().Before(deadline) {
		for _, ev := range lb.eventsCopy() {
			if ok(ev) {
				return ev
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no event %s among %+v", what, lb.eventsCopy())
	return egress.Event{}
}
