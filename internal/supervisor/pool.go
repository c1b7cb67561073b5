package supervisor

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/brig-sandbox/brig/cgroup"
	"github.com/brig-sandbox/brig/internal/stage"
	"golang.org/x/sys/unix"
)

// A Pool is a jail.Pool's runtime: jails of one Plan built ahead of use,
// each serving one Instance (jail's Pool documents what a user sees).
type Pool struct {
	sup  *Supervisor
	full Plan
	size int

	mu       sync.Mutex
	cond     *sync.Cond
	ready    []*Instance
	building int
	running  int // jails taken and not yet released: replaced once released
	closed   bool
	lastErr  error
	wg       sync.WaitGroup // fillers and background clean-ups
	stopCtx  func() bool

	hits, misses, built, failures atomic.Int64
	refillNS                      atomic.Int64 // sum over built
}

// PoolStats are a pool's counters: a jail.PoolStats, which converts from
// it (the same fields).
type PoolStats struct {
	Ready                         int
	Hits, Misses, Built, Failures int64
	RefillTime                    time.Duration
	LastError                     error
}

// NewPool builds size jails of plan ahead and keeps that many ready until
// Close or until ctx is done. The first jail is built before NewPool
// returns, so a plan that cannot work fails here.
func (s *Supervisor) NewPool(ctx context.Context, plan Plan, size int) (*Pool, error) {
	if size < 1 {
		return nil, fmt.Errorf("jail: pool size %d: must be at least 1", size)
	}
	p := &Pool{sup: s, full: plan, size: size}
	p.cond = sync.NewCond(&p.mu)
	first, err := p.prestart()
	if err != nil {
		return nil, err
	}
	p.ready = append(p.ready, first)
	// Two builders keep up on a small machine; more only compete for CPU.
	for range min(size, 2, runtime.NumCPU()) {
		p.wg.Add(1)
		go p.fill()
	}
	p.stopCtx = context.AfterFunc(ctx, p.Close)
	return p, nil
}

// Instance returns an Instance that runs in one of the pool's jails, or
// in a cold jail of the same plan when none is ready (or its Dir is not
// the plan's WorkDir, where the jail's scratch directory is mounted).
func (p *Pool) Instance(ctx context.Context) *Instance {
	c := p.sup.Instance(ctx, p.full)
	c.pool = p
	return c
}

// Stats returns the pool's counters.
func (p *Pool) Stats() PoolStats {
	p.mu.Lock()
	st := PoolStats{Ready: len(p.ready), LastError: p.lastErr}
	p.mu.Unlock()
	st.Hits, st.Misses, st.Built, st.Failures = p.hits.Load(), p.misses.Load(), p.built.Load(), p.failures.Load()
	if st.Built > 0 {
		st.RefillTime = time.Duration(p.refillNS.Load() / st.Built)
	}
	return st
}

// Close destroys the ready jails, stops refilling and waits until every
// jail the pool built is gone from the host, with the ended jails' cgroups
// the process kept for reuse (cgroup.RemoveIdle). Commands already started
// keep running; their jails are cleaned up by their own Wait.
func (p *Pool) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.wg.Wait()
		return
	}
	p.closed = true
	idle := p.ready
	p.ready = nil
	p.cond.Broadcast()
	p.wg.Add(1) // so that a concurrent Close waits for these discards too
	p.mu.Unlock()
	if p.stopCtx != nil {
		p.stopCtx()
	}
	for _, c := range idle {
		discard(c)
	}
	p.wg.Done()
	p.wg.Wait()
	cgroup.RemoveIdle()
}

// fill builds jails until the pool holds size of them (ready or being built).
func (p *Pool) fill() {
	defer p.wg.Done()
	backoff := 10 * time.Millisecond
	for {
		p.mu.Lock()
		for !p.closed && !p.short() {
			p.cond.Wait()
		}
		if p.closed {
			p.mu.Unlock()
			return
		}
		p.building++
		p.mu.Unlock()

		c, err := p.prestart()

		p.mu.Lock()
		p.building--
		if err != nil {
			p.failures.Add(1)
			p.lastErr = err
			p.mu.Unlock()
			// A host that cannot build a jail now (ids, pids, memory) may
			// later; do not spin meanwhile.
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 10 * time.Millisecond
		if p.closed {
			p.mu.Unlock()
			discard(c)
			return
		}
		p.ready = append(p.ready, c)
		p.mu.Unlock()
	}
}

// short reports whether the pool should build a jail now. A jail in use
// is replaced once its command ends, so that the build does not compete
// with it for the CPUs, unless no ready jail is left.
func (p *Pool) short() bool {
	have := len(p.ready) + p.building
	if len(p.ready) > 0 {
		have += p.running
	}
	return have < p.size
}

// returnedLocked records that a taken jail's command is over, so that its
// replacement may be built; p.mu is held.
func (p *Pool) returnedLocked() {
	p.running--
	p.cond.Signal()
}

// take returns a ready jail, or nil.
func (p *Pool) take() *Instance {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.ready) > 0 && !p.closed {
		c := p.ready[0]
		p.ready = p.ready[1:]
		p.running++
		p.cond.Signal()
		select {
		case <-c.events: // an idle jail says nothing: this one died
			p.running--
			p.failures.Add(1)
			p.wg.Add(1)
			go func() { defer p.wg.Done(); discard(c) }()
			continue
		default:
		}
		return c
	}
	return nil
}

// release cleans up after a pooled jail's run without holding up Wait:
// what is left is its cgroup directories and host ids and, when Wait
// returned early, the jail's teardown (init ends it by itself once the
// program exited) and the helper to reap.
func (p *Pool) release(c *Instance, early bool) {
	finish := func() {
		if early {
			for range c.events {
			}
			_ = c.helper.Wait()
		}
		c.cleanup()
	}
	p.mu.Lock()
	p.returnedLocked()
	if p.closed {
		p.mu.Unlock()
		finish()
		return
	}
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		finish()
	}()
}

// prestart builds one jail up to init waiting for its request.
func (p *Pool) prestart() (*Instance, error) {
	t0 := time.Now()
	c := &Instance{cfg: p.full, ctx: context.Background(), sup: p.sup}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, &StepError{Step: "request socket", Err: err}
	}
	c.request = os.NewFile(uintptr(fds[0]), "request")
	peer := os.NewFile(uintptr(fds[1]), "request")
	c.ExtraFiles = []*os.File{peer} // becomes the helper's stage.HelperRequestFD
	c.takeTemplate()
	// Built ahead: making the cgroups meanwhile (join-later) gains nothing.
	s, err := c.buildSpec(false)
	if err != nil {
		peer.Close()
		c.cleanup()
		return nil, err
	}
	s.Pooled = true
	s.Prefork = p.full.Seccomp == nil
	s.Path, s.Args, s.Env = "", nil, nil
	s.Exec.Extra = 0
	err = c.startHelper(s)
	peer.Close()
	c.ExtraFiles = nil
	if err != nil {
		if c.events != nil {
			c.drainAfterFailure()
		}
		c.cleanup()
		return nil, err
	}
	if err := c.awaitReady(); err != nil {
		c.drainAfterFailure()
		c.cleanup()
		return nil, err
	}
	// Stats opens the cgroup's counter files on first use: here, rather
	// than between the program's exit and Wait's return.
	_, _ = c.limiter.Stats()
	p.built.Add(1)
	p.refillNS.Add(int64(time.Since(t0)))
	return c, nil
}

// awaitReady reads a pooled jail's events until it is ready to take a
// request (awaitInitAnd): a ready jail must have said everything it will
// say before its request, since take() reads any event of an idle jail as
// its death.
func (c *Instance) awaitReady() error {
	ready, err := c.awaitInitAnd("ready")
	if err == nil && !ready {
		err = &StepError{Step: "start", Err: errors.New("the jail ended before it was ready")}
	}
	return err
}

// discard kills an unused jail and removes it from the host.
func discard(c *Instance) {
	c.drainAfterFailure()
	c.cleanup()
}

// fits reports whether c can run in one of the pool's prebuilt jails.
func (p *Pool) fits(c *Instance) bool {
	return c.Dir == "" || filepath.Clean(c.Dir) == p.full.WorkDir
}

// startPooled starts c in a ready jail, or cold when there is none.
func (c *Instance) startPooled() (err error) {
	p := c.pool
	var j *Instance
	if p.fits(c) {
		j = p.take()
	}
	if j == nil {
		p.misses.Add(1)
		c.pool = nil
		c.cfg = p.full
		return c.Start()
	}
	p.hits.Add(1)
	c.cfg, c.lease, c.limiter, c.kmsg = j.cfg, j.lease, j.limiter, j.kmsg
	c.helper, c.control, c.events, c.initPid, c.request = j.helper, j.control, j.events, j.initPid, j.request
	defer func() {
		if err != nil {
			c.drainAfterFailure()
			c.cleanup()
			p.mu.Lock()
			p.returnedLocked()
			p.mu.Unlock()
		}
	}()
	c.start = time.Now()
	if err := c.sendRequest(); err != nil {
		return &StepError{Step: "send request", Err: err}
	}
	return c.awaitStart()
}

// sendRequest hands the program and its files to the waiting init: an
// 8-byte length carrying the fds (stdin, stdout, stderr, then the extra
// files) as SCM_RIGHTS, then the program, its arguments and environment
// (wire.c's read_request).
func (c *Instance) sendRequest() error {
	stdin, err := c.stdinFile()
	if err != nil {
		return err
	}
	stdout, stderr, err := c.outputFiles()
	if err != nil {
		return err
	}
	env := []string{"PATH=" + DefaultPath, "HOME=" + c.cfg.WorkDir, "LANG=C.UTF-8"}
	var e stage.Encoder
	e.Str(c.Path)
	e.Strs(c.Args)
	e.Strs(append(env, c.Env...))
	body := e.Bytes()
	if len(body) > stage.MaxRequestLen {
		return fmt.Errorf("request of %d bytes, at most %d", len(body), stage.MaxRequestLen)
	}
	files := append([]*os.File{stdin, stdout, stderr}, c.ExtraFiles...)
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	// One sendmsg carries the files, the length (native order, as init.c
	// reads it) and (when the socket buffer takes it, as it does for any
	// usual request) the whole body.
	msg := binary.NativeEndian.AppendUint64(make([]byte, 0, 8+len(body)), uint64(len(body)))
	msg = append(msg, body...)
	conn, err := c.request.SyscallConn()
	if err != nil {
		return err
	}
	var (
		sent int
		serr error
	)
	if err := conn.Write(func(fd uintptr) bool {
		sent, serr = unix.SendmsgN(int(fd), msg, unix.UnixRights(fds...), nil, 0)
		return serr != unix.EAGAIN
	}); err != nil {
		return err
	}
	runtime.KeepAlive(files)
	if serr != nil {
		return serr
	}
	// The jail closes its end once it has read the request: write only
	// what is left, or a write of nothing could fail with EPIPE.
	if sent < len(msg) {
		if _, err := c.request.Write(msg[sent:]); err != nil {
			return err
		}
	}
	c.request.Close()
	c.request = nil
	// The jail holds its own copies now.
	for _, f := range c.closers {
		f.Close()
	}
	c.closers = nil
	return nil
}
