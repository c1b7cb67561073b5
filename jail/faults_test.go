package jail

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/brig-sandbox/brig/cgroup"
	"github.com/brig-sandbox/brig/internal/hostile"
	"github.com/brig-sandbox/brig/internal/supervisor"
	"github.com/brig-sandbox/brig/internal/testenv"
)

// Faults: the supervisor dies in the middle of runs, set-up fails half
// way, the program's stdio misbehaves. Each must end promptly and leave
// nothing behind.

// TestHelperFaultSupervisor is not a test: the fault tests re-run the
// test binary into it, to be a supervisor with several busy jails that
// can be SIGKILLed.
func TestHelperFaultSupervisor(t *testing.T) {
	if os.Getenv("BRIG_FAULT_SUPERVISOR") != "1" {
		t.Skip("helper process for the fault tests")
	}
	kind := cgroup.Kind(os.Getenv("BRIG_FAULT_LIMITER"))
	jobs := [][]string{
		{"/bin/sh", "-c", "(setsid sh -c 'trap \"\" HUP TERM; sleep 300' &); sleep 300"},
		{python, "-c", jailedPrelude + "import time\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        time.sleep(0.01)\n"},
		{"/bin/sh", "-c", "for i in 1 2 3 4; do (while :; do :; done) & done; wait"},
		{"/usr/bin/yes"},
	}
	var cmds []*Cmd
	for _, j := range jobs {
		cfg := Config{Limiter: kind, Timeout: time.Minute, OutputLimit: -1}
		cfg.Limits.Pids, cfg.Limits.CPUs = 32, 0.5
		cmd := Command(context.Background(), cfg, j[0], j[1:]...)
		cmd.Stdout = io.Discard
		if err := cmd.Start(); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		cmds = append(cmds, cmd)
	}
	time.Sleep(300 * time.Millisecond) // let the bombs go off
	fmt.Println("started")
	for _, c := range cmds {
		_ = c.Wait()
	}
	os.Exit(0)
}

// TestHelperFaultNextStart is not a test: the next supervisor to start
// after one was killed; it runs one jail.
func TestHelperFaultNextStart(t *testing.T) {
	if os.Getenv("BRIG_FAULT_NEXT") != "1" {
		t.Skip("helper process for the fault tests")
	}
	cmd := Command(context.Background(), Config{Limiter: cgroup.Kind(os.Getenv("BRIG_FAULT_LIMITER"))}, "/bin/true")
	if err := cmd.Run(); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	// Wait has waited for the sweep the jail's start began.
	fmt.Println("removed", DefaultSupervisor.StaleCgroupsRemoved())
	os.Exit(0)
}

// procTree lists root and every process below it, each with its start
// time (so that a reused pid is not mistaken for a survivor).
func procTree(root int) map[int]uint64 {
	children := map[int][]int{}
	starts := map[int]uint64{}
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range dirs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		fl := strings.Fields(s[i+1:])
		if len(fl) < 20 {
			continue
		}
		pid, _ := strconv.Atoi(strings.Fields(s)[0])
		ppid, _ := strconv.Atoi(fl[1])
		st, _ := strconv.ParseUint(fl[19], 10, 64)
		children[ppid] = append(children[ppid], pid)
		starts[pid] = st
	}
	tree := map[int]uint64{}
	var walk func(int)
	walk = func(p int) {
		if _, ok := starts[p]; !ok {
			return
		}
		tree[p] = starts[p]
		for _, c := range children[p] {
			walk(c)
		}
	}
	walk(root)
	return tree
}

// survivors are the processes of tree that still exist.
func survivors(tree map[int]uint64) []int {
	var left []int
	for pid, st := range tree {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(b)
		fl := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fl) > 19 && fl[19] == strconv.FormatUint(st, 10) && fl[0] != "Z" {
			left = append(left, pid)
		}
	}
	return left
}

// jailCgroups lists the cgroup directories of the jails of supervisor pid.
func jailCgroups(pid int) []string {
	var dirs []string
	for d := range hostile.Snapshot(hostileIDs()).Cgroups {
		if strings.HasPrefix(filepath.Base(d), fmt.Sprintf("brig-%d-", pid)) {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

func TestFaultSupervisorKilledMidRun(t *testing.T) {
	testenv.RequireRoot(t)
	requirePython(t)
	for _, kind := range limiters(t) {
		t.Run(string(kind), func(t *testing.T) {
			before := hostile.Snapshot(hostileIDs())
			sup := exec.Command(os.Args[0], "-test.run=^TestHelperFaultSupervisor$")
			sup.Env = append(os.Environ(), "BRIG_FAULT_SUPERVISOR=1", "BRIG_FAULT_LIMITER="+string(kind), "BRIG_TEST_SUPERVISOR=1")
			out, err := sup.StdoutPipe()
			require.NoError(t, err)
			require.NoError(t, sup.Start())
			line, err := bufio.NewReader(out).ReadString('\n')
			require.NoError(t, err)
			require.Equal(t, "started\n", line)
			tree := procTree(sup.Process.Pid)
			require.Greater(t, len(tree), 4*3, "four jails, each a helper, an init and a program at least")
			if kind != cgroup.RlimitOnly {
				require.Len(t, jailCgroups(sup.Process.Pid), 4*len(cgroupHierarchies(t)))
			}

			require.NoError(t, sup.Process.Signal(syscall.SIGKILL))
			_ = sup.Wait()
			killed := time.Now()
			for {
				left := survivors(tree)
				if len(left) == 0 {
					break
				}
				require.Less(t, time.Since(killed), testenv.Scaled(time.Second), "jail processes outlived their supervisor by a second: %v", left)
				time.Sleep(10 * time.Millisecond)
			}
			t.Logf("every jail died %v after the supervisor", time.Since(killed).Round(time.Millisecond))
			assert.Empty(t, withoutStale(hostile.SettleLeaks(before, hostileIDs(), time.Second)), "nothing but the cgroups may be left")

			// The cgroups of the dead supervisor's jails are left; the next
			// supervisor to start a jail removes them.
			stale := jailCgroups(sup.Process.Pid)
			if kind == cgroup.RlimitOnly {
				assert.Empty(t, stale)
				return
			}
			t.Logf("%d cgroup directories left by the killed supervisor", len(stale))
			next := exec.Command(os.Args[0], "-test.run=^TestHelperFaultNextStart$")
			// BRIG_TEST_SUPERVISOR keeps TestMain from sweeping stale
			// cgroups itself at the end: only the jail's own start may.
			next.Env = append(os.Environ(), "BRIG_FAULT_NEXT=1", "BRIG_FAULT_LIMITER="+string(kind), "BRIG_TEST_SUPERVISOR=1")
			b, err := next.Output()
			require.NoError(t, err, "%s", b)
			assert.Empty(t, jailCgroups(sup.Process.Pid), "the next supervisor must remove the cgroups of a dead one (cgroup.RemoveStale)")
			// It counts them (brig serve's brig_stale_cgroups_removed_total):
			// at least the dead supervisor's, and other dead ones' if a
			// killed test run left some.
			at := bytes.LastIndex(b, []byte("removed "))
			require.GreaterOrEqual(t, at, 0, "the helper printed no count: %s", b)
			var removed int
			_, err = fmt.Sscanf(string(b[at:]), "removed %d", &removed)
			require.NoError(t, err, "%s", b)
			assert.GreaterOrEqual(t, removed, len(stale), "Supervisor.StaleCgroupsRemoved")
		})
	}
}

// cgroupHierarchies are the v1 hierarchies a cold jail's cgroup is made
// in (cgroupOptions: no freezer, and no cpuacct without a CPU-time budget).
func cgroupHierarchies(t *testing.T) []string {
	r := cgroup.Detect(supervisor.ColdCgroupOptions())
	return r.Cgroup1.Dirs
}

// TestFaultCLIKilledMidRun: `brig run` itself is SIGKILLed.
func TestFaultCLIKilledMidRun(t *testing.T) {
	testenv.RequireRoot(t)
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	brig := buildBrig(t)
	before := hostile.Snapshot(hostileIDs())
	cli := startCLIUntilUp(t, brig, "echo up; (setsid sleep 300 &); sleep 300")
	tree := procTree(cli.Process.Pid)
	require.NoError(t, cli.Process.Signal(syscall.SIGKILL))
	_ = cli.Wait()
	killed := time.Now()
	for len(survivors(tree)) > 0 {
		require.Less(t, time.Since(killed), time.Second, "jail outlived brig run by a second: %v", survivors(tree))
		time.Sleep(10 * time.Millisecond)
	}
	assert.Empty(t, withoutStale(hostile.SettleLeaks(before, hostileIDs(), time.Second)))
	// The next brig run cleans up what the killed one left.
	b, err := exec.Command(brig, "run", "--quiet", "--", "/bin/true").CombinedOutput()
	require.NoError(t, err, "%s", b)
	assert.Empty(t, jailCgroups(cli.Process.Pid), "the next brig run must remove the killed one's cgroups")
}

// TestFaultSetupFailsHalfway: set-up that fails at each stage returns a
// SetupError naming the step and leaves nothing: no process, mount,
// cgroup directory or file, and no fd or goroutine in the supervisor.
func TestFaultSetupFailsHalfway(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "noexec"), []byte("#!/bin/sh\necho hi\n"), 0o644))
	require.NoError(t, os.Symlink("/no/such/target", filepath.Join(dir, "dangling")))
	cases := []struct {
		name string
		cfg  Config
		dir  string
		argv []string
		step string // exact, or a prefix ending in "*"
	}{
		{name: "bind source missing", cfg: Config{Binds: []Bind{{Source: "/no/such/dir", Target: "/data"}}}, step: "resolve binds"},
		{name: "bind source dangling symlink", cfg: Config{Binds: []Bind{{Source: filepath.Join(dir, "dangling"), Target: "/data"}}}, step: "resolve binds"},
		{name: "cgroup2 refused on this host", cfg: Config{Limiter: cgroup.Cgroup2, RequireCgroups: true}, step: "create cgroup"},
		{name: "cgroup parent outside", cfg: Config{CgroupParent: "../../escape"}, step: "create cgroup"},
		{name: "hostname too long", cfg: Config{Hostname: strings.Repeat("h", 100)}, step: "set hostname"},
		{name: "program missing", cfg: Config{}, argv: []string{"/no/such/program"}, step: "exec /no/such/program"},
		{name: "program not executable", cfg: Config{Binds: []Bind{{Source: dir, Target: "/in"}}}, argv: []string{"/in/noexec"}, step: "exec /in/noexec"},
		{name: "working directory on a file", cfg: Config{}, dir: "/etc/passwd", step: "bind /etc/passwd"},
		{name: "working directory under /proc", cfg: Config{}, dir: "/proc/work", step: "*"},
		{name: "bind over /proc", cfg: Config{Binds: []Bind{{Source: dir, Target: "/proc/x"}}}, step: "config"},
	}
	for _, kind := range limiters(t) {
		for _, tc := range cases {
			if tc.cfg.Limiter != "" && kind != cgroup.RlimitOnly {
				continue // the case picks its own limiter: once is enough
			}
			t.Run(string(kind)+"/"+tc.name, func(t *testing.T) {
				cfg := tc.cfg
				if cfg.Limiter == "" {
					cfg.Limiter = kind
				}
				argv := tc.argv
				if argv == nil {
					argv = []string{"/bin/true"}
				}
				snap := hostile.Snapshot(hostileIDs())
				fds, gor := fdCount(), runtime.NumGoroutine()
				cmd := Command(context.Background(), cfg, argv[0], argv[1:]...)
				cmd.Dir = tc.dir
				cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
				start := time.Now()
				err := cmd.Run()
				var se *SetupError
				require.ErrorAs(t, err, &se, "want a SetupError, got %v (result %+v)", err, cmd.Result)
				if want, ok := strings.CutSuffix(tc.step, "*"); ok {
					assert.True(t, strings.HasPrefix(se.Step, want), "step %q", se.Step)
				} else {
					assert.Equal(t, tc.step, se.Step, "%v", se)
				}
				require.Error(t, se.Err)
				assert.NotEmpty(t, se.Err.Error())
				assert.Less(t, time.Since(start), 5*time.Second)
				assert.Empty(t, hostile.SettleLeaks(snap, hostileIDs(), 2*time.Second, os.Getpid()))
				assertFds(t, fds)
				assertGoroutines(t, gor)
				t.Logf("%v", se)
			})
		}
	}
}

// TestFaultCgroupFailsWhileJailIsBuilt: a cold jail on cgroup v1 gets its
// cgroups while the helper already builds it (join-later). When making them
// fails there, Start returns the SetupError and the helper ends the jail it
// started: no process, mount, cgroup, fd or goroutine is left.
func TestFaultCgroupFailsWhileJailIsBuilt(t *testing.T) {
	testenv.RequireRoot(t)
	if kind, err := cgroup.Planned(cgroup.Options{}); err != nil || kind != cgroup.Cgroup1 {
		t.Skipf("the limiter here is %q (%v): join-later is cgroup v1's", kind, err)
	}
	made := 0
	supervisor.SetNewLimiter(func(lim cgroup.Limits, opt cgroup.Options) (cgroup.Limiter, error) {
		l, err := cgroup.New(lim, opt)
		if err == nil {
			made++
			l.Close()
			err = errors.New("injected: no room for another cgroup")
		}
		return nil, err
	})
	t.Cleanup(func() { supervisor.SetNewLimiter(nil) })
	snap := hostile.Snapshot(hostileIDs())
	fds, gor := fdCount(), runtime.NumGoroutine()
	cmd := Command(context.Background(), Config{}, "/bin/true")
	err := cmd.Run()
	var se *SetupError
	require.ErrorAs(t, err, &se, "want a SetupError, got %v", err)
	assert.Equal(t, "create cgroup", se.Step)
	assert.Contains(t, se.Err.Error(), "injected")
	assert.Equal(t, 1, made, "the cgroups are made once, after the spec went out")
	assert.Empty(t, hostile.SettleLeaks(snap, hostileIDs(), 2*time.Second, os.Getpid()))
	assertFds(t, fds)
	assertGoroutines(t, gor)

	// The same supervisor runs the next jail as usual.
	supervisor.SetNewLimiter(nil)
	require.NoError(t, Command(context.Background(), Config{}, "/bin/true").Run())
}

// fdCount counts the supervisor's fds but its root templates' (a cache that
// comes and goes with the jails' configurations, roottemplate.go).
func fdCount() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents) - int(supervisor.TemplatesOpen())
}

// TestFaultStdio: the program closes stdout early, never reads its stdin,
// or the caller's writer fails: no hang, and nothing left.
func TestFaultStdio(t *testing.T) {
	testenv.RequireRoot(t)
	snap := hostile.Snapshot(hostileIDs())
	fds, gor := fdCount(), runtime.NumGoroutine()

	t.Run("stdout closed early", func(t *testing.T) {
		var out, errb strings.Builder
		cmd := Command(context.Background(), Config{Timeout: 10 * time.Second}, "/bin/sh", "-c", "echo before; exec >&-; sleep 0.2; echo after >&2; echo lost || echo write-failed >&2")
		cmd.Stdout, cmd.Stderr = &out, &errb
		require.NoError(t, cmd.Run())
		assert.Equal(t, "before\n", out.String())
		assert.Contains(t, errb.String(), "after\n")
		assert.Contains(t, errb.String(), "write-failed\n")
	})

	t.Run("stdin never read", func(t *testing.T) {
		// An endless reader: the copier must stop when the jail is gone.
		cmd := Command(context.Background(), Config{Timeout: 10 * time.Second}, "/bin/sh", "-c", "sleep 0.1; exit 3")
		cmd.Stdin = endless{}
		start := time.Now()
		err := cmd.Run()
		var ee *ExitError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, 3, cmd.Result.ExitCode)
		assert.Less(t, time.Since(start), 5*time.Second)
	})

	t.Run("stdin never ends", func(t *testing.T) {
		// A reader that blocks forever and is never read from by the program.
		pr, pw := io.Pipe()
		defer pw.Close()
		cmd := Command(context.Background(), Config{Timeout: 10 * time.Second}, "/bin/true")
		cmd.Stdin = pr
		start := time.Now()
		require.NoError(t, cmd.Run())
		assert.Less(t, time.Since(start), 5*time.Second)
		pw.Close() // the caller ends its reader: the copier goes away
	})

	t.Run("stdin file never closed", func(t *testing.T) {
		r, w, err := os.Pipe()
		require.NoError(t, err)
		defer r.Close()
		defer w.Close()
		cmd := Command(context.Background(), Config{Timeout: 10 * time.Second}, "/bin/true")
		cmd.Stdin = r
		start := time.Now()
		require.NoError(t, cmd.Run())
		assert.Less(t, time.Since(start), 5*time.Second)
	})

	t.Run("caller's writer fails", func(t *testing.T) {
		// The consumer of the output went away while the program floods.
		cmd := Command(context.Background(), Config{Timeout: 3 * time.Second}, "/usr/bin/yes")
		cmd.Stdout = failingWriter{}
		start := time.Now()
		err := cmd.Run()
		require.Error(t, err)
		assert.Less(t, time.Since(start), 6*time.Second, "no hang")
		t.Logf("a flood into a failed writer ends as %s after %v", cmd.Result.Reason, time.Since(start).Round(time.Millisecond))
	})

	assert.Empty(t, hostile.SettleLeaks(snap, hostileIDs(), 2*time.Second, os.Getpid()))
	assertFds(t, fds)
	assertGoroutines(t, gor)
}

// assertGoroutines waits a little for the supervisor's goroutines to come
// back to n.
// assertFds waits a little for the supervisor's fd count to come back to n
// or below: what closes asynchronously (a status pipe at the helper's EOF, a
// spawner being restarted in the background, which may also have been in
// flight when n was counted) is not a leak; what stays open is.
func assertFds(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for fdCount() > n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	assert.LessOrEqual(t, fdCount(), n, "supervisor fds")
}

func assertGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	assert.LessOrEqual(t, runtime.NumGoroutine(), n, "supervisor goroutines")
}

// withoutStale drops the cgroups of dead supervisors from a leak list:
// killing a supervisor leaves them by necessity, until the next start.
func withoutStale(leaks []string) []string {
	var out []string
	for _, l := range leaks {
		if !strings.HasPrefix(l, "stale jail cgroup left") {
			out = append(out, l)
		}
	}
	return out
}

type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'z'
	}
	return len(p), nil
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("consumer gone") }

// TestFaultCLIStdoutClosed: `brig run ... | head -c 10`: the reader of
// brig's stdout goes away while the program floods. brig must end
// promptly, the jail with it, and nothing may be left behind, including
// the jail's cgroup.
func TestFaultCLIStdoutClosed(t *testing.T) {
	testenv.RequireRoot(t)
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	brig := buildBrig(t)
	snap := hostile.Snapshot(hostileIDs())
	cli := exec.Command(brig, "run", "--quiet", "--", "/usr/bin/yes")
	out, err := cli.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cli.Start())
	buf := make([]byte, 10)
	_, err = io.ReadFull(out, buf)
	require.NoError(t, err)
	tree := procTree(cli.Process.Pid)
	out.Close()
	done := make(chan error, 1)
	go func() { done <- cli.Wait() }()
	select {
	case err := <-done:
		t.Logf("brig run ended: %v", err)
	case <-time.After(10 * time.Second):
		_ = cli.Process.Kill()
		t.Fatal("brig run hangs after its stdout was closed")
	}
	deadline := time.Now().Add(time.Second)
	for len(survivors(tree)) > 0 {
		require.True(t, time.Now().Before(deadline), "jail outlived brig run: %v", survivors(tree))
		time.Sleep(10 * time.Millisecond)
	}
	assert.Empty(t, hostile.SettleLeaks(snap, hostileIDs(), 2*time.Second, cli.Process.Pid),
		"brig run must clean up when its stdout closes (it dies of SIGPIPE and leaves the jail's cgroup otherwise)")
}

// openPty opens a pseudo-terminal pair on the host.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	require.NoError(t, err)
	require.NoError(t, unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0))
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	require.NoError(t, err)
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	require.NoError(t, err)
	return m, s
}

// TestFaultTerminalStdin: `brig run` typed in a terminal passes its stdin
// on. The jail may read from it, but must not get the host's terminal
// itself: with it the program reconfigures the user's terminal (echo off,
// raw mode, window size, line discipline) and the change outlives the
// run. TIOCSTI alone is refused by seccomp; everything else on a tty is
// not. A pipe fed from the terminal gives the program its input and
// nothing more.
func TestFaultTerminalStdin(t *testing.T) {
	testenv.RequireRoot(t)
	m, s := openPty(t)
	defer m.Close()
	defer s.Close()
	before, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS)
	require.NoError(t, err)
	ws, err := unix.IoctlGetWinsize(int(s.Fd()), unix.TIOCGWINSZ)
	require.NoError(t, err)
	cmd := Command(context.Background(), Config{Timeout: 10 * time.Second}, "/bin/sh", "-c",
		`stty -echo -icanon 2>/dev/null && echo "stty worked"; stty rows 3 cols 3 2>/dev/null && echo "resize worked"; true`)
	cmd.Stdin = s
	out, err := cmd.Output()
	require.NoError(t, err)
	after, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS)
	require.NoError(t, err)
	ws2, err := unix.IoctlGetWinsize(int(s.Fd()), unix.TIOCGWINSZ)
	require.NoError(t, err)
	t.Logf("program said: %q", out)
	assert.Equal(t, before.Lflag, after.Lflag, "the jailed program changed the host terminal's modes (echo, canonical)")
	assert.Equal(t, *ws, *ws2, "the jailed program resized the host terminal")
}

// TestFaultCLIQuietIsQuiet: `brig run --quiet` shares its stderr with the
// program's; brig's own log lines (the rlimit fallback warning as nobody,
// the stale-cgroup notice as root) must not be mixed into it.
func TestFaultCLIQuietIsQuiet(t *testing.T) {
	testenv.RequireRoot(t)
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	asNobody := testenv.AsNobody(t)
	brig := buildBrig(t)
	cmd := exec.Command(asNobody[0], append(asNobody[1:], brig, "run", "--quiet", "--", "/bin/sh", "-c", "echo program >&2")...)
	cmd.Dir = "/"
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Run())
	assert.Equal(t, "program\n", stderr.String(), "brig --quiet printed its own lines into the program's stderr")
}

// TestFaultCLISignaled: every signal brig run can catch ends in a clean
// teardown: the jail's processes end and its cgroups are removed by this
// brig run itself, not left for the next one.
func TestFaultCLISignaled(t *testing.T) {
	testenv.RequireRoot(t)
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	brig := buildBrig(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT} {
		t.Run(sig.String(), func(t *testing.T) {
			before := hostile.Snapshot(hostileIDs())
			cli := startCLIUntilUp(t, brig, "echo up; sleep 300")
			require.NoError(t, cli.Process.Signal(sig))
			err := cli.Wait()
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee, "brig run must report the canceled program")
			assert.True(t, ee.Exited(), "brig run died of %v instead of tearing the jail down: %v", sig, err)
			assert.Empty(t, jailCgroups(cli.Process.Pid), "brig run left its jail's cgroups")
			assert.Empty(t, withoutStale(hostile.SettleLeaks(before, hostileIDs(), time.Second)))
		})
	}
}

// startCLIUntilUp starts `brig run --quiet -- /bin/sh -c script` and returns
// once the jailed script has printed its first line, "up".
func startCLIUntilUp(t *testing.T, brig, script string) *exec.Cmd {
	t.Helper()
	cli := exec.Command(brig, "run", "--quiet", "--", "/bin/sh", "-c", script)
	out, err := cli.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cli.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "up\n", line)
	return cli
}
