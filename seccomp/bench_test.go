package seccomp

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkFilterCost measures what the default filter adds to system calls
// that do almost nothing else (getpid, a 64-byte read of /dev/zero), in a
// child with and without the filter. It reports ns per loop iteration (two
// system calls) for both and their ratio; real workloads spend far more
// time outside system call entry, so this is the worst case.
func BenchmarkFilterCost(b *testing.B) {
	prog, err := Default().Compile()
	if err != nil {
		b.Fatal(err)
	}
	const loops = 200_000
	measure := func(prog []byte) time.Duration {
		c := &child{mode: "loop", prog: prog, loops: loops}
		c.run(b)
		if !c.state.Success() {
			b.Fatalf("loop child: %v\n%s", c.state, c.stderr.String())
		}
		ns, err := strconv.ParseInt(strings.TrimSpace(c.stdout.String()), 10, 64)
		if err != nil {
			b.Fatalf("loop child output %q: %v", c.stdout.String(), err)
		}
		return time.Duration(ns)
	}
	var plain, filtered time.Duration
	runs := 0
	for b.Loop() {
		plain += measure(nil)
		filtered += measure(prog)
		runs++
	}
	perIter := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(runs*loops) }
	b.ReportMetric(perIter(plain), "ns/iter-unfiltered")
	b.ReportMetric(perIter(filtered), "ns/iter-filtered")
	b.ReportMetric(float64(filtered)/float64(plain), "filtered/unfiltered")
}
