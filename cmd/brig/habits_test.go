package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// captureStdout runs fn with os.Stdout sent to a file and returns what it wrote.
func captureStdout(t *testing.T, fn func()) string {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "stdout"))
	require.NoError(t, err)
	saved := os.Stdout
	os.Stdout = f
	fn()
	os.Stdout = saved
	b, err := os.ReadFile(f.Name())
	require.NoError(t, err)
	return string(b)
}

// -h goes to stdout, and names each default once (a size or duration flag
// whose usage text names its default printed "(default 0)" after it).
func TestHelpOnStdoutDefaultsOnce(t *testing.T) {
	var err error
	out := captureStdout(t, func() { _, err = parseRunFlags([]string{"-h"}) })
	require.ErrorIs(t, err, flag.ErrHelp)
	assert.Contains(t, out, "Usage: brig run")
	assert.Contains(t, out, "-memory")
	assert.NotRegexp(t, regexp.MustCompile(`\(default [^)]*\).*\(default`), out)
	assert.NotContains(t, out, "(default 0)")
}

// A bad flag is one line naming it and pointing to --help, and brig's own
// failure (125), not a page of usage.
func TestBadFlagIsOneLine(t *testing.T) {
	code, out, stderr := runCLI(t, "--bogus", "--", "/bin/true")
	assert.Equal(t, exitBrigFailed, code)
	assert.Empty(t, out)
	assert.Equal(t, 1, strings.Count(stderr, "\n"), stderr)
	assert.Contains(t, stderr, "-bogus")
	assert.Contains(t, stderr, "brig run --help")
}

func TestUnknownCommandAndVersion(t *testing.T) {
	bin := buildBrig(t)
	cmd := exec.Command(bin, "frobnicate")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, exitBrigFailed, ee.ExitCode())
	assert.Equal(t, 1, strings.Count(stderr.String(), "\n"), stderr.String())

	for _, arg := range []string{"version", "--version"} {
		out, err := exec.Command(bin, arg).Output()
		require.NoError(t, err)
		assert.Regexp(t, `(?m)^brig \S+\ncommit: \S+.*\ngo: go1\.\d+.*\nlibseccomp: \d+\.\d+\.\d+\n$`, string(out))
	}
}

// The result file is opened before the program runs: an unwritable one is
// brig's failure at once, and the program never runs.
func TestResultOpenedFirst(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "ran")
	code, _, stderr := runCLI(t, "--bind", filepath.Dir(marker)+":/m", "--result", "/nonexistent-dir/r.json", "--",
		"/bin/sh", "-c", "touch /m/ran")
	assert.Equal(t, exitBrigFailed, code)
	assert.Contains(t, stderr, "--result")
	assert.NoFileExists(t, marker, "the program ran though its result could not be written")
}

// --result - writes the result to stdout after the program's output;
// --result /dev/stdout keeps what the program wrote there before.
func TestResultToStdout(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: jails use a private host uid range")
	}
	bin := buildBrig(t)
	for _, dest := range []string{"-", "/dev/stdout"} {
		t.Run(dest, func(t *testing.T) {
			outPath := filepath.Join(t.TempDir(), "out")
			f, err := os.Create(outPath)
			require.NoError(t, err)
			cmd := exec.Command(bin, "run", "--result", dest, "--", "/bin/echo", "program output")
			cmd.Stdout = f
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			require.NoError(t, cmd.Run(), stderr.String())
			f.Close()
			b, err := os.ReadFile(outPath)
			require.NoError(t, err)
			first, rest, ok := strings.Cut(string(b), "\n")
			require.True(t, ok, "%q", b)
			assert.Equal(t, "program output", first)
			var r map[string]any
			require.NoError(t, json.Unmarshal([]byte(rest), &r), "%q", rest)
			assert.Equal(t, "exited", r["reason"])
			assert.NoFileExists(t, "-")
		})
	}
}

// --env NAME passes that one host variable through; a NAME the host does
// not have is refused, naming it.
func TestEnvPassThrough(t *testing.T) {
	t.Setenv("BRIG_TEST_PASSED", "from host")
	t.Setenv("BRIG_TEST_NOT_PASSED", "secret")
	code, out, stderr := runCLI(t, "--env", "BRIG_TEST_PASSED", "--env", "B=2", "--",
		"/bin/sh", "-c", `echo "$BRIG_TEST_PASSED|$B|$BRIG_TEST_NOT_PASSED"`)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "from host|2|\n", out)

	code, _, stderr = runCLI(t, "--env", "BRIG_TEST_NO_SUCH_VARIABLE", "--", "/bin/true")
	assert.Equal(t, exitBrigFailed, code)
	assert.Contains(t, stderr, "BRIG_TEST_NO_SUCH_VARIABLE")
}

func TestCheckJSON(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: brig check runs a jail")
	}
	var code int
	out := captureStdout(t, func() { code = checkMain([]string{"--json"}) })
	require.Equal(t, 0, code, out)
	var r map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &r), out)
	assert.Equal(t, true, r["jail_works"])
	cg := r["cgroups"].(map[string]any)
	assert.Contains(t, []any{"cgroup1", "cgroup2", "rlimit"}, cg["limiter"])
	assert.Contains(t, cg["cgroup1"], "parents")
}

// brig's own log lines are one line each with the brig: prefix, from
// warnings up; information such as the stale sweep's count stays out of
// the stderr a jailed program shares with brig.
func TestLogLines(t *testing.T) {
	var b bytes.Buffer
	l := slog.New(newCLIHandler(&b, slog.LevelWarn))
	l.Info("jail: removed cgroups of dead supervisors", "count", 3)
	l.Warn("jail: remove cgroup", "err", "device busy\nsecond line")
	assert.Equal(t, "brig: remove cgroup err=device busy second line\n", b.String())

	saved := slog.Default()
	defer slog.SetDefault(saved)
	b.Reset()
	setLogging(&b, true)
	slog.Error("anything")
	assert.Empty(t, b.String(), "--quiet")
}

// A child killed for memory while the program exits 0: brig run exits 0,
// says what happened in a note, and the result's reason is exited with
// oom_kills counted.
func TestRunChildOOMIsANote(t *testing.T) {
	res := filepath.Join(t.TempDir(), "r.json")
	code, _, stderr := runCLI(t, "--memory", "64M", "--result", res, "--", "/usr/bin/python3", "-c", `
import os
pid = os.fork()
if pid == 0:
    a = []
    while True:
        a.append(bytearray(8 << 20))
os.waitpid(pid, 0)
`)
	if strings.Contains(stderr, "rlimit") {
		t.Skip("no cgroup limiter here: rlimits never OOM-kill")
	}
	assert.Equal(t, 0, code, stderr)
	assert.NotContains(t, stderr, "jail stopped")
	assert.Contains(t, stderr, "brig: in the jail: 1 process(es) killed for memory (oom)")
	b, err := os.ReadFile(res)
	require.NoError(t, err)
	var r map[string]any
	require.NoError(t, json.Unmarshal(b, &r))
	assert.Equal(t, "exited", r["reason"])
	assert.Equal(t, float64(1), r["oom_kills"])
}
