package session

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/brig-sandbox/brig/egress"
	"github.com/brig-sandbox/brig/jail"
)

// Sessions keep one interpreter alive in its own jail and run cell after
// cell in it, as code-running agents do (a Jupyter kernel, a persistent
// shell). Variables, imports, the working directory and files persist
// between cells. Each session has its own jail; limits apply to the whole
// session, output caps and timeouts to each cell.
//
// A cell runs in its driver's process, so it can reach the driver's reply
// channel and its copies of stdout and stderr. The supervisor trusts none
// of them: every reply line is capped (MaxReplyLine) and must carry the
// cell's nonce, or the session ends saying so; the end of a cell is its
// reply, and the end markers on the output streams are waited for only
// StreamSettle after it; the request is sent under the cell's timeout. So
// Run returns within the cell's timeout, DefaultInterruptGrace and
// StreamSettle, or sooner when its context ends, whatever the cell does.

// Session defaults.
const (
	DefaultCellTimeout = 30 * time.Second
	// DefaultInterruptGrace is how long a cell may take to stop after the
	// interrupt its timeout sent, before the whole session is killed.
	DefaultInterruptGrace = 2 * time.Second
	// StreamSettle is how long, once a cell's reply has come, its output
	// streams may take to deliver the cell's end marker. The driver writes
	// the marker before it replies, so it is normally in the pipe already;
	// a cell that moved the driver's own copies of its stdout or stderr
	// away keeps it from coming at all, and then the cell's output is what
	// arrived by then. Run returns within the cell's timeout, the
	// interrupt grace and this.
	StreamSettle = 2 * time.Second
	// MaxReplyLine caps one line the session's driver sends on its reply
	// channel. A cell can write to that channel (it runs in the driver's
	// process), so the supervisor reads no more than this of a line: a
	// longer or malformed reply ends the session.
	MaxReplyLine = 4 << 20
)

// CellStatus says how a cell ended.
type CellStatus string

const (
	CellOK      CellStatus = "ok"      // ran to the end (a shell command may still have failed: see ExitCode)
	CellError   CellStatus = "error"   // raised an exception, or the request was malformed
	CellTimeout CellStatus = "timeout" // interrupted at its timeout; the session lives on
	CellDead    CellStatus = "dead"    // the session is dead (see Reason); later cells fail the same way
	// CellCanceled: the context passed to Run ended, and the cell was
	// interrupted as at a timeout; the session lives on. (The context the
	// session was started with kills the session.)
	CellCanceled CellStatus = "canceled"
)

// RunOptions tune one cell; zero fields take the session's defaults.
type RunOptions struct {
	Timeout     time.Duration // DefaultCellTimeout when 0
	OutputLimit int64         // per stream; Config.OutputLimit (or its default) when 0
	// Stdout and Stderr, when set, receive the cell's output as it comes
	// (what the CellResult will hold, up to the cap), for a caller that
	// shows it live. A writer that blocks holds up the cell's output.
	Stdout, Stderr io.Writer
}

// CellException describes an exception raised by a Python cell.
type CellException struct {
	Type      string
	Message   string
	Traceback string
}

// CellResult is what one cell produced. It carries no wire format of its
// own: brig's CLI writes it as JSON in a shape of its own (cmd/brig).
type CellResult struct {
	Status          CellStatus
	Stdout          string
	Stderr          string
	Value           *string        // repr of a final expression (Python), or nil
	Error           *CellException // the exception (Python), or nil
	ExitCode        *int           // the command's status (shell), or nil
	Reason          string         // why the session died, when Status is dead
	WallTime        time.Duration
	CPUTime         time.Duration
	StdoutTruncated bool
	StderrTruncated bool
	// EgressRefused lists what the session's egress proxy (Config.Network
	// "proxy") refused since the previous cell's result, so that a cell
	// whose fetch failed says why; nil when nothing was.
	EgressRefused []egress.Refusal
}

// ErrDead is returned (wrapped) for calls on a session that ended.
var ErrDead = errors.New("jail: session is dead")

// session is what Python and shell sessions share: the jail, the request
// and reply channels, and the two output streams cut into cells.
type session struct {
	cmd       *jail.Cmd
	cfg       jail.Config
	requests  *os.File // host end of the program's fd 3
	replies   *os.File // host end of the program's fd 4
	stdout    *cellStream
	stderr    *cellStream
	exited    chan struct{} // closed when the jail has ended
	mu        sync.Mutex    // one cell at a time
	whyMu     sync.Mutex    // guards deadWhy: Close may kill while a cell runs
	deadWhy   string
	closeOnce sync.Once
	refusals  *cellRefusals // egress refusals since the last cell; nil without proxy mode
}

func startSession(ctx context.Context, sup *jail.Supervisor, cfg jail.Config, opts Options, name string, args ...string) (*session, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = -1 // a session lives until closed; cells have their own timeouts
	}
	outputLimit := cfg.OutputLimit
	if outputLimit == 0 {
		outputLimit = jail.DefaultOutputLimit
	}
	cfg.OutputLimit = -1 // capped per cell by the streams instead
	reqR, reqW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		reqR.Close()
		reqW.Close()
		return nil, err
	}
	s := &session{cfg: cfg, requests: reqW, replies: repR, exited: make(chan struct{})}
	s.stdout = newCellStream(outputLimit)
	s.stderr = newCellStream(outputLimit)
	s.cmd = sup.Command(ctx, cfg, name, args...)
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
	s.cmd.ExtraFiles = []*os.File{reqR, repW}
	s.hookEgress(opts)
	err = s.cmd.Start()
	reqR.Close()
	repW.Close()
	if err != nil {
		reqW.Close()
		repR.Close()
		return nil, err
	}
	go func() {
		_ = s.cmd.Wait()
		s.stdout.Close()
		s.stderr.Close()
		close(s.exited)
	}()
	return s, nil
}

// newNonce returns a marker no output can guess: 128 random bits. It holds
// no NUL, which the shell driver uses to frame requests.
func newNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "\x1ebrig-cell-" + hex.EncodeToString(b[:]) + "\x1e"
}

// dead reports why the session ended, or "" while it lives.
func (s *session) dead() string {
	select {
	case <-s.exited:
	default:
		return ""
	}
	s.whyMu.Lock()
	why := s.deadWhy
	s.whyMu.Unlock()
	if why != "" {
		return why
	}
	if r := s.cmd.Result; r != nil {
		switch r.Reason {
		case jail.ReasonExited:
			return fmt.Sprintf("the interpreter exited with status %d", r.ExitCode)
		case jail.ReasonSignaled:
			return fmt.Sprintf("the interpreter was killed by signal %d", r.Signal)
		default:
			return string(r.Reason)
		}
	}
	return "ended"
}

// Err reports why the session can no longer run cells, or nil.
func (s *session) Err() error {
	if why := s.dead(); why != "" {
		return fmt.Errorf("%w: %s", ErrDead, why)
	}
	return nil
}

// Result is the jail's Result once the session has ended, else nil.
func (s *session) Result() *jail.Result {
	select {
	case <-s.exited:
		return s.cmd.Result
	default:
		return nil
	}
}

// kill ends the session for the given reason and waits for the jail.
func (s *session) kill(why string) {
	s.whyMu.Lock()
	if s.deadWhy == "" {
		s.deadWhy = why
	}
	s.whyMu.Unlock()
	s.cmd.Kill()
	<-s.exited
}

// Close kills the session's jail and releases it. Safe to call twice.
func (s *session) Close() error {
	s.closeOnce.Do(func() {
		select {
		case <-s.exited:
		default:
			s.kill("closed")
		}
		s.requests.Close()
		s.replies.Close()
	})
	return nil
}

// Pause stops the session's whole jail with the cgroup freezer
// (jail.Cmd.Freeze): the interpreter and everything it started keep their
// memory and state and use no CPU until Resume, or until the next Run,
// which resumes it first. The session's jail.Config must be Pausable, and
// its limiter a cgroup one; otherwise the error wraps cgroup.ErrNoFreezer
// and the session runs on. Time paused does not count against the
// session's Config.Timeout; a cell's own timeout is the caller's clock and
// goes on, so pause between cells.
func (s *session) Pause() error {
	if err := s.Err(); err != nil {
		return err
	}
	return s.cmd.Freeze()
}

// Resume continues a session stopped by Pause; on a running session it
// does nothing.
func (s *session) Resume() error {
	if err := s.Err(); err != nil {
		return err
	}
	return s.cmd.Thaw()
}

// Paused reports whether the session is stopped by Pause.
func (s *session) Paused() bool { return s.cmd.Frozen() }

// runCell sends one request, waits for the reply with the cell's timeout,
// interrupts on timeout and kills the session when the interrupt is not
// obeyed. readReply reads the driver's reply to the cell of that nonce
// from the replies channel.
func (s *session) runCell(ctx context.Context, opts RunOptions, request func(nonce string) ([]byte, error), readReply func(nonce string) error) (res *CellResult) {
	start := time.Now()
	res = &CellResult{Status: CellOK}
	defer func() { res.WallTime, res.EgressRefused = time.Since(start), s.refusals.take() }()
	if why := s.dead(); why != "" {
		return deadCell(res, why)
	}
	if s.cmd.Frozen() {
		if err := s.cmd.Thaw(); err != nil {
			s.kill("resuming the paused session failed: " + err.Error())
			return deadCell(res, s.dead())
		}
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultCellTimeout
	}
	nonce := newNonce()
	s.stdout.begin(nonce, opts.OutputLimit, s.interrupt, opts.Stdout)
	s.stderr.begin(nonce, opts.OutputLimit, s.interrupt, opts.Stderr)
	// The request is sent under the cell's timeout too: a cell can leave
	// the driver reading elsewhere, and a large request then fills the pipe.
	// What the pipe takes at once is written here, which is all of it
	// unless that happened: the driver's wake-up then waits for no
	// goroutine to be scheduled first. The goroutine writes the rest.
	replied := make(chan error, 1)
	req, err := request(nonce)
	var rest []byte
	if err == nil {
		rest, err = writeNow(s.requests, req)
	}
	go func(rest []byte, err error) {
		if err == nil && len(rest) > 0 {
			_, err = s.requests.Write(rest)
		}
		if err != nil {
			replied <- &sendError{err}
			return
		}
		replied <- readReply(nonce)
	}(rest, err)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var interrupted, canceled bool
	ctxDone := ctx.Done()
	for {
		select {
		case err := <-replied:
			// A sendError is never wrapped: a type assertion is enough.
			if se, ok := err.(*sendError); ok {
				s.kill("request channel broken: " + se.err.Error())
				return s.deadCellWithOutput(res)
			}
			if err != nil {
				s.replyFailed(ctx, err)
				return s.deadCellWithOutput(res)
			}
			// The end of the cell is known from the reply; the streams
			// carry the end marker, written before the reply, unless the
			// cell moved the driver's copies of them away. Wait for the
			// markers a bounded time only. They have mostly come by now:
			// the bound needs a timer only when one has not.
			var settle <-chan struct{}
			if !s.stdout.ended() || !s.stderr.ended() {
				expired := make(chan struct{})
				t := time.AfterFunc(StreamSettle, func() { close(expired) })
				defer t.Stop()
				settle = expired
			}
			res.Stdout, res.StdoutTruncated = s.stdout.end(s.exited, settle)
			res.Stderr, res.StderrTruncated = s.stderr.end(s.exited, settle)
			switch {
			case canceled:
				res.Status = CellCanceled
			case interrupted:
				res.Status = CellTimeout
			}
			return res
		case <-timer.C:
			if interrupted {
				why := fmt.Sprintf("at its %v timeout", timeout)
				if canceled {
					why = "when its context ended"
				}
				s.kill(fmt.Sprintf("cell did not stop within %v of the interrupt sent %s", DefaultInterruptGrace, why))
				return s.deadCellWithOutput(res)
			}
			interrupted = true
			s.interrupt()
			timer.Reset(DefaultInterruptGrace)
		case <-ctxDone:
			// As Jupyter's interrupt: the cell stops, the session's state
			// stays. A cell that ignores it is killed with its session
			// after the grace, as at a timeout.
			ctxDone, canceled = nil, true
			if !interrupted {
				interrupted = true
				s.interrupt()
				timer.Reset(DefaultInterruptGrace)
			}
		}
	}
}

// writeNow writes what of b the pipe w takes without waiting and returns
// the rest.
func writeNow(w *os.File, b []byte) (rest []byte, err error) {
	rc, err := w.SyscallConn()
	if err != nil {
		return nil, err
	}
	var n int
	var werr error
	if err := rc.Write(func(fd uintptr) bool {
		n, werr = unix.Write(int(fd), b)
		return true // never wait: what is left is the caller's to write
	}); err != nil {
		return nil, err
	}
	switch {
	case werr == unix.EAGAIN || werr == unix.EINTR:
		return b, nil
	case werr != nil:
		return nil, werr
	}
	return b[n:], nil
}

// sendError is a failure to send a cell's request.
type sendError struct{ err error }

func (e *sendError) Error() string { return e.err.Error() }

// replyFailed ends the session after its reply channel failed: the end of
// the channel (the interpreter died, or the cell closed the driver's copy)
// or a reply that is not the driver's (the cell wrote to the channel).
func (s *session) replyFailed(ctx context.Context, err error) {
	if errors.Is(err, io.EOF) || errors.Is(err, os.ErrClosed) {
		// Normally the interpreter ended: its reason is the session's.
		// Something else of the jail may hold it alive.
		t := time.NewTimer(DefaultInterruptGrace)
		defer t.Stop()
		select {
		case <-s.exited:
			return
		case <-t.C:
		case <-ctx.Done():
		}
		s.kill("the session driver's reply channel was closed (did the cell close its file descriptors?)")
		return
	}
	s.kill("bad reply from the session driver: " + err.Error())
}

// readReplyLine reads one line of the driver's reply channel, at most
// MaxReplyLine bytes of it.
func readReplyLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line)+len(chunk) > MaxReplyLine {
			return nil, fmt.Errorf("a line longer than the %d-byte cap (the cell wrote to the driver's reply channel?)", MaxReplyLine)
		}
		line = append(line, chunk...)
		switch {
		case err == nil:
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF) && len(line) > 0:
			return nil, fmt.Errorf("an unfinished line %q at the channel's end", clipReply(line))
		default:
			return nil, err
		}
	}
}

// clipReply shortens a bad reply for an error message.
func clipReply(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}

func (s *session) interrupt() { _ = s.cmd.Signal(syscall.SIGINT) }

// deadCellWithOutput reports a cell whose session died while it ran, with
// the output the cell wrote before (the jail has ended, so all of it has
// reached the streams).
func (s *session) deadCellWithOutput(res *CellResult) *CellResult {
	<-s.exited
	closed := make(chan struct{})
	close(closed)
	res.Stdout, res.StdoutTruncated = s.stdout.end(s.exited, closed)
	res.Stderr, res.StderrTruncated = s.stderr.end(s.exited, closed)
	return deadCell(res, s.dead())
}

func deadCell(res *CellResult, why string) *CellResult {
	res.Status, res.Reason = CellDead, why
	return res
}

// cellStream is an output stream of the session's program, cut into
// cells at each cell's nonce. It works in one pass: bytes are the cell's
// body until the nonce goes by, except the last few, which might be the
// start of a nonce split across writes. Output between cells (a background
// thread printing late) is kept for the next cell. Everything it holds is
// capped, so a flood costs no memory.
type cellStream struct {
	mu        sync.Mutex
	defLimit  int64
	nonce     []byte // the current cell's marker; nil between cells
	limit     int64
	body      []byte // the cell's output so far, at most limit bytes
	tail      []byte // undecided bytes: the last len(nonce)-1 seen
	cut       bool
	found     bool
	after     []byte        // output after the nonce, or between cells
	stale     [][]byte      // markers of recent cells that never came: dropped if they come late
	seen      chan struct{} // closed when the nonce went by or the stream closed
	overLimit func()
	sink      io.Writer // the cell's output as it is decided, or nil
	closed    bool
}

func newCellStream(limit int64) *cellStream {
	return &cellStream{defLimit: limit, seen: make(chan struct{})}
}

// begin starts a cell: its output ends at nonce; past limit bytes the rest
// is dropped and overLimit is called once.
func (c *cellStream) begin(nonce string, limit int64, overLimit func(), sink io.Writer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if limit == 0 {
		limit = c.defLimit
	}
	c.nonce, c.limit, c.overLimit, c.sink = []byte(nonce), limit, overLimit, sink
	c.body, c.tail, c.cut, c.found = nil, nil, false, false
	c.seen = make(chan struct{})
	if c.closed {
		close(c.seen)
	}
	early := c.after
	c.after = nil
	c.addBody(early)
}

// Write receives the program's output.
func (c *cellStream) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nonce == nil || c.found {
		c.after = appendCapped(c.after, p, c.defLimit)
		return len(p), nil
	}
	window := append(c.tail, p...)
	if i := bytes.Index(window, c.nonce); i >= 0 {
		c.addBody(window[:i])
		c.after = appendCapped(c.after, window[i+len(c.nonce):], c.defLimit)
		c.tail, c.found = nil, true
		close(c.seen)
		return len(p), nil
	}
	keep := nonceStart(window, c.nonce)
	c.addBody(window[:len(window)-keep])
	c.tail = append([]byte(nil), window[len(window)-keep:]...)
	return len(p), nil
}

// nonceStart is how many bytes at the end of window could be the start of
// nonce: only those wait for the next write, so that output a caller
// streams (RunOptions.Stdout) is not held back.
func nonceStart(window, nonce []byte) int {
	for i := max(0, len(window)-len(nonce)+1); i < len(window); i++ {
		if window[i] == nonce[0] && bytes.HasPrefix(nonce, window[i:]) {
			return len(window) - i
		}
	}
	return 0
}

// addBody appends to the cell's output up to its cap. Holds mu.
func (c *cellStream) addBody(b []byte) {
	if c.limit > 0 && int64(len(c.body)+len(b)) > c.limit {
		b = b[:max(0, c.limit-int64(len(c.body)))]
		if !c.cut && c.overLimit != nil {
			go c.overLimit()
		}
		c.cut = true
	}
	c.body = append(c.body, b...)
	if c.sink != nil && len(b) > 0 {
		for _, n := range c.stale {
			b = bytes.ReplaceAll(b, n, nil)
		}
		_, _ = c.sink.Write(b)
	}
}

func appendCapped(dst, b []byte, limit int64) []byte {
	if limit > 0 && int64(len(dst)+len(b)) > limit {
		b = b[:max(0, limit-int64(len(dst)))]
	}
	return append(dst, b...)
}

// ended reports whether the cell's end marker went by or the stream
// closed: end then returns at once.
func (c *cellStream) ended() bool {
	c.mu.Lock()
	seen := c.seen
	c.mu.Unlock()
	select {
	case <-seen:
		return true
	default:
		return false
	}
}

// end waits until the nonce went by, the program ended or stop is closed,
// and returns the cell's output and whether it was cut. When the nonce has
// not come, the cell's output is what came by then; the nonce is
// remembered, so that arriving late it is dropped from a later cell's
// output rather than ending it (each cell has its own nonce).
func (c *cellStream) end(exited, stop <-chan struct{}) (string, bool) {
	c.mu.Lock()
	seen := c.seen
	c.mu.Unlock()
	select {
	case <-seen:
	case <-exited:
	case <-stop:
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.found {
		c.addBody(c.tail)
		if !c.closed {
			c.stale = append(c.stale, c.nonce)
			if len(c.stale) > maxStaleNonces {
				c.stale = c.stale[1:]
			}
		}
	}
	body := c.body
	for _, n := range c.stale {
		if bytes.Contains(body, n) {
			body = bytes.ReplaceAll(body, n, nil)
		}
	}
	out, cut := string(body), c.cut
	c.nonce, c.body, c.tail = nil, nil, nil
	return out, cut
}

// maxStaleNonces is how many missing end markers a stream remembers.
const maxStaleNonces = 4

// Close marks the end of the program's output.
func (c *cellStream) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	select {
	case <-c.seen:
	default:
		close(c.seen)
	}
}

var _ io.Writer = (*cellStream)(nil)
