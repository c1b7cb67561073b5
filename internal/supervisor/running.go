package supervisor

// Running is what package session's file API needs of a running jail:
// where its root and working directory are seen from the host, and whose
// host ids act as the jail's user there.
type Running interface {
	// InitPID is the jail's init on the host: its root is
	// /proc/InitPID/root.
	InitPID() int
	// WorkDir is the jail's working directory, a clean absolute path in
	// the jail.
	WorkDir() string
	// JailHostID is the host uid (and gid) of the jail's user when the
	// supervisor maps one of its own (it runs as root); mapped is false
	// when the supervisor itself is the jail's user.
	JailHostID() (id uint32, mapped bool)
}

// RunningOf returns the running jail behind a started *jail.Cmd (its
// Instance), nil before Start. Package jail sets it when it is initialized: the runtime
// of a Cmd is no part of jail's public API, and package session, which
// builds on that API, needs this much of it.
var RunningOf func(cmd any) Running

// InitPID is the jail's init on the host (Running).
func (c *Instance) InitPID() int { return c.initPid }

// WorkDir is the jail's working directory (Running).
func (c *Instance) WorkDir() string { return c.cfg.WorkDir }

// JailHostID is the host id of the jail's user (Running).
func (c *Instance) JailHostID() (uint32, bool) { return c.lease.Jail, c.lease.Privileged }
