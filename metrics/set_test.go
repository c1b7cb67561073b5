package metrics

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

var (
	testTenants   = []string{"alice", "bob"}
	testTemplates = []string{"python"}
	testQuotas    = []string{"concurrent", "sandboxes"}
)

func newTestSet(t *testing.T, opts Options) *Set {
	t.Helper()
	opts.Templates, opts.Quotas = testTemplates, testQuotas
	s, err := NewSet(testTenants, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A fresh Set exposes every series of the config's label values at 0, and
// what the callbacks return.
func TestFreshSetExposition(t *testing.T) {
	s := newTestSet(t, Options{
		AdmissionCapacity:   4,
		LiveSandboxes:       func() int { return 3 },
		PausedSandboxes:     func() int { return 1 },
		LiveContexts:        func() int { return 5 },
		AdmissionInUse:      func() int { return 2 },
		StaleCgroupsRemoved: func() uint64 { return 6 },
	})
	want := `
# HELP brig_admission_capacity Executions the host runs at once (the admission cap).
# TYPE brig_admission_capacity gauge
brig_admission_capacity 4
# HELP brig_admission_in_use Places of the host's admission taken now.
# TYPE brig_admission_in_use gauge
brig_admission_in_use 2
# HELP brig_admission_queue_length Executions waiting now for a place of the host's admission.
# TYPE brig_admission_queue_length gauge
brig_admission_queue_length 0
# HELP brig_live_contexts Live contexts (interpreter sessions) of all sandboxes.
# TYPE brig_live_contexts gauge
brig_live_contexts 5
# HELP brig_live_sandboxes Sandboxes existing now, paused ones included.
# TYPE brig_live_sandboxes gauge
brig_live_sandboxes 3
# HELP brig_paused_sandboxes Sandboxes paused now.
# TYPE brig_paused_sandboxes gauge
brig_paused_sandboxes 1
# HELP brig_quota_refusals_total Requests refused by a tenant's quota, by tenant and quota.
# TYPE brig_quota_refusals_total counter
brig_quota_refusals_total{quota="concurrent",tenant="_unknown"} 0
brig_quota_refusals_total{quota="concurrent",tenant="alice"} 0
brig_quota_refusals_total{quota="concurrent",tenant="bob"} 0
brig_quota_refusals_total{quota="other",tenant="_unknown"} 0
brig_quota_refusals_total{quota="other",tenant="alice"} 0
brig_quota_refusals_total{quota="other",tenant="bob"} 0
brig_quota_refusals_total{quota="sandboxes",tenant="_unknown"} 0
brig_quota_refusals_total{quota="sandboxes",tenant="alice"} 0
brig_quota_refusals_total{quota="sandboxes",tenant="bob"} 0
# HELP brig_limiter_info 1 for each limiter kind (cgroup2, cgroup1, rlimit) the library has bounded a jail with since the server started.
# TYPE brig_limiter_info gauge
brig_limiter_info{kind="cgroup1"} 0
brig_limiter_info{kind="cgroup2"} 0
brig_limiter_info{kind="other"} 0
brig_limiter_info{kind="rlimit"} 0
# HELP brig_audit_write_failures_total Audit records that could not be written (executions are then refused, unless configured to warn).
# TYPE brig_audit_write_failures_total counter
brig_audit_write_failures_total 0
# HELP brig_stale_cgroups_removed_total Cgroup directories of dead supervisors the library removed.
# TYPE brig_stale_cgroups_removed_total counter
brig_stale_cgroups_removed_total 6
# HELP brig_jail_setup_failures_total Jails that could not be set up, by template.
# TYPE brig_jail_setup_failures_total counter
brig_jail_setup_failures_total{template="_unknown"} 0
brig_jail_setup_failures_total{template="python"} 0
`
	names := []string{"brig_admission_capacity", "brig_admission_in_use", "brig_admission_queue_length", "brig_live_contexts",
		"brig_live_sandboxes", "brig_paused_sandboxes", "brig_quota_refusals_total", "brig_limiter_info",
		"brig_audit_write_failures_total", "brig_stale_cgroups_removed_total", "brig_jail_setup_failures_total"}
	if err := testutil.GatherAndCompare(s.Registry(), strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	// (alice, bob, _unknown) x (python, _unknown) x (11 reasons and other).
	if n, err := testutil.GatherAndCount(s.Registry(), "brig_executions_total"); err != nil || n != 3*2*12 {
		t.Fatalf("brig_executions_total: %d series (%v), want %d", n, err, 3*2*12)
	}
	for _, h := range []string{"brig_execution_wall_seconds", "brig_execution_cpu_seconds", "brig_execution_peak_memory_bytes", "brig_jail_setup_seconds"} {
		if n, err := testutil.GatherAndCount(s.Registry(), h); err != nil || n != 2 {
			t.Errorf("%s: %d histograms (%v), want one per template and _unknown", h, n, err)
		}
	}
	// The process and Go runtime metrics are there too, for the server's
	// own health.
	if n, err := testutil.GatherAndCount(s.Registry(), "process_resident_memory_bytes", "go_goroutines"); err != nil || n != 2 {
		t.Errorf("process and Go metrics: %d (%v), want 2", n, err)
	}
	problems, err := testutil.GatherAndLint(s.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "brig_") {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
	}
}

// Without callbacks, the counts the server does not keep are absent, not 0.
func TestNilCallbacksLeaveMetricsOut(t *testing.T) {
	s := newTestSet(t, Options{})
	n, err := testutil.GatherAndCount(s.Registry(), "brig_live_sandboxes", "brig_paused_sandboxes", "brig_live_contexts",
		"brig_admission_in_use", "brig_pool_ready", "brig_pool_hits_total")
	if err != nil || n != 0 {
		t.Fatalf("%d series of unset callbacks (%v), want none", n, err)
	}
	if n, _ := testutil.GatherAndCount(s.Registry(), "brig_admission_queue_length"); n != 1 {
		t.Fatalf("brig_admission_queue_length: %d series, want 1: the Set keeps it itself", n)
	}
}

func TestExecutionDone(t *testing.T) {
	s := newTestSet(t, Options{})
	s.ExecutionDone("alice", "python", "oom", 1500*time.Millisecond, 700*time.Millisecond, 300<<20)
	s.ExecutionDone("alice", "python", "oom", 40*time.Millisecond, 30*time.Millisecond, 300<<20)
	s.ExecutionDone("bob", "python", "ok", 3*time.Millisecond, 2*time.Millisecond, 0)
	if got := testutil.ToFloat64(s.executions.WithLabelValues("alice", "python", "oom")); got != 2 {
		t.Errorf("alice's OOMs: %v, want 2", got)
	}
	if got := testutil.ToFloat64(s.executions.WithLabelValues("bob", "python", "ok")); got != 1 {
		t.Errorf("bob's ok cells: %v, want 1", got)
	}
	want := `
# HELP brig_execution_peak_memory_bytes Peak memory of executions, by template.
# TYPE brig_execution_peak_memory_bytes histogram
brig_execution_peak_memory_bytes_bucket{template="_unknown",le="1.048576e+06"} 0
brig_execution_peak_memory_bytes_bucket{template="_unknown",le="2.097152e+06"} 0
brig_execution_peak_memory_bytes_bucket{template="_unknown",le="4.194304e+06"} 0
brig_execution_peak_memory_bytes_bucket{template="_unknown",le="8.388608e+06"} 0
brig_execution_peak_memory_bytes_bucket{template="_unknown",le="1.6777216e+07"} 0
brig_execution_peak_memory_bytes_bucket{template="_unknown",le="3.3554432e+07"} 0
brig_execution_peak_memory_bytes_bucket{template="_unknown",le="6.7108864e+07"} 0
brig_execution_peak_memory_bytes_bucket{template="_unknown",le="1.34217728e+08"} 0
brig_execution_peak_memory_bytes_bucket{template="_unknown",le="2.68435456e+08"} 0
brig_execution_peak_memory_bytes_bucket{template="_unknown",le="5.36870912e+08"} 0
brig_execution_peak_memory_bytes_bucket{template="_unknown",le="1.073741824e+09"} 0
brig_execution_peak_memory_bytes_bucket{template="_unknown",le="2.147483648e+09"} 0
brig_execution_peak_memory_bytes_bucket{template="_unknown",le="4.294967296e+09"} 0
brig_execution_peak_memory_bytes_bucket{template="_unknown",le="8.589934592e+09"} 0
brig_execution_peak_memory_bytes_bucket{template="_unknown",le="+Inf"} 0
brig_execution_peak_memory_bytes_sum{template="_unknown"} 0
brig_execution_peak_memory_bytes_count{template="_unknown"} 0
brig_execution_peak_memory_bytes_bucket{template="python",le="1.048576e+06"} 0
brig_execution_peak_memory_bytes_bucket{template="python",le="2.097152e+06"} 0
brig_execution_peak_memory_bytes_bucket{template="python",le="4.194304e+06"} 0
brig_execution_peak_memory_bytes_bucket{template="python",le="8.388608e+06"} 0
brig_execution_peak_memory_bytes_bucket{template="python",le="1.6777216e+07"} 0
brig_execution_peak_memory_bytes_bucket{template="python",le="3.3554432e+07"} 0
brig_execution_peak_memory_bytes_bucket{template="python",le="6.7108864e+07"} 0
brig_execution_peak_memory_bytes_bucket{template="python",le="1.34217728e+08"} 0
brig_execution_peak_memory_bytes_bucket{template="python",le="2.68435456e+08"} 0
brig_execution_peak_memory_bytes_bucket{template="python",le="5.36870912e+08"} 2
brig_execution_peak_memory_bytes_bucket{template="python",le="1.073741824e+09"} 2
brig_execution_peak_memory_bytes_bucket{template="python",le="2.147483648e+09"} 2
brig_execution_peak_memory_bytes_bucket{template="python",le="4.294967296e+09"} 2
brig_execution_peak_memory_bytes_bucket{template="python",le="8.589934592e+09"} 2
brig_execution_peak_memory_bytes_bucket{template="python",le="+Inf"} 2
brig_execution_peak_memory_bytes_sum{template="python"} 6.291456e+08
brig_execution_peak_memory_bytes_count{template="python"} 2
`
	if err := testutil.GatherAndCompare(s.Registry(), strings.NewReader(want), "brig_execution_peak_memory_bytes"); err != nil {
		t.Fatal(err)
	}
	wall := histogram(t, s.Registry(), "brig_execution_wall_seconds", "python")
	if wall.GetSampleCount() != 3 || wall.GetSampleSum() != 1.543 {
		t.Errorf("wall time: count %d sum %v, want 3 and 1.543", wall.GetSampleCount(), wall.GetSampleSum())
	}
	if got := bucket(wall, 0.005); got != 1 {
		t.Errorf("wall time: %d under 5 ms, want 1 (the cell)", got)
	}
	if got := bucket(wall, 2.5); got != 3 {
		t.Errorf("wall time: %d under 2.5 s, want 3", got)
	}
	cpu := histogram(t, s.Registry(), "brig_execution_cpu_seconds", "python")
	if cpu.GetSampleCount() != 3 || cpu.GetSampleSum() != 0.732 {
		t.Errorf("CPU time: count %d sum %v, want 3 and 0.732", cpu.GetSampleCount(), cpu.GetSampleSum())
	}
}

// The other methods, each counted where its metric says.
func TestEventsCounted(t *testing.T) {
	s := newTestSet(t, Options{})
	s.JailSetUp("python", 30*time.Millisecond)
	s.JailSetUpFailed("python")
	s.QuotaRefused("bob", "concurrent")
	s.QuotaRefused("bob", "no-such-quota")
	s.AdmissionQueued()
	s.AdmissionQueued()
	s.AdmissionLeft(2*time.Second, Overloaded)
	s.AuditWritten(300 * time.Microsecond)
	s.AuditWriteFailed()
	s.LimiterInUse("cgroup1")

	for _, c := range []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"setup failures", s.setupFailures.WithLabelValues("python"), 1},
		{"bob's concurrent refusals", s.quotaRefusals.WithLabelValues("bob", "concurrent"), 1},
		{"bob's refusals by an unknown quota", s.quotaRefusals.WithLabelValues("bob", "other"), 1},
		{"queue length", s.queueLength, 1},
		{"audit failures", s.auditFailures, 1},
		{"limiter cgroup1", s.limiter.WithLabelValues("cgroup1"), 1},
		{"limiter cgroup2", s.limiter.WithLabelValues("cgroup2"), 0},
	} {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	if h := histogram(t, s.Registry(), "brig_jail_setup_seconds", "python"); h.GetSampleCount() != 1 || bucket(h, 0.025) != 0 || bucket(h, 0.05) != 1 {
		t.Errorf("set-up time: %v", h)
	}
	if h := histogram(t, s.Registry(), "brig_admission_wait_seconds", "overloaded"); h.GetSampleCount() != 1 || h.GetSampleSum() != 2 {
		t.Errorf("admission wait of the refused: %v", h)
	}
	if h := histogram(t, s.Registry(), "brig_audit_write_seconds", ""); h.GetSampleCount() != 1 || bucket(h, 0.00025) != 0 || bucket(h, 0.0005) != 1 {
		t.Errorf("audit write time: %v", h)
	}
}

func TestPoolStats(t *testing.T) {
	s := newTestSet(t, Options{Pools: func() []PoolStats {
		return []PoolStats{
			{Template: "python", Size: 4, Ready: 3, Hits: 10, Misses: 2, Built: 14, Failures: 1, RefillTime: 50 * time.Millisecond},
			// Neither a template of the config nor a second pool of one
			// becomes a series.
			{Template: "invented", Size: 1, Hits: 99},
			{Template: "python", Size: 1, Hits: 99},
		}
	}})
	want := `
# HELP brig_pool_size Jails the template's pool keeps ready.
# TYPE brig_pool_size gauge
brig_pool_size{template="python"} 4
# HELP brig_pool_ready Jails of the template's pool ready now.
# TYPE brig_pool_ready gauge
brig_pool_ready{template="python"} 3
# HELP brig_pool_hits_total Executions that got a ready jail of the template's pool.
# TYPE brig_pool_hits_total counter
brig_pool_hits_total{template="python"} 10
# HELP brig_pool_misses_total Executions of a pooled template that found no jail ready and set one up cold.
# TYPE brig_pool_misses_total counter
brig_pool_misses_total{template="python"} 2
# HELP brig_pool_build_failures_total Jails the template's pool failed to build, or found dead.
# TYPE brig_pool_build_failures_total counter
brig_pool_build_failures_total{template="python"} 1
# HELP brig_pool_refill_seconds Time to build one jail ahead for the template's pool.
# TYPE brig_pool_refill_seconds summary
brig_pool_refill_seconds_sum{template="python"} 0.7000000000000001
brig_pool_refill_seconds_count{template="python"} 14
`
	if err := testutil.GatherAndCompare(s.Registry(), strings.NewReader(want), "brig_pool_size", "brig_pool_ready",
		"brig_pool_hits_total", "brig_pool_misses_total", "brig_pool_build_failures_total", "brig_pool_refill_seconds"); err != nil {
		t.Fatal(err)
	}
}

// Names a request supplies never make a series: a thousand invented
// tenants, templates, reasons and quotas all land in the catch-alls.
func TestLabelsBounded(t *testing.T) {
	s := newTestSet(t, Options{})
	// The Go runtime's own series may come and go; brig's may not.
	before := countBrig(t, s.Registry())
	for i := range 1000 {
		s.ExecutionDone(fmt.Sprintf("tenant-%d", i), fmt.Sprintf("template-%d", i), fmt.Sprintf("reason-%d", i), time.Millisecond, time.Millisecond, 1<<20)
		s.QuotaRefused(fmt.Sprintf("tenant-%d", i), fmt.Sprintf("quota-%d", i))
		s.JailSetUp(fmt.Sprintf("template-%d", i), time.Millisecond)
		s.LimiterInUse(fmt.Sprintf("kind-%d", i))
	}
	// Invalid UTF-8 would make client_golang panic in WithLabelValues.
	s.ExecutionDone("\xff", "\xfe", "\xfd", 0, 0, 0)
	s.QuotaRefused("\xff", "\xfe")
	if after := countBrig(t, s.Registry()); after != before {
		t.Fatalf("brig series: %d before, %d after invented names", before, after)
	}
	if got := testutil.ToFloat64(s.executions.WithLabelValues(Unknown, Unknown, Other)); got != 1001 {
		t.Errorf("executions of unknown tenant, template, reason: %v, want 1001", got)
	}
	if got := testutil.ToFloat64(s.quotaRefusals.WithLabelValues(Unknown, Other)); got != 1001 {
		t.Errorf("refusals of unknown tenant and quota: %v, want 1001", got)
	}
	if got := testutil.ToFloat64(s.limiter.WithLabelValues(Other)); got != 1 {
		t.Errorf("unknown limiter kinds: %v, want 1", got)
	}
	// A known tenant still counts under its name.
	s.ExecutionDone("alice", "python", "oom", 0, 0, 0)
	if got := testutil.ToFloat64(s.executions.WithLabelValues("alice", "python", "oom")); got != 1 {
		t.Errorf("alice's OOMs: %v, want 1", got)
	}
}

func TestNewSetRefusesBadNames(t *testing.T) {
	for _, c := range []struct {
		tenants []string
		opts    Options
	}{
		{[]string{"a", "a"}, Options{}},
		{[]string{""}, Options{}},
		{[]string{Unknown}, Options{}},
		{[]string{"\xff"}, Options{}},
		{nil, Options{Templates: []string{Unknown}}},
		{nil, Options{Quotas: []string{Other}}},
		{nil, Options{Quotas: []string{"q", "q"}}},
		{nil, Options{AdmissionCapacity: -1}},
	} {
		if _, err := NewSet(c.tenants, c.opts); err == nil {
			t.Errorf("NewSet(%q, %+v): no error", c.tenants, c.opts)
		}
	}
	// "other" is only the catch-all of reasons, quotas and kinds: a tenant
	// or a template may have that name (a config had such a tenant).
	if _, err := NewSet([]string{"me", Other}, Options{Templates: []string{Other}}); err != nil {
		t.Errorf("a tenant and a template named %q: %v", Other, err)
	}
	// Two Sets of the same names live side by side: no global registry.
	for range 2 {
		if _, err := NewSet([]string{"a"}, Options{Templates: []string{"t"}}); err != nil {
			t.Fatal(err)
		}
	}
}

// Many goroutines count while others scrape (run with -race).
func TestConcurrentUse(t *testing.T) {
	s := newTestSet(t, Options{LiveSandboxes: func() int { return 1 }})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 500 {
				s.ExecutionDone(testTenants[g%2], "python", "exited", time.Millisecond, time.Millisecond, 1<<20)
				s.AdmissionQueued()
				s.AdmissionLeft(time.Millisecond, Admitted)
			}
		}()
	}
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if _, err := s.Registry().Gather(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if got := testutil.ToFloat64(s.executions.WithLabelValues("alice", "python", "exited")); got != 2000 {
		t.Errorf("alice's executions: %v, want 2000", got)
	}
	if got := testutil.ToFloat64(s.queueLength); got != 0 {
		t.Errorf("queue length after every wait ended: %v", got)
	}
}

func countBrig(t *testing.T, g prometheus.Gatherer) int {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "brig_") {
			n += len(mf.GetMetric())
		}
	}
	return n
}

// histogram is the histogram of family name whose one label has value
// (or which has no label, for value "").
func histogram(t *testing.T, g prometheus.Gatherer, name, value string) *dto.Histogram {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if (value == "" && len(m.GetLabel()) == 0) || (len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == value) {
				return m.GetHistogram()
			}
		}
	}
	t.Fatalf("no histogram %s{%s}", name, value)
	return nil
}

// bucket is the cumulative count of h's bucket with upper bound le.
func bucket(h *dto.Histogram, le float64) uint64 {
	for _, b := range h.GetBucket() {
		if b.GetUpperBound() == le {
			return b.GetCumulativeCount()
		}
	}
	return ^uint64(0)
}
