package session

// The benchmark of a cell in a warm session, beside jail's of start-up
// (jail/bench_test.go): it measures and asserts nothing about time.
//
//	go test -run '^$' -bench WarmPython -benchtime 200x ./session/

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/brig-sandbox/brig/internal/testenv"
	"github.com/brig-sandbox/brig/jail"
)

// BenchmarkWarmPython measures print(1) on a fresh jail whose Python is
// already started and waiting for code (session.NewPython). Sessions are
// started ahead (untimed) and run "pass" to be sure Python is up (the
// session returns once the interpreter is exec'd, before it has imported
// anything); each then runs one timed cell and is closed.
func BenchmarkWarmPython(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	const ahead = 2
	ctx := context.Background()
	ready := make(chan *Python, ahead)
	start := func() {
		s, err := NewPythonWith(ctx, testSup, jail.Config{})
		if err != nil {
			b.Error(err)
			close(ready)
			return
		}
		if res := s.Run(ctx, "pass", RunOptions{}); res.Status != CellOK {
			b.Errorf("warm-up cell: %+v", res)
		}
		ready <- s
	}
	for range ahead {
		go start()
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		s, ok := <-ready
		if !ok {
			b.FailNow()
		}
		// Let the replacement of the previous one finish first: the cell
		// should not compete with a starting jail for the 2 CPUs.
		for len(ready) < ahead-1 {
			time.Sleep(100 * time.Microsecond)
		}
		b.StartTimer()
		t0 := time.Now()
		res := s.Run(ctx, "print(1)", RunOptions{})
		lat = append(lat, time.Since(t0))
		b.StopTimer()
		if res.Status != CellOK || res.Stdout != "1\n" {
			b.Fatalf("cell: %+v", res)
		}
		s.Close()
		go start()
	}
	testenv.ReportMedian(b, lat)
	for range ahead {
		if s, ok := <-ready; ok {
			s.Close()
		}
	}
}

// BenchmarkNewSession measures what a new Python session costs until its
// first cell has run: taken from a Pool ("pool": a hand-over, the pool
// refilling in the background between iterations, untimed) and started
// cold ("cold": a jail's set-up and Python's start). The ratio of the two
// is what a pool buys; the numbers themselves mean little on a loaded
// host.
//
//	go test -run '^$' -bench NewSession -benchtime 100x ./session/
func BenchmarkNewSession(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	ctx := context.Background()
	first := func(b *testing.B, s Session) {
		res := s.Run(ctx, "print(1)", RunOptions{})
		if res.Status != CellOK || res.Stdout != "1\n" {
			b.Fatalf("cell: %+v", res)
		}
	}
	b.Run("pool", func(b *testing.B) {
		p, err := NewPoolWith(ctx, testSup, LanguagePython, jail.Config{}, 1)
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for range b.N {
			b.StopTimer()
			for p.Stats().Ready < 1 {
				time.Sleep(100 * time.Microsecond)
			}
			b.StartTimer()
			t0 := time.Now()
			s, err := p.Take()
			if err != nil {
				b.Fatal(err)
			}
			first(b, s)
			lat = append(lat, time.Since(t0))
			b.StopTimer()
			s.Close()
		}
		testenv.ReportMedian(b, lat)
	})
	b.Run("cold", func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N)
		for range b.N {
			t0 := time.Now()
			s, err := NewPythonWith(ctx, testSup, jail.Config{})
			if err != nil {
				b.Fatal(err)
			}
			first(b, s)
			lat = append(lat, time.Since(t0))
			b.StopTimer()
			s.Close()
			b.StartTimer()
		}
		testenv.ReportMedian(b, lat)
	})
}
