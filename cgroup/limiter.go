// Package cgroup bounds what one jail may consume: memory, processes and CPU.
//
// One Limiter interface has three implementations, chosen at run time in this
// order: cgroup v2, cgroup v1, and an rlimit fallback for hosts where brig
// cannot write cgroups. The jail asks New for a Limiter, places its first
// process with Dir (v2, CLONE_INTO_CGROUP) or ProcsFiles (v1, before the
// program runs), applies Rlimits in the child, reads Stats afterwards and
// calls Close to kill whatever is left and remove the cgroup (on v1 with
// Options.Reuse, an empty and uncharged one is kept for the next jail of the
// same limits instead: reuse.go).
//
// Placement: every jail gets a cgroup of its own (no two live jails share
// one; with Options.Reuse it may be an ended jail's), named
// brig-<supervisor pid>-<supervisor start time>-<n>, under Options.Parent
// beneath the supervisor's own cgroup in each hierarchy, so limits put on
// the supervisor bound its jails too. On cgroup v2 the supervisor may move
// itself into a leaf "brig.supervisor" first (see v2.go). Detect reports
// what a host supports; RemoveStale cleans up after supervisors that died
// without closing their jails.
package cgroup

import "time"

// Kind names a limiter implementation.
type Kind string

const (
	Auto    Kind = "auto"    // detect: cgroup2, then cgroup1, then rlimit
	Cgroup2 Kind = "cgroup2" // unified hierarchy
	Cgroup1 Kind = "cgroup1" // legacy per-controller hierarchies
	// RlimitOnly is per-process rlimits only, no cgroup. (Named RlimitOnly,
	// not Rlimit, because type Rlimit below already has that name.)
	RlimitOnly Kind = "rlimit"
)

// Limits are the resource bounds of one jail. Zero means "no limit" for that
// resource; the jail package fills in its safe defaults before calling New.
type Limits struct {
	Memory int64   // bytes of memory (and swap: none is allowed)
	Pids   int64   // processes and threads alive at once
	CPUs   float64 // CPU bandwidth, 0.5 = half of one CPU
	// CPUTime is the total CPU budget of all processes of the jail. cgroup
	// limiters do not enforce it themselves: the jail polls Stats. The rlimit
	// limiter maps it to RLIMIT_CPU, which is per process.
	CPUTime time.Duration
}

// Options choose and place the limiter.
type Options struct {
	Kind    Kind   // "" or Auto: detect
	Require bool   // fail with an error instead of falling back to rlimit
	Parent  string // parent cgroup, relative to the supervisor's own cgroup; "" means "brig"

	// The v1 hierarchies a jail in its own PID namespace can do without;
	// each is a directory made, joined and removed per jail (cgroup v2 has
	// both built in, and a hierarchy co-mounted with cpu costs nothing).
	//
	// NoFreezer: the namespace's end kills every process in it, with no
	// race against fork, so Kill need not freeze the jail first (it signals
	// what cgroup.procs lists; Close still loops until the cgroup is empty).
	NoFreezer bool
	// NoCPUAccounting: the jail takes its CPU time from its processes'
	// rusage; Stats reports it unknown. Not with a Limits.CPUTime budget,
	// which the jail enforces by polling Stats.
	NoCPUAccounting bool
	// Reuse lets the v1 cgroups of an ended jail go to the next jail with
	// the same limits instead of being removed and made again (reuse.go):
	// for a supervisor that starts one jail after another. Idle ones are
	// removed after a quarter of a second, or by RemoveIdle.
	Reuse bool
}

// Rlimit is one resource limit the jail's exec stage applies with setrlimit.
type Rlimit struct {
	Resource int // unix.RLIMIT_*
	Cur, Max uint64
}

// Stats is what a limiter measured for the jail. A field the limiter cannot
// measure is zero and its Known flag is false.
type Stats struct {
	MemoryPeak      int64         // bytes
	MemoryPeakKnown bool          //
	CPUTime         time.Duration // user+system of every process of the jail
	CPUTimeKnown    bool          //
	OOMKills        int64         // from the kernel's own counter, never guessed
	PidsLimitHits   int64         // times pids.max refused a fork, where known
}

// Limiter is the cgroup (or rlimit set) of one jail.
type Limiter interface {
	Kind() Kind
	// Dir is the cgroup v2 directory the jail's first process is born into
	// (clone3 CLONE_INTO_CGROUP); "" for other kinds.
	Dir() string
	// ProcsFiles are the cgroup v1 "cgroup.procs" files the jail writes its
	// first process's pid into before that process runs untrusted code; nil
	// for other kinds.
	ProcsFiles() []string
	// SelfMove is, for cgroup v1, the faster way in: each hierarchy's
	// "tasks" file of the jail and, in the same order, of the cgroup the
	// caller sits in now. A single-threaded process that writes "0" into
	// the jail's moves itself without the kernel's global threadgroup lock,
	// whose write side waits for an RCU grace period (7-13 ms measured here
	// for a pid written into cgroup.procs, 0.2 ms for "0" into tasks); it
	// can then fork the jail's first process inside and go home the same
	// way, or hand the jail's files, open, to that first process for it to
	// move itself (v1 checks the credentials of whoever opened the file).
	// nil, nil for other kinds.
	SelfMove() (jail, home []string)
	// Rlimits are this limiter's own rlimits, applied in the jail before the
	// program runs: the rlimit kind returns AS, NPROC, CPU, and NOFILE and
	// FSIZE sized from the memory limit; cgroup kinds return none. The
	// jail adds RLIMIT_CORE, SIGPENDING and MSGQUEUE, and FSIZE and NOFILE
	// where the limiter has none.
	Rlimits() []Rlimit
	// Stats reads the current counters; valid while the cgroup exists.
	Stats() (Stats, error)
	// Kill sends SIGKILL to every process in the cgroup, frozen ones too.
	Kill() error
	// Freeze stops every process of the jail and returns once all are
	// stopped; Thaw resumes them (freeze.go). ErrNoFreezer without a
	// freezer (the rlimit kind; v1 with Options.NoFreezer).
	Freeze() error
	Thaw() error
	// Close kills what is left, waits until the cgroup is empty and removes
	// it. It is idempotent.
	Close() error
}
