package session

import (
	"os"
	"testing"

	"github.com/brig-sandbox/brig/cgroup"
	"github.com/brig-sandbox/brig/internal/testenv"
	"github.com/brig-sandbox/brig/jail"
)

// testSup runs the tests' jails, in this test process's own host id range.
var testSup *jail.Supervisor

// TestMain leaves the host as it found it: the supervisor's spawner,
// templates and idle cgroups end with it.
func TestMain(m *testing.M) {
	first, count := testenv.HostIDs()
	testSup = jail.NewSupervisor(jail.SupervisorOptions{HostIDs: jail.IDRange{First: first, Count: count}})
	code := m.Run()
	_ = testSup.Close()
	if os.Geteuid() == 0 {
		_, _ = cgroup.RemoveStale(cgroup.Options{})
		_ = cgroup.RemoveParent(cgroup.Options{})
	}
	os.Exit(code)
}

func requirePython(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(PythonInterpreter); err != nil {
		t.Skipf("needs %s: %v", PythonInterpreter, err)
	}
}

func countMounts() int { return testenv.CountMounts() }

// assertHostClean checks that no process of this test process's jails is
// left and that the host's mount table is as it was.
func assertHostClean(t *testing.T, mountsBefore int) {
	t.Helper()
	first, count := testenv.HostIDs()
	testenv.AssertHostClean(t, mountsBefore, first, count)
}

func limitsOf(memory, pids int64) (l cgroup.Limits) {
	l.Memory, l.Pids = memory, pids
	return l
}
