package testenv

import (
	"slices"
	"testing"
	"time"
)

// Median is the median of a benchmark's latencies.
func Median(lat []time.Duration) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[len(s)/2]
}

// ReportMedian reports the median latency as p50-ms next to Go's mean
// ns/op: on a shared, noisy machine the median is the number to quote.
func ReportMedian(b *testing.B, lat []time.Duration) {
	b.ReportMetric(float64(Median(lat).Microseconds())/1000, "p50-ms")
}
