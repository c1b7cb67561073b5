package jail

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/brig-sandbox/brig/cgroup"
	"github.com/brig-sandbox/brig/internal/supervisor"
	"github.com/brig-sandbox/brig/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ipcProbe prints what the jail's IPC limits are, uses each kind of IPC
// object once (the benign side), and tries to raise a limit.
const ipcProbe = `cd /proc/sys/kernel
for f in msgmax msgmnb msgmni sem shmmax shmall shmmni; do echo "kernel/$f=$(cat $f)"; done
ipcmk -Q >/dev/null && ipcmk -S 8 >/dev/null && ipcmk -M 65536 >/dev/null && echo "ipc objects made"
echo 32000 2>/dev/null >msgmni || echo "msgmni stays"
echo "loginuid $(cat /proc/self/loginuid)"
grep -E "^Max (pending signals|msgqueue size|open files|file size)" /proc/self/limits`

// checkIPCProbe checks ipcProbe's output for a jail with memory bytes.
func checkIPCProbe(t *testing.T, out string, memory int64) {
	t.Helper()
	for _, kv := range supervisor.IPCSysctls(memory) {
		k, v, _ := strings.Cut(kv, "=")
		// /proc shows sem's four numbers separated by tabs.
		assert.Contains(t, out, k+"="+strings.ReplaceAll(v, " ", "\t")+"\n")
	}
	assert.Contains(t, out, "ipc objects made\n", "message queues, semaphores and shared memory still work")
	assert.Contains(t, out, "msgmni stays\n")
	assert.Contains(t, out, "loginuid 1000\n")
	assert.Regexp(t, `Max pending signals\s+1024\s+1024`, out)
	mq := min(819200/4, memory/64)
	assert.Regexp(t, fmt.Sprintf(`Max msgqueue size\s+%d\s+%d`, mq, mq), out)
}

// The jail's IPC namespace has limits sized from its memory limit under
// every limiter, its program cannot raise them, and it still can use SysV
// IPC; the jail has its own RLIMIT_SIGPENDING and login uid.
func TestJailIPCLimitsAndQuotas(t *testing.T) {
	testenv.RequireRoot(t)
	if _, err := exec.LookPath("ipcmk"); err != nil {
		t.Skip("needs ipcmk (util-linux)")
	}
	const memory = 32 << 20
	for _, k := range limiters(t) {
		t.Run(string(k), func(t *testing.T) {
			mounts := countMounts()
			out, errOut, r, err := run(t, Config{Limiter: k, Limits: cgroup.Limits{Memory: memory}}, "/bin/sh", "-c", ipcProbe)
			require.NoError(t, err, errOut)
			assert.Equal(t, 0, r.ExitCode, errOut)
			checkIPCProbe(t, out, memory)
			if k == cgroup.RlimitOnly {
				files, fsize := 128, memory // cgroup.fileRlimits
				assert.Regexp(t, fmt.Sprintf(`Max open files\s+%d\s+%d`, files, files), out)
				assert.Regexp(t, fmt.Sprintf(`Max file size\s+%d\s+%d`, fsize, fsize), out)
			} else {
				assert.Regexp(t, `Max open files\s+1024\s+1024`, out)
			}
			assertHostClean(t, mounts)
		})
	}
}

// TestHelperIPCUnprivileged is not a test: TestJailIPCLimitsUnprivileged
// re-runs a copy of the test binary into it as the user nobody.
func TestHelperIPCUnprivileged(t *testing.T) {
	if os.Getenv("BRIG_TEST_IPC_UNPRIVILEGED") != "1" {
		t.Skip("helper process for TestJailIPCLimitsUnprivileged")
	}
	cmd := Command(context.Background(), Config{Limits: cgroup.Limits{Memory: 32 << 20}}, "/bin/sh", "-c", ipcProbe)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stdout
	if err := cmd.Run(); err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Unprivileged, the jail has no root to own its IPC namespace: init enters
// one owned by a user namespace below the jail's (init.c's
// own_ipc_namespace). The limits hold there too.
func TestJailIPCLimitsUnprivileged(t *testing.T) {
	asNobody := testenv.AsNobody(t)
	if _, err := exec.LookPath("ipcmk"); err != nil {
		t.Skip("needs ipcmk (util-linux)")
	}
	dir, err := os.MkdirTemp("", "brig-unpriv-ipc-")
	require.NoError(t, err)
	defer os.RemoveAll(dir)
	require.NoError(t, os.Chmod(dir, 0o755))
	bin := filepath.Join(dir, "jail.test")
	copyFile(t, os.Args[0], bin)
	require.NoError(t, os.Chmod(bin, 0o755))
	cmd := exec.Command(asNobody[0], append(asNobody[1:], bin, "-test.run=^TestHelperIPCUnprivileged$")...)
	cmd.Dir = dir
	cmd.Env = []string{"BRIG_TEST_IPC_UNPRIVILEGED=1", "PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	checkIPCProbe(t, string(out), 32<<20)
}
