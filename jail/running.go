package jail

import "github.com/brig-sandbox/brig/internal/supervisor"

// runningCmd shows package session (through supervisor.RunningOf) the
// little of a started Cmd's runtime that its file API needs.
type runningCmd struct{ c *Cmd }

func (r runningCmd) InitPID() int    { return r.c.initPid }
func (r runningCmd) WorkDir() string { return r.c.cfg.WorkDir }

func (r runningCmd) JailHostID() (uint32, bool) {
	return r.c.lease.Jail, r.c.lease.Privileged
}

func init() {
	supervisor.RunningOf = func(cmd any) supervisor.Running {
		c, ok := cmd.(*Cmd)
		if !ok || c.lease == nil {
			return nil
		}
		return runningCmd{c}
	}
}
