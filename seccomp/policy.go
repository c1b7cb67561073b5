package seccomp

import (
	"encoding/json"
	"fmt"
	"slices"
)

// Action is what the filter does when a rule (or the default) matches.
type Action string

const (
	// ActAllow lets the system call run.
	ActAllow Action = "allow"
	// ActErrno fails the system call with the rule's errno, without running it.
	ActErrno Action = "errno"
	// ActKill kills the whole process with SIGSYS (SECCOMP_RET_KILL_PROCESS).
	// We never use SECCOMP_RET_KILL_THREAD: killing one thread of an
	// interpreter leaves the rest of it running in an undefined state.
	ActKill Action = "kill"
	// ActLog lets the system call run and writes an audit record (type=1326).
	ActLog Action = "log"
	// ActTrap sends SIGSYS to the thread, which may catch it.
	ActTrap Action = "trap"
)

func (a Action) valid() bool {
	switch a {
	case ActAllow, ActErrno, ActKill, ActLog, ActTrap:
		return true
	}
	return false
}

// refusal reports whether the action stops the system call from running.
func (a Action) refusal() bool {
	return a == ActErrno || a == ActKill || a == ActTrap
}

// Op compares one system call argument with a value.
type Op string

const (
	OpEqual        Op = "eq"
	OpNotEqual     Op = "ne"
	OpLess         Op = "lt"
	OpLessEqual    Op = "le"
	OpGreater      Op = "gt"
	OpGreaterEqual Op = "ge"
	// OpMaskedEqual matches when (arg & Mask) == Value.
	OpMaskedEqual Op = "masked_eq"
)

func (o Op) valid() bool {
	switch o {
	case OpEqual, OpNotEqual, OpLess, OpLessEqual, OpGreater, OpGreaterEqual, OpMaskedEqual:
		return true
	}
	return false
}

// Arg is a condition on one system call argument. Comparisons are on the
// full 64-bit register, which matters: the kernel reads an int argument
// (ioctl's cmd, socket's family, personality) from the low 32 bits only, so a
// refusal for such an argument must use OpMaskedEqual with Mask 0xffffffff or
// a caller can slip past it by setting a high bit (CVE-2019-10063).
type Arg struct {
	Index uint   `json:"index"` // 0..5
	Op    Op     `json:"op"`
	Value uint64 `json:"value"`
	Mask  uint64 `json:"mask,omitempty"` // only for OpMaskedEqual
}

// Rule applies Action to the named system calls when all Args match.
//
// Rules for the same system call combine as libseccomp combines them: an
// unconditional rule wins over every conditional one for that call, and
// conditional rules are tried in turn, the first whose Args all match
// deciding. Nothing like "ioctl is allowed except cmd X" can therefore be
// written as an unconditional allow plus a conditional refusal; it has to be
// written as allow rules that cover every value except X (see allowExcept in
// default.go).
type Rule struct {
	Names  []string `json:"names"`
	Action Action   `json:"action"`
	Errno  uint     `json:"errno,omitempty"` // for ActErrno; 0 means EPERM
	Args   []Arg    `json:"args,omitempty"`
	// Comment says why the rule exists. It is not compiled, but it is part
	// of the policy's identity (and of the cache key), which is harmless.
	Comment string `json:"comment,omitempty"`
}

// Policy is a seccomp filter description. It only ever filters the native
// architecture: system calls made through any other ABI (i386 `int 0x80`,
// x32) get the default action, so they can never match an allow rule.
type Policy struct {
	DefaultAction Action `json:"defaultAction"`
	DefaultErrno  uint   `json:"defaultErrno,omitempty"` // for ActErrno; 0 means EPERM
	Rules         []Rule `json:"rules"`
}

// Validate reports the first structural problem in the policy. Unknown
// system call names are not a problem here: profiles routinely name calls
// that the running libseccomp or architecture does not have, and Compile
// skips them (they then get the default action).
func (p *Policy) Validate() error {
	if p == nil {
		return fmt.Errorf("nil policy")
	}
	if !p.DefaultAction.valid() {
		return fmt.Errorf("invalid default action %q", p.DefaultAction)
	}
	if p.DefaultErrno > 4095 {
		return fmt.Errorf("default errno %d out of range", p.DefaultErrno)
	}
	for i, r := range p.Rules {
		if len(r.Names) == 0 {
			return fmt.Errorf("rule %d: no system call names", i)
		}
		if !r.Action.valid() {
			return fmt.Errorf("rule %d (%s): invalid action %q", i, r.Names[0], r.Action)
		}
		if r.Errno > 4095 {
			return fmt.Errorf("rule %d (%s): errno %d out of range", i, r.Names[0], r.Errno)
		}
		if len(r.Args) > 6 {
			return fmt.Errorf("rule %d (%s): %d argument conditions, at most 6", i, r.Names[0], len(r.Args))
		}
		seen := map[uint]bool{}
		for _, a := range r.Args {
			if a.Index > 5 {
				return fmt.Errorf("rule %d (%s): argument index %d out of range", i, r.Names[0], a.Index)
			}
			if !a.Op.valid() {
				return fmt.Errorf("rule %d (%s): invalid operator %q", i, r.Names[0], a.Op)
			}
			// libseccomp refuses two checks on one argument in one rule;
			// saying so here gives a clearer error than its EINVAL.
			if seen[a.Index] {
				return fmt.Errorf("rule %d (%s): two conditions on argument %d", i, r.Names[0], a.Index)
			}
			seen[a.Index] = true
		}
	}
	return nil
}

// Clone returns a deep copy, so derived policies never share slices with the
// original (Default() may be modified by its caller).
func (p *Policy) Clone() *Policy {
	q := *p
	q.Rules = make([]Rule, len(p.Rules))
	for i, r := range p.Rules {
		r.Names = slices.Clone(r.Names)
		r.Args = slices.Clone(r.Args)
		q.Rules[i] = r
	}
	return &q
}

// KillOnRefusal returns a copy in which every refusal kills the process
// (SECCOMP_RET_KILL_PROCESS) instead of returning an errno: errno and trap
// rules, and the default action when it refuses.
//
// Rules answering ENOSYS are the one exception. They are not refusals but
// feature probes answered "not implemented" on purpose (clone3, so that libc
// falls back to clone, whose flags the filter can inspect); killing there
// would kill every glibc pthread_create.
func (p *Policy) KillOnRefusal() *Policy {
	q := p.Clone()
	if q.DefaultAction.refusal() {
		q.DefaultAction, q.DefaultErrno = ActKill, 0
	}
	for i := range q.Rules {
		r := &q.Rules[i]
		if r.Action == ActErrno && r.Errno == enosys {
			continue
		}
		if r.Action.refusal() {
			r.Action, r.Errno = ActKill, 0
		}
	}
	return q
}

// LogOnly returns a copy in which every refusal is allowed but logged
// (SECCOMP_RET_LOG), to find out what a workload needs before enforcing a
// profile on it. It is not a security boundary.
func (p *Policy) LogOnly() *Policy {
	q := p.Clone()
	if q.DefaultAction.refusal() {
		q.DefaultAction, q.DefaultErrno = ActLog, 0
	}
	for i := range q.Rules {
		r := &q.Rules[i]
		if r.Action.refusal() {
			r.Action, r.Errno = ActLog, 0
		}
	}
	return q
}

// canonical is the encoding hashed into the compile cache key. encoding/json
// is deterministic for structs and slices, and Policy holds no maps.
func (p *Policy) canonical() ([]byte, error) {
	return json.Marshal(p)
}
