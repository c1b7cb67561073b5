package jail

import "github.com/brig-sandbox/brig/internal/supervisor"

// Package session reaches a started Cmd's runtime through
// supervisor.RunningOf: its file API needs init's pid, the work directory
// and the jail user's host id, which are no part of jail's API.
func init() {
	supervisor.RunningOf = func(cmd any) supervisor.Running {
		if c, ok := cmd.(*Cmd); ok && c.inst != nil {
			return c.inst
		}
		return nil
	}
}
