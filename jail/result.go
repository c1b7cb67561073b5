package jail

import (
	"fmt"
	"time"

	"github.com/brig-sandbox/brig/cgroup"
	"github.com/brig-sandbox/brig/egress"
)

// Reason says why a run ended.
type Reason string

const (
	ReasonExited      Reason = "exited"       // the program exited by itself
	ReasonSignaled    Reason = "signaled"     // the program died of a signal brig did not send for a limit (Cmd.Kill included)
	ReasonTimeout     Reason = "timeout"      // the wall-clock limit ran out
	ReasonOutputLimit Reason = "output_limit" // stdout or stderr passed its cap
	ReasonCanceled    Reason = "canceled"     // the caller's context was cancelled
	ReasonOOM         Reason = "oom"          // the kernel's OOM killer killed the program (Result.OOMKills counts every kill in the jail)
	ReasonCPUTime     Reason = "cpu_time"     // the CPU-time budget ran out
	ReasonSeccomp     Reason = "seccomp"      // a refused system call killed the program
)

// The Reason is about the program itself. When a limit killed another of
// the jail's processes and the program went on to exit, the Reason is
// exited (or signaled) and the counters say what happened: OOMKills,
// PidsLimitHits, and SeccompSyscall (under SeccompKill).

// Result is what a finished run reports. It carries no wire format of its
// own: brig's CLI writes it as JSON in shapes of its own (cmd/brig).
type Result struct {
	ExitCode   int // -1 when the program died of a signal
	Signal     int // the signal that ended the program, or 0
	Reason     Reason
	WallTime   time.Duration
	CPUTime    time.Duration
	PeakMemory int64 // bytes

	StdoutTruncated bool
	StderrTruncated bool
	// Limiter is the kind of limiter that bounded the run.
	Limiter cgroup.Kind
	// OOMKills counts the jail's processes the OOM killer killed (cgroup
	// limiters only; 0 under rlimits, which never OOM-kill).
	OOMKills int64
	// PidsLimitHits counts the forks the pids limit refused (cgroup
	// limiters only).
	PidsLimitHits int64
	// SeccompSyscall names the refused system call that killed the program,
	// or under SeccompKill one of its processes, when the kernel reported
	// it.
	SeccompSyscall string
	// SeccompLogged lists the system calls the policy would have refused,
	// under SeccompLog.
	SeccompLogged []string
	// EgressRefused lists the destinations the egress proxy refused
	// (Network "proxy"), each with the reason and how often, so that a
	// tool can tell why a download failed.
	EgressRefused []egress.Refusal
}

// Success reports whether the program exited with status 0 on its own.
func (r *Result) Success() bool { return r.Reason == ReasonExited && r.ExitCode == 0 }

// ExitError is returned by Wait and Run when the program did not exit with
// status 0 by itself; the Result says why.
type ExitError struct{ Result *Result }

func (e *ExitError) Error() string {
	r := e.Result
	switch r.Reason {
	case ReasonExited:
		return fmt.Sprintf("jail: exit status %d", r.ExitCode)
	case ReasonSignaled:
		return fmt.Sprintf("jail: killed by signal %d", r.Signal)
	case ReasonSeccomp:
		if r.SeccompSyscall != "" {
			return fmt.Sprintf("jail: killed by seccomp (system call %s)", r.SeccompSyscall)
		}
		return "jail: killed by seccomp"
	default:
		return "jail: stopped: " + string(r.Reason)
	}
}

// SetupError is a failure to build the jail, before the program ran. Step
// names what brig was doing ("mount /proc", "create cgroup"); Err is the
// cause, which errors.Is and errors.As see through: cgroup.ErrUnavailable
// when the limiter asked for cannot be had, the syscall.Errno the jail's
// set-up failed with (syscall.ENOENT for a program that is not there,
// syscall.EACCES for one that is not executable).
type SetupError struct {
	Step string
	Err  error
}

func (e *SetupError) Error() string { return fmt.Sprintf("jail setup: %s: %v", e.Step, e.Err) }

func (e *SetupError) Unwrap() error { return e.Err }
