package session

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/brig-sandbox/brig/jail"
)

// A Pool keeps sessions of one language and jail.Config started and
// waiting for their first cell, so that a new session costs a hand-over
// instead of a jail's set-up and an interpreter's start. Each is warmed
// with one empty cell (Python has then imported what its driver needs). A
// session taken from the pool is the caller's alone, and is never given to
// anyone else: the pool starts a new one in its place, in the background.
//
// Every session of a pool has the same Config, so anything that differs
// between callers cannot be in it: a bind of a caller's own directory, a
// working directory of its own. (Package serve pools contexts without the
// sandbox's workspace for that reason: see docs/api.md.)
type Pool struct {
	sup      *jail.Supervisor
	language string
	cfg      jail.Config
	life     context.Context // the sessions' context, given to NewPool
	stop     context.CancelFunc
	ready    chan Session
	filler   sync.WaitGroup
	closed   sync.Once

	hits, misses, started, failures atomic.Int64
	lastErr                         atomic.Pointer[error]
}

// PoolStats are a pool's counters.
type PoolStats struct {
	Ready     int   // sessions started and waiting now
	Hits      int64 // Takes that got a ready session
	Misses    int64 // Takes that found none ready and started one then
	Started   int64 // sessions started ahead
	Failures  int64 // starts that failed, and ready sessions found dead
	LastError error // the last failure, if any
}

// Pool languages.
const (
	LanguagePython = "python"
	LanguageShell  = "shell"
)

// NewPool starts size sessions of language (LanguagePython or
// LanguageShell) in jails of cfg, by jail.DefaultSupervisor, and keeps
// that many ready until Close. ctx is the sessions' life, as NewPython's
// is: when it ends, the ready sessions and the taken ones end. The first
// session is started before NewPool returns, so a Config that cannot work
// fails here.
func NewPool(ctx context.Context, language string, cfg jail.Config, size int) (*Pool, error) {
	return NewPoolWith(ctx, jail.DefaultSupervisor, language, cfg, size)
}

// NewPoolWith is NewPool with jails of sup.
func NewPoolWith(ctx context.Context, sup *jail.Supervisor, language string, cfg jail.Config, size int) (*Pool, error) {
	if size < 1 {
		return nil, fmt.Errorf("session: pool size %d: must be at least 1", size)
	}
	if language != LanguagePython && language != LanguageShell {
		return nil, fmt.Errorf("session: pool language %q: want %q or %q", language, LanguagePython, LanguageShell)
	}
	p := &Pool{sup: sup, language: language, cfg: cfg, life: ctx, ready: make(chan Session, size)}
	first, err := p.start()
	if err != nil {
		return nil, err
	}
	p.ready <- first
	p.started.Add(1)
	var fillCtx context.Context
	fillCtx, p.stop = context.WithCancel(ctx)
	p.filler.Add(1)
	go p.fill(fillCtx)
	return p, nil
}

// start starts one session and runs its warm-up cell.
func (p *Pool) start() (Session, error) {
	var (
		s      Session
		err    error
		warmUp string
	)
	if p.language == LanguagePython {
		s, err = NewPythonWith(p.life, p.sup, p.cfg)
		warmUp = "pass"
	} else {
		s, err = NewShellWith(p.life, p.sup, p.cfg)
		warmUp = "true"
	}
	if err != nil {
		return nil, err
	}
	if r := s.Run(p.life, warmUp, RunOptions{}); r.Status != CellOK {
		s.Close()
		return nil, fmt.Errorf("session: pool: the new %s session's first cell: %s %s %s", p.language, r.Status, r.Reason, r.Stderr)
	}
	return s, nil
}

// fill starts a session whenever there is room for one, one at a time, so
// that refilling takes one CPU at most; after a failure it waits longer
// each time, up to a few seconds.
func (p *Pool) fill(ctx context.Context) {
	defer p.filler.Done()
	backoff := 10 * time.Millisecond
	for ctx.Err() == nil {
		s, err := p.start()
		if err != nil {
			p.failed(err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 10 * time.Millisecond
		p.started.Add(1)
		select {
		case p.ready <- s:
		case <-ctx.Done():
			s.Close()
			return
		}
	}
}

func (p *Pool) failed(err error) {
	p.failures.Add(1)
	p.lastErr.Store(&err)
}

// errPoolClosed is returned by Take after Close.
var errPoolClosed = errors.New("session: pool closed")

// Take returns a ready session, or starts one now when none is ready. The
// session is the caller's, to Close; it lives at most as long as the
// context given to NewPool.
func (p *Pool) Take() (Session, error) {
	for {
		select {
		case s, ok := <-p.ready:
			if !ok {
				return nil, errPoolClosed
			}
			if err := s.Err(); err != nil {
				s.Close()
				p.failed(fmt.Errorf("a ready session died: %w", err))
				continue
			}
			p.hits.Add(1)
			return s, nil
		default:
		}
		if p.life.Err() != nil {
			return nil, fmt.Errorf("session: pool: %w", p.life.Err())
		}
		p.misses.Add(1)
		return p.start()
	}
}

// Stats returns the pool's counters.
func (p *Pool) Stats() PoolStats {
	st := PoolStats{Ready: len(p.ready), Hits: p.hits.Load(), Misses: p.misses.Load(), Started: p.started.Load(), Failures: p.failures.Load()}
	if e := p.lastErr.Load(); e != nil {
		st.LastError = *e
	}
	return st
}

// Close stops refilling, ends the ready sessions and waits for them.
// Sessions already taken live on. Take after Close fails. Safe to call
// twice.
func (p *Pool) Close() {
	p.closed.Do(func() {
		p.stop()
		p.filler.Wait()
		close(p.ready)
		for s := range p.ready {
			s.Close()
		}
	})
}
