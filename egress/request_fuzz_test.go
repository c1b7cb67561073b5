package egress

import (
	"bufio"
	"bytes"
	"net/http"
	"strings"
	"testing"
)

// FuzzReadRequest: whatever a jailed client sends as a request header, the
// proxy either refuses it with a status and a printable reason, or names a
// destination it could check: a normalized host and a port in range, and
// for plain HTTP a request it can forward.
func FuzzReadRequest(f *testing.F) {
	for _, s := range []string{
		"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
		"GET http://example.com/x HTTP/1.1\r\nHost: example.com\r\n\r\n",
		"GET http://[2001:db8::1]:8080/ HTTP/1.1\r\nHost: [2001:db8::1]:8080\r\n\r\n",
		"GET http://a.example/ HTTP/1.1\r\nHost: b.example\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
		"CONNECT 127.1:443 HTTP/1.1\r\n\r\n",
		"\r\nPOST http://example.com/ HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
	} {
		f.Add([]byte(s))
	}
	p := &Proxy{}
	if err := p.init(); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		rq, code, msg := p.readRequest(bufio.NewReader(bytes.NewReader(in)))
		if code == closedQuietly {
			if strings.TrimLeft(string(in), "\r\n") != "" {
				t.Fatalf("%q: taken for a client that sent nothing", in)
			}
			return
		}
		if code != 0 {
			if code < 400 || code > 599 || msg == "" {
				t.Fatalf("refusal %d %q", code, msg)
			}
			var buf bytes.Buffer
			writeStatus(&buf, code, msg)
			resp, err := http.ReadResponse(bufio.NewReader(&buf), nil)
			if err != nil || resp.StatusCode != code {
				t.Fatalf("the refusal %d %q is not a valid response: %v", code, msg, err)
			}
			return
		}
		if rq.port < 1 || rq.port > 65535 {
			t.Fatalf("port %d accepted", rq.port)
		}
		if h, err := normalizeTarget(rq.host); err != nil || h != rq.host {
			t.Fatalf("host %q accepted but not normal (%q, %v)", rq.host, h, err)
		}
		if rq.method != http.MethodConnect && (rq.req == nil || !strings.HasPrefix(rq.req.URL.String(), "http://")) {
			t.Fatalf("plain request %q accepted without an http:// URL", rq.method)
		}
	})
}
