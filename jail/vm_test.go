package jail

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/cgroup"
	"github.com/brig-sandbox/brig/internal/testenv"
)

// These tests belong to the cgroup-v2 VM (vm/run-test.sh, `make vm-test`),
// which boots a pure cgroup2 kernel and sets BRIG_EXPECT_CGROUP2=1 and
// BRIG_TIME_SCALE (testenv.Scaled) on the guest's kernel command line.

// expectCgroup2 says whether this run must exercise cgroup v2: in the VM a
// v2 test that skipped would hide exactly what the VM is for.
func expectCgroup2() bool { return os.Getenv("BRIG_EXPECT_CGROUP2") == "1" }

// TestPureCgroup2 runs where BRIG_EXPECT_CGROUP2=1 (the VM) and fails, never
// skips, when cgroup v2 is not what the jail uses there. It also proves the
// helper's clone3 CLONE_INTO_CGROUP path: a v2 limiter names no procs file
// to write, so init can only be in the jail's cgroup by being born there.
func TestPureCgroup2(t *testing.T) {
	if !expectCgroup2() {
		t.Skip("BRIG_EXPECT_CGROUP2 is not 1: only the cgroup-v2 VM runs this")
	}
	if os.Geteuid() != 0 {
		t.Fatal("the VM runs its tests as root; euid is", os.Geteuid())
	}
	r := cgroup.Detect(cgroup.Options{})
	require.True(t, r.Cgroup2.Usable, "cgroup2 must be usable here: %s\n%s", r.Cgroup2.Problem, r)
	assert.Equal(t, "v2", r.Mode, "%s", r)
	assert.Equal(t, cgroup.Cgroup2, r.Pick, "%s", r)
	require.Contains(t, limiters(t), cgroup.Cgroup2, "the limit tests would not run their cgroup2 subtests")

	cfg := Config{Limiter: cgroup.Cgroup2, RequireCgroups: true, Timeout: testenv.Scaled(30 * time.Second)}
	cfg.Limits.Memory = 96 << 20
	cfg.Limits.Pids = 24
	cmd := Command(context.Background(), cfg, "/bin/sleep", "60")
	require.NoError(t, cmd.Start())
	defer cmd.Kill()
	require.NotZero(t, cmd.inst.InitPID())
	dir := cmd.inst.Limiter().Dir()
	require.NotEmpty(t, dir)
	assert.Empty(t, cmd.inst.Limiter().ProcsFiles(), "v2 places init with CLONE_INTO_CGROUP, not by a write")

	b, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.inst.InitPID()) + "/cgroup")
	require.NoError(t, err)
	rel := strings.TrimPrefix(dir, r.Cgroup2.Mount)
	assert.Equal(t, "0::"+rel+"\n", string(b), "init must sit in the jail's own cgroup %s", dir)
	procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	require.NoError(t, err)
	pids := strings.Fields(string(procs))
	assert.Contains(t, pids, strconv.Itoa(cmd.inst.InitPID()))
	assert.Len(t, pids, 2, "init and the program, nothing else: %v", pids)
	for file, want := range map[string]string{"memory.max": strconv.Itoa(96 << 20), "pids.max": "24"} {
		got, err := os.ReadFile(filepath.Join(dir, file))
		require.NoError(t, err)
		assert.Equal(t, want, strings.TrimSpace(string(got)), file)
	}

	cmd.Kill()
	require.Error(t, cmd.Wait())
	assert.Equal(t, ReasonSignaled, cmd.Result.Reason)
	assert.Equal(t, cgroup.Cgroup2, cmd.Result.Limiter)
	_, err = os.Stat(dir)
	assert.True(t, os.IsNotExist(err), "the jail's cgroup must be removed: %v", err)

	// Inside, the cgroup namespace makes the jail's cgroup the root.
	out, _, res, err := run(t, cfg, "/bin/cat", "/proc/self/cgroup")
	require.NoError(t, err)
	assert.Equal(t, "0::/\n", out)
	assert.Equal(t, cgroup.Cgroup2, res.Limiter)
}
