// Package testenv holds what the tests of several brig packages share: the
// time scale of slow runs and the skip of tests that need root.
package testenv

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// TimeScale is how many times slower than natively this test binary runs:
// BRIG_TIME_SCALE, a positive float, set by `make race` (the race-built
// supervisor is several times slower) and by the cgroup-v2 VM runner
// (software emulation is far slower for fork/exec-heavy work); 1 otherwise.
func TimeScale() float64 {
	if f, err := strconv.ParseFloat(os.Getenv("BRIG_TIME_SCALE"), 64); err == nil && f > 0 {
		return f
	}
	return 1
}

// Scaled stretches a time bound written for native speed by TimeScale.
func Scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) * TimeScale())
}

// RequireRoot skips a test that builds jails or cgroups for real, which
// needs root (a private host uid range, cgroup directories).
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the test builds jails or cgroups for real")
	}
}

// AsNobody is the command prefix that runs a program as nobody (setpriv,
// with no supplementary groups), for the tests of brig unprivileged. It
// skips the test without root or setpriv (util-linux).
func AsNobody(t testing.TB) []string {
	t.Helper()
	RequireRoot(t)
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("needs setpriv (util-linux) to run as nobody")
	}
	return []string{setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"}
}
