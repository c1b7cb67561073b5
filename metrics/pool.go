package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// PoolStats are one template's pool counters (the library's
// jail.PoolStats, with the template's name and the pool's size).
type PoolStats struct {
	Template string
	Size     int   // jails the pool keeps ready
	Ready    int   // jails ready now
	Hits     int64 // executions that got a ready jail
	Misses   int64 // executions that found none ready and were set up cold
	Built    int64 // jails built ahead
	Failures int64 // builds that failed, and ready jails found dead
	// RefillTime is the mean time to build one jail ahead.
	RefillTime time.Duration
}

var (
	poolSizeDesc     = prometheus.NewDesc("brig_pool_size", "Jails the template's pool keeps ready.", []string{"template"}, nil)
	poolReadyDesc    = prometheus.NewDesc("brig_pool_ready", "Jails of the template's pool ready now.", []string{"template"}, nil)
	poolHitsDesc     = prometheus.NewDesc("brig_pool_hits_total", "Executions that got a ready jail of the template's pool.", []string{"template"}, nil)
	poolMissesDesc   = prometheus.NewDesc("brig_pool_misses_total", "Executions of a pooled template that found no jail ready and set one up cold.", []string{"template"}, nil)
	poolFailuresDesc = prometheus.NewDesc("brig_pool_build_failures_total", "Jails the template's pool failed to build, or found dead.", []string{"template"}, nil)
	poolRefillDesc   = prometheus.NewDesc("brig_pool_refill_seconds", "Time to build one jail ahead for the template's pool.", []string{"template"}, nil)
)

// poolCollector reads the pools' counters at scrape time: the library keeps
// them, and counting them again in the server could only drift.
type poolCollector struct {
	stats     func() []PoolStats
	templates map[string]bool
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolSizeDesc, poolReadyDesc, poolHitsDesc, poolMissesDesc, poolFailuresDesc, poolRefillDesc} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	seen := map[string]bool{}
	for _, p := range c.stats() {
		// Pools are made from the config's templates; one that is not
		// there, or a second of one name, would be a server's bug, and
		// is left out rather than made into a series or a gather error.
		if !c.templates[p.Template] || seen[p.Template] {
			continue
		}
		seen[p.Template] = true
		ch <- prometheus.MustNewConstMetric(poolSizeDesc, prometheus.GaugeValue, float64(p.Size), p.Template)
		ch <- prometheus.MustNewConstMetric(poolReadyDesc, prometheus.GaugeValue, float64(p.Ready), p.Template)
		ch <- prometheus.MustNewConstMetric(poolHitsDesc, prometheus.CounterValue, float64(p.Hits), p.Template)
		ch <- prometheus.MustNewConstMetric(poolMissesDesc, prometheus.CounterValue, float64(p.Misses), p.Template)
		ch <- prometheus.MustNewConstMetric(poolFailuresDesc, prometheus.CounterValue, float64(p.Failures), p.Template)
		// The library keeps the mean, so the sum is rebuilt from it: a
		// summary without quantiles, whose rate of sum over rate of count
		// is the mean refill time over any window.
		ch <- prometheus.MustNewConstSummary(poolRefillDesc, uint64(max(p.Built, 0)), p.RefillTime.Seconds()*float64(p.Built), nil, p.Template)
	}
}
