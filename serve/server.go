package serve

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/brig-sandbox/brig/audit"
	"github.com/brig-sandbox/brig/jail"
	"github.com/brig-sandbox/brig/metrics"
)

// Options tune a Server beyond its Config.
type Options struct {
	Logger   *slog.Logger // nil means slog.Default()
	Observer Observer     // nil means none
}

// Server is brig's code-execution service: an http.Handler of the API
// under /v1 (docs/api.md), over jails of the library.
type Server struct {
	cfg *Config
	log *slog.Logger
	obs Observer
	mux *http.ServeMux
	// audit is the audit log (nil with audit.path: none); metrics the
	// metric set the /metrics listener serves.
	audit   *audit.Log
	metrics *metrics.Set
	lock    *os.File

	tenants   []*tenant
	pools     map[string]*jail.Pool
	admission chan struct{}

	// ctx ends every execution and session of the server (the end of a
	// drain, or Close).
	ctx    context.Context
	cancel context.CancelFunc

	draining atomic.Bool
	inflight sync.WaitGroup // executions running
	janitor  sync.WaitGroup

	mu        sync.Mutex
	sandboxes map[string]*sandbox
	owners    map[uint32]bool // workspace owner ids in use
	nextOwner uint32
	closed    bool
}

// tenant is a Tenant with its live counters.
type tenant struct {
	Tenant
	limiter *rate.Limiter

	mu                  sync.Mutex
	running             int
	sandboxes, contexts int
	wsBytes, wsInodes   int64
}

// New starts a server of cfg: it takes the state directory, removes what
// a killed predecessor left there and starts the templates' pools. It
// serves nothing until its handler is given to an http.Server. Close (or
// Drain) releases all of it.
func New(cfg *Config, opts Options) (*Server, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("brig serve needs root: each workspace is a tmpfs of its own, mounted with the byte and inode quota the kernel then enforces, and jails see it through an idmapped bind; run it as root (the systemd unit in contrib/ does)")
	}
	s := &Server{cfg: cfg, log: opts.Logger, obs: opts.Observer, pools: map[string]*jail.Pool{},
		admission: make(chan struct{}, max(1, cfg.Admission)), sandboxes: map[string]*sandbox{}, owners: map[uint32]bool{}}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.obs == nil {
		s.obs = nopObserver{}
	}
	lock, err := lockStateDir(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	s.lock = lock
	if n, err := removeStaleWorkspaces(cfg.StateDir); err != nil {
		lock.Close()
		return nil, fmt.Errorf("state_dir %s: removing what a previous server left: %w", cfg.StateDir, err)
	} else if n > 0 {
		s.log.Warn("removed workspaces a previous server left (was it killed?)", "count", n, "state_dir", cfg.StateDir)
	}
	for _, t := range cfg.Tenants {
		s.tenants = append(s.tenants, &tenant{Tenant: t, limiter: rate.NewLimiter(rate.Limit(t.Quotas.RequestsPerSecond), t.Quotas.Burst)})
	}
	if err := s.openObservers(); err != nil {
		lock.Close()
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	for name, t := range cfg.Templates {
		if t.Pool == 0 {
			continue
		}
		p, err := jail.NewPool(s.ctx, t.Jail, t.Pool)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("%s: template %s: its pool: %w", cfg.File, name, err)
		}
		s.pools[name] = p
	}
	s.routes()
	s.janitor.Add(1)
	go s.expire()
	return s, nil
}

// ServeHTTP serves the API. Every request gets its request id (the
// X-Request-Id header of its answer) and one log line at its end.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r, id := withRequestID(r)
	w.Header().Set("X-Request-Id", id)
	sw := &statusWriter{ResponseWriter: w}
	start := time.Now()
	s.mux.ServeHTTP(sw, r)
	s.log.Info("request", "request_id", id, "method", r.Method, "path", clip(r.URL.Path, 256), "status", sw.status,
		"duration_ms", time.Since(start).Milliseconds())
}

// clip cuts s to n bytes for a log line.
func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// authenticate finds the request's tenant: a constant-time comparison of
// the SHA-256 of its bearer token with every tenant's.
func (s *Server) authenticate(r *http.Request) *tenant {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || token == "" || len(token) > 1024 {
		return nil
	}
	h := hashToken(token)
	var found *tenant
	for _, t := range s.tenants {
		if subtle.ConstantTimeCompare(h[:], t.TokenSHA256[:]) == 1 {
			found = t
		}
	}
	return found
}

// admit takes the tenant's rate-limit token: a 429 naming the quota, with
// the wait in Retry-After, when the bucket is empty.
func (t *tenant) admit() *apiError {
	res := t.limiter.Reserve()
	if !res.OK() {
		return quotaError("requests_per_second", t.Quotas.RequestsPerSecond, time.Second)
	}
	if d := res.Delay(); d > 0 {
		res.Cancel()
		return quotaError("requests_per_second", t.Quotas.RequestsPerSecond, d)
	}
	return nil
}

// startExecution counts an execution of the tenant and takes a place of
// the host's admission cap, waiting QueueWait for one; done gives both
// back.
func (s *Server) startExecution(r *http.Request, t *tenant) (done func(), _ *apiError) {
	ctx := r.Context()
	if s.draining.Load() {
		return nil, errDraining
	}
	if aerr := s.auditGate(r); aerr != nil {
		return nil, aerr
	}
	t.mu.Lock()
	if t.running >= t.Quotas.Concurrent {
		t.mu.Unlock()
		return nil, quotaError("concurrent", t.Quotas.Concurrent, time.Second)
	}
	t.running++
	t.mu.Unlock()
	release := func() {
		t.mu.Lock()
		t.running--
		t.mu.Unlock()
	}
	timer := time.NewTimer(s.cfg.QueueWait)
	defer timer.Stop()
	queued := time.Now()
	s.metrics.AdmissionQueued()
	select {
	case s.admission <- struct{}{}:
		s.metrics.AdmissionLeft(time.Since(queued), metrics.Admitted)
	case <-timer.C:
		s.metrics.AdmissionLeft(time.Since(queued), metrics.Overloaded)
		release()
		return nil, &apiError{status: http.StatusServiceUnavailable, code: "overloaded", retryAfter: time.Second,
			message: fmt.Sprintf("the host runs its %d executions at once (admission); retry later", cap(s.admission))}
	case <-ctx.Done():
		s.metrics.AdmissionLeft(time.Since(queued), metrics.Gone)
		release()
		return nil, errorf(499, "canceled", "the client went away")
	}
	s.inflight.Add(1)
	return func() {
		<-s.admission
		release()
		s.inflight.Done()
	}, nil
}

var errDraining = &apiError{status: http.StatusServiceUnavailable, code: "draining", retryAfter: 5 * time.Second,
	message: "the server is shutting down and takes no new work; retry on another server"}

// newID is a fresh object id: 96 random bits behind a kind prefix.
func newID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// workCtx is ctx that also ends with the server (and with more, when
// given): an execution ends when its client goes, its sandbox is deleted,
// or the server's drain runs out.
func (s *Server) workCtx(ctx context.Context, more ...context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stops := []func() bool{context.AfterFunc(s.ctx, cancel)}
	for _, m := range more {
		stops = append(stops, context.AfterFunc(m, cancel))
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

// expire deletes sandboxes idle past IdleTimeout or alive past
// MaxLifetime.
func (s *Server) expire() {
	defer s.janitor.Done()
	lc := s.cfg.Lifecycle
	tick := min(lc.IdleTimeout, lc.MaxLifetime) / 10
	tick = max(10*time.Millisecond, min(tick, 10*time.Second))
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		var due []*sandbox
		whys := map[*sandbox]string{}
		s.mu.Lock()
		for _, sb := range s.sandboxes {
			if why := sb.expired(now, lc); why != "" {
				due = append(due, sb)
				whys[sb] = why
				s.log.Info("sandbox expired", "sandbox", sb.id, "tenant", sb.tenant.Name, "why", why)
			}
		}
		s.mu.Unlock()
		for _, sb := range due {
			s.deleteSandbox(sb)
			s.observe(nil, Event{Time: now, Tenant: sb.tenant.Name, Action: "sandbox.expire", Sandbox: sb.id, Template: sb.template.Name, Detail: whys[sb]})
		}
	}
}

// Drain stops the server as SIGTERM asks: new work gets 503 at once,
// running work gets DrainGrace (or until ctx ends) to finish, then
// everything is killed and removed. The caller shuts its http.Servers
// down after.
func (s *Server) Drain(ctx context.Context) {
	s.draining.Store(true)
	done := make(chan struct{})
	go func() {
		s.inflight.Wait()
		close(done)
	}()
	t := time.NewTimer(s.cfg.Lifecycle.DrainGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.log.Warn("drain grace over: killing what still runs", "grace", s.cfg.Lifecycle.DrainGrace)
	case <-ctx.Done():
	}
	s.Close()
}

// Close kills every execution and session of the server, removes every
// sandbox and its workspace and closes the pools. Safe to call twice.
func (s *Server) Close() error {
	s.draining.Store(true)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	all := make([]*sandbox, 0, len(s.sandboxes))
	for _, sb := range s.sandboxes {
		all = append(all, sb)
	}
	s.mu.Unlock()
	s.cancel()
	for _, sb := range all {
		s.deleteSandbox(sb)
	}
	for _, p := range s.pools {
		p.Close()
	}
	s.inflight.Wait()
	s.janitor.Wait()
	if s.audit != nil {
		if err := s.audit.Close(); err != nil {
			s.log.Error("closing the audit log", "err", err)
		}
	}
	if s.lock != nil {
		s.lock.Close()
	}
	return nil
}

// sortedSandboxes lists a tenant's sandboxes, oldest first.
func (s *Server) sortedSandboxes(t *tenant) []*sandbox {
	s.mu.Lock()
	var out []*sandbox
	for _, sb := range s.sandboxes {
		if sb.tenant == t {
			out = append(out, sb)
		}
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].created.Before(out[j].created) })
	return out
}
