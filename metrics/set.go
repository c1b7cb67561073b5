package metrics

import (
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Unknown is the tenant or template label of a name the config does not
// declare: one series for all of them, however many a client invents.
const Unknown = "_unknown"

// Other is the reason, quota or limiter kind label of a value outside the
// known set.
const Other = "other"

// knownReasons are the execution outcomes counted under their own name: the
// library's run reasons (jail.Reason) and its cell statuses
// (jail.CellStatus). A cell that killed its session counts under the
// session's reason (oom, cpu_time...), not "dead", when the server knows
// it; metrics_test checks this list against the library's constants.
var knownReasons = []string{
	"exited", "signaled", "timeout", "output_limit", "canceled", "oom", "cpu_time", "seccomp",
	"ok", "error", "dead",
}

// knownLimiterKinds are the limiter kinds of the library (cgroup.Kind).
var knownLimiterKinds = []string{"cgroup2", "cgroup1", "rlimit"}

var limiterKinds = set(knownLimiterKinds)

// AdmissionOutcome is how a request left the host's admission queue.
type AdmissionOutcome string

const (
	Admitted   AdmissionOutcome = "admitted"   // it got a place and ran
	Overloaded AdmissionOutcome = "overloaded" // it waited its time and was answered 503
	Gone       AdmissionOutcome = "canceled"   // the client went away while it waited
)

var admissionOutcomes = set([]string{string(Admitted), string(Overloaded), string(Gone)})

// Options are what the server knows beyond its tenants. Every callback is
// called at scrape time, from the scraping request's goroutine, possibly
// while the server works: it must be safe for that and quick (read a
// counter under a lock, no I/O). A nil callback leaves its metric out, so
// that a count the server does not keep is absent rather than a false 0.
type Options struct {
	// Templates are the config's template names, the template label's
	// values.
	Templates []string
	// Quotas are the names of the quotas the server refuses by (the quota
	// label's values); any other counts as "other".
	Quotas []string
	// AdmissionCapacity is how many executions the host runs at once.
	AdmissionCapacity int

	LiveSandboxes   func() int // sandboxes existing now, paused ones included
	PausedSandboxes func() int
	LiveContexts    func() int // live contexts (interpreter sessions) of all sandboxes
	AdmissionInUse  func() int // admission places taken now
	// Pools returns every pool's counters.
	Pools func() []PoolStats
	// StaleCgroupsRemoved is the library's count of cgroups of dead
	// supervisors it removed (jail.Supervisor.StaleCgroupsRemoved).
	StaleCgroupsRemoved func() uint64
}

// Set is every metric of brig serve, on a registry of its own (never
// Prometheus's global default registry, so that two Sets, two servers in
// one test, or a library's own metrics never mix). Its methods are safe for
// concurrent use.
type Set struct {
	reg       *prometheus.Registry
	tenants   map[string]bool
	templates map[string]bool
	reasons   map[string]bool
	quotas    map[string]bool

	executions    *prometheus.CounterVec
	wall, cpu     *prometheus.HistogramVec
	peakMemory    *prometheus.HistogramVec
	setup         *prometheus.HistogramVec
	setupFailures *prometheus.CounterVec
	quotaRefusals *prometheus.CounterVec
	queueLength   prometheus.Gauge
	admissionWait *prometheus.HistogramVec
	auditWrite    prometheus.Histogram
	auditFailures prometheus.Counter
	limiter       *prometheus.GaugeVec
}

// Buckets, chosen for sandboxed code: a print(1) in a live context takes
// milliseconds, a cold jail tens of them, and a run is killed at its
// timeout, minutes at most; memory runs from a shell's few MiB to a
// template's GiB limit.
var (
	durationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}
	memoryBuckets   = prometheus.ExponentialBuckets(1<<20, 2, 14) // 1 MiB to 8 GiB
	setupBuckets    = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	waitBuckets     = []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	// An audit write is an append and, with fsync per record, a disk flush.
	auditBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}
)

// NewSet makes the metrics of a server whose config declares tenants and
// opts.Templates. It pre-declares every series of the known label values at
// 0: a counter that first appears at 1 is an increase that rate() and
// increase() never see, so an alert on the first OOM of a tenant would
// never fire.
func NewSet(tenants []string, opts Options) (*Set, error) {
	s := &Set{reg: prometheus.NewRegistry(), reasons: set(knownReasons), quotas: set(opts.Quotas)}
	var err error
	if s.tenants, err = names("tenant", tenants, Unknown); err != nil {
		return nil, err
	}
	if s.templates, err = names("template", opts.Templates, Unknown); err != nil {
		return nil, err
	}
	if _, err := names("quota", opts.Quotas, Other); err != nil {
		return nil, err
	}
	if opts.AdmissionCapacity < 0 {
		return nil, fmt.Errorf("metrics: admission capacity %d: want 0 or more", opts.AdmissionCapacity)
	}

	s.executions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "brig_executions_total",
		Help: "Executions ended, by tenant, template and reason (exited, oom, cpu_time, timeout, seccomp... for runs; ok, error, timeout... for cells).",
	}, []string{"tenant", "template", "reason"})
	s.wall = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "brig_execution_wall_seconds", Help: "Wall-clock time of executions, by template.", Buckets: durationBuckets,
	}, []string{"template"})
	s.cpu = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "brig_execution_cpu_seconds", Help: "CPU time (user and system) of executions, by template.", Buckets: durationBuckets,
	}, []string{"template"})
	s.peakMemory = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "brig_execution_peak_memory_bytes", Help: "Peak memory of executions, by template.", Buckets: memoryBuckets,
	}, []string{"template"})
	s.setup = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "brig_jail_setup_seconds", Help: "Time from the start of an execution to its program running, by template: a jail set up cold (namespaces, mounts, cgroup, seccomp), or a pooled one handed over.", Buckets: setupBuckets,
	}, []string{"template"})
	s.setupFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "brig_jail_setup_failures_total", Help: "Jails that could not be set up, by template.",
	}, []string{"template"})
	s.quotaRefusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "brig_quota_refusals_total", Help: "Requests refused by a tenant's quota, by tenant and quota.",
	}, []string{"tenant", "quota"})
	s.queueLength = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "brig_admission_queue_length", Help: "Executions waiting now for a place of the host's admission.",
	})
	s.admissionWait = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "brig_admission_wait_seconds", Help: "Time executions waited for a place of the host's admission, by outcome (admitted, overloaded: answered 503, canceled).", Buckets: waitBuckets,
	}, []string{"outcome"})
	s.auditWrite = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "brig_audit_write_seconds", Help: "Time to append one audit record (and flush it, with fsync per record).", Buckets: auditBuckets,
	})
	s.auditFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "brig_audit_write_failures_total", Help: "Audit records that could not be written (executions are then refused, unless configured to warn).",
	})
	s.limiter = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "brig_limiter_info", Help: "1 for each limiter kind (cgroup2, cgroup1, rlimit) the library has bounded a jail with since the server started.",
	}, []string{"kind"})
	s.reg.MustRegister(s.executions, s.wall, s.cpu, s.peakMemory, s.setup, s.setupFailures, s.quotaRefusals,
		s.queueLength, s.admissionWait, s.auditWrite, s.auditFailures, s.limiter)

	capacity := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "brig_admission_capacity", Help: "Executions the host runs at once (the admission cap).",
	})
	capacity.Set(float64(opts.AdmissionCapacity))
	s.reg.MustRegister(capacity)
	gaugeFunc(s.reg, "brig_live_sandboxes", "Sandboxes existing now, paused ones included.", opts.LiveSandboxes)
	gaugeFunc(s.reg, "brig_paused_sandboxes", "Sandboxes paused now.", opts.PausedSandboxes)
	gaugeFunc(s.reg, "brig_live_contexts", "Live contexts (interpreter sessions) of all sandboxes.", opts.LiveContexts)
	gaugeFunc(s.reg, "brig_admission_in_use", "Places of the host's admission taken now.", opts.AdmissionInUse)
	if f := opts.StaleCgroupsRemoved; f != nil {
		s.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "brig_stale_cgroups_removed_total", Help: "Cgroup directories of dead supervisors the library removed.",
		}, func() float64 { return float64(f()) }))
	}
	if opts.Pools != nil {
		s.reg.MustRegister(&poolCollector{stats: opts.Pools, templates: s.templates})
	}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	s.predeclare(tenants, opts.Templates, opts.Quotas)
	return s, nil
}

func (s *Set) predeclare(tenants, templates, quotas []string) {
	tenants = append(slices.Clone(tenants), Unknown)
	templates = append(slices.Clone(templates), Unknown)
	for _, tn := range tenants {
		for _, tp := range templates {
			for _, r := range append(slices.Clone(knownReasons), Other) {
				s.executions.WithLabelValues(tn, tp, r)
			}
		}
		for _, q := range append(slices.Clone(quotas), Other) {
			s.quotaRefusals.WithLabelValues(tn, q)
		}
	}
	for _, tp := range templates {
		s.wall.WithLabelValues(tp)
		s.cpu.WithLabelValues(tp)
		s.peakMemory.WithLabelValues(tp)
		s.setup.WithLabelValues(tp)
		s.setupFailures.WithLabelValues(tp)
	}
	for o := range admissionOutcomes {
		s.admissionWait.WithLabelValues(o)
	}
	for _, k := range append(slices.Clone(knownLimiterKinds), Other) {
		s.limiter.WithLabelValues(k)
	}
}

func gaugeFunc(reg *prometheus.Registry, name, help string, f func() int) {
	if f == nil {
		return
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return float64(f()) }))
}

// names checks a config's label values: each a non-empty, distinct UTF-8
// name that is not the label's catch-all (a tenant may be called "other":
// only reasons, quotas and kinds fall into that one).
func names(what string, list []string, catchAll string) (map[string]bool, error) {
	m := make(map[string]bool, len(list))
	for _, n := range list {
		switch {
		case n == "" || !utf8.ValidString(n):
			return nil, fmt.Errorf("metrics: %s %q: want a non-empty UTF-8 name", what, n)
		case n == catchAll:
			return nil, fmt.Errorf("metrics: %s %q: the name is reserved for the values the config does not declare; rename it", what, n)
		case m[n]:
			return nil, fmt.Errorf("metrics: %s %q: declared twice", what, n)
		}
		m[n] = true
	}
	return m, nil
}

func set(list []string) map[string]bool {
	m := make(map[string]bool, len(list))
	for _, n := range list {
		m[n] = true
	}
	return m
}

func bound(m map[string]bool, v, otherwise string) string {
	if m[v] {
		return v
	}
	return otherwise
}

// Registry is the Set's registry, for a caller that adds metrics of its
// own or gathers them (tests).
func (s *Set) Registry() *prometheus.Registry { return s.reg }

// ExecutionDone counts an execution that ran (a run, a process, a cell) and
// records its wall and CPU time and peak memory. A tenant or template the
// config does not declare counts as "_unknown", a reason outside the known
// ones as "other". A peak of 0 or less (not measured: a cell) is not
// recorded.
func (s *Set) ExecutionDone(tenant, template, reason string, wall, cpu time.Duration, peak int64) {
	template = bound(s.templates, template, Unknown)
	s.executions.WithLabelValues(bound(s.tenants, tenant, Unknown), template, bound(s.reasons, reason, Other)).Inc()
	s.wall.WithLabelValues(template).Observe(wall.Seconds())
	s.cpu.WithLabelValues(template).Observe(cpu.Seconds())
	if peak > 0 {
		s.peakMemory.WithLabelValues(template).Observe(float64(peak))
	}
}

// JailSetUp records the time an execution of template took from its start
// to its program running (jail.Cmd.Start): a cold set-up, or the handover
// of a pooled jail, which is what a client waits for either way.
func (s *Set) JailSetUp(template string, d time.Duration) {
	s.setup.WithLabelValues(bound(s.templates, template, Unknown)).Observe(d.Seconds())
}

// JailSetUpFailed counts a jail of template that could not be set up (a
// jail.SetupError from Start). A pool's failed builds are its own counter
// (PoolStats.Failures).
func (s *Set) JailSetUpFailed(template string) {
	s.setupFailures.WithLabelValues(bound(s.templates, template, Unknown)).Inc()
}

// QuotaRefused counts a request of tenant refused by quota.
func (s *Set) QuotaRefused(tenant, quota string) {
	s.quotaRefusals.WithLabelValues(bound(s.tenants, tenant, Unknown), bound(s.quotas, quota, Other)).Inc()
}

// AdmissionQueued counts an execution that starts to wait for a place of
// the host's admission; AdmissionLeft must follow it once.
func (s *Set) AdmissionQueued() { s.queueLength.Inc() }

// AdmissionLeft ends an AdmissionQueued: the execution waited wait and got
// a place, or was refused, or its client went away.
func (s *Set) AdmissionLeft(wait time.Duration, outcome AdmissionOutcome) {
	s.queueLength.Dec()
	s.admissionWait.WithLabelValues(bound(admissionOutcomes, string(outcome), Other)).Observe(wait.Seconds())
}

// AuditWritten records the time one audit record took to write.
func (s *Set) AuditWritten(d time.Duration) { s.auditWrite.Observe(d.Seconds()) }

// AuditWriteFailed counts an audit record that could not be written.
func (s *Set) AuditWriteFailed() { s.auditFailures.Inc() }

// LimiterInUse notes that the library bounded a jail with a limiter of
// kind (Result.Limiter). Kinds stay noted: a server whose templates use
// different limiters shows each.
func (s *Set) LimiterInUse(kind string) {
	s.limiter.WithLabelValues(bound(limiterKinds, kind, Other)).Set(1)
}
