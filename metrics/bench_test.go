package metrics

import (
	"fmt"
	"io"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkScrape is one /metrics scrape of a server of 50 tenants and 5
// pooled templates after some traffic (the issue measures a scrape of a
// server with 200 sandboxes: the sandboxes are gauges read by callback,
// the series come from the tenants and templates).
func BenchmarkScrape(b *testing.B) {
	var tenants, templates []string
	for i := range 50 {
		tenants = append(tenants, fmt.Sprintf("tenant-%d", i))
	}
	for i := range 5 {
		templates = append(templates, fmt.Sprintf("template-%d", i))
	}
	s, err := NewSet(tenants, Options{
		Templates: templates, Quotas: []string{"requests_per_second", "concurrent", "sandboxes", "contexts", "workspace_bytes", "workspace_inodes"},
		AdmissionCapacity: 8, LiveSandboxes: func() int { return 200 }, LiveContexts: func() int { return 400 },
		AdmissionInUse: func() int { return 8 },
		Pools: func() []PoolStats {
			var out []PoolStats
			for _, tp := range templates {
				out = append(out, PoolStats{Template: tp, Size: 4, Ready: 2, Hits: 1000, Misses: 10, Built: 1010, RefillTime: 40 * time.Millisecond})
			}
			return out
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 10000 {
		s.ExecutionDone(tenants[i%50], templates[i%5], knownReasons[i%len(knownReasons)], time.Duration(i)*time.Millisecond, time.Millisecond, int64(i)<<16)
	}
	h := s.Handler("", nil)
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
		_, _ = io.Copy(io.Discard, rec.Body)
	}
}
