package hostile

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SoakOptions shape a soak: many mixed one-shot runs, several at once.
type SoakOptions struct {
	Runs, Parallel int
	Limiter        string
	IDs            JailIDs
	Seed           uint64
}

// metrics are the supervisor's own resources.
type metrics struct {
	FDs, Goroutines int
	RSS, Heap       int64 // bytes
}

// measure reads this process's metrics after a garbage collection.
func measure() metrics {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := metrics{Goroutines: runtime.NumGoroutine(), Heap: int64(ms.HeapInuse)}
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		m.FDs = len(ents)
	}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				m.RSS = kb << 10
			}
		}
	}
	return m
}

// SoakReport is what a soak found.
type SoakReport struct {
	Runs, OK      int
	Failures      []string
	Leaks         []string
	Before, After metrics // after the warm-up, and at the end
	Wall          time.Duration
	Mix           map[string]int
}

// Flat reports how the supervisor's metrics grew beyond what a long-lived
// supervisor may: no fd, at most a few goroutines and a few MiB.
func (r *SoakReport) Flat() []string {
	var bad []string
	if r.After.FDs > r.Before.FDs {
		bad = append(bad, fmt.Sprintf("fds grew %d -> %d", r.Before.FDs, r.After.FDs))
	}
	if r.After.Goroutines > r.Before.Goroutines+2 {
		bad = append(bad, fmt.Sprintf("goroutines grew %d -> %d", r.Before.Goroutines, r.After.Goroutines))
	}
	if r.After.RSS > r.Before.RSS+32<<20 {
		bad = append(bad, fmt.Sprintf("RSS grew %.1f -> %.1f MiB", mib(r.Before.RSS), mib(r.After.RSS)))
	}
	if r.After.Heap > r.Before.Heap+16<<20 {
		bad = append(bad, fmt.Sprintf("heap grew %.1f -> %.1f MiB", mib(r.Before.Heap), mib(r.After.Heap)))
	}
	return bad
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// Summary is the one line a soak prints.
func (r *SoakReport) Summary(parallel int) string {
	status := "PASS"
	if len(r.Failures)+len(r.Leaks)+len(r.Flat()) > 0 {
		status = "FAIL"
	}
	return fmt.Sprintf("soak %s: %d runs, %d parallel, %d right verdicts, %d wrong, %d leaks; fds %d->%d, goroutines %d->%d, rss %.1f->%.1f MiB, heap %.1f->%.1f MiB; %v",
		status, r.Runs, parallel, r.OK, len(r.Failures), len(r.Leaks), r.Before.FDs, r.After.FDs, r.Before.Goroutines, r.After.Goroutines,
		mib(r.Before.RSS), mib(r.After.RSS), mib(r.Before.Heap), mib(r.After.Heap), r.Wall.Round(time.Second))
}

// SoakMix picks the payloads a soak uses: every one marked for soaking
// that needs no shared host directory.
func SoakMix(ps []*Payload) []*Payload {
	var out []*Payload
	for _, p := range ps {
		if p.Soak && !p.Config.Outbox {
			out = append(out, p)
		}
	}
	return out
}

// Soak runs opt.Runs payloads from mix, opt.Parallel at a time, checks
// every verdict, and measures the supervisor after a warm-up and at the
// end. Benign payloads (named benign_*) are drawn three times as often.
func Soak(ctx context.Context, rn Runner, mix []*Payload, bait *Bait, opt SoakOptions) *SoakReport {
	rep := &SoakReport{Mix: map[string]int{}}
	var weighted []*Payload
	for _, p := range mix {
		n := 1
		if strings.HasPrefix(p.Name, "benign") {
			n = 3
		}
		for range n {
			weighted = append(weighted, p)
		}
	}
	rng := rand.New(rand.NewPCG(opt.Seed, 7))
	order := make([]*Payload, opt.Runs)
	for i := range order {
		order[i] = weighted[rng.IntN(len(weighted))]
		rep.Mix[order[i].Name]++
	}
	before := Snapshot(opt.IDs)
	warm := min(opt.Runs, 2*opt.Parallel)
	start := time.Now()
	var mu sync.Mutex
	runBatch := func(batch []*Payload) {
		jobs := make(chan *Payload)
		var wg sync.WaitGroup
		for range opt.Parallel {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for p := range jobs {
					o, err := rn.Run(ctx, Run{Payload: p, Limiter: opt.Limiter, Env: bait.env()})
					var fails []string
					if err != nil {
						fails = []string{err.Error()}
					} else {
						fails = append(p.verdict(o, false), bait.leaked(o.Stdout, o.Stderr)...)
					}
					mu.Lock()
					rep.Runs++
					if len(fails) == 0 {
						rep.OK++
					} else {
						got := ""
						if o != nil {
							got = fmt.Sprintf("reason=%s exit=%d signal=%d", o.Reason, o.ExitCode, o.Signal)
						}
						rep.Failures = append(rep.Failures, fmt.Sprintf("%s %s: %s", p.Name, got, strings.Join(fails, "; ")))
					}
					mu.Unlock()
				}
			}()
		}
		for _, p := range batch {
			jobs <- p
		}
		close(jobs)
		wg.Wait()
	}
	runBatch(order[:warm])
	rep.Before = measure()
	runBatch(order[warm:])
	rep.Wall = time.Since(start)
	time.Sleep(200 * time.Millisecond) // let exited goroutines finish
	rep.After = measure()
	rep.Leaks = append(SettleLeaks(before, opt.IDs, 5*time.Second, os.Getpid()), bait.touched()...)
	return rep
}
