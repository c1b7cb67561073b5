package jail

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/brig-sandbox/brig/cgroup"
	"github.com/brig-sandbox/brig/internal/testenv"
	"github.com/brig-sandbox/brig/seccomp"
)

// The Reason is about the program itself: a child the OOM killer killed
// while the program went on to exit 0 is counted (OOMKills), and the run
// is a success, through the Result and the error alike. The program
// killed itself is oom (TestMemoryBomb).
func TestOOMOfAChildIsCountedNotTheReason(t *testing.T) {
	testenv.RequireRoot(t)
	for _, kind := range limiters(t) {
		if kind == cgroup.RlimitOnly {
			continue // rlimits never OOM-kill: the child gets MemoryError
		}
		t.Run(string(kind), func(t *testing.T) {
			cfg := Config{Limiter: kind, Timeout: testenv.Scaled(20 * time.Second)}
			cfg.Limits.Memory = 96 << 20
			out, errOut, r := runPython(t, cfg, `
pid = os.fork()
if pid == 0:
    a = []
    while True:
        a.append(bytearray(8 << 20))
print("child", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
`)
			assert.Equal(t, "child -9\n", out, errOut)
			assert.Equal(t, ReasonExited, r.Reason, "%+v", r)
			assert.Equal(t, 0, r.ExitCode)
			assert.True(t, r.Success())
			assert.GreaterOrEqual(t, r.OOMKills, int64(1), "%+v", r)
		})
	}
}

// With SeccompKill a child killed for a refused call is named in the
// Result while the program, which exited, keeps the reason exited.
func TestSeccompKillOfAChildIsNamed(t *testing.T) {
	testenv.RequireRoot(t)
	// This test's two records go out in a fresh window.
	awaitSeccompRecords(t)
	cfg := Config{SeccompMode: SeccompKill, Timeout: testenv.Scaled(10 * time.Second)}
	out, errOut, r := runPython(t, cfg, `
import ctypes
pid = os.fork()
if pid == 0:
    ctypes.CDLL(None, use_errno=True).unshare(0x10000000)
    os._exit(0)
print("child", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
`)
	assert.Equal(t, "child -31\n", out, errOut)
	assert.Equal(t, ReasonExited, r.Reason)
	assert.Equal(t, "unshare", r.SeccompSyscall, "%+v", r)
	// The program's own refused call is still the reason.
	_, _, r = runPython(t, cfg, `
import ctypes
ctypes.CDLL(None, use_errno=True).unshare(0x10000000)
`)
	assert.Equal(t, ReasonSeccomp, r.Reason)
	assert.Equal(t, "unshare", r.SeccompSyscall)
}

// awaitSeccompRecords skips without /dev/kmsg, where the kernel's seccomp
// records cannot be read, and otherwise waits for a fresh printk_ratelimit
// window: the kernel prints the records under it, a burst of them per
// window shared by the whole machine, and earlier tests (the crash test's
// kills) may have used up this window's burst.
func awaitSeccompRecords(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/dev/kmsg"); err != nil {
		t.Skip("no /dev/kmsg: the kernel's seccomp records cannot be read here")
	}
	window := 5 * time.Second
	if b, err := os.ReadFile("/proc/sys/kernel/printk_ratelimit"); err == nil {
		if s, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			window = time.Duration(s) * time.Second
		}
	}
	time.Sleep(window + 500*time.Millisecond)
}

// Each SeccompMode acts as it says on a call the default policy refuses,
// personality(ADDR_NO_RANDOMIZE): enforce fails it with EPERM, log lets it
// through and names it in the Result, off has no filter at all.
func TestSeccompModes(t *testing.T) {
	testenv.RequireRoot(t)
	const probe = `
import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
r = libc.personality(0x0040000)
print("refused" if r == -1 and ctypes.get_errno() == errno.EPERM else "allowed",
      open("/proc/self/status").read().split("Seccomp:")[1].split()[0])
`
	out, errOut, r := runPython(t, Config{}, probe)
	assert.Equal(t, "refused 2\n", out, errOut)
	assert.Empty(t, r.SeccompLogged)
	out, errOut, r = runPython(t, Config{SeccompMode: SeccompOff}, probe)
	assert.Equal(t, "allowed 0\n", out, errOut)
	assert.Empty(t, r.SeccompLogged)

	awaitSeccompRecords(t)
	out, errOut, r = runPython(t, Config{SeccompMode: SeccompLog}, probe)
	assert.Equal(t, "allowed 2\n", out, errOut)
	assert.True(t, r.Success(), "%+v", r)
	assert.Contains(t, r.SeccompLogged, "personality", "%+v", r)
	assert.Empty(t, r.SeccompSyscall, "a logged call killed nothing")
}

// A mode that cannot be honoured is refused before the jail is built.
func TestSeccompModeChecked(t *testing.T) {
	_, err := Config{SeccompMode: SeccompOff, Seccomp: seccomp.Default()}.withDefaults()
	assert.ErrorContains(t, err, "policy would be ignored")
	_, err = Config{SeccompMode: SeccompOff + 1}.withDefaults()
	assert.ErrorContains(t, err, "seccomp mode SeccompMode(4)")
	for _, m := range []SeccompMode{SeccompEnforce, SeccompKill, SeccompLog} {
		_, err = Config{SeccompMode: m, Seccomp: seccomp.Default()}.withDefaults()
		assert.NoError(t, err, "%v", m)
	}
	_, err = Config{SeccompMode: SeccompOff}.withDefaults()
	assert.NoError(t, err)
}

// A fork the pids limit refused is counted in the Result.
func TestPidsLimitHitsCounted(t *testing.T) {
	testenv.RequireRoot(t)
	for _, kind := range limiters(t) {
		if kind == cgroup.RlimitOnly {
			continue // RLIMIT_NPROC keeps no count
		}
		t.Run(string(kind), func(t *testing.T) {
			cfg := Config{Limiter: kind, Timeout: testenv.Scaled(10 * time.Second)}
			cfg.Limits.Pids = 8
			out, errOut, r := runPython(t, cfg, `
import time
kids, refused = [], 0
for i in range(20):
    try:
        pid = os.fork()
    except BlockingIOError:
        refused += 1
        continue
    if pid == 0:
        time.sleep(0.5)
        os._exit(0)
    kids.append(pid)
for k in kids:
    os.waitpid(k, 0)
print("refused", refused > 0)
`)
			assert.Equal(t, "refused True\n", out, errOut)
			assert.True(t, r.Success(), "%+v", r)
			assert.Greater(t, r.PidsLimitHits, int64(0), "%+v", r)

			_, _, r = runPython(t, cfg, `print(1)`)
			assert.Zero(t, r.PidsLimitHits, "counters start over for every jail")
		})
	}
}
