package testenv

import (
	"syscall"
	"testing"
	"time"
)

// CPU is the processor time, user and system, of this process and of the
// children it has waited for, split so a benchmark can tell the side it
// runs in process (servers, a proxy) from a program it starts.
type CPU struct {
	Self, Children time.Duration
}

// ReadCPU reads the process's CPU time so far.
func ReadCPU(t testing.TB) CPU {
	t.Helper()
	var self, children syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &self); err != nil {
		t.Fatalf("getrusage: %v", err)
	}
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children); err != nil {
		t.Fatalf("getrusage: %v", err)
	}
	sum := func(r *syscall.Rusage) time.Duration {
		return time.Duration(r.Utime.Nano() + r.Stime.Nano())
	}
	return CPU{Self: sum(&self), Children: sum(&children)}
}

// ReportCPUPerMB reports the CPU time spent since start per MB (1e6 bytes)
// moved, b.N times bytesPerOp: on a machine with fewer cores than busy
// parties a transfer is CPU-bound, and its CPU per byte is the number that
// carries over to a quiet machine where a shared machine's MB/s does not.
// Children's time is reported apart (child-cpu-ms/MB) when there is any.
func ReportCPUPerMB(b *testing.B, start CPU, bytesPerOp int64) {
	now := ReadCPU(b)
	mb := float64(bytesPerOp) * float64(b.N) / 1e6
	if mb == 0 {
		return
	}
	b.ReportMetric(float64((now.Self-start.Self).Microseconds())/1000/mb, "cpu-ms/MB")
	if d := now.Children - start.Children; d > 0 {
		b.ReportMetric(float64(d.Microseconds())/1000/mb, "child-cpu-ms/MB")
	}
}
