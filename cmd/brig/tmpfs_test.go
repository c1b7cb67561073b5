package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/internal/testenv"
)

// brig run --tmpfs PATH (repeatable): a fresh, empty directory the program
// writes, sharing --tmpfs-size; a bad path is refused before anything
// runs, as is Docker's PATH:OPTIONS form (never a path named "PATH:OPTIONS").
func TestRunTmpfs(t *testing.T) {
	code, out, stderr := runCLI(t, "--tmpfs", "/var/brig-cli-tmpfs", "--tmpfs", "/home/brig/.cache", "--tmpfs-size", "2M", "--",
		"/bin/sh", "-c", `ls -A /var/brig-cli-tmpfs /home/brig/.cache; echo hi > /var/brig-cli-tmpfs/f && cat /var/brig-cli-tmpfs/f
head -c 3000000 /dev/zero > /home/brig/.cache/big 2>/dev/null || echo full`)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "/home/brig/.cache:\n\n/var/brig-cli-tmpfs:\nhi\nfull\n", out)
	_, err := os.Stat("/var/brig-cli-tmpfs")
	assert.ErrorIs(t, err, os.ErrNotExist, "made on the host")

	for arg, want := range map[string]string{
		"/run:size=64m": "brig takes a PATH alone, without :OPTIONS",
		"/proc/x":       "tmpfs /proc/x: must be a directory outside /, /proc, /dev, /sys",
		"cache":         `tmpfs "cache": must be an absolute path`,
	} {
		code, out, stderr := runCLI(t, "--tmpfs", arg, "--", "/bin/echo", "ran")
		assert.Equal(t, exitBrigFailed, code, arg)
		assert.Empty(t, out, arg)
		assert.Contains(t, stderr, want, arg)
		assert.Equal(t, 1, strings.Count(stderr, "\n"), stderr)
	}
}

// brig session takes --tmpfs too.
func TestSessionTmpfs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a session through the built CLI")
	}
	requireRootCLI(t)
	bin := buildBrig(t)
	cmd := exec.Command(bin, "session", "shell", "--jsonl", "--quiet", "--tmpfs", "/var/brig-cli-tmpfs")
	cmd.Stdin = strings.NewReader(`{"id":"a","code":"ls -A /var/brig-cli-tmpfs; echo kept > /var/brig-cli-tmpfs/f"}` + "\n" +
		`{"id":"b","code":"cat /var/brig-cli-tmpfs/f"}` + "\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	var res []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		res = append(res, m)
	}
	require.Len(t, res, 2, stdout.String())
	assert.Equal(t, "", res[0]["stdout"], "empty at the start")
	assert.Equal(t, float64(0), res[0]["exit_code"], res[0])
	assert.Equal(t, "kept\n", res[1]["stdout"], "the session's cells share it")
	_, err := os.Stat("/var/brig-cli-tmpfs")
	assert.ErrorIs(t, err, os.ErrNotExist, "made on the host")
}

// Unprivileged (brig run as nobody: init in a user namespace of nobody's),
// --tmpfs works the same and shares the size.
func TestRunTmpfsUnprivileged(t *testing.T) {
	nobody := testenv.AsNobody(t)
	bin := buildBrig(t)
	require.NoError(t, os.Chmod(filepath.Dir(bin), 0o711))
	cmd := exec.Command(nobody[0], append(nobody[1:], bin, "run", "--quiet",
		"--tmpfs", "/var/brig-cli-tmpfs", "--tmpfs", "/tmp/x", "--tmpfs-size", "2M", "--", "/bin/sh", "-c",
		`id -u; ls -A /var/brig-cli-tmpfs /tmp/x; echo hi > /var/brig-cli-tmpfs/f && cat /var/brig-cli-tmpfs/f
head -c 3000000 /dev/zero > /tmp/x/big 2>/dev/null || echo full`)...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	assert.Equal(t, "1000\n/tmp/x:\n\n/var/brig-cli-tmpfs:\nhi\nfull\n", stdout.String())
	_, err := os.Stat("/var/brig-cli-tmpfs")
	assert.ErrorIs(t, err, os.ErrNotExist, "made on the host")
}
