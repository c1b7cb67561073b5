package jail

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/internal/hostile"
	"github.com/brig-sandbox/brig/internal/testenv"
	"github.com/brig-sandbox/brig/seccomp"
)

// crashCode tries to lower RLIMIT_CORE (through resource, raw setrlimit
// and prlimit64: x86_64 numbers), crashes 20 children and then itself
// with SIGSEGV.
const crashCode = `
import resource, ctypes, signal
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
class rlimit(ctypes.Structure):
    _fields_ = [("cur", ctypes.c_ulong), ("max", ctypes.c_ulong)]
zero = rlimit(0, 0)
start = resource.getrlimit(resource.RLIMIT_CORE)
print("core limit", *start)
for name, fn in [("resource", lambda: resource.setrlimit(resource.RLIMIT_CORE, (0, 0))),
                 ("setrlimit", lambda: libc.syscall(160, 4, ctypes.byref(zero))),
                 ("prlimit64", lambda: libc.syscall(302, 0, 4, ctypes.byref(zero), 0))]:
    try:
        r = fn()
        print(name, "returned", r, "errno", ctypes.get_errno())
    except Exception as e:
        print(name, "raised", e)
print("lowered", resource.getrlimit(resource.RLIMIT_CORE) != start)
dumped = 0
for i in range(20):
    pid = os.fork()
    if pid == 0:
        if i % 2:
            os.abort()
        ctypes.string_at(0)
    _, st = os.waitpid(pid, 0)
    dumped += os.WCOREDUMP(st)
print("children dumped", dumped, flush=True)
ctypes.string_at(0)
`

// TestCrashRunsNoHostCoreHelper: with a piped kernel.core_pattern, a crash
// in a jail does not run the host's helper, under the default policy, its
// kill variant and a custom policy that allows every call; the program's
// result still says which signal ended it; and the same logger does run
// for a crash on the host, so its silence means something. Without
// seccomp (SeccompOff, documented) the jail can lower its limit and a
// crash reaches the helper; when brig's own hard limit is 0 the jail gets
// 0 (it cannot raise it) and brig warns.
func TestCrashRunsNoHostCoreHelper(t *testing.T) {
	testenv.RequireRoot(t)
	requirePython(t)
	mounts := countMounts()
	logger, err := hostile.InstallCoreLogger()
	require.NoError(t, err)
	t.Cleanup(func() {
		if err := logger.Close(); err != nil {
			t.Error(err)
		}
	})
	// The logger records the crashed process's hostname: each case has its
	// own, so that crashes elsewhere on the machine are not counted.
	hostname := func(name string) string { return fmt.Sprintf("crash-%d-%s", os.Getpid(), name) }

	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"default", Config{}},
		{"custom", Config{Seccomp: &seccomp.Policy{DefaultAction: seccomp.ActAllow}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Hostname = hostname(tc.name)
			out, errOut, r := runPython(t, cfg, crashCode)
			t.Logf("stdout:\n%s\nstderr:\n%s", out, errOut)
			assert.Contains(t, out, "core limit 1 1")
			assert.Contains(t, out, "lowered False")
			assert.Contains(t, out, "children dumped 0")
			assert.Equal(t, ReasonSignaled, r.Reason)
			assert.Equal(t, 11, r.Signal)

			// A shell: ulimit fails, abort gives a clean signaled result.
			_, errOut, r, _ = run(t, cfg, "/bin/sh", "-c", "ulimit -c 0; kill -ABRT $$")
			assert.Contains(t, errOut, "ulimit")
			assert.Equal(t, ReasonSignaled, r.Reason)
			assert.Equal(t, 6, r.Signal)
		})
	}
	t.Run("kill", func(t *testing.T) {
		// Under --seccomp-kill the attempt itself is the end, with SIGSYS,
		// which would dump core too.
		cfg := Config{SeccompMode: SeccompKill, Hostname: hostname("kill")}
		_, errOut, r := runPython(t, cfg, "import resource\nresource.setrlimit(resource.RLIMIT_CORE, (0, 0))\nprint('survived')")
		assert.Equal(t, ReasonSeccomp, r.Reason, errOut)
		assert.Equal(t, 31, r.Signal)
	})

	crashes, err := logger.Crashes()
	require.NoError(t, err)
	for _, c := range crashes {
		if strings.HasPrefix(c.Hostname, hostname("")) {
			t.Errorf("a crash in a jail ran the host's core helper: %+v", c)
		}
	}
	require.NoError(t, logger.Control(), "the logger must run for a crash on the host")

	t.Run("without seccomp", func(t *testing.T) {
		cfg := Config{SeccompMode: SeccompOff, Hostname: hostname("noseccomp")}
		out, _, r := runPython(t, cfg, "import resource, ctypes\nresource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n"+
			"print('lowered', resource.getrlimit(resource.RLIMIT_CORE), flush=True)\nctypes.string_at(0)")
		assert.Contains(t, out, "lowered (0, 0)")
		assert.Equal(t, ReasonSignaled, r.Reason)
		crashes, err := logger.Crashes()
		require.NoError(t, err)
		n := 0
		for _, c := range crashes {
			if c.Hostname == cfg.Hostname {
				n++
			}
		}
		assert.Equal(t, 1, n, "without seccomp nothing stops the jail from lowering RLIMIT_CORE: the limit is documented")
	})
	t.Run("hard limit 0", func(t *testing.T) {
		// A jail cannot raise the hard limit it inherits: brig falls back to
		// 0, runs, and says what that means under a piped core_pattern.
		if testing.Short() {
			t.Skip("builds the CLI")
		}
		prlimit, err := exec.LookPath("prlimit")
		if err != nil {
			t.Skip("needs prlimit (util-linux) to start brig with a hard core limit of 0")
		}
		code := "import resource; print('core limit', *resource.getrlimit(resource.RLIMIT_CORE))"
		out, err := exec.Command(prlimit, "--core=0:0", buildBrig(t), "run", "--", python, "-c", code).CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Contains(t, string(out), "core limit 0 0")
		assert.Contains(t, string(out), "hard RLIMIT_CORE is 0")
		out, err = exec.Command(prlimit, "--core=0:1", buildBrig(t), "run", "--", python, "-c", code).CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Contains(t, string(out), "core limit 1 1")
		assert.NotContains(t, string(out), "hard RLIMIT_CORE")
	})
	assertHostClean(t, mounts)
}
