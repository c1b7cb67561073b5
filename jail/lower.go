package jail

import (
	"errors"
	"syscall"

	"github.com/brig-sandbox/brig/cgroup"
	"github.com/brig-sandbox/brig/internal/supervisor"
	"github.com/brig-sandbox/brig/seccomp"
)

// Between the public API and the runtime (internal/supervisor): a Config
// is checked and lowered to the runtime's Plan here, and what the runtime
// reports is lifted to the public types here, so that neither side keeps a
// second copy of the other's types.

// plan is cfg checked, with its defaults and the supervisor's host ids.
func (s *Supervisor) plan(cfg Config) (supervisor.Plan, error) {
	full, err := cfg.withDefaults()
	if err != nil {
		return supervisor.Plan{}, err
	}
	ids := full.HostIDs
	if ids.Count == 0 {
		ids = s.HostIDs()
	}
	binds := make([]supervisor.Bind, len(full.Binds))
	for i, b := range full.Binds {
		binds[i] = supervisor.Bind(b)
	}
	return supervisor.Plan{
		Timeout: full.Timeout, OutputLimit: full.OutputLimit, TmpfsSize: full.TmpfsSize, Tmpfs: full.Tmpfs,
		Hostname: full.Hostname, WorkDir: full.WorkDir, Binds: binds, Network: full.Network, Egress: full.Egress,
		Limits: full.Limits, Pausable: full.Pausable, Cgroups: cgroup.Options{Kind: full.Limiter, Require: full.RequireCgroups, Parent: full.CgroupParent},
		Seccomp: full.Seccomp, SeccompVariant: full.SeccompMode.variant(), SeccompOff: full.SeccompMode == SeccompOff,
		HostIDs: supervisor.IDRange(ids),
	}, nil
}

// variant is the seccomp package's name of a filtering mode.
func (m SeccompMode) variant() seccomp.DefaultVariant {
	switch m {
	case SeccompKill:
		return seccomp.DefaultKill
	case SeccompLog:
		return seccomp.DefaultLog
	}
	return seccomp.DefaultEnforce
}

// resultOf is the Result of a jail of cfg that ended with o, and its
// reason.
func resultOf(o *supervisor.Outcome, cfg Config) *Result {
	r := &Result{Reason: ReasonExited, ExitCode: o.ExitCode, Signal: o.Signal, WallTime: o.WallTime, CPUTime: o.CPUTime,
		PeakMemory: o.PeakMemory, Limiter: o.Limiter, StdoutTruncated: o.StdoutCut, StderrTruncated: o.StderrCut,
		OOMKills: o.OOMKills, PidsLimitHits: o.PidsLimitHits, EgressRefused: o.EgressRefused}
	if cfg.SeccompMode == SeccompLog {
		r.SeccompLogged = o.Refused
	} else if len(o.Refused) > 0 {
		r.SeccompSyscall = o.Refused[len(o.Refused)-1]
	}
	// The reason is about the program itself: a limit that killed one of
	// its processes while the program went on to exit shows in the
	// counters (OOMKills, SeccompSyscall), not in the reason.
	switch {
	case o.Stopped != "":
		r.Reason = Reason(o.Stopped)
	case r.OOMKills > 0 && r.Signal == int(syscall.SIGKILL):
		r.Reason = ReasonOOM
	case r.Signal == int(syscall.SIGSYS):
		r.Reason = ReasonSeccomp
	case r.Signal == int(syscall.SIGXCPU) || (r.Signal == int(syscall.SIGKILL) && o.Limiter == cgroup.RlimitOnly && cfg.Limits.CPUTime > 0 && r.CPUTime >= cfg.Limits.CPUTime):
		r.Reason = ReasonCPUTime
	case r.Signal != 0:
		r.Reason = ReasonSignaled
	}
	return r
}

// publicError is err as the public API reports it: the runtime's
// StepError as a *SetupError with the same step and cause, and a
// symlink refused in a bind source shown to errors.As as a *SymlinkError.
func publicError(err error) error {
	var step *supervisor.StepError
	if !errors.As(err, &step) {
		return err
	}
	cause := step.Err
	var sym *supervisor.SymlinkError
	if errors.As(cause, &sym) {
		cause = &symlinkCause{err: cause, sym: (*SymlinkError)(sym)}
	}
	return &SetupError{Step: step.Step, Err: cause}
}

// symlinkCause keeps a runtime error's text and chain, with the
// *SymlinkError it holds as jail's type.
type symlinkCause struct {
	err error
	sym *SymlinkError
}

func (e *symlinkCause) Error() string   { return e.err.Error() }
func (e *symlinkCause) Unwrap() []error { return []error{e.sym, e.err} }

// The public constants that stage.h spells too stay literals, so that go
// doc shows their values: this does not compile unless they are stage.h's
// (a duplicate key false).
func _() {
	_ = map[bool]int{false: 0, MaxExtraFiles == supervisor.MaxExtraFiles: 1}
	_ = map[bool]int{false: 0, JailUID == supervisor.JailUID: 1}
	_ = map[bool]int{false: 0, JailGID == supervisor.JailGID: 1}
	_ = map[bool]int{false: 0, DefaultPath == supervisor.DefaultPath: 1}
	_ = map[bool]int{false: 0, EgressPort == supervisor.EgressPort: 1}
	_ = map[bool]int{false: 0, string(ReasonTimeout) == string(supervisor.StopTimeout) &&
		string(ReasonOutputLimit) == string(supervisor.StopOutputLimit) && string(ReasonCanceled) == string(supervisor.StopCanceled) &&
		string(ReasonCPUTime) == string(supervisor.StopCPUTime) && string(ReasonSignaled) == string(supervisor.StopKilled): 1}
}
