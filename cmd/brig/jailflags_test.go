package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/jail"
)

// --seccomp-kill and --seccomp-log exclude each other, as do either and
// --seccomp none: refused when the flags are read, before any jail, for
// run and session alike. Each alone still runs.
func TestSeccompModeFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--seccomp-kill", "--seccomp-log"},
		{"--seccomp-log", "--seccomp-kill"},
		{"--seccomp", "none", "--seccomp-kill"},
		{"--seccomp", "none", "--seccomp-log"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, out, stderr := runCLI(t, append(args, "--", "/bin/sh", "-c", "echo ran")...)
			assert.Equal(t, exitBrigFailed, code)
			assert.Empty(t, out, "the program must not run")
			assert.Equal(t, 1, strings.Count(stderr, "\n"), stderr)
			if slices.Contains(args, "none") {
				assert.Contains(t, stderr, "--seccomp none with --seccomp-")
			} else {
				assert.Contains(t, stderr, "--seccomp-kill and --seccomp-log exclude each other")
			}

			f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
			require.NoError(t, err)
			saved := os.Stderr
			os.Stderr = f
			sessionOut := captureStdout(t, func() { code = sessionMain(append([]string{"shell", "--jsonl"}, args...)) })
			os.Stderr = saved
			sessionErr, err := os.ReadFile(f.Name())
			require.NoError(t, err)
			assert.Equal(t, exitBrigFailed, code)
			assert.Empty(t, sessionOut)
			assert.Equal(t, stderr, string(sessionErr), "session refuses as run does")
		})
	}
	for _, tc := range []struct {
		args []string
		mode jail.SeccompMode
	}{
		{nil, jail.SeccompEnforce},
		{[]string{"--seccomp-kill"}, jail.SeccompKill},
		{[]string{"--seccomp-log"}, jail.SeccompLog},
		{[]string{"--seccomp", "none"}, jail.SeccompOff},
	} {
		opt, err := parseRunFlags(append(tc.args, "--", "/bin/true"))
		require.NoError(t, err, "%v", tc.args)
		assert.Equal(t, tc.mode, opt.cfg.SeccompMode, "%v", tc.args)
		code, out, stderr := runCLI(t, append(tc.args, "--", "/bin/sh", "-c", "echo ran")...)
		assert.Equal(t, 0, code, "%v: %s", tc.args, stderr)
		assert.Equal(t, "ran\n", out, "%v", tc.args)
	}
}

// --limiter rlimit with --require-cgroups is refused when the flags are
// read, in the CLI's words; each alone runs.
func TestRlimitWithRequireCgroupsRefused(t *testing.T) {
	code, out, stderr := runCLI(t, "--limiter", "rlimit", "--require-cgroups", "--", "/bin/sh", "-c", "echo ran")
	assert.Equal(t, exitBrigFailed, code)
	assert.Empty(t, out, "the program must not run")
	assert.Equal(t, "brig: --limiter rlimit and --require-cgroups exclude each other: drop --require-cgroups to run under rlimits, or pick --limiter auto, cgroup2 or cgroup1\n", stderr)

	code, out, stderr = runCLI(t, "--quiet", "--limiter", "rlimit", "--", "/bin/sh", "-c", "echo ran")
	assert.Equal(t, 0, code, stderr)
	assert.Equal(t, "ran\n", out)
}
