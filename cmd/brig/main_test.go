package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/brig-sandbox/brig/cgroup"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMain leaves the host's cgroups as it found them: the jails' parent
// cgroups (one per hierarchy, made by the first jail) are removed at the
// end, as the jail package's tests do; one still in use stays.
func TestMain(m *testing.M) {
	code := m.Run()
	cgroup.RemoveIdle() // the cgroups the in-process runs kept for reuse
	if built.bin != "" {
		os.RemoveAll(filepath.Dir(built.bin))
	}
	if os.Geteuid() == 0 {
		// EBUSY: another test binary's jails are in it; that one removes it.
		if err := cgroup.RemoveParent(cgroup.Options{}); err != nil && !errors.Is(err, syscall.EBUSY) {
			fmt.Fprintln(os.Stderr, "remove cgroup parents:", err)
		}
	}
	os.Exit(code)
}

// runCLI calls `brig run` in-process with stdout and stderr sent to files.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: jails use a private host uid range")
	}
	dir := t.TempDir()
	outF, err := os.Create(filepath.Join(dir, "out"))
	require.NoError(t, err)
	errF, err := os.Create(filepath.Join(dir, "err"))
	require.NoError(t, err)
	savedOut, savedErr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = outF, errF
	code = runMain(args)
	os.Stdout, os.Stderr = savedOut, savedErr
	o, _ := os.ReadFile(outF.Name())
	e, _ := os.ReadFile(errF.Name())
	return code, string(o), string(e)
}

func TestRunExitStatus(t *testing.T) {
	code, out, _ := runCLI(t, "--", "/bin/sh", "-c", "echo hi; exit 3")
	assert.Equal(t, 3, code)
	assert.Equal(t, "hi\n", out)

	code, _, stderr := runCLI(t, "--timeout", "300ms", "--", "/bin/sleep", "10")
	assert.Equal(t, 128+9, code)
	assert.Contains(t, stderr, "timeout")

	code, _, stderr = runCLI(t, "--quiet", "--timeout", "300ms", "--", "/bin/sleep", "10")
	assert.Equal(t, 128+9, code)
	assert.Empty(t, stderr)

	code, _, stderr = runCLI(t, "--", "/no/such/program")
	assert.Equal(t, exitBrigFailed, code)
	assert.Contains(t, stderr, "brig: jail setup: exec /no/such/program")

	code, _, stderr = runCLI(t, "--memory", "12Q", "--", "/bin/true")
	assert.Equal(t, exitBrigFailed, code)
	assert.Contains(t, stderr, `size "12Q"`)

	code, _, stderr = runCLI(t, "/bin/true", "--bogus")
	assert.Equal(t, 0, code, stderr) // flags end at the first non-flag: --bogus is the program's
}

// Under the rlimit fallback brig run says, in one line of its own, which
// limits it cannot enforce; --quiet silences it, and a run a cgroup limits
// says nothing.
func TestRunSaysWhatRlimitsCannotEnforce(t *testing.T) {
	code, _, stderr := runCLI(t, "--limiter", "rlimit", "--", "/bin/true")
	assert.Equal(t, 0, code, stderr)
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	require.Len(t, lines, 1, "one line, not the library's warning as well: %q", stderr)
	assert.True(t, strings.HasPrefix(lines[0], "brig: rlimits only (as requested): memory is per-process address space"), lines[0])
	assert.Contains(t, lines[0], "--cpus is not enforced")
	assert.LessOrEqual(t, len(lines[0]), 160, "a short line")

	code, _, stderr = runCLI(t, "--quiet", "--limiter", "rlimit", "--", "/bin/true")
	assert.Equal(t, 0, code)
	assert.Empty(t, stderr)

	if kind, err := cgroup.Planned(cgroup.Options{NoFreezer: true, NoCPUAccounting: true}); err != nil || kind == cgroup.RlimitOnly {
		t.Skipf("no usable cgroup here (%v, %v): the quiet side needs one", kind, err)
	}
	code, _, stderr = runCLI(t, "--", "/bin/true")
	assert.Equal(t, 0, code)
	assert.Empty(t, stderr, "a cgroup enforces every limit")
}

func TestRunResultJSON(t *testing.T) {
	res := filepath.Join(t.TempDir(), "r.json")
	code, _, stderr := runCLI(t, "--result", res, "--output-limit", "1K", "--", "/usr/bin/yes")
	assert.Equal(t, 137, code, stderr)
	b, err := os.ReadFile(res)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	for _, k := range []string{"exit_code", "signal", "reason", "wall_time_ms", "cpu_time_ms", "peak_memory_bytes", "stdout_truncated", "stderr_truncated", "limiter"} {
		assert.Contains(t, m, k)
	}
	assert.Equal(t, "output_limit", m["reason"])
	assert.Equal(t, true, m["stdout_truncated"])
}

func TestRunEnvAndBinds(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "f"), []byte("data"), 0o644))
	code, out, stderr := runCLI(t, "--env", "A=1", "--ro-bind", dir+":/in", "--workdir", "/w", "--hostname", "box", "--",
		"/bin/sh", "-c", `echo $A; cat /in/f; echo; pwd; hostname`)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "1\ndata\n/w\nbox\n", out)
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "10": 10, "1K": 1024, "256M": 256 << 20, "2G": 2 << 30, "1MiB": 1 << 20, "3kb": 3072} {
		got, err := parseSize(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "M", "-1", "1.5M", "12Q", "99999999999G"} {
		_, err := parseSize(bad)
		assert.Error(t, err, bad)
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"256M", "1K", "0", "-1", "1e3", "9223372036854775807", "4G"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseSize(s)
		if err == nil && v < 0 {
			t.Fatalf("parseSize(%q) = %d, negative", s, v)
		}
	})
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"10s", "1.5s", "0", "-1s", "1h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDuration(s)
		if err == nil && d <= 0 {
			t.Fatalf("parseDuration(%q) = %v, not positive", s, d)
		}
	})
}

// brig check reports the cgroups as brig's jails use them: no jail uses
// the v1 freezer, so none of its parents is listed.
func TestCheckListsNoFreezer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: brig check runs a jail")
	}
	host := cgroup.Detect(cgroup.Options{})
	if !slices.Contains(host.Cgroup1.Controllers, "freezer") {
		t.Skip("this host has no cgroup v1 freezer hierarchy")
	}
	dir := t.TempDir()
	outF, err := os.Create(filepath.Join(dir, "out"))
	require.NoError(t, err)
	saved := os.Stdout
	os.Stdout = outF
	code := checkMain(nil)
	os.Stdout = saved
	out, err := os.ReadFile(outF.Name())
	require.NoError(t, err)
	assert.Equal(t, 0, code, "%s", out)
	assert.Contains(t, string(out), "cgroup1: usable")
	assert.NotContains(t, string(out), "freezer", "brig's jails never use the freezer")
}
