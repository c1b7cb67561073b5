package jail

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/internal/stage"
	"github.com/brig-sandbox/brig/internal/testenv"
)

func newTestPool(t *testing.T, cfg Config, size int) *Pool {
	t.Helper()
	testenv.RequireRoot(t)
	p, err := NewPool(context.Background(), cfg, size)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	waitReady(t, p, size)
	return p
}

func waitReady(t *testing.T, p *Pool, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for p.Stats().Ready < n {
		require.True(t, time.Now().Before(deadline), "pool never filled: %+v", p.Stats())
		time.Sleep(5 * time.Millisecond)
	}
}

// A pooled jail is as isolated as a cold one: the same probe prints the
// same thing in both.
func TestPoolSameIsolationAsCold(t *testing.T) {
	requirePython(t)
	before := countMounts()
	probe := jailedPrelude + `
st = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines())
print("uid", os.getuid(), os.getgid(), os.getgroups())
print("pid", os.getpid() < 64, os.getppid())
for k in ("CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp"):
    print(k, st[k].strip())
print("fds", sorted(int(x) for x in os.listdir("/proc/self/fd")))
print("sid", os.getsid(0) == os.getpid())
print("cwd", os.getcwd(), "env", sorted(os.environ))
print("host", open("/etc/hostname").read().strip(), sorted(os.listdir("/")))
print("mounts", len(open("/proc/self/mountinfo").read().splitlines()))
print("cgroup", open("/proc/self/cgroup").read().split())
print("net", sorted(os.listdir("/sys/class/net")) if os.path.exists("/sys/class/net") else "-")
print("init", open("/proc/1/cmdline").read(), repr(open("/proc/1/environ").read()) if os.access("/proc/1/environ", os.R_OK) else "unreadable")
`
	cold := Command(context.Background(), Config{}, python, "-c", probe)
	coldOut, err := cold.Output()
	require.NoError(t, err)

	p := newTestPool(t, Config{}, 1)
	warm := p.Command(context.Background(), python, "-c", probe)
	warmOut, err := warm.Output()
	require.NoError(t, err, "%s", warmOut)
	assert.Equal(t, string(coldOut), string(warmOut))
	assert.EqualValues(t, 1, p.Stats().Hits)
	p.Close()
	assertHostClean(t, before)
}

// Each command gets a fresh jail: what one run leaves behind is not there
// for the next, and the pool refills.
func TestPoolNeverReusesAJail(t *testing.T) {
	requirePython(t)
	p := newTestPool(t, Config{}, 2)
	pids := map[string]bool{}
	for i := range 4 {
		waitReady(t, p, 1)
		c := p.Command(context.Background(), python, "-c", jailedPrelude+`
import glob
print(sorted(glob.glob("/tmp/mark*") + glob.glob("/work/mark*")), open("/proc/1/stat").read().split()[0])
open("/tmp/mark", "w").write("x"); open("/work/mark", "w").write("x")
`)
		out, err := c.Output()
		require.NoError(t, err, "run %d", i)
		assert.True(t, strings.HasPrefix(string(out), "[] 1"), "run %d saw a previous run: %s", i, out)
		pids[fmt.Sprint(c.inst.InitPID())] = true
	}
	assert.Len(t, pids, 4, "every run has its own init")
	st := p.Stats()
	assert.EqualValues(t, 4, st.Hits)
	assert.GreaterOrEqual(t, st.Built, int64(4))
	assert.Positive(t, st.RefillTime)
}

// Stdio, the exit status, the environment, extra files and the output cap
// behave as in a cold jail.
func TestPoolStdioAndResult(t *testing.T) {
	p := newTestPool(t, Config{OutputLimit: 1000}, 1)

	c := p.Command(context.Background(), "/bin/sh", "-c", `read x; echo "out $x $FOO $PWD"; echo err >&2; exit 3`)
	c.Env = []string{"FOO=bar"}
	c.Stdin = strings.NewReader("hello\n")
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	err := c.Run()
	var exitErr *ExitError
	require.ErrorAs(t, err, &exitErr)
	assert.Equal(t, 3, c.Result.ExitCode)
	assert.Equal(t, "out hello bar /work\n", stdout.String())
	assert.Equal(t, "err\n", stderr.String())

	waitReady(t, p, 1)
	c = p.Command(context.Background(), "/bin/sh", "-c", `echo a; echo b >&2; echo c`)
	out, err := c.CombinedOutput()
	require.NoError(t, err)
	assert.Equal(t, "a\nb\nc\n", string(out), "one pipe for both, in order")

	waitReady(t, p, 1)
	r, w, err := os.Pipe()
	require.NoError(t, err)
	c = p.Command(context.Background(), "/bin/sh", "-c", `echo via3 >&3; ls /proc/self/fd | sort -n | tr '\n' ' '`)
	c.ExtraFiles = []*os.File{w}
	out, err = c.Output()
	w.Close()
	require.NoError(t, err)
	got, _ := io.ReadAll(r)
	assert.Equal(t, "via3\n", string(got))
	assert.Equal(t, "0 1 2 3 4 ", string(out), "only 0-3 plus ls's own")

	waitReady(t, p, 1)
	c = p.Command(context.Background(), "/bin/sh", "-c", `yes`)
	out, err = c.Output()
	require.ErrorAs(t, err, &exitErr)
	assert.Equal(t, ReasonOutputLimit, c.Result.Reason)
	assert.Len(t, out, 1000)
	assert.EqualValues(t, 4, p.Stats().Hits)
}

// The timeout counts from the request, not from when the jail was built.
// (3 s: a race-built supervisor is slow.)
func TestPoolTimeoutCountsFromRequest(t *testing.T) {
	p := newTestPool(t, Config{Timeout: 3 * time.Second}, 1)
	time.Sleep(3200 * time.Millisecond) // longer than the timeout, while idle
	c := p.Command(context.Background(), "/bin/sh", "-c", "sleep 0.1; echo done")
	out, err := c.Output()
	require.NoError(t, err)
	assert.Equal(t, "done\n", string(out))
	assert.Less(t, c.Result.WallTime, 3*time.Second)

	waitReady(t, p, 1)
	c = p.Command(context.Background(), "/bin/sh", "-c", "sleep 5")
	err = c.Run()
	require.Error(t, err)
	assert.Equal(t, ReasonTimeout, c.Result.Reason)
}

// Set-up errors (a missing program), a workdir the pool cannot serve, and an
// empty pool all behave as a cold jail would.
func TestPoolErrorsAndFallback(t *testing.T) {
	p := newTestPool(t, Config{}, 1)
	err := p.Command(context.Background(), "/nope").Run()
	var setup *SetupError
	require.ErrorAs(t, err, &setup)
	assert.Equal(t, "exec /nope", setup.Step)

	c := p.Command(context.Background(), "/bin/pwd")
	c.Dir = "/tmp"
	out, err := c.Output()
	require.NoError(t, err)
	assert.Equal(t, "/tmp\n", string(out))
	assert.EqualValues(t, 1, p.Stats().Misses, "another workdir is built cold")

	// Drain the pool faster than it refills: the overflow runs cold.
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.NoError(t, p.Command(context.Background(), "/bin/true").Run())
		}()
	}
	wg.Wait()
	st := p.Stats()
	assert.EqualValues(t, 6, st.Hits+st.Misses)
}

// Close kills the idle jails and leaves nothing on the host; a jail in use
// keeps running until its own Wait.
func TestPoolCloseLeavesHostClean(t *testing.T) {
	testenv.RequireRoot(t)
	before := countMounts()
	ctx, cancel := context.WithCancel(context.Background())
	p, err := NewPool(ctx, Config{}, 3)
	require.NoError(t, err)
	waitReady(t, p, 3)
	busy := p.Command(context.Background(), "/bin/sh", "-c", "read x; echo $x")
	busy.Stdin = strings.NewReader("still here\n")
	var out bytes.Buffer
	busy.Stdout = &out
	require.NoError(t, busy.Start())
	cancel() // the pool's context closes it
	deadline := time.Now().Add(5 * time.Second)
	for p.Stats().Ready > 0 {
		require.True(t, time.Now().Before(deadline))
		time.Sleep(5 * time.Millisecond)
	}
	p.Close()
	require.NoError(t, busy.Wait())
	assert.Equal(t, "still here\n", out.String())
	assertHostClean(t, before)
	// The busy jail's cgroups, kept for reuse at its Wait, go after their
	// idle time (cgroup/reuse.go).
	assert.Eventually(t, func() bool { return len(jailCgroups(os.Getpid())) == 0 }, testenv.Scaled(2*time.Second), 10*time.Millisecond,
		"cgroups left: %v", jailCgroups(os.Getpid()))

	// A closed pool still runs commands, cold.
	require.NoError(t, p.Command(context.Background(), "/bin/true").Run())
}

// A jail that dies while idle is noticed and replaced, never handed out.
func TestPoolReplacesDeadJail(t *testing.T) {
	p := newTestPool(t, Config{}, 1)
	require.NoError(t, syscall.Kill(p.rt.ReadyInitPID(), syscall.SIGKILL))
	time.Sleep(50 * time.Millisecond)
	out, err := p.Command(context.Background(), "/bin/echo", "ok").Output()
	require.NoError(t, err)
	assert.Equal(t, "ok\n", string(out))
	assert.EqualValues(t, 1, p.Stats().Failures)
}

// The supervisor's side of a live jail stays small, and 500 of them run at
// once on a 2-core machine. Each jail is cold-started and blocks reading
// its stdin until all are alive.
func TestManyLiveJails(t *testing.T) {
	testenv.RequireRoot(t)
	if testing.Short() {
		t.Skip("500 jails")
	}
	n := 500
	if v, err := strconv.Atoi(os.Getenv("BRIG_LIVE_JAILS")); err == nil {
		n = v
	}
	before := countMounts()
	runtime.GC()
	var m0 runtime.MemStats
	runtime.ReadMemStats(&m0)
	rss0 := selfRSS()
	fds0 := fdCount()
	cmds := make([]*Cmd, n)
	stdins := make([]io.WriteCloser, n)
	var firstErr error
	for i := range cmds {
		r, w := io.Pipe()
		c := Command(context.Background(), Config{Timeout: 5 * time.Minute}, "/bin/sh", "-c", "read x; exit 0")
		c.Stdin = r
		if err := c.Start(); err != nil {
			firstErr = fmt.Errorf("jail %d: %w", i, err)
			break
		}
		cmds[i], stdins[i] = c, w
	}
	runtime.GC()
	var m1 runtime.MemStats
	runtime.ReadMemStats(&m1)
	rss1 := selfRSS()
	fds1 := fdCount()
	live := 0
	for _, c := range cmds {
		if c != nil {
			live++
		}
	}
	for i, c := range cmds {
		if c == nil {
			continue
		}
		stdins[i].Close()
		if err := c.Wait(); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("jail %d: %w", i, err)
		}
	}
	require.NoError(t, firstErr, "%d jails were live", live)
	heap := float64(m1.HeapInuse+m1.StackInuse-m0.HeapInuse-m0.StackInuse) / float64(n)
	rss := float64(rss1-rss0) / float64(n)
	t.Logf("%d live jails: supervisor heap+stacks %.1f KiB per jail, RSS %.1f KiB per jail, %.1f fds per jail",
		n, heap/1024, rss/1024, float64(fds1-fds0)/float64(n))
	assert.Less(t, heap, float64(1<<20), "supervisor memory per live jail")
	assert.Less(t, rss, float64(1<<20), "supervisor RSS per live jail")
	assertHostClean(t, before)
}

func selfRSS() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// A pooled jail's request is read by init whole, however many writes it
// takes (a body larger than the socket's buffer), and one over
// stage.MaxRequestLen (stage.h's MAX_REQUEST, which init.c enforces too) is
// refused by the supervisor before it is sent; the pool then serves the
// next command, and nothing of the refused jail is left.
func TestPoolRequestSize(t *testing.T) {
	before := countMounts()
	p := newTestPool(t, Config{}, 1)
	big := strings.Repeat("x", 100<<10)
	var env []string
	for i := range 8 {
		env = append(env, fmt.Sprintf("BIG%d=%s", i, big))
	}
	c := p.Command(context.Background(), "/bin/sh", "-c", `printf '%s %s' "${#BIG0}" "${#BIG7}"`)
	c.Env = env
	out, err := c.Output()
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf("%d %d", len(big), len(big)), string(out))
	require.EqualValues(t, 1, p.Stats().Hits, "the request went to a pooled jail")

	waitReady(t, p, 1)
	c = p.Command(context.Background(), "/bin/true", strings.Repeat("y", stage.MaxRequestLen))
	err = c.Run()
	var setup *SetupError
	require.ErrorAs(t, err, &setup)
	assert.Equal(t, "send request", setup.Step)
	assert.Contains(t, setup.Err.Error(), fmt.Sprintf("at most %d", stage.MaxRequestLen))

	out, err = p.Command(context.Background(), "/bin/echo", "ok").Output()
	require.NoError(t, err)
	assert.Equal(t, "ok\n", string(out))
	p.Close()
	assertHostClean(t, before)
}
