package egress

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

var (
	errIdle    = errors.New("idle timeout")
	errByteCap = errors.New("byte cap reached")
)

// activity is when a connection last moved a byte either way: a tunnel is
// idle only when neither direction has moved for the idle timeout.
type activity struct {
	last atomic.Int64 // UnixNano of the last read or write that moved bytes
	idle time.Duration
}

func (a *activity) touch() { a.last.Store(time.Now().UnixNano()) }

// deadline is when the connection becomes idle unless a byte moves.
func (a *activity) deadline() time.Time { return time.Unix(0, a.last.Load()).Add(a.idle) }

// idleReader reads a connection under the idle timeout of the whole
// proxied connection: a read that times out goes on while the other
// direction has moved bytes within the timeout.
type idleReader struct {
	c   net.Conn
	act *activity
	// plain: a timeout is returned as it is (the request header's fixed
	// deadline), and reads keep no activity.
	plain bool
}

func (r *idleReader) Read(b []byte) (int, error) {
	if r.plain {
		return r.c.Read(b)
	}
	for {
		n, err := r.c.Read(b)
		var ne net.Error
		if n == 0 && err != nil && errors.As(err, &ne) && ne.Timeout() {
			d := r.act.deadline()
			if !time.Now().Before(d) {
				return 0, errIdle
			}
			r.c.SetReadDeadline(d)
			continue
		}
		if n > 0 {
			r.act.touch()
		}
		return n, err
	}
}

// meteredConn is one side of a proxied connection: reads go through its
// reader (an idleReader, or the client's header reader over one), writes
// count bytes, keep the activity and stop at the proxy's byte cap. It hides
// ReadFrom and WriteTo, so copies use the proxy's fixed buffers unless
// copyBytes chooses the kernel's splice itself (spliceBytes).
type meteredConn struct {
	net.Conn
	r       io.Reader
	act     *activity
	written atomic.Int64
	total   *atomic.Int64 // the proxy's bytes this way
	max     int64         // 0: no cap
}

func (m *meteredConn) Read(b []byte) (int, error) { return m.r.Read(b) }

func (m *meteredConn) Write(b []byte) (int, error) {
	allowed := len(b)
	var capErr error
	if m.max > 0 {
		if after := m.total.Add(int64(len(b))); after > m.max {
			over := min(after-m.max, int64(len(b)))
			m.total.Add(-over)
			allowed -= int(over)
			capErr = errByteCap
		}
	} else {
		m.total.Add(int64(len(b)))
	}
	n, err := m.Conn.Write(b[:allowed])
	m.written.Add(int64(n))
	if n > 0 {
		m.act.touch()
	}
	if err == nil {
		err = capErr
	}
	if n < allowed {
		m.total.Add(-int64(allowed - n))
	}
	return n, err
}

// reserve takes up to n bytes of this way's byte cap for a copy about to
// run and returns how many it got; unreserve gives back what the copy did
// not move. Without a cap the total runs ahead by what is in flight.
func (m *meteredConn) reserve(n int64) int64 {
	after := m.total.Add(n)
	if m.max > 0 && after > m.max {
		over := min(after-m.max, n)
		m.total.Add(-over)
		n -= over
	}
	return n
}

func (m *meteredConn) unreserve(n int64) {
	if n != 0 {
		m.total.Add(-n)
	}
}

// closeWrite half-closes c when it can, so the peer sees the end of this
// direction while the other still flows.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	c.Close()
}

func (p *Proxy) meter(cl, ul *meteredConn) {
	cl.total, cl.max = &p.bytesDn, p.pol.MaxBytesDown
	ul.total, ul.max = &p.bytesUp, p.pol.MaxBytesUp
	d := time.Now().Add(p.pol.IdleTimeout)
	cl.Conn.SetReadDeadline(d)
	ul.Conn.SetReadDeadline(d)
}

// tunnel copies both ways until both ends have closed, or one fails, or
// the connection idles or meets a byte cap; it returns why it was cut
// short, or "".
func (p *Proxy) tunnel(cl, ul *meteredConn) string {
	p.meter(cl, ul)
	upErr := make(chan error, 1)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		upErr <- p.copyHalf(ul, cl)
	}()
	down := p.copyHalf(cl, ul)
	up := <-upErr
	return p.cutReason(errors.Join(up, down))
}

// copyHalf copies src to dst until src's end, then half-closes dst; on
// any failure it closes both so the other half stops too.
func (p *Proxy) copyHalf(dst, src *meteredConn) error {
	err := p.copyBytes(dst, src)
	if err == nil {
		closeWrite(dst.Conn)
		return nil
	}
	dst.Conn.Close()
	src.Conn.Close()
	return err
}

func (p *Proxy) copyBytes(dst, src *meteredConn) error {
	// The client's first bytes may sit in its header reader already.
	if br, ok := src.r.(*bufio.Reader); ok && br.Buffered() > 0 {
		b, _ := br.Peek(br.Buffered())
		if _, err := dst.Write(b); err != nil {
			return err
		}
		br.Discard(len(b))
	}
	if handled, err := p.spliceBytes(dst, src, -1); handled {
		return err
	}
	bp := p.bufs.Get().(*[]byte)
	defer p.bufs.Put(bp)
	buf := *bp
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (p *Proxy) cutReason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, errIdle):
		return fmt.Sprintf("closed after %s with no byte either way (the policy's IdleTimeout)", p.pol.IdleTimeout)
	case errors.Is(err, errByteCap):
		return "closed at the run's byte cap (the policy's MaxBytesUp or MaxBytesDown)"
	case p.isClosed():
		return "closed with the proxy"
	}
	return ""
}

// hopHeaders are the headers of one hop, not passed on (RFC 9110 7.6.1).
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func removeHopHeaders(h http.Header) {
	for _, f := range h.Values("Connection") {
		for _, name := range strings.Split(f, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
}

// forward passes one plain-HTTP request to the destination, in origin
// form and with "Connection: close", and its response back; one request
// per client connection, so a second request cannot reuse a connection
// made for the first one's host.
func (p *Proxy) forward(req *http.Request, cl, ul *meteredConn) string {
	p.meter(cl, ul)
	removeHopHeaders(req.Header)
	req.Close = true
	// The proxy sends the body on without waiting for the destination's
	// word, so it gives the client its "100 Continue" itself.
	if strings.EqualFold(req.Header.Get("Expect"), "100-continue") {
		req.Header.Del("Expect")
		if _, err := io.WriteString(cl.Conn, "HTTP/1.1 100 Continue\r\n\r\n"); err != nil {
			return ""
		}
	}
	if err := req.Write(ul); err != nil {
		if r := p.cutReason(err); r != "" {
			return r
		}
		cl.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		writeStatus(cl.Conn, http.StatusBadGateway, "sending the request failed: "+err.Error())
		return "sending the request failed: " + err.Error()
	}
	rbr := bufio.NewReaderSize(ul, 4096)
	resp, err := http.ReadResponse(rbr, req)
	if err != nil {
		if r := p.cutReason(err); r != "" {
			return r
		}
		cl.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		writeStatus(cl.Conn, http.StatusBadGateway, "the destination's response is not HTTP: "+err.Error())
		return "the destination's response is not HTTP: " + err.Error()
	}
	defer resp.Body.Close()
	removeHopHeaders(resp.Header)
	resp.Close = true
	if bodyOfKnownLength(req, resp) {
		return p.forwardKnownLength(resp, rbr, cl, ul)
	}
	if err := resp.Write(cl); err != nil {
		return p.cutReason(err)
	}
	return ""
}

// bodyOfKnownLength says the response has a body of exactly
// resp.ContentLength bytes to come, which the proxy may pass on as bytes.
func bodyOfKnownLength(req *http.Request, resp *http.Response) bool {
	return resp.ContentLength > 0 && len(resp.TransferEncoding) == 0 && req.Method != http.MethodHead &&
		resp.StatusCode >= 200 && resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusNotModified
}

// forwardKnownLength passes on a response whose body is Content-Length
// bytes: the header as Response.Write makes it, then exactly that many
// bytes, those past the header's reader moved socket to socket inside the
// kernel (a large download then never enters the proxy's memory). What
// the destination sends beyond them is dropped with the connection, as
// Response.Write drops it.
func (p *Proxy) forwardKnownLength(resp *http.Response, rbr *bufio.Reader, cl, ul *meteredConn) string {
	// Response.Write of an answer to HEAD writes the header with its
	// Content-Length and no body.
	head := *resp
	head.Body = nil
	head.Request = &http.Request{Method: http.MethodHead}
	var out bytes.Buffer
	if err := head.Write(&out); err != nil {
		return ""
	}
	rest := resp.ContentLength
	early, _ := rbr.Peek(int(min(int64(rbr.Buffered()), rest)))
	out.Write(early)
	rest -= int64(len(early))
	if _, err := cl.Write(out.Bytes()); err != nil {
		return p.cutReason(err)
	}
	rbr.Discard(len(early))
	handled, err := p.spliceBytes(cl, ul, rest)
	if !handled {
		_, err = io.CopyN(cl, rbr, rest)
	}
	return p.cutReason(err)
}
