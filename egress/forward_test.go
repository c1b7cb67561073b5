package egress_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/brig-sandbox/brig/internal/testenv"
)

// rawServer answers each connection on port 8080 of the test internet with
// what reply gives for the request line, written as is, then closes: a
// destination that breaks HTTP's framing as no net/http server would.
func rawServer(t *testing.T, lb *lab, reply func(requestLine string) []byte) {
	t.Helper()
	l, err := lb.in.NS.Listen("tcp", "198.51.100.2:8080")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(testenv.Scaled(30 * time.Second)))
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				c.Write(reply(req.Method + " " + req.RequestURI))
			}()
		}
	}()
}

// TestProxyForwardsBodyExactly: a plain-HTTP response of known length
// reaches the client byte for byte, whether its bytes came with the header
// or after it (those the proxy moves in the kernel); what a destination
// sends past its Content-Length (a second response smuggled after the
// first) never reaches the client; a body cut short stays short; a HEAD's
// Content-Length brings no body.
func TestProxyForwardsBodyExactly(t *testing.T) {
	pol := labPolicy(t)
	if err := pol.AllowDestination("www.example.com:8080"); err != nil {
		t.Fatal(err)
	}
	lb := startLab(t, pol)
	pattern := make([]byte, 3<<20+17)
	for i := range pattern {
		pattern[i] = byte(i*7 + i>>11)
	}
	const smuggled = "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nsmuggle"
	rawServer(t, lb, func(line string) []byte {
		switch line {
		case "GET /pattern":
			return fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Kept: yes\r\nConnection: keep-alive\r\n\r\n%s%s", len(pattern), pattern, smuggled)
		case "GET /short":
			return []byte("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nonly these bytes")
		case "HEAD /pattern":
			return fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(pattern))
		}
		return []byte("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
	})
	get := func(method, path string) (*http.Response, []byte, []byte, error) {
		c := lb.dialProxy(t)
		defer c.Close()
		c.SetDeadline(time.Now().Add(testenv.Scaled(30 * time.Second)))
		fmt.Fprintf(c, "%s http://www.example.com:8080%s HTTP/1.1\r\nHost: www.example.com:8080\r\n\r\n", method, path)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			return nil, nil, nil, err
		}
		body, err := io.ReadAll(resp.Body)
		after, _ := io.ReadAll(br) // up to the proxy's close
		return resp, body, after, err
	}

	resp, body, after, err := get("GET", "/pattern")
	if err != nil || !bytes.Equal(body, pattern) {
		t.Fatalf("GET /pattern: %d of %d bytes, equal %v, %v", len(body), len(pattern), bytes.Equal(body, pattern), err)
	}
	if resp.Header.Get("X-Kept") != "yes" || !resp.Close || resp.Header.Get("Keep-Alive") != "" {
		t.Errorf("GET /pattern: header %v, close %v; want the end-to-end header kept and Connection: close", resp.Header, resp.Close)
	}
	if len(after) != 0 {
		t.Errorf("after the body the client read %q; want nothing (the proxy closes)", after)
	}

	_, body, _, err = get("GET", "/short")
	if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) || string(body) != "only these bytes" {
		t.Errorf("GET /short: %q, %v; want the short body and an unexpected EOF", body, err)
	}

	resp, body, after, err = get("HEAD", "/pattern")
	if err != nil || resp.ContentLength != int64(len(pattern)) || len(body) != 0 || len(after) != 0 {
		t.Errorf("HEAD /pattern: %v, length %d, %d body bytes, %d after; want the length and no body", err, resp.ContentLength, len(body), len(after))
	}

	for _, ev := range lb.eventsCopy() {
		if ev.Port == 8080 && ev.BytesDown > int64(len(pattern))+4096 {
			t.Errorf("event %+v: more bytes down than the response the client got", ev)
		}
	}
	if _, down := lb.proxy.Bytes(); down > int64(len(pattern))+1<<20 {
		t.Errorf("the proxy counts %d bytes down", down)
	}
}
