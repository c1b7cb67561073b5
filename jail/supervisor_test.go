package jail

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/brig-sandbox/brig/cgroup"
	"github.com/brig-sandbox/brig/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHelperSupervisor is not a test: the supervisor-death test re-runs the
// test binary into it, to be a supervisor that can be SIGKILLed.
func TestHelperSupervisor(t *testing.T) {
	if os.Getenv("BRIG_TEST_SUPERVISOR") != "1" {
		t.Skip("helper process for TestSupervisorDeathKillsJail")
	}
	cmd := Command(context.Background(), Config{Timeout: time.Minute}, "/bin/sh", "-c", "sleep 300 & sleep 300")
	if err := cmd.Start(); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("started")
	_ = cmd.Wait()
	os.Exit(0)
}

func TestSupervisorDeathKillsJail(t *testing.T) {
	testenv.RequireRoot(t)
	before := countMounts()
	sup := exec.Command(os.Args[0], "-test.run=^TestHelperSupervisor$")
	sup.Env = append(os.Environ(), "BRIG_TEST_SUPERVISOR=1")
	out, err := sup.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, sup.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "started\n", line)
	require.NotEmpty(t, testenv.JailProcesses(testHostIDs().First, testHostIDs().Count), "the jail should be running")

	require.NoError(t, sup.Process.Signal(syscall.SIGKILL))
	_ = sup.Wait()
	killed := time.Now()
	for len(testenv.JailProcesses(testHostIDs().First, testHostIDs().Count)) > 0 {
		require.Less(t, time.Since(killed), testenv.Scaled(time.Second), "jail outlived its supervisor: %v", testenv.JailProcesses(testHostIDs().First, testHostIDs().Count))
		time.Sleep(10 * time.Millisecond)
	}
	assertHostClean(t, before)
}

// TestHelperShortSupervisor is not a test: TestCloseSpawnerLeavesNothing
// re-runs the test binary into it, to be a program that runs a few jails
// one after another, calls CloseSpawner and exits at once. It prints how
// many of its jails' cgroup directories there were before the call.
func TestHelperShortSupervisor(t *testing.T) {
	if os.Getenv("BRIG_TEST_SUPERVISOR") != "short" {
		t.Skip("helper process for TestCloseSpawnerLeavesNothing")
	}
	for range 3 {
		if err := Command(context.Background(), Config{}, "/bin/true").Run(); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
	}
	kept := len(jailCgroups(os.Getpid()))
	CloseSpawner()
	fmt.Println(os.Getpid(), kept)
	os.Exit(0)
}

// A program that runs jails one after another and exits right away leaves
// no cgroup behind once it called CloseSpawner: the ended jails' cgroups it
// kept for reuse (which would otherwise wait 250 ms, or for the next
// supervisor's sweep once it has exited) go with the spawner.
func TestCloseSpawnerLeavesNothing(t *testing.T) {
	testenv.RequireRoot(t)
	if !cgroup.Detect(cgroup.Options{}).Cgroup1.Usable {
		t.Skip("cgroup reuse needs the v1 limiter; this host has no usable cgroup v1")
	}
	before := countMounts()
	// A set is kept only while at most 512 KiB is charged to it: the test
	// needs a run in which one was.
	for try := 0; try < 5; try++ {
		sup := exec.Command(os.Args[0], "-test.run=^TestHelperShortSupervisor$")
		sup.Env = append(os.Environ(), "BRIG_TEST_SUPERVISOR=short")
		out, err := sup.Output()
		require.NoError(t, err, "%s", out)
		var pid, kept int
		_, err = fmt.Sscanf(string(out), "%d %d", &pid, &kept)
		require.NoError(t, err, "%s", out)
		t.Logf("run %d: supervisor %d had %d cgroup directories before CloseSpawner", try+1, pid, kept)
		assert.Empty(t, jailCgroups(pid), "cgroups left by a program that called CloseSpawner")
		if kept > 0 {
			assertHostClean(t, before)
			return
		}
	}
	t.Skip("no ended jail's cgroups were kept for reuse in 5 runs (more than 512 KiB charged each time): nothing for CloseSpawner to remove")
}

// Two Supervisors in one process run jails side by side, each with its own
// spawner and root templates; closing one ends its spawner (no process of
// it is left), closes its templates' fds and removes the cgroups kept for
// reuse, while the other's jail under way runs on and its next jails still
// come from its own spawner.
func TestTwoSupervisors(t *testing.T) {
	testenv.RequireRoot(t)
	before := countMounts()
	opts := SupervisorOptions{HostIDs: testHostIDs()}
	a, b := NewSupervisor(opts), NewSupervisor(opts)
	defer b.Close()
	defer a.Close()

	// Side by side: jails of both, at once, until each has its spawner
	// and, where the kernel can, its template.
	run := func(s *Supervisor, out *[]string) {
		for range 4 {
			o, err := s.Command(context.Background(), Config{}, "/bin/echo", "ok").Output()
			if err != nil {
				*out = append(*out, err.Error())
			} else {
				*out = append(*out, string(o))
			}
		}
	}
	var outA, outB []string
	done := make(chan struct{})
	go func() { run(a, &outA); close(done) }()
	run(b, &outB)
	<-done
	for _, o := range append(outA, outB...) {
		require.Equal(t, "ok\n", o)
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		// A template is built in the background: on a loaded host that
		// takes a while, so the bound is generous (it only ends a hang).
		deadline := time.Now().Add(testenv.Scaled(15 * time.Second))
		for !ok() {
			require.True(t, time.Now().Before(deadline), what)
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("a's spawner runs", func() bool { return a.rt.SpawnerPid() != 0 })
	waitFor("b's spawner runs", func() bool { return b.rt.SpawnerPid() != 0 })
	spA, spB := a.rt.SpawnerPid(), b.rt.SpawnerPid()
	require.NotEqual(t, spA, spB, "each supervisor has a spawner of its own")
	require.NotEqual(t, spawnerPid(), spA)
	require.NotEqual(t, spawnerPid(), spB)
	templates := !a.rt.TemplatesUnsupported() && !b.rt.TemplatesUnsupported()
	if templates {
		for name, s := range map[string]*Supervisor{"a": a, "b": b} {
			waitFor(name+"'s template is built", func() bool {
				return s.rt.OwnTemplatesOpen() > 0 || s.rt.TemplatesUnsupported() || len(s.rt.TemplateFailures()) > 0
			})
			require.Empty(t, s.rt.TemplateFailures(), "%s's template build failed", name)
		}
		templates = !a.rt.TemplatesUnsupported()
	}
	if !templates {
		t.Log("no root templates on this kernel: their part is not checked")
	}

	// A jail of each, from its own spawner, held open by its stdin so
	// that its helper can be looked at.
	startCat := func(s *Supervisor, out *strings.Builder) (*Cmd, *os.File) {
		t.Helper()
		stdin, feed, err := os.Pipe()
		require.NoError(t, err)
		defer stdin.Close()
		c := s.Command(context.Background(), Config{}, "/bin/cat")
		c.Stdin, c.Stdout = stdin, out
		require.NoError(t, c.Start())
		return c, feed
	}
	var catA, out strings.Builder
	ranA, feedA := startCat(a, &catA)
	assert.Equal(t, spA, parentOf(t, parentOf(t, ranA.inst.InitPID())), "a's helper is a fork of a's spawner")
	feedA.Close()
	require.NoError(t, ranA.Wait())
	live, feed := startCat(b, &out)
	assert.Equal(t, spB, parentOf(t, parentOf(t, live.inst.InitPID())), "b's helper is a fork of b's spawner")

	closed := make(chan error, 1)
	go func() { closed <- a.Close() }()
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(testenv.Scaled(5 * time.Second)):
		t.Fatal("a.Close waited for a jail of b")
	}
	assert.ErrorIs(t, syscall.Kill(spA, 0), syscall.ESRCH, "a's closed spawner is left, or not reaped")
	assert.Zero(t, a.rt.SpawnerPid())
	assert.Zero(t, a.rt.OwnTemplatesOpen(), "a template fd of a is left open")
	assert.True(t, a.rt.TemplatesForgotten())
	if templates {
		assert.Positive(t, b.rt.OwnTemplatesOpen(), "a.Close closed b's templates")
	}
	// No cgroup kept for reuse: every jail cgroup of this process left
	// holds a live process (b's cat).
	for _, d := range jailCgroups(os.Getpid()) {
		procs, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if err == nil {
			assert.NotEmpty(t, strings.TrimSpace(string(procs)), "an empty jail cgroup is left after a.Close: %s", d)
		}
	}

	// b is unharmed: its jail under way ends as it should, its spawner
	// still forks its next jail.
	_, err := feed.WriteString("still here\n")
	require.NoError(t, err)
	feed.Close()
	require.NoError(t, live.Wait())
	assert.Equal(t, "still here\n", out.String())
	assert.Equal(t, spB, b.rt.SpawnerPid())
	var outNext strings.Builder
	next, feedNext := startCat(b, &outNext)
	assert.Equal(t, spB, parentOf(t, parentOf(t, next.inst.InitPID())), "b's next helper is a fork of b's spawner")
	feedNext.Close()
	require.NoError(t, next.Wait())

	// And a is usable after Close: its jails exec their helper.
	o, err := a.Command(context.Background(), Config{}, "/bin/echo", "again").Output()
	require.NoError(t, err)
	assert.Equal(t, "again\n", string(o))

	require.NoError(t, b.Close())
	require.NoError(t, a.Close())
	assert.ErrorIs(t, syscall.Kill(spB, 0), syscall.ESRCH, "b's closed spawner is left, or not reaped")
	assert.Zero(t, b.rt.OwnTemplatesOpen(), "a template fd of b is left open")
	assert.Zero(t, a.rt.OwnTemplatesOpen())
	assert.Empty(t, jailCgroups(os.Getpid()), "cgroups kept for reuse are left after Close")
	assert.NotZero(t, spawnerPid(), "the default supervisor's spawner is not the others'")
	assertHostClean(t, before)
}

// A Supervisor's jails take their host ids from its options' range, and a
// Config's HostIDs overrides it for its jail.
func TestSupervisorHostIDs(t *testing.T) {
	testenv.RequireRoot(t)
	base := testHostIDs()
	own := IDRange{First: base.First + 1024, Count: 2} // one pair: the ids are known
	override := IDRange{First: base.First + 1026, Count: 2}
	s := NewSupervisor(SupervisorOptions{HostIDs: own})
	defer s.Close()
	for _, c := range []struct {
		cfg  Config
		want uint32
	}{{Config{}, own.First}, {Config{HostIDs: override}, override.First}} {
		cmd := s.Command(context.Background(), c.cfg, "/bin/true")
		require.NoError(t, cmd.Run())
		assert.Equal(t, c.want, initID(cmd), "init's host id")
		assert.Equal(t, c.want+1, jailID(cmd), "the program's host id")
	}
	cmd := Command(context.Background(), Config{}, "/bin/true")
	require.NoError(t, cmd.Run())
	assert.True(t, initID(cmd) >= base.First && initID(cmd) < base.First+base.Count,
		"the default supervisor's jail has host id %d, outside this test process's range %+v", initID(cmd), base)
}
