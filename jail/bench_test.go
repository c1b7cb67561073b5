package jail

// Benchmarks of jail start-up, for the README's Performance section and
// bench/compare.sh. They measure; they assert nothing about time. Each
// reports its median as p50-ms next to Go's mean ns/op (the machine is
// shared and noisy: medians are the numbers to quote).
//
//	go test -run '^$' -bench . -benchtime 200x ./jail/

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/brig-sandbox/brig/internal/testenv"
)

// timed runs f b.N times and reports the median.
func timed(b *testing.B, f func() error) []time.Duration {
	b.Helper()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if err := f(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	testenv.ReportMedian(b, lat)
	return lat
}

func benchRoot(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
}

func BenchmarkBareTrue(b *testing.B) {
	timed(b, func() error { return exec.Command("/bin/true").Run() })
}

// bwrapTrue is bench/compare.sh's bubblewrap jail: every namespace,
// read-only /usr, /proc, /dev and a /tmp; no limits and no seccomp.
var bwrapTrue = []string{"--unshare-all", "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin",
	"--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64", "--proc", "/proc", "--dev", "/dev",
	"--tmpfs", "/tmp", "--", "/bin/true"}

func bwrapPath(b *testing.B) string {
	p, err := exec.LookPath("bwrap")
	if err != nil {
		b.Skip("bubblewrap is not installed (apt-get install bubblewrap; bench/compare.sh does)")
	}
	return p
}

// BenchmarkBwrapTrue runs bubblewrap's jail through os/exec, as
// BenchmarkBareTrue runs /bin/true: a ratio to BenchmarkColdTrue taken in
// the same round is not skewed by the machine's drift between runs.
func BenchmarkBwrapTrue(b *testing.B) {
	bwrap := bwrapPath(b)
	timed(b, func() error { return exec.Command(bwrap, bwrapTrue...).Run() })
}

// BenchmarkBwrapTrueParallel8 is BenchmarkColdTrueParallel8 with bubblewrap.
func BenchmarkBwrapTrueParallel8(b *testing.B) {
	bwrap := bwrapPath(b)
	parallel8(b, func() error { return exec.Command(bwrap, bwrapTrue...).Run() })
}

func BenchmarkColdTrue(b *testing.B) {
	benchRoot(b)
	timed(b, func() error { return Command(context.Background(), Config{}, "/bin/true").Run() })
}

// BenchmarkWarmTrue measures request-to-exit on a pool of 2: before each
// request (untimed) it waits until the pool is full again, so the run does
// not compete with the background refill for the 2 CPUs.
func BenchmarkWarmTrue(b *testing.B) {
	benchWarm(b, "/bin/true")
}

func benchWarm(b *testing.B, name string, args ...string) {
	benchRoot(b)
	const size = 2
	p, err := NewPool(context.Background(), Config{}, size)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		for p.Stats().Ready < size {
			time.Sleep(100 * time.Microsecond)
		}
		b.StartTimer()
		t0 := time.Now()
		if err := p.Command(context.Background(), name, args...).Run(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	testenv.ReportMedian(b, lat)
	st := p.Stats()
	b.ReportMetric(float64(st.Misses), "misses")
	b.ReportMetric(float64(st.RefillTime.Microseconds())/1000, "refill-ms")
}

func BenchmarkBarePython(b *testing.B) {
	if _, err := os.Stat(python); err != nil {
		b.Skip(err)
	}
	timed(b, func() error { return exec.Command(python, "-c", "print(1)").Run() })
}

func BenchmarkColdPython(b *testing.B) {
	benchRoot(b)
	timed(b, func() error { return Command(context.Background(), Config{}, python, "-c", "print(1)").Run() })
}

// BenchmarkWarmPooledPython: a pooled jail, Python started on request.
func BenchmarkWarmPooledPython(b *testing.B) {
	benchWarm(b, python, "-c", "print(1)")
}

// BenchmarkColdTrueParallel8 runs cold /bin/true jails 8 at a time from one
// supervisor and reports jails per second (compare with bwrap's in
// bench/compare.sh, which starts a process per jail).
func BenchmarkColdTrueParallel8(b *testing.B) {
	benchRoot(b)
	parallel8(b, func() error { return Command(context.Background(), Config{}, "/bin/true").Run() })
}

// parallel8 runs f b.N times, 8 at a time, and reports runs per second.
func parallel8(b *testing.B, f func() error) {
	b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0)))
	t0 := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := f(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "jails/s")
}

// BenchmarkSpawnLargeParent: a cold /bin/true jail from a supervisor whose
// RSS is 4 GiB, against the same from the small test process. ratio is
// p50(large)/p50(small).
func BenchmarkSpawnLargeParent(b *testing.B) {
	benchRoot(b)
	run := func() error { return Command(context.Background(), Config{}, "/bin/true").Run() }
	// The small parent's latency is measured before and after the large
	// one's, 60 runs each, so that the ratio does not follow this VM's
	// drift over the seconds the 4 GiB take to fill.
	var small []time.Duration
	runSmall := func() {
		for range 60 {
			t0 := time.Now()
			if err := run(); err != nil {
				b.Fatal(err)
			}
			small = append(small, time.Since(t0))
		}
	}
	runSmall()
	smallRSS := selfRSS()
	big := make([]byte, 4<<30)
	for i := 0; i < len(big); i += os.Getpagesize() {
		big[i] = 1
	}
	bigRSS := selfRSS()
	lat := timed(b, run)
	runtime.KeepAlive(big)
	big = nil
	debug.FreeOSMemory()
	runSmall()
	b.ReportMetric(float64(testenv.Median(small).Microseconds())/1000, "small-p50-ms")
	b.ReportMetric(float64(testenv.Median(lat))/float64(testenv.Median(small)), "ratio")
	b.ReportMetric(float64(smallRSS>>20), "small-rss-MiB")
	b.ReportMetric(float64(bigRSS>>20), "large-rss-MiB")
}
