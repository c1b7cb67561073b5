package serve

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net/http"
	"sort"
	"time"

	"github.com/brig-sandbox/brig/audit"
	"github.com/brig-sandbox/brig/jail"
	"github.com/brig-sandbox/brig/metrics"
)

// The server's own observers of its events: the audit log (one record per
// event worth keeping, docs/audit.md) and the metrics
// (docs/observability.md). Both are fed before the Options' Observer.

// quotaNames are the quotas the server refuses by, the metrics' labels.
var quotaNames = []string{"requests_per_second", "concurrent", "sandboxes", "contexts", "workspace_bytes", "workspace_inodes"}

// openObservers opens the audit log (unless the config says none) and
// makes the metrics of the server.
func (s *Server) openObservers() error {
	if a := s.cfg.Audit; a.Path != "" {
		l, err := audit.Open(a.Path, audit.Options{Fsync: a.Fsync, MaxBytes: a.MaxBytes, Keep: a.Keep, Logger: s.log})
		if err != nil {
			return fmt.Errorf("%s: audit.path: %w", s.cfg.File, err)
		}
		s.audit = l
	}
	var tenants, templates []string
	for _, t := range s.cfg.Tenants {
		tenants = append(tenants, t.Name)
	}
	for name := range s.cfg.Templates {
		templates = append(templates, name)
	}
	sort.Strings(templates)
	opts := metrics.Options{
		Templates:         templates,
		Quotas:            quotaNames,
		AdmissionCapacity: cap(s.admission),
		AdmissionInUse:    func() int { return len(s.admission) },
		// The server's jails are all DefaultSupervisor's (engine.go).
		StaleCgroupsRemoved: jail.DefaultSupervisor.StaleCgroupsRemoved,
		LiveSandboxes: func() int {
			s.mu.Lock()
			defer s.mu.Unlock()
			return len(s.sandboxes)
		},
		LiveContexts: func() int {
			n := 0
			for _, t := range s.tenants {
				t.mu.Lock()
				n += t.contexts
				t.mu.Unlock()
			}
			return n
		},
		Pools: s.poolStats,
	}
	if s.cfg.Lifecycle.IdlePause > 0 {
		opts.PausedSandboxes = func() int {
			s.mu.Lock()
			defer s.mu.Unlock()
			n := 0
			for _, sb := range s.sandboxes {
				if sb.pausedNow.Load() {
					n++
				}
			}
			return n
		}
	}
	m, err := metrics.NewSet(tenants, opts)
	if err != nil {
		if s.audit != nil {
			s.audit.Close()
		}
		return fmt.Errorf("%s: %w", s.cfg.File, err)
	}
	s.metrics = m
	return nil
}

func (s *Server) poolStats() []metrics.PoolStats {
	var out []metrics.PoolStats
	for name, p := range s.pools {
		st := p.Stats()
		out = append(out, metrics.PoolStats{Template: name, Size: s.cfg.Templates[name].Pool, Ready: st.Ready,
			Hits: st.Hits, Misses: st.Misses, Built: st.Built, Failures: st.Failures, RefillTime: st.RefillTime})
	}
	return out
}

// Metrics is the server's metric set, for its /metrics listener
// (MetricsHandler) or a caller's own registry.
func (s *Server) Metrics() *metrics.Set { return s.metrics }

// MetricsHandler serves the metrics, behind the config's metrics token
// when it names one.
func (s *Server) MetricsHandler() http.Handler {
	if h := s.cfg.Metrics.TokenSHA256; h != nil {
		return s.metrics.HandlerTokenSHA256(*h, s.log)
	}
	return s.metrics.Handler("", s.log)
}

// auditGate is checked before work whose record is written when it ends:
// when the log cannot take a record, the work is refused with 503 (or, on
// audit.on_failure: warn, goes on with a warning).
func (s *Server) auditGate(r *http.Request) *apiError {
	if s.audit == nil {
		return nil
	}
	err := s.audit.Ready()
	if err == nil {
		return nil
	}
	if s.cfg.Audit.Warn {
		s.log.Warn("audit log cannot be written; going on unaudited (audit.on_failure: warn)", "err", err, "request_id", requestID(r))
		return nil
	}
	return &apiError{status: http.StatusServiceUnavailable, code: "audit_unavailable", retryAfter: 5 * time.Second,
		message: fmt.Sprintf("the audit log cannot be written (%v), and nothing runs unaudited; retry once the operator has fixed it (free disk space, or restart the server if the file was removed)", err)}
}

// observe hands ev to the audit log, the metrics and the Observer; r (may
// be nil) gives it its request id and client address.
func (s *Server) observe(r *http.Request, ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	if r != nil {
		if ev.RequestID == "" {
			ev.RequestID = requestID(r)
		}
		ev.Remote = r.RemoteAddr
	}
	s.countEvent(ev)
	if rec, ok := s.auditRecord(ev); ok && s.audit != nil {
		t0 := time.Now()
		if err := s.audit.Append(rec); err != nil {
			s.metrics.AuditWriteFailed()
			s.log.Error("audit record not written", "kind", rec.Kind, "request_id", ev.RequestID, "err", err)
		} else {
			s.metrics.AuditWritten(time.Since(t0))
		}
	}
	s.obs.Observe(ev)
}

func (s *Server) countEvent(ev Event) {
	switch {
	case ev.Code == "" && (ev.Action == "run" || ev.Action == "process" || ev.Action == "execute"):
		s.metrics.ExecutionDone(ev.Tenant, ev.Template, ev.Reason, ev.WallTime, ev.CPUTime, ev.PeakMemory)
		if ev.Limiter != "" {
			s.metrics.LimiterInUse(ev.Limiter)
		}
	case ev.Quota != "":
		s.metrics.QuotaRefused(ev.Tenant, ev.Quota)
	}
}

var auditKinds = map[string]audit.Kind{
	"run": audit.KindRun, "process": audit.KindProcess, "execute": audit.KindCell,
	"file.write": audit.KindFileWrite, "file.delete": audit.KindFileDelete,
	"sandbox.create": audit.KindSandboxCreate, "sandbox.delete": audit.KindSandboxDelete, "sandbox.expire": audit.KindSandboxDelete,
	"sandbox.pause": audit.KindSandboxPause, "sandbox.resume": audit.KindSandboxResume,
	"context.create": audit.KindContextCreate, "context.delete": audit.KindContextDelete,
}

// auditRecord is ev's record, when it has one: what went through (the
// kinds above), quota refusals, failed authentications, and executions
// whose jail could not be set up. Other refusals ran nothing and change
// nothing.
func (s *Server) auditRecord(ev Event) (audit.Record, bool) {
	rec := audit.Record{Time: ev.Time, Tenant: ev.Tenant, Sandbox: ev.Sandbox, Context: ev.Context, Process: ev.Process,
		RequestID: ev.RequestID, Template: ev.Template, Detail: ev.Detail}
	switch {
	case ev.Code == "unauthorized":
		rec.Kind, rec.Remote = audit.KindAuthFailed, ev.Remote
		rec.Detail = ev.Action
		return rec, true
	case ev.Quota != "":
		rec.Kind = audit.KindQuotaRefused
		rec.Verdict = &audit.Verdict{Reason: ev.Code, Quota: ev.Quota, Message: ev.Message}
		rec.Detail = ev.Action
		return rec, true
	case ev.Action == "egress":
		// Every network decision of a jail's proxy, allowed or refused
		// (a refusal carries Code egress_refused and its reason).
		rec.Kind = audit.KindEgress
		rec.Egress = &audit.Egress{Host: ev.Host, Port: ev.Port, Address: ev.Address, Allowed: ev.Allowed,
			BytesSent: ev.BytesUp, BytesReceived: ev.BytesDown}
		if ev.Reason != "" {
			rec.Verdict = &audit.Verdict{Reason: ev.Code, Message: ev.Reason, WallTimeMS: ev.Duration.Milliseconds()}
		} else if ev.Duration > 0 {
			rec.Verdict = &audit.Verdict{WallTimeMS: ev.Duration.Milliseconds()}
		}
		return rec, true
	}
	kind, ok := auditKinds[ev.Action]
	if !ok || (ev.Code != "" && ev.Code != "jail_failed") {
		return rec, false
	}
	rec.Kind = kind
	if ev.Action == "sandbox.expire" && rec.Detail == "" {
		rec.Detail = "expired"
	}
	switch kind {
	case audit.KindRun, audit.KindProcess, audit.KindCell:
		mode := s.cfg.Templates[ev.Template].RecordCode
		if mode == "" {
			mode = audit.CodeFull
		}
		if ev.Command != nil {
			rec.Input = audit.CommandInput(mode, ev.Command)
		} else {
			rec.Input = audit.CodeInput(mode, ev.Language, ev.Program)
		}
		if ev.Code != "" {
			rec.Verdict = &audit.Verdict{Reason: ev.Code, Message: ev.Message}
			return rec, true
		}
		rec.Verdict = &audit.Verdict{Reason: ev.Reason, ExitCode: ev.ExitCode, Signal: ev.Signal, LimitsHit: ev.LimitsHit,
			SeccompSyscall: ev.SeccompSyscall, WallTimeMS: ev.WallTime.Milliseconds(), CPUTimeMS: ev.CPUTime.Milliseconds(), PeakMemoryBytes: ev.PeakMemory}
		if ev.CellStatus == "dead" {
			rec.Verdict.Message = "the context's interpreter died"
		}
		for _, o := range []struct {
			src *OutputDigest
			dst **audit.Output
		}{{ev.Stdout, &rec.Stdout}, {ev.Stderr, &rec.Stderr}} {
			if o.src != nil {
				*o.dst = &audit.Output{Bytes: o.src.Bytes, SHA256: o.src.SHA256, Truncated: o.src.Truncated}
			}
		}
	case audit.KindFileWrite, audit.KindFileDelete:
		rec.File = &audit.File{Path: ev.Path, Bytes: ev.FileBytes, SHA256: ev.FileSHA256}
	}
	return rec, true
}

// runEvent is the Event of a run or process that ended with res.
func runEvent(action string, t *tenant, sandbox, template string, argv []string, res *jail.Result, stdout, stderr *digestWriter) Event {
	ev := Event{Tenant: t.Name, Action: action, Sandbox: sandbox, Template: template, Status: http.StatusOK, Command: argv}
	if res == nil {
		// A streamed answer whose jail could not be set up: the stream
		// said so; the record says so too, and no execution is counted.
		ev.Code = "jail_failed"
		return ev
	}
	ev.Reason, ev.ExitCode, ev.Signal, ev.WallTime, ev.CPUTime, ev.PeakMemory = string(res.Reason), res.ExitCode, res.Signal, res.WallTime, res.CPUTime, res.PeakMemory
	ev.SeccompSyscall, ev.Limiter = res.SeccompSyscall, string(res.Limiter)
	if res.OOMKills > 0 || res.Reason == jail.ReasonOOM {
		ev.LimitsHit = append(ev.LimitsHit, "oom_kill")
	}
	if res.PidsLimitHits > 0 {
		ev.LimitsHit = append(ev.LimitsHit, "pids")
	}
	if res.StdoutTruncated || res.StderrTruncated {
		ev.LimitsHit = append(ev.LimitsHit, "output_limit")
	}
	ev.Stdout, ev.Stderr = stdout.digest(res.StdoutTruncated), stderr.digest(res.StderrTruncated)
	return ev
}

// digestWriter hashes and counts what passes through it to w: the audit
// record's output size and sha256, without keeping the output.
type digestWriter struct {
	w io.Writer // nil: only hashed
	h hash.Hash
	n int64
}

func newDigestWriter(w io.Writer) *digestWriter { return &digestWriter{w: w, h: sha256.New()} }

func (d *digestWriter) Write(p []byte) (int, error) {
	d.h.Write(p)
	d.n += int64(len(p))
	if d.w == nil {
		return len(p), nil
	}
	return d.w.Write(p)
}

func (d *digestWriter) digest(truncated bool) *OutputDigest {
	if d == nil {
		return nil
	}
	return &OutputDigest{Bytes: d.n, SHA256: hex.EncodeToString(d.h.Sum(nil)), Truncated: truncated}
}

func digestOf(s string, truncated bool) *OutputDigest {
	return &OutputDigest{Bytes: int64(len(s)), SHA256: audit.Digest([]byte(s)), Truncated: truncated}
}

// Request ids: every request has one, in its X-Request-Id answer header,
// its log lines and its audit records. A client's own is kept when it is
// short and printable (it ties the client's logs to the server's); any
// other is replaced, so that no header can put a newline, a control byte
// or a megabyte into a log line.

// MaxRequestIDBytes caps a client's X-Request-Id.
const MaxRequestIDBytes = 64

type requestIDKey struct{}

func validRequestID(id string) bool {
	if id == "" || len(id) > MaxRequestIDBytes {
		return false
	}
	for _, c := range []byte(id) {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

func withRequestID(r *http.Request) (*http.Request, string) {
	id := r.Header.Get("X-Request-Id")
	if !validRequestID(id) {
		id = newID("req_")
	}
	return r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)), id
}

func requestID(r *http.Request) string {
	if r == nil {
		return ""
	}
	id, _ := r.Context().Value(requestIDKey{}).(string)
	return id
}

// statusWriter keeps the status answered, for the request's log line.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection (flushes,
// write deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
