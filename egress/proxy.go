package egress

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// MaxHeaderBytes caps a client's request line and headers together.
const MaxHeaderBytes = 16 << 10

// copyBufSize is each direction's buffer of a connection: memory per
// connection is fixed whatever the client sends.
const copyBufSize = 32 << 10

// ErrProxyClosed is what Serve returns after Close.
var ErrProxyClosed = errors.New("egress: proxy closed")

// Resolver finds the addresses of a name; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Proxy serves HTTP proxy requests under a Policy: CONNECT for TLS and
// absolute-URI requests for plain HTTP, one destination per client
// connection. Set the fields, then call Serve with a listener (from any
// network namespace); Close ends everything it serves. A Proxy is not to be
// copied or reused after Close.
type Proxy struct {
	Policy Policy
	// Resolver resolves destination names; nil means net.DefaultResolver.
	Resolver Resolver
	// OnEvent, if set, receives every decision, from the connection's own
	// goroutine: it must return quickly.
	OnEvent func(Event)
	// Logger takes the proxy's own failures (accept errors); nil means
	// slog.Default().
	Logger *slog.Logger

	once     sync.Once
	initErr  error
	pol      Policy
	ctx      context.Context
	cancel   context.CancelFunc
	own      ownAddrs
	bufs     sync.Pool
	bytesUp  atomic.Int64
	bytesDn  atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	closed   bool
	lns      map[net.Listener]struct{}
	conns    map[net.Conn]struct{}
	active   int
	total    int
	refused  []Refusal
	refusedN map[Refusal]int // key has Count 0; value is the index in refused
}

func (p *Proxy) init() error {
	p.once.Do(func() {
		if err := p.Policy.Validate(); err != nil {
			p.initErr = err
			return
		}
		p.pol = p.Policy.withDefaults()
		p.pol.Allow = append([]Rule(nil), p.Policy.Allow...)
		p.pol.Deny = append([]Rule(nil), p.Policy.Deny...)
		p.ctx, p.cancel = context.WithCancel(context.Background())
		p.own.maxAge = 5 * time.Second
		p.bufs.New = func() any { b := make([]byte, copyBufSize); return &b }
		p.lns = map[net.Listener]struct{}{}
		p.conns = map[net.Conn]struct{}{}
		p.refusedN = map[Refusal]int{}
	})
	return p.initErr
}

// Serve accepts connections on l until Close (then it returns
// ErrProxyClosed) or until l fails. It closes l when it returns.
func (p *Proxy) Serve(l net.Listener) error {
	if err := p.init(); err != nil {
		l.Close()
		return err
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		l.Close()
		return ErrProxyClosed
	}
	p.lns[l] = struct{}{}
	p.wg.Add(1)
	p.mu.Unlock()
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.lns, l)
		p.mu.Unlock()
		l.Close()
	}()

	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if p.isClosed() {
				return ErrProxyClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
				errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) {
				// Out of fds or memory for a moment: wait instead of spinning.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				p.logger().Warn("egress proxy: accept", "err", err, "retry_in", backoff)
				select {
				case <-time.After(backoff):
				case <-p.ctx.Done():
					return ErrProxyClosed
				}
				continue
			}
			return fmt.Errorf("egress proxy: accept: %w", err)
		}
		backoff = 0
		p.admit(c)
	}
}

// admit applies the connection caps before any byte of the request is
// read, so a flood costs no goroutine.
func (p *Proxy) admit(c net.Conn) {
	p.mu.Lock()
	var refusal string
	var code int
	switch {
	case p.closed:
		p.mu.Unlock()
		c.Close()
		return
	case p.active >= p.pol.MaxConcurrent:
		code, refusal = http.StatusServiceUnavailable, fmt.Sprintf("more than %d connections at once (the policy's MaxConcurrent)", p.pol.MaxConcurrent)
	case p.total >= p.pol.MaxConnections:
		code, refusal = http.StatusForbidden, fmt.Sprintf("the run's %d connections are used up (the policy's MaxConnections)", p.pol.MaxConnections)
	default:
		p.active++
		p.total++
		p.conns[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go p.serveConn(c)
		return
	}
	p.mu.Unlock()
	// Recorded before the client can see it, so Refused holds every
	// refusal a client has been told of.
	p.emit(Event{Time: time.Now(), Reason: refusal})
	// The reply fits the socket's send buffer; the deadline is for a
	// client whose buffer is somehow full.
	c.SetWriteDeadline(time.Now().Add(time.Second))
	writeStatus(c, code, "refused: "+refusal)
	c.Close()
}

func (p *Proxy) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

func (p *Proxy) logger() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return slog.Default()
}

// track registers a connection Close must cut; it reports false (and
// closes c) when the proxy is closing.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

// Close stops every listener, cuts every connection and waits until every
// goroutine of the proxy has returned.
func (p *Proxy) Close() error {
	if err := p.init(); err != nil {
		return nil
	}
	p.mu.Lock()
	p.closed = true
	p.cancel()
	for l := range p.lns {
		l.Close()
	}
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}

// Refused returns the distinct destinations refused so far, in the order
// first refused (at most maxRefusals of them), each with how often.
func (p *Proxy) Refused() []Refusal {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Refusal(nil), p.refused...)
}

// Bytes returns the bytes carried so far each way, over all connections.
func (p *Proxy) Bytes() (up, down int64) { return p.bytesUp.Load(), p.bytesDn.Load() }

func (p *Proxy) emit(ev Event) {
	if !ev.Allowed {
		key := Refusal{Host: ev.Host, Port: ev.Port, Reason: ev.Reason}
		p.mu.Lock()
		if i, ok := p.refusedN[key]; ok {
			p.refused[i].Count++
		} else if len(p.refused) < maxRefusals {
			p.refusedN[key] = len(p.refused)
			key.Count = 1
			p.refused = append(p.refused, key)
		}
		p.mu.Unlock()
	}
	if p.OnEvent != nil {
		p.OnEvent(ev)
	}
}

// request is what serveConn learns from a client's header.
type request struct {
	method string
	host   string // normalized
	port   int
	req    *http.Request // plain HTTP only
}

func (p *Proxy) serveConn(c net.Conn) {
	start := time.Now()
	ev := Event{Time: start}
	defer func() {
		p.mu.Lock()
		p.active--
		p.mu.Unlock()
		p.untrack(c)
		p.wg.Done()
	}()

	// The header must be whole within HeaderTimeout of the accept, however
	// it trickles in (slowloris): a plain deadline, which no byte extends.
	c.SetReadDeadline(start.Add(p.pol.HeaderTimeout))
	act := &activity{idle: p.pol.IdleTimeout}
	cr := &idleReader{c: c, act: act, plain: true}
	br := bufio.NewReaderSize(cr, 4096)
	rq, code, msg := p.readRequest(br)
	if code == closedQuietly {
		return
	}
	if code != 0 {
		ev.Reason, ev.Duration = msg, time.Since(start)
		p.emit(ev)
		c.SetWriteDeadline(time.Now().Add(time.Second))
		writeStatus(c, code, msg)
		return
	}
	c.SetReadDeadline(time.Time{})
	ev.Method, ev.Host, ev.Port = rq.method, rq.host, rq.port

	up, addr, reason, code := p.dial(rq.host, rq.port)
	ev.Addr = addr
	if up == nil {
		ev.Reason, ev.Duration = reason, time.Since(start)
		p.emit(ev)
		c.SetWriteDeadline(time.Now().Add(time.Second))
		writeStatus(c, code, fmt.Sprintf("refused %s %s: %s", rq.method, net.JoinHostPort(rq.host, strconv.Itoa(rq.port)), reason))
		return
	}
	defer p.untrack(up)
	ev.Allowed = true

	// From here the connection is idle only when no byte moves either way.
	act.touch()
	cr.plain = false
	cl := &meteredConn{Conn: c, r: br, act: act}
	ul := &meteredConn{Conn: up, r: &idleReader{c: up, act: act}, act: act}
	if rq.method == http.MethodConnect {
		if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err == nil {
			ev.Reason = p.tunnel(cl, ul)
		}
	} else {
		ev.Reason = p.forward(rq.req, cl, ul)
	}
	ev.BytesUp, ev.BytesDown = ul.written.Load(), cl.written.Load()
	ev.Duration = time.Since(start)
	p.emit(ev)
}

// readRequest reads and checks one request header; code is 0 when rq is
// good, else the status and text of the refusal.
func (p *Proxy) readRequest(br *bufio.Reader) (rq request, code int, msg string) {
	hdr, err := readHeader(br, MaxHeaderBytes)
	if err != nil {
		var ne net.Error
		switch {
		case len(hdr) == 0 && errors.Is(err, io.EOF):
			return rq, closedQuietly, ""
		case errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errIdle):
			return rq, http.StatusRequestTimeout, fmt.Sprintf("request header not complete within %s", p.pol.HeaderTimeout)
		case errors.Is(err, errHeaderTooLarge):
			return rq, http.StatusRequestHeaderFieldsTooLarge, fmt.Sprintf("request header over %d bytes", MaxHeaderBytes)
		default:
			return rq, http.StatusBadRequest, "no complete request header: " + err.Error()
		}
	}
	req, err := http.ReadRequest(bufio.NewReaderSize(io.MultiReader(bytes.NewReader(hdr), br), 512))
	if err != nil {
		return rq, http.StatusBadRequest, "malformed request: " + err.Error()
	}
	rq.method = req.Method
	var authority string
	defaultPort := 0
	if req.Method == http.MethodConnect {
		authority = req.RequestURI
		if req.URL.Scheme != "" || req.URL.Path != "" {
			return rq, http.StatusBadRequest, "CONNECT takes host:port, as in CONNECT example.com:443"
		}
	} else {
		switch {
		case req.URL.Scheme == "https":
			return rq, http.StatusBadRequest, "https:// goes through CONNECT; set HTTPS_PROXY, not only HTTP_PROXY"
		case req.URL.Scheme != "http" || req.URL.Host == "":
			return rq, http.StatusMethodNotAllowed, "only CONNECT host:port and absolute http:// URLs are served here; set HTTP_PROXY and HTTPS_PROXY to this proxy"
		case req.URL.User != nil:
			return rq, http.StatusBadRequest, "user information in the URL is not forwarded"
		}
		authority, defaultPort = req.URL.Host, 80
		hosts, err := hostHeaders(hdr)
		if err != nil || len(hosts) > 1 {
			return rq, http.StatusBadRequest, "more than one Host header"
		}
		if len(hosts) == 1 && !sameAuthority(hosts[0], authority, 80) {
			return rq, http.StatusBadRequest, fmt.Sprintf("Host %.100q does not match the URL's host %.100q", hosts[0], authority)
		}
		rq.req = req
	}
	host, port, err := splitAuthority(authority, defaultPort)
	if err != nil {
		return rq, http.StatusBadRequest, fmt.Sprintf("target %.100q: %v", authority, err)
	}
	rq.host, rq.port = host, port
	return rq, 0, ""
}

var errHeaderTooLarge = errors.New("request header too large")

// closedQuietly is readRequest's code for a client that closed without
// sending a byte: no request, so nothing to refuse or record.
const closedQuietly = -1

// readHeader returns the request line and headers up to and including the
// blank line, reading at most max bytes.
func readHeader(br *bufio.Reader, max int) ([]byte, error) {
	var hdr []byte
	lineStart, read := 0, 0
	for {
		chunk, err := br.ReadSlice('\n')
		if read += len(chunk); read > max {
			return nil, errHeaderTooLarge
		}
		hdr = append(hdr, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return hdr, err
		}
		line := hdr[lineStart:]
		if len(line) == 1 || len(line) == 2 && line[0] == '\r' {
			if lineStart == 0 {
				// A blank line before the request line, as RFC 9112 lets a
				// server ignore.
				hdr = hdr[:0]
				continue
			}
			return hdr, nil
		}
		lineStart = len(hdr)
	}
}

// hostHeaders returns the Host header values; http.ReadRequest drops them
// for an absolute URI, and the proxy must compare them.
func hostHeaders(hdr []byte) ([]string, error) {
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(hdr)))
	if _, err := tp.ReadLine(); err != nil {
		return nil, err
	}
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		return nil, err
	}
	return h.Values("Host"), nil
}

// splitAuthority reads host[:port] (IPv6 in brackets) and normalizes the
// host; a missing port takes defaultPort, or is an error when that is 0.
func splitAuthority(a string, defaultPort int) (string, int, error) {
	host, portStr, err := net.SplitHostPort(a)
	if err != nil {
		if defaultPort == 0 || !strings.HasSuffix(a, "]") && strings.Contains(a, ":") {
			return "", 0, errors.New("want host:port")
		}
		host, portStr = strings.TrimSuffix(strings.TrimPrefix(a, "["), "]"), strconv.Itoa(defaultPort)
	}
	port, err := parsePort(portStr)
	if err != nil {
		return "", 0, err
	}
	host, err = normalizeTarget(host)
	if err != nil {
		return "", 0, err
	}
	return host, port, nil
}

func sameAuthority(a, b string, defaultPort int) bool {
	ha, pa, errA := splitAuthority(a, defaultPort)
	hb, pb, errB := splitAuthority(b, defaultPort)
	return errA == nil && errB == nil && ha == hb && pa == pb
}

// dial applies the policy to host:port, resolves it, checks every address
// and connects to one of them; on refusal it returns why and the status.
func (p *Proxy) dial(host string, port int) (net.Conn, netip.Addr, string, int) {
	if reason := p.pol.decideName(host, port); reason != "" {
		return nil, netip.Addr{}, reason, http.StatusForbidden
	}
	ctx, cancel := context.WithTimeout(p.ctx, p.pol.ConnectTimeout)
	defer cancel()
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		res := p.Resolver
		if res == nil {
			res = net.DefaultResolver
		}
		found, err := res.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, netip.Addr{}, fmt.Sprintf("cannot resolve %s: %v", host, err), http.StatusBadGateway
		}
		if len(found) == 0 {
			return nil, netip.Addr{}, fmt.Sprintf("%s has no address", host), http.StatusBadGateway
		}
		addrs = found
	}
	// Every address must pass: a name with one public and one private
	// address is a rebinding attempt, not a choice.
	for i, a := range addrs {
		a = a.WithZone("").Unmap()
		addrs[i] = a
		if reason := checkAddr(a, &p.own); reason != "" {
			if a.String() == host {
				return nil, a, fmt.Sprintf("%s is %s", a, reason), http.StatusForbidden
			}
			return nil, a, fmt.Sprintf("resolves to %s, %s", a, reason), http.StatusForbidden
		}
		if reason := p.pol.deniedAddr(a, port); reason != "" {
			return nil, a, reason, http.StatusForbidden
		}
	}
	var lastErr error
	for _, a := range addrs {
		want := netip.AddrPortFrom(a, uint16(port))
		d := net.Dialer{
			// The address the socket connects to is the one checked; the
			// control hook says so once more, at connect(2).
			Control: func(network, address string, _ syscall.RawConn) error {
				got, err := netip.ParseAddrPort(address)
				if err != nil || got.Addr().Unmap() != a || got.Port() != uint16(port) {
					return fmt.Errorf("dialing %s, not the checked %s", address, want)
				}
				if reason := checkAddr(got.Addr(), &p.own); reason != "" {
					return fmt.Errorf("%s is %s", got.Addr(), reason)
				}
				return nil
			},
		}
		c, err := d.DialContext(ctx, "tcp", want.String())
		if err == nil {
			if !p.track(c) {
				return nil, a, "the proxy is closing", http.StatusServiceUnavailable
			}
			return c, a, "", 0
		}
		lastErr = err
	}
	return nil, addrs[0], fmt.Sprintf("cannot connect: %v", lastErr), http.StatusBadGateway
}

// writeStatus writes a complete response whose reason phrase and body both
// carry text, so a client that shows only the status line (curl, pip)
// still shows why.
func writeStatus(w io.Writer, code int, text string) {
	phrase := sanitizePhrase(text)
	body := "brig egress proxy: " + text + "\n"
	fmt.Fprintf(w, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		code, phrase, len(body), body)
}

// sanitizePhrase keeps a reason phrase printable ASCII and short.
func sanitizePhrase(s string) string {
	const max = 200
	b := make([]byte, 0, min(len(s), max))
	for i := 0; i < len(s) && len(b) < max; i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		b = append(b, c)
	}
	return string(b)
}
