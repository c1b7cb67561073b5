package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/brig-sandbox/brig/internal/testenv"
)

// These tests use the real kernel: real cgroups, real processes, no mocks.
// Each run creates its cgroups under its own parent (brig-test-<pid>) so it
// never touches a running supervisor's "brig" parent; TestMain removes that
// parent afterwards and fails the run if anything is left in it.
//
// Time bounds are stretched by BRIG_TIME_SCALE (testenv.Scaled): the race
// target and the cgroup-v2 VM set it. In the VM (vm/run-test.sh also sets
// BRIG_IN_VM=1) a few bounds that are not waits are longer too.

var (
	testParent = fmt.Sprintf("brig-test-%d", os.Getpid())
	inVM       = os.Getenv("BRIG_IN_VM") != ""
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(m.Run())
	}
	if inVM {
		closeTimeout = 60 * time.Second
	}
	code := m.Run()
	if err := removeTestParents(); err != nil {
		fmt.Fprintln(os.Stderr, "cgroup tests left cgroups behind:", err)
		code = 1
	}
	os.Exit(code)
}

// removeTestParents removes this run's parent cgroups; they must be empty.
func removeTestParents() error {
	err := RemoveParent(Options{Parent: testParent})
	if err != nil {
		r := Detect(Options{Parent: testParent})
		for _, d := range append(r.Cgroup2.Dirs, r.Cgroup1.Dirs...) {
			ents, _ := os.ReadDir(d)
			for _, e := range ents {
				if e.IsDir() {
					err = errors.Join(err, fmt.Errorf("left behind: %s", filepath.Join(d, e.Name())))
				}
			}
		}
	}
	return err
}

func testOpts(k Kind) Options { return Options{Kind: k, Parent: testParent} }

// forEachCgroupKind runs f for cgroup2 and cgroup1, skipping a kind this
// host cannot offer (with the reason).
func forEachCgroupKind(t *testing.T, f func(t *testing.T, k Kind)) {
	for _, k := range []Kind{Cgroup2, Cgroup1} {
		t.Run(string(k), func(t *testing.T) {
			skipUnlessUsable(t, k)
			f(t, k)
		})
	}
}

func skipUnlessUsable(t *testing.T, k Kind) {
	t.Helper()
	testenv.RequireRoot(t)
	r := Detect(testOpts(k))
	be := r.Cgroup1
	if k == Cgroup2 {
		be = r.Cgroup2
	}
	if !be.Usable {
		if inVM && k == Cgroup2 {
			// The VM exists to test cgroup v2: never skip silently there.
			t.Fatalf("cgroup2 must be usable in the test VM: %s", be.Problem)
		}
		t.Skipf("%s is not usable on this host (mode %s): %s", k, r.Mode, be.Problem)
	}
}

func newLimiter(t *testing.T, k Kind, lim Limits) Limiter {
	t.Helper()
	l, err := New(lim, testOpts(k))
	require.NoError(t, err)
	require.Equal(t, k, l.Kind())
	t.Cleanup(func() { assert.NoError(t, l.Close()) })
	return l
}

// child is a process placed in a limiter's cgroup before it does anything.
type child struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	gate io.WriteCloser
}

// startIn starts cmd inside l: born in the cgroup on v2 (CLONE_INTO_CGROUP),
// moved there by pid on v1, and only then released through stdin.
func startIn(t *testing.T, l Limiter, cmd *exec.Cmd) *child {
	t.Helper()
	c := &child{cmd: cmd, out: &bytes.Buffer{}}
	cmd.Stdout, cmd.Stderr = c.out, c.out
	var err error
	c.gate, err = cmd.StdinPipe()
	require.NoError(t, err)
	if dir := l.Dir(); dir != "" {
		fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
		require.NoError(t, err)
		defer unix.Close(fd)
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	}
	require.NoError(t, cmd.Start())
	for _, f := range l.ProcsFiles() {
		require.NoError(t, os.WriteFile(f, []byte(strconv.Itoa(cmd.Process.Pid)), 0), "join %s", f)
	}
	_, err = c.gate.Write([]byte("\n"))
	require.NoError(t, err)
	c.gate.Close()
	return c
}

// wait waits for the child, bounded, and returns its wait status.
func (c *child) wait(t *testing.T, limit time.Duration) syscall.WaitStatus {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(limit):
		c.cmd.Process.Kill()
		<-done
		t.Fatalf("child did not finish within %v; output: %s", limit, c.out)
	}
	return c.cmd.ProcessState.Sys().(syscall.WaitStatus)
}

// procsOf lists the pids in a limiter's cgroup (v2 dir or first v1 hierarchy).
func procsOf(t *testing.T, l Limiter) []int {
	t.Helper()
	file := filepath.Join(l.Dir(), "cgroup.procs")
	if l.Dir() == "" {
		file = l.ProcsFiles()[0]
	}
	pids, err := readPids(file)
	require.NoError(t, err)
	return pids
}

func cgroupDirs(l Limiter) []string {
	if l.Dir() != "" {
		return []string{l.Dir()}
	}
	var dirs []string
	for _, f := range l.ProcsFiles() {
		dirs = append(dirs, filepath.Dir(f))
	}
	return dirs
}

const mib = 1 << 20

func TestMemoryLimit(t *testing.T) {
	forEachCgroupKind(t, func(t *testing.T, k Kind) {
		t.Run("under", func(t *testing.T) {
			l := newLimiter(t, k, Limits{Memory: 64 * mib})
			c := startIn(t, l, helperCmd("hog", "BRIG_CG_MB=8"))
			ws := c.wait(t, testenv.Scaled(20*time.Second))
			require.True(t, ws.Exited() && ws.ExitStatus() == 0, "8 MiB under a 64 MiB limit must succeed: %v %s", ws, c.out)
			st, err := l.Stats()
			require.NoError(t, err)
			assert.Zero(t, st.OOMKills)
			t.Logf("stats %+v", st)
		})
		t.Run("over", func(t *testing.T) {
			l := newLimiter(t, k, Limits{Memory: 64 * mib})
			c := startIn(t, l, helperCmd("hog", "BRIG_CG_MB=200"))
			ws := c.wait(t, testenv.Scaled(30*time.Second))
			require.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "200 MiB over a 64 MiB limit must be OOM-killed: %v %s", ws, c.out)
			st, err := l.Stats()
			require.NoError(t, err)
			t.Logf("stats %+v", st)
			assert.GreaterOrEqual(t, st.OOMKills, int64(1), "kernel oom_kill counter")
			require.True(t, st.MemoryPeakKnown)
			assert.InDelta(t, 64*mib, st.MemoryPeak, 12*mib, "peak should be near the limit")
			// The kernel charges in batches: the peak may pass the limit
			// by a few pages.
			assert.LessOrEqual(t, st.MemoryPeak, int64(65*mib))
		})
	})
}

func TestPidsLimit(t *testing.T) {
	forEachCgroupKind(t, func(t *testing.T, k Kind) {
		l := newLimiter(t, k, Limits{Pids: 20})
		secs := int(testenv.Scaled(3*time.Second) / time.Second)
		c := startIn(t, l, helperCmd("spawn", "BRIG_CG_SECS="+strconv.Itoa(secs)))
		ws := c.wait(t, testenv.Scaled(30*time.Second))
		t.Logf("spawner: %s", strings.TrimSpace(c.out.String()))
		require.True(t, ws.Exited() && ws.ExitStatus() == 0, "forks beyond pids.max=20 must fail with EAGAIN: %v %s", ws, c.out)
		var started int
		fmt.Sscanf(c.out.String()[strings.Index(c.out.String(), "started="):], "started=%d", &started)
		assert.Less(t, started, 20, "the helper's own threads count against pids.max")
		st, err := l.Stats()
		require.NoError(t, err)
		assert.GreaterOrEqual(t, st.PidsLimitHits, int64(1), "pids.events max")
	})
}

func TestCPULimit(t *testing.T) {
	forEachCgroupKind(t, func(t *testing.T, k Kind) {
		l := newLimiter(t, k, Limits{CPUs: 0.5})
		wall := time.Second
		if inVM {
			wall = 3 * time.Second
		}
		start := time.Now()
		c := startIn(t, l, helperCmd("spin", fmt.Sprintf("BRIG_CG_MS=%d", wall.Milliseconds())))
		ws := c.wait(t, testenv.Scaled(30*time.Second))
		elapsed := time.Since(start)
		require.True(t, ws.Exited() && ws.ExitStatus() == 0, "%v %s", ws, c.out)
		st, err := l.Stats()
		require.NoError(t, err)
		require.True(t, st.CPUTimeKnown)
		t.Logf("2 threads spinning %v under CPUs=0.5: cpu %v (wall incl. start %v)", wall, st.CPUTime, elapsed)
		// Unlimited this would be 2*wall; the quota allows 0.5*wall plus a
		// period of slack. The lower bound only shows the spinner ran and
		// was measured: on a loaded host (or a starved VM) it gets less.
		assert.Less(t, st.CPUTime, wall*8/10)
		assert.Greater(t, st.CPUTime, wall/20)
	})
}

func TestCloseKillsEverything(t *testing.T) {
	forEachCgroupKind(t, func(t *testing.T, k Kind) {
		l, err := New(Limits{Pids: 50}, testOpts(k))
		require.NoError(t, err)
		dirs := cgroupDirs(l)
		c := startIn(t, l, exec.Command("/bin/sh", "-c", "read x; sleep 100 & sleep 100 & exec sleep 100"))
		var pids []int
		require.Eventually(t, func() bool { pids = procsOf(t, l); return len(pids) >= 3 },
			testenv.Scaled(10*time.Second), 10*time.Millisecond, "sleepers did not start")

		start := time.Now()
		require.NoError(t, l.Close())
		t.Logf("Close of %d processes took %v", len(pids), time.Since(start))
		require.NoError(t, l.Close(), "Close is idempotent")
		for _, d := range dirs {
			assert.NoDirExists(t, d)
		}
		for _, pid := range pids {
			assert.True(t, goneOrZombie(pid), "pid %d survived Close", pid)
		}
		ws := c.wait(t, testenv.Scaled(5*time.Second))
		assert.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "%v", ws)
		require.NoError(t, l.Kill(), "Kill after Close is a no-op")
	})
}

func TestKill(t *testing.T) {
	forEachCgroupKind(t, func(t *testing.T, k Kind) {
		l := newLimiter(t, k, Limits{})
		c := startIn(t, l, exec.Command("/bin/sh", "-c", "read x; sleep 100 & exec sleep 100"))
		require.Eventually(t, func() bool { return len(procsOf(t, l)) >= 2 },
			testenv.Scaled(10*time.Second), 10*time.Millisecond)
		require.NoError(t, l.Kill())
		ws := c.wait(t, testenv.Scaled(5*time.Second))
		assert.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "%v", ws)
		require.Eventually(t, func() bool { return len(procsOf(t, l)) == 0 },
			testenv.Scaled(5*time.Second), 10*time.Millisecond, "the orphaned sleep must die too")
		for _, d := range cgroupDirs(l) {
			assert.DirExists(t, d, "Kill must not remove the cgroup")
		}
	})
}

func goneOrZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}

func TestRemoveStale(t *testing.T) {
	forEachCgroupKind(t, func(t *testing.T, k Kind) {
		// A limiter of our own makes the parents exist (and, on v2, ready
		// for children); its cgroup belongs to a live supervisor: us.
		mine := newLimiter(t, k, Limits{})
		var parents []string
		for _, d := range cgroupDirs(mine) {
			parents = append(parents, filepath.Dir(d))
		}

		dead := exec.Command("/bin/true")
		require.NoError(t, dead.Run())
		deadPid := dead.Process.Pid
		selfStart, err := procStartTime(os.Getpid())
		require.NoError(t, err)

		staleDead := fmt.Sprintf("brig-%d-%d-1", deadPid, selfStart)             // supervisor gone
		staleReused := fmt.Sprintf("brig-%d-%d-1", os.Getpid(), selfStart+12345) // our pid, another start: pid reuse
		live := fmt.Sprintf("brig-%d-%d-999", os.Getpid(), selfStart)            // a live supervisor (us)
		foreign := "brig-not-a-jail"                                             // not our naming: never touched
		for _, name := range []string{staleDead, staleReused, live, foreign} {
			for _, p := range parents {
				require.NoError(t, os.Mkdir(filepath.Join(p, name), 0o755))
			}
		}
		t.Cleanup(func() {
			for _, name := range []string{live, foreign} {
				for _, p := range parents {
					unix.Rmdir(filepath.Join(p, name))
				}
			}
		})

		// A process left in the dead supervisor's cgroup must be killed.
		sleeper := exec.Command("/bin/sleep", "100")
		if k == Cgroup2 {
			fd, err := unix.Open(filepath.Join(parents[0], staleDead), unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
			require.NoError(t, err)
			sleeper.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
			require.NoError(t, sleeper.Start())
			unix.Close(fd)
		} else {
			require.NoError(t, sleeper.Start())
			for _, p := range parents {
				require.NoError(t, os.WriteFile(filepath.Join(p, staleDead, "cgroup.procs"), []byte(strconv.Itoa(sleeper.Process.Pid)), 0))
			}
		}
		waited := make(chan error, 1)
		go func() { waited <- sleeper.Wait() }()

		removed, err := RemoveStale(testOpts(k))
		require.NoError(t, err)
		t.Logf("removed %v", removed)
		for _, p := range parents {
			assert.Contains(t, removed, filepath.Join(p, staleDead))
			assert.Contains(t, removed, filepath.Join(p, staleReused))
			assert.NoDirExists(t, filepath.Join(p, staleDead))
			assert.NoDirExists(t, filepath.Join(p, staleReused))
			assert.DirExists(t, filepath.Join(p, live))
			assert.DirExists(t, filepath.Join(p, foreign))
		}
		for _, d := range cgroupDirs(mine) {
			assert.DirExists(t, d, "our own jail must survive")
			assert.NotContains(t, removed, d)
		}
		select {
		case <-waited:
			ws := sleeper.ProcessState.Sys().(syscall.WaitStatus)
			assert.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "%v", ws)
		case <-time.After(testenv.Scaled(5 * time.Second)):
			sleeper.Process.Kill()
			t.Fatal("the stale cgroup's process was not killed")
		}
	})
}

func TestForcedKindUnusable(t *testing.T) {
	for _, k := range []Kind{Cgroup2, Cgroup1} {
		t.Run(string(k), func(t *testing.T) {
			r := Detect(testOpts(k))
			be := r.Cgroup1
			if k == Cgroup2 {
				be = r.Cgroup2
			}
			if be.Usable {
				t.Skipf("%s is usable on this host (mode %s); the error path needs a host without it", k, r.Mode)
			}
			l, err := New(Limits{Memory: 64 * mib}, testOpts(k))
			require.Error(t, err)
			require.Nil(t, l)
			assert.ErrorIs(t, err, ErrUnavailable)
			assert.Contains(t, err.Error(), string(k))
			t.Logf("New(Kind=%s): %v", k, err)
		})
	}
}

// TestRequireUnprivileged runs a helper as nobody: it may not create
// cgroups, so Require fails with a reason and Auto falls back to rlimits.
func TestRequireUnprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch to the nobody user")
	}
	// The test binary may sit in a 0700 build directory: copy it where
	// nobody can execute it.
	dir, err := os.MkdirTemp("", "cgroup-helper")
	require.NoError(t, err)
	defer os.RemoveAll(dir)
	require.NoError(t, os.Chmod(dir, 0o755))
	bin := filepath.Join(dir, "cgroup.test")
	data, err := os.ReadFile(os.Args[0])
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(bin, data, 0o755))

	cmd := exec.Command(bin, "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"=require", "BRIG_CG_PARENT="+testParent)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	t.Logf("as nobody:\n%s", out)
	require.NoError(t, err, "helper failed")
	assert.Contains(t, string(out), "require error:")
	assert.Contains(t, string(out), "fallback kind: rlimit")
}

func TestRlimitLimiter(t *testing.T) {
	l, err := New(Limits{Memory: 64 * mib, Pids: 20, CPUTime: 1500 * time.Millisecond}, Options{Kind: RlimitOnly})
	require.NoError(t, err)
	assert.Equal(t, RlimitOnly, l.Kind())
	assert.Empty(t, l.Dir())
	assert.Empty(t, l.ProcsFiles())
	assert.ElementsMatch(t, []Rlimit{
		{Resource: unix.RLIMIT_AS, Cur: 64 * mib, Max: 64 * mib},
		{Resource: unix.RLIMIT_NPROC, Cur: 20, Max: 20},
		{Resource: unix.RLIMIT_CPU, Cur: 2, Max: 3}, // 1.5 s rounds up
		{Resource: unix.RLIMIT_NOFILE, Cur: 256, Max: 256},
		{Resource: unix.RLIMIT_FSIZE, Cur: 64 * mib, Max: 64 * mib},
	}, l.Rlimits())
	st, err := l.Stats()
	require.NoError(t, err)
	assert.False(t, st.MemoryPeakKnown || st.CPUTimeKnown)
	assert.NoError(t, l.Kill())
	assert.NoError(t, l.Close())

	l, err = New(Limits{}, Options{Kind: RlimitOnly})
	require.NoError(t, err)
	assert.Empty(t, l.Rlimits(), "zero limits mean none")

	_, err = New(Limits{}, Options{Kind: RlimitOnly, Require: true})
	assert.ErrorContains(t, err, "Require", "requiring cgroups and choosing none contradict")
}

func TestFileRlimitsFollowMemory(t *testing.T) {
	for _, c := range []struct {
		memory       int64
		files, fsize uint64
	}{
		{0, 64, 1 * mib},
		{16 * mib, 64, 16 * mib},
		{128 * mib, 512, 128 * mib},
		{256 * mib, 1024, 256 * mib},
		{8 << 30, 1024, 1 << 30},
	} {
		files, fsize := fileRlimits(c.memory)
		assert.Equal(t, c.files, files, "files for %d bytes", c.memory)
		assert.Equal(t, c.fsize, fsize, "file size for %d bytes", c.memory)
	}
}

func TestCgroupLimitersHaveNoRlimits(t *testing.T) {
	forEachCgroupKind(t, func(t *testing.T, k Kind) {
		l := newLimiter(t, k, Limits{Memory: 64 * mib, Pids: 20, CPUs: 1, CPUTime: time.Second})
		assert.Empty(t, l.Rlimits())
		if k == Cgroup2 {
			assert.NotEmpty(t, l.Dir())
			assert.Empty(t, l.ProcsFiles())
		} else {
			assert.Empty(t, l.Dir())
			assert.NotEmpty(t, l.ProcsFiles())
		}
		for _, d := range cgroupDirs(l) {
			assert.True(t, isJailName(filepath.Base(d)), d)
			assert.Equal(t, testParent, filepath.Base(filepath.Dir(d)))
		}
	})
}

func TestDetect(t *testing.T) {
	r := Detect(Options{Parent: testParent})
	t.Logf("\n%s", r)
	assert.Contains(t, []string{"v2", "hybrid", "v1", "none"}, r.Mode)
	assert.NotEmpty(t, r.Why)
	if os.Geteuid() == 0 && (r.Cgroup1.Usable || r.Cgroup2.Usable) {
		l, err := New(Limits{}, Options{Parent: testParent})
		require.NoError(t, err)
		defer l.Close()
		assert.Equal(t, r.Pick, l.Kind(), "Detect must predict what New picks")
	}
	_, err := New(Limits{}, Options{Kind: "cgroup3"})
	assert.ErrorContains(t, err, "unknown cgroup kind")
	_, err = New(Limits{}, Options{Parent: "/abs"})
	assert.Error(t, err)
	_, err = New(Limits{}, Options{Parent: "../up"})
	assert.Error(t, err)
}

func TestJailNames(t *testing.T) {
	a, err := jailName()
	require.NoError(t, err)
	b, err := jailName()
	require.NoError(t, err)
	assert.NotEqual(t, a, b)
	assert.True(t, isJailName(a), a)
	assert.True(t, supervisors{}.alive(a), "our own name: alive")
	assert.True(t, supervisors{}.alive("something-else"), "unparseable names are never stale")
	assert.False(t, supervisors{}.alive(fmt.Sprintf("brig-%d-1-1", os.Getpid())), "pid reuse: start time differs")
}

// staleNames over plain directories standing in for three hierarchies:
// the names of a live supervisor (ours, several jails, in each parent) are
// kept, a dead supervisor's and a reused pid's are listed once each, and
// what is not a jail cgroup is ignored.
func TestStaleNames(t *testing.T) {
	own, err := jailName()
	require.NoError(t, err)
	own2, err := jailName()
	require.NoError(t, err)
	// No pid reaches the kernel's PID_MAX_LIMIT (2^22): never alive.
	dead := fmt.Sprintf("brig-%d-5-1", 1<<22)
	reused := fmt.Sprintf("brig-%d-1-7", os.Getpid())
	var parents []string
	for range 3 {
		p := t.TempDir()
		for _, n := range []string{own, own2, dead, reused, "brig-supervisor", "other"} {
			require.NoError(t, os.Mkdir(filepath.Join(p, n), 0o755))
		}
		require.NoError(t, os.WriteFile(filepath.Join(p, "brig-1-2-3"), nil, 0o644)) // a file, not a cgroup
		parents = append(parents, p)
	}
	assert.ElementsMatch(t, []string{dead, reused}, staleNames(parents))
}

// Exactly the names brig-<digits>-<digits>-<digits> are jail names; the
// sweep never touches another.
func TestParseJailName(t *testing.T) {
	for name, want := range map[string]bool{
		"brig-12-345-6": true, "brig-0-0-0": true, "brig-007-1-99999": true,
		"brig-99999999999999999999999-1-1": true, // ours, out of range: kept as alive
		"brig":                             false, "brig-": false, "brig-1-2": false, "brig-1-2-3-4": false, "brig-1--3": false,
		"brig-1-2-x": false, "brig-+1-2-3": false, "brig-1-2-3 ": false, "xbrig-1-2-3": false,
		"brig-1-2-3\n": false, "brig-１-2-3": false, "brig-supervisor": false, "": false,
	} {
		_, _, ok := parseJailName(name)
		assert.Equal(t, want, ok, "%q", name)
	}
	pid, start, ok := parseJailName("brig-12-345-6")
	assert.True(t, ok)
	assert.Equal(t, 12, pid)
	assert.EqualValues(t, 345, start)
	assert.True(t, supervisors{}.alive("brig-99999999999999999999999-1-1"), "out of range: never stale")
}

// TestV2Delegation covers the no-internal-processes rule: a supervisor that
// sits in a non-root cgroup (its delegated subtree) moves itself into
// <cgroup>/brig.supervisor and creates jails beside it; if other processes
// share its cgroup, New fails and says what to do.
func TestV2Delegation(t *testing.T) {
	skipUnlessUsable(t, Cgroup2)
	// Our own limiter makes the test's cgroup ready for children.
	mine := newLimiter(t, Cgroup2, Limits{})
	base := filepath.Dir(filepath.Dir(mine.Dir()))
	deleg := filepath.Join(base, fmt.Sprintf("brig-test-deleg-%d", os.Getpid()))
	require.NoError(t, os.Mkdir(deleg, 0o755))
	t.Cleanup(func() {
		for _, d := range []string{"jails", supervisorLeaf, ""} {
			dir := filepath.Join(deleg, d)
			if pids, _ := readPids(filepath.Join(dir, "cgroup.procs")); len(pids) > 0 {
				killPids(pids)
				waitUnpopulated(dir, time.Now().Add(testenv.Scaled(5*time.Second)))
			}
			assert.NoError(t, rmdirCgroup(dir, time.Now().Add(testenv.Scaled(5*time.Second))))
		}
	})
	startInDeleg := func(cmd *exec.Cmd) {
		fd, err := unix.Open(deleg, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
		require.NoError(t, err)
		defer unix.Close(fd)
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
		require.NoError(t, cmd.Start())
	}

	t.Run("shared cgroup is refused", func(t *testing.T) {
		other := exec.Command("/bin/sleep", "100")
		startInDeleg(other)
		defer func() { other.Process.Kill(); other.Wait() }()
		sup := helperCmd("deleg")
		var out bytes.Buffer
		sup.Stdout, sup.Stderr = &out, &out
		startInDeleg(sup)
		err := sup.Wait()
		t.Logf("supervisor sharing %s with pid %d: %v\n%s", deleg, other.Process.Pid, err, out.String())
		require.Error(t, err)
		assert.Contains(t, out.String(), "other processes")
		assert.NotContains(t, out.String(), "moved the supervisor", "refuse before moving anything")
		assert.Contains(t, out.String(), strconv.Itoa(other.Process.Pid))
	})
	t.Run("supervisor moves into a leaf", func(t *testing.T) {
		sup := helperCmd("deleg")
		var out bytes.Buffer
		sup.Stdout, sup.Stderr = &out, &out
		startInDeleg(sup)
		err := sup.Wait()
		t.Logf("supervisor alone in %s:\n%s", deleg, out.String())
		require.NoError(t, err)
		assert.Contains(t, out.String(), "deleg own: ")
		assert.Contains(t, out.String(), filepath.Base(deleg)+"/"+supervisorLeaf+"\n")
		assert.Contains(t, out.String(), "deleg jail: "+filepath.Join(deleg, "jails", "brig-"))
	})
}

// Stats re-reads its counters (opened at the first call and kept) on every
// call, and fails once the limiter is closed instead of returning stale
// numbers or reading a file that took over a closed fd.
func TestStatsRereadsUntilClosed(t *testing.T) {
	forEachCgroupKind(t, func(t *testing.T, k Kind) {
		fds := openFDs(t)
		l, err := New(Limits{}, testOpts(k))
		require.NoError(t, err)
		before, err := l.Stats()
		require.NoError(t, err)
		c := startIn(t, l, helperCmd("spin", "BRIG_CG_MS=200"))
		ws := c.wait(t, testenv.Scaled(30*time.Second))
		require.True(t, ws.Exited() && ws.ExitStatus() == 0, "%v %s", ws, c.out)
		after, err := l.Stats()
		require.NoError(t, err)
		assert.Greater(t, after.CPUTime, before.CPUTime+50*time.Millisecond, "the second read shows the spinner's CPU")
		assert.Greater(t, after.MemoryPeak, before.MemoryPeak, "and its memory")
		require.NoError(t, l.Close())
		_, err = l.Stats()
		assert.Error(t, err, "Stats after Close")
		assert.Equal(t, fds, openFDs(t), "Close closes the counters")
	})
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(ents)
}

// Options.NoFreezer and NoCPUAccounting leave those v1 hierarchies out: the
// jail's cgroup is made in the others only, still limits and measures
// memory, is killed and removed whole, and reports CPU time as unknown. A
// CPU-time budget, which needs the accounting, is refused.
func TestV1WithoutFreezerAndCPUAccounting(t *testing.T) {
	skipUnlessUsable(t, Cgroup1)
	opts := testOpts(Cgroup1)
	opts.NoFreezer, opts.NoCPUAccounting = true, true
	h, err := probeV1(mustMounts(t), opts)
	require.NoError(t, err)
	left := map[string]bool{}
	for _, c := range []string{"freezer", "cpuacct"} {
		if p, ok := h.parents[c]; ok && p != h.parents["cpu"] && p != h.parents["memory"] && p != h.parents["pids"] {
			left[filepath.Dir(p)] = true // a hierarchy of its own here
		}
	}
	if len(left) == 0 {
		t.Skip("freezer and cpuacct share hierarchies with the other controllers here: nothing to leave out")
	}

	l, err := New(Limits{Memory: 64 * mib, Pids: 20}, opts)
	require.NoError(t, err)
	dirs := cgroupDirs(l)
	assert.Len(t, dirs, len(h.distinctParents())-len(left))
	for _, d := range dirs {
		assert.False(t, left[filepath.Dir(filepath.Dir(d))], "made in a hierarchy left out: %s", d)
	}
	c := startIn(t, l, exec.Command("/bin/sh", "-c", "read x; sleep 100 & exec sleep 100"))
	require.Eventually(t, func() bool { return len(procsOf(t, l)) >= 2 },
		testenv.Scaled(10*time.Second), 10*time.Millisecond)
	st, err := l.Stats()
	require.NoError(t, err)
	assert.True(t, st.MemoryPeakKnown)
	assert.Greater(t, st.MemoryPeak, int64(0))
	assert.False(t, st.CPUTimeKnown, "no cpuacct, no CPU time")

	require.NoError(t, l.Kill())
	ws := c.wait(t, testenv.Scaled(5*time.Second))
	assert.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "%v", ws)
	require.Eventually(t, func() bool { return len(procsOf(t, l)) == 0 },
		testenv.Scaled(5*time.Second), 10*time.Millisecond, "the orphaned sleep must die too")
	require.NoError(t, l.Close())
	for _, d := range dirs {
		assert.NoDirExists(t, d)
	}

	_, err = New(Limits{CPUTime: time.Second}, opts)
	require.ErrorContains(t, err, "CPU-time budget")
}

func mustMounts(t *testing.T) []cgroupMount {
	t.Helper()
	m, err := readCgroupMounts()
	require.NoError(t, err)
	return m
}

// BenchmarkStaleNames sweeps three parents holding the cgroups of 100 live
// jails of one supervisor (this process), as a new supervisor finds them
// beside a busy one.
func BenchmarkStaleNames(b *testing.B) {
	var parents []string
	for range 3 {
		p := b.TempDir()
		for range 100 {
			n, err := jailName()
			require.NoError(b, err)
			require.NoError(b, os.Mkdir(filepath.Join(p, n), 0o755))
		}
		parents = append(parents, p)
	}
	for b.Loop() {
		if stale := staleNames(parents); len(stale) != 0 {
			b.Fatalf("live jails listed as stale: %v", stale)
		}
	}
}
