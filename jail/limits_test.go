package jail

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/cgroup"
	"github.com/brig-sandbox/brig/internal/stage"
	"github.com/brig-sandbox/brig/internal/testenv"
)

// limiters are the kinds this host can run; rlimit always.
func limiters(t *testing.T) []cgroup.Kind {
	kinds := []cgroup.Kind{cgroup.RlimitOnly}
	r := cgroup.Detect(cgroup.Options{})
	if r.Cgroup2.Usable {
		kinds = append(kinds, cgroup.Cgroup2)
	}
	if r.Cgroup1.Usable {
		kinds = append(kinds, cgroup.Cgroup1)
	}
	if len(kinds) == 1 {
		t.Logf("no usable cgroups here (%s): testing the rlimit fallback only", r.Why)
	}
	return kinds
}

// hostResponsive proves the host still schedules a fresh process quickly
// while a bomb runs in a jail.
func hostResponsive(t *testing.T) time.Duration {
	start := time.Now()
	require.NoError(t, exec.Command("/bin/true").Run())
	return time.Since(start)
}

func TestMemoryBomb(t *testing.T) {
	testenv.RequireRoot(t)
	for _, kind := range limiters(t) {
		t.Run(string(kind), func(t *testing.T) {
			cfg := Config{Limiter: kind, Timeout: testenv.Scaled(20 * time.Second)}
			cfg.Limits.Memory = 256 << 20
			_, errOut, r := runPython(t, cfg, `
a = []
while True:
    a.append(bytearray(8 << 20))
`)
			if kind == cgroup.RlimitOnly {
				// RLIMIT_AS: the allocation fails and Python exits with its own error.
				assert.Equal(t, ReasonExited, r.Reason, "%+v", r)
				assert.Equal(t, 1, r.ExitCode)
				assert.Contains(t, errOut, "MemoryError")
			} else {
				assert.Equal(t, ReasonOOM, r.Reason, "%+v %s", r, errOut)
				assert.Equal(t, 9, r.Signal)
			}
			assert.Greater(t, r.PeakMemory, int64(200<<20), "peak memory near the limit")
			assert.LessOrEqual(t, r.PeakMemory, int64(300<<20))

			// The benign side: a program that fits is unaffected.
			out, _, r := runPython(t, cfg, `b = bytearray(64 << 20); print(len(b))`)
			assert.True(t, r.Success())
			assert.Equal(t, "67108864\n", out)
		})
	}
}

func TestForkBombs(t *testing.T) {
	testenv.RequireRoot(t)
	requirePython(t)
	for _, kind := range limiters(t) {
		t.Run(string(kind), func(t *testing.T) {
			before := countMounts()
			cfg := Config{Limiter: kind, Timeout: 3 * time.Second}
			cfg.Limits.Pids = 64
			start := time.Now()
			_, _, r := runPython(t, cfg, `
import time
while True:
    try:
        if os.fork() == 0:
            while True:
                try: os.fork()
                except OSError: time.sleep(0.01)
    except OSError:
        time.sleep(0.01)
`)
			assert.Equal(t, ReasonTimeout, r.Reason)
			assert.Less(t, time.Since(start), testenv.Scaled(10*time.Second))
			assert.Less(t, hostResponsive(t), testenv.Scaled(time.Second))
			assertHostClean(t, before)

			// The shell classic, after the jail proves where it is.
			start = time.Now()
			_, _, r, _ = run(t, cfg, "/bin/bash", "-c", `[ $$ -lt 64 ] && grep -qv '^ *0 *0 ' /proc/self/uid_map || exit 99; b(){ b|b& };b; wait`)
			require.NotEqual(t, 99, r.ExitCode, "not jailed")
			assert.Contains(t, []Reason{ReasonTimeout, ReasonExited, ReasonSignaled}, r.Reason)
			assert.Less(t, time.Since(start), testenv.Scaled(10*time.Second))
			assert.Less(t, hostResponsive(t), testenv.Scaled(time.Second))
			assertHostClean(t, before)

			out, _, r, err := run(t, cfg, "/bin/sh", "-c", "for i in 1 2 3 4 5; do echo $i & done; wait")
			require.NoError(t, err)
			assert.True(t, r.Success())
			assert.Len(t, strings.Fields(out), 5)
		})
	}
}

func TestCPUSpinIsThrottled(t *testing.T) {
	testenv.RequireRoot(t)
	for _, kind := range limiters(t) {
		if kind == cgroup.RlimitOnly {
			continue // no bandwidth control without cgroups
		}
		t.Run(string(kind), func(t *testing.T) {
			cfg := Config{Limiter: kind, Timeout: 2 * time.Second}
			cfg.Limits.CPUs = 0.5
			_, _, r, _ := run(t, cfg, "/bin/sh", "-c", "for i in 1 2 3 4 5 6 7 8; do (while :; do :; done) & done; wait")
			assert.Equal(t, ReasonTimeout, r.Reason)
			// Half a CPU for 2 s is 1 s; the machine has 2 CPUs, so an
			// unthrottled spin would use up to 4 s. No lower bound: a loaded
			// machine gives the jail less, and that is not a failure.
			assert.Less(t, r.CPUTime, 1500*time.Millisecond, "%+v", r)
		})
	}
}

// A cold jail's CPU time comes from the helper's rusage where it has no
// cpuacct cgroup (cgroupOptions): it must count what cpuacct would, the
// program's children included, and a spinner the program left behind,
// which the namespace's end kills and reaps.
func TestCPUTimeFromRusage(t *testing.T) {
	testenv.RequireRoot(t)
	for _, kind := range limiters(t) {
		t.Run(string(kind), func(t *testing.T) {
			const work = "(i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done); (while :; do :; done) & sleep 0.3"
			cfg := Config{Limiter: kind}
			_, _, r, err := run(t, cfg, "/bin/sh", "-c", work)
			require.NoError(t, err)
			cfg.Limits.CPUTime = time.Hour // a budget: measured by the cgroup where there is one
			_, _, measured, err := run(t, cfg, "/bin/sh", "-c", work)
			require.NoError(t, err)
			t.Logf("CPU time without a budget %v, with one %v", r.CPUTime, measured.CPUTime)
			// The spinner alone runs for 0.3 s on a CPU of its own (2 here)
			// unless the machine is busy; the count takes ~0.1 s.
			assert.Greater(t, r.CPUTime, 150*time.Millisecond)
			assert.InDelta(t, measured.CPUTime.Seconds(), r.CPUTime.Seconds(), 0.25)
		})
	}
}

func TestCPUTimeBudget(t *testing.T) {
	testenv.RequireRoot(t)
	for _, kind := range limiters(t) {
		t.Run(string(kind), func(t *testing.T) {
			cfg := Config{Limiter: kind, Timeout: testenv.Scaled(10 * time.Second)}
			cfg.Limits.CPUTime = time.Second
			cfg.Limits.CPUs = 2
			start := time.Now()
			_, _, r, _ := run(t, cfg, "/bin/sh", "-c", "while :; do :; done")
			assert.Equal(t, ReasonCPUTime, r.Reason, "%+v", r)
			assert.Less(t, time.Since(start), cfg.Timeout)

			_, _, r, err := run(t, cfg, "/bin/sh", "-c", "echo fine")
			require.NoError(t, err)
			assert.True(t, r.Success())
		})
	}
}

func TestRequireCgroups(t *testing.T) {
	testenv.RequireRoot(t)
	cfg := Config{Limiter: cgroup.RlimitOnly, RequireCgroups: true}
	_, _, _, err := run(t, cfg, "/bin/true")
	var se *SetupError
	if assert.ErrorAs(t, err, &se) {
		assert.Equal(t, "config", se.Step)
	}
}

func TestResultNamesLimiter(t *testing.T) {
	testenv.RequireRoot(t)
	for _, kind := range limiters(t) {
		cmd := Command(context.Background(), Config{Limiter: kind}, "/bin/true")
		require.NoError(t, cmd.Run())
		assert.Equal(t, kind, cmd.Result.Limiter)
	}
	_ = os.Getpid
}

// On cgroup v1 a cold jail's init moves itself into the jail's cgroups,
// which the supervisor makes while the jail is built (join-later). A
// pooled jail's helper moves itself into them to clone init there; when it
// may not go back home it writes init's pid into cgroup.procs instead.
// Every way, the jail is measured by its cgroup: CPU time and peak memory
// come from the cgroup only when init was placed.
func TestCgroup1Placement(t *testing.T) {
	testenv.RequireRoot(t)
	if !cgroup.Detect(cgroup.Options{}).Cgroup1.Usable {
		t.Skip("no usable cgroup v1 here: the placement under test is v1's")
	}
	before := countMounts()
	const spin = "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; cat /proc/self/cgroup"
	t.Run("join-later", func(t *testing.T) {
		c := Command(context.Background(), Config{Limiter: cgroup.Cgroup1, RequireCgroups: true}, "/bin/sh", "-c", spin)
		var out bytes.Buffer
		c.Stdout = &out
		require.NoError(t, c.Run())
		// A cold jail has no cpuacct cgroup (cgroupOptions): its CPU time
		// is the helper's rusage of init, which counts every process init
		// or the namespace's end reaped.
		assert.Greater(t, c.Result.CPUTime, time.Duration(0), "CPU time from the helper's rusage")
		assert.Greater(t, c.Result.PeakMemory, int64(0), "peak from the memory cgroup")
		assert.Equal(t, cgroup.Cgroup1, c.Result.Limiter)
		// In its own cgroup namespace, entered after the move, the program
		// sees each hierarchy's jail cgroup as the root.
		for _, ctrl := range []string{"memory", "pids", "cpu"} {
			assert.Regexp(t, `(?m)^\d+:[^:]*\b`+ctrl+`\b[^:]*:/$`, out.String(), "%s: %s", ctrl, out.String())
		}
	})
	for _, selfMove := range []bool{true, false} {
		t.Run(fmt.Sprintf("self-move=%v", selfMove), func(t *testing.T) {
			c := Command(context.Background(), Config{Limiter: cgroup.Cgroup1, RequireCgroups: true}, "/bin/sh", "-c", spin)
			c.inst = DefaultSupervisor.rt.Instance(context.Background(), *mustPlan(t, c.Config))
			c.inst.Path, c.inst.Args = c.Path, c.Args
			require.NoError(t, c.inst.StartPrepared(func(s *stage.Spec) {
				require.NotEmpty(t, s.JoinTasks)
				require.Len(t, s.HomeTasks, len(s.JoinTasks))
				if !selfMove {
					for i := range s.HomeTasks {
						s.HomeTasks[i] = "/nonexistent/tasks" // home not writable: cgroup.procs it is
					}
				}
			}))
			require.NoError(t, c.Wait())
			assert.Greater(t, c.Result.CPUTime, time.Duration(0), "CPU time from cpuacct")
			assert.Greater(t, c.Result.PeakMemory, int64(0), "peak from the memory cgroup")
			assert.Equal(t, cgroup.Cgroup1, c.Result.Limiter)
		})
	}
	assertHostClean(t, before)
}
