package jail

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/internal/hostile"
	"github.com/brig-sandbox/brig/internal/supervisor"
)

// Support of the tests that check the host around a jail and run the CLI:
// the fault and crash tests here, and, through export_test.go, the corpus
// and soak tests of package jail_test.

// hostileIDs are the host ids of jails: this test process's range (see
// TestMain) and the CLI's, which is brig's real default.
func hostileIDs() hostile.JailIDs {
	return hostile.JailIDs{First: testHostIDs().First, Count: testHostIDs().Count,
		More: []hostile.JailIDs{{First: 1_500_000_000, Count: 65536}}}
}

var (
	brigOnce sync.Once
	brigBin  string
	brigErr  error
)

// buildBrig builds the CLI once per test binary into a directory nobody
// may list (0711), so the unprivileged runs can execute it.
func buildBrig(t *testing.T) string {
	t.Helper()
	brigOnce.Do(func() {
		dir, err := hostile.Corpus()
		if err != nil {
			brigErr = err
			return
		}
		root := filepath.Dir(filepath.Dir(dir))
		bin, err := os.MkdirTemp("", "brig-cli-")
		if err != nil {
			brigErr = err
			return
		}
		_ = os.Chmod(bin, 0o711)
		brigBin = filepath.Join(bin, "brig")
		brigErr = hostile.BuildCLI(root, brigBin)
	})
	if brigErr != nil {
		t.Fatalf("build the CLI: %v", brigErr)
	}
	return brigBin
}

// testHostIDs is the host id range of this test process's jails (TestMain).
func testHostIDs() IDRange { return DefaultSupervisor.HostIDs() }

// mustPlan is cfg lowered for DefaultSupervisor's runtime.
func mustPlan(t *testing.T, cfg Config) *supervisor.Plan {
	t.Helper()
	p, err := DefaultSupervisor.plan(cfg)
	require.NoError(t, err)
	return &p
}

// buildTemplateNow builds the root template of cfg's jails of s now.
func buildTemplateNow(s *Supervisor, cfg Config) error {
	p, err := s.plan(cfg)
	if err != nil {
		return err
	}
	return s.rt.BuildTemplateNow(p)
}

// initID and jailID are the host ids of a started jail's init and user.
func initID(c *Cmd) uint32 { id, _ := c.inst.HostIDs(); return id }
func jailID(c *Cmd) uint32 { _, id := c.inst.HostIDs(); return id }
