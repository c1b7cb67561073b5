package testenv

import (
	"syscall"
	"testing"
	"time"
)

// ProcessCPU is this process's processor time so far, user and system.
func ProcessCPU(t testing.TB) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ReportCPUPerMB reports cpu, the CPU time spent on b.N operations of
// bytesPerOp bytes each, per MB (1e6 bytes) as unit: on a machine with
// fewer cores than busy parties a transfer is CPU-bound, and its CPU per
// byte is the number that carries over to a quiet machine where a shared
// machine's MB/s does not.
func ReportCPUPerMB(b *testing.B, cpu time.Duration, bytesPerOp int64, unit string) {
	if mb := float64(bytesPerOp) * float64(b.N) / 1e6; mb > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/1000/mb, unit)
	}
}
