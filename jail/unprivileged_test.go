package jail

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/internal/testenv"
)

// TestHelperUnprivileged is not a test: TestUnprivileged re-runs a copy of
// the test binary into it as the user nobody.
func TestHelperUnprivileged(t *testing.T) {
	if os.Getenv("BRIG_TEST_UNPRIVILEGED") != "1" {
		t.Skip("helper process for TestUnprivileged")
	}
	cfg := Config{RequireCgroups: os.Getenv("BRIG_TEST_REQUIRE") == "1"}
	cmd := Command(context.Background(), cfg, "/bin/sh", "-c", `id -u; cat /proc/self/uid_map; grep -E "^(CapEff|CapBnd|NoNewPrivs|Seccomp):" /proc/self/status`)
	cmd.Stdout = os.Stdout
	err := cmd.Run()
	if cmd.Result != nil {
		fmt.Printf("limiter %s\n", cmd.Result.Limiter)
	}
	if err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func TestUnprivileged(t *testing.T) {
	nobody := testenv.AsNobody(t)
	dir, err := os.MkdirTemp("", "brig-unpriv-")
	require.NoError(t, err)
	defer os.RemoveAll(dir)
	require.NoError(t, os.Chmod(dir, 0o755))
	bin := filepath.Join(dir, "jail.test")
	copyFile(t, os.Args[0], bin)
	require.NoError(t, os.Chmod(bin, 0o755))

	asNobody := func(require bool) (string, error) {
		cmd := exec.Command(nobody[0], append(nobody[1:], bin, "-test.run=^TestHelperUnprivileged$")...)
		cmd.Dir = dir
		cmd.Env = []string{"BRIG_TEST_UNPRIVILEGED=1", "PATH=/usr/bin:/bin"}
		if require {
			cmd.Env = append(cmd.Env, "BRIG_TEST_REQUIRE=1")
		}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := asNobody(false)
	require.NoError(t, err, out)
	assert.Contains(t, out, "1000\n")
	assert.Regexp(t, `1000\s+65534\s+1\n`, out, "the jail maps only the caller's own uid")
	assert.Contains(t, out, "CapEff:\t0000000000000000")
	assert.Contains(t, out, "CapBnd:\t0000000000000000")
	assert.Contains(t, out, "NoNewPrivs:\t1")
	assert.Contains(t, out, "Seccomp:\t2")
	assert.Contains(t, out, "limiter rlimit")

	out, err = asNobody(true)
	require.Error(t, err)
	assert.Contains(t, out, "create cgroup")
	assert.Contains(t, out, "cgroups are required")
}

func copyFile(t *testing.T, src, dst string) {
	in, err := os.Open(src)
	require.NoError(t, err)
	defer in.Close()
	out, err := os.Create(dst)
	require.NoError(t, err)
	_, err = io.Copy(out, in)
	require.NoError(t, err)
	require.NoError(t, out.Close())
}
