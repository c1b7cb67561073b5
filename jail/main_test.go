package jail

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/brig-sandbox/brig/cgroup"
	"github.com/brig-sandbox/brig/internal/testenv"
)

// TestMain leaves the host as it found it: the cgroups of supervisors the
// tests killed on purpose, and the empty parent, are removed at the end.
func TestMain(m *testing.M) {
	// A host id range of this test process's own (testenv.HostIDs), set
	// before any jail, as a program sets its own Supervisor's options.
	first, count := testenv.HostIDs()
	DefaultSupervisor.opts.HostIDs = IDRange{First: first, Count: count}
	// The spawner is the supervisor's (an fd and a goroutine here) and
	// starts with its second jail: start it now, so that the tests' fd and
	// goroutine counts do not see it appear in the middle.
	if os.Geteuid() == 0 {
		DefaultSupervisor.rt.WarmSpawner()
		for i := 0; i < 300 && spawnerPid() == 0; i++ {
			time.Sleep(10 * time.Millisecond)
		}
		// Likewise the default configuration's root template (an fd), which
		// the jails' second start would build in the background.
		_ = buildTemplateNow(DefaultSupervisor, Config{})
	}
	code := m.Run()
	if brigBin != "" {
		os.RemoveAll(filepath.Dir(brigBin)) // the CLI the hostile and fault tests built
	}
	_ = DefaultSupervisor.Close()
	if os.Geteuid() == 0 && os.Getenv("BRIG_TEST_SUPERVISOR") == "" && os.Getenv("BRIG_TEST_UNPRIVILEGED") == "" {
		if _, err := cgroup.RemoveStale(cgroup.Options{}); err != nil {
			fmt.Fprintln(os.Stderr, "remove stale cgroups:", err)
		}
		_ = cgroup.RemoveParent(cgroup.Options{})
	}
	os.Exit(code)
}
