package supervisor

import (
	"fmt"
	"time"

	"github.com/brig-sandbox/brig/cgroup"
	"github.com/brig-sandbox/brig/egress"
	"github.com/brig-sandbox/brig/internal/stage"
	"github.com/brig-sandbox/brig/seccomp"
)

// Plan is one jail as the runtime builds it: package jail's Config
// checked, with every default applied and the host id range chosen
// (jail's lowering, jail/lower.go). The runtime trusts it as it is; what a
// field means is jail.Config's documentation.
type Plan struct {
	Timeout     time.Duration // negative: none
	OutputLimit int64         // per stream; negative: none
	TmpfsSize   int64
	Tmpfs       []string // clean, absolute, without /tmp
	Hostname    string
	WorkDir     string
	Binds       []Bind // targets set and clean
	Network     string
	// Egress is the policy of the jail's egress proxy (Network "proxy"),
	// a copy of the caller's; nil for every other network.
	Egress *egress.Policy

	Limits cgroup.Limits
	// Cgroups holds the limiter kind asked for, whether cgroups are
	// required and their parent; the runtime sets the rest per jail.
	Cgroups cgroup.Options
	// Pausable keeps the v1 freezer hierarchy, for Instance.Freeze.
	Pausable bool

	// Seccomp is the policy, nil for seccomp.Default(); SeccompVariant what
	// a refused call does; SeccompOff runs without a filter.
	Seccomp        *seccomp.Policy
	SeccompVariant seccomp.DefaultVariant
	SeccompOff     bool

	HostIDs IDRange
}

// Bind is a jail.Bind, which converts to it (the same fields).
type Bind struct {
	Source, Target                  string
	Writable, FollowSymlinks, IDMap bool
	OwnerUID, OwnerGID              uint32
}

// IDRange is a jail.IDRange, which converts to it.
type IDRange struct{ First, Count uint32 }

// TTY is a jail.TTY, which converts to it.
type TTY struct{ Rows, Cols uint16 }

// The values of jail's public constants the runtime uses, stage.h's.
const (
	MaxExtraFiles = stage.MaxExtra
	JailUID       = stage.JailUID
	JailGID       = stage.JailGID
	DefaultPath   = stage.DefaultPath
)

// StepError is a failure to build a jail, before the program ran: what
// package jail returns as a *jail.SetupError, with the same Step and Err.
type StepError struct {
	Step string
	Err  error
}

func (e *StepError) Error() string { return fmt.Sprintf("%s: %v", e.Step, e.Err) }

func (e *StepError) Unwrap() error { return e.Err }

// StopReason is why brig stopped a jail itself; its values are jail's
// Reason values.
type StopReason string

const (
	StopTimeout     StopReason = "timeout"
	StopOutputLimit StopReason = "output_limit"
	StopCanceled    StopReason = "canceled"
	StopCPUTime     StopReason = "cpu_time"
	StopKilled      StopReason = "signaled" // Kill
)

// Outcome is what a jail reports once it has ended, for package jail's
// Result and its reason.
type Outcome struct {
	Stopped          StopReason // "" unless brig stopped the jail
	ExitCode, Signal int        // -1 and SIGKILL when init died before the program
	WallTime         time.Duration
	CPUTime          time.Duration
	PeakMemory       int64
	Limiter          cgroup.Kind
	StdoutCut        bool
	StderrCut        bool
	OOMKills         int64
	PidsLimitHits    int64
	// Refused lists the refused system calls the kernel logged (under
	// SeccompKill and SeccompLog, and for a program killed by SIGSYS).
	Refused []string
	// EgressRefused lists what the jail's egress proxy refused.
	EgressRefused []egress.Refusal
}
