package jail

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/brig-sandbox/brig/cgroup"
)

// TestMain leaves the host as it found it: the cgroups of supervisors the
// tests killed on purpose, and the empty parent, are removed at the end.
func TestMain(m *testing.M) {
	// A host id range of this test process's own, so that the host-clean
	// checks see only its jails when other test runs share the machine.
	// Test binaries it starts again (a supervisor to kill) inherit it.
	base, err := strconv.ParseUint(os.Getenv("BRIG_TEST_ID_BASE"), 10, 32)
	if err != nil {
		base = 1_600_000_000 + uint64(os.Getpid()%32768)*4096
		os.Setenv("BRIG_TEST_ID_BASE", strconv.FormatUint(base, 10))
	}
	// Set before any jail, as a program sets its own Supervisor's options.
	DefaultSupervisor.opts.HostIDs = IDRange{First: uint32(base), Count: 4096}
	// The spawner is the supervisor's (an fd and a goroutine here) and
	// starts with its second jail: start it now, so that the tests' fd and
	// goroutine counts do not see it appear in the middle.
	if os.Geteuid() == 0 {
		DefaultSupervisor.warmSpawner()
		for i := 0; i < 300 && spawnerPid() == 0; i++ {
			time.Sleep(10 * time.Millisecond)
		}
		// Likewise the default configuration's root template (an fd), which
		// the jails' second start would build in the background.
		_ = DefaultSupervisor.buildTemplateNow(Config{})
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
