package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/internal/testenv"
)

func TestTokenPrintsTokenAndHash(t *testing.T) {
	bin := buildBrig(t)
	out, err := exec.Command(bin, "token").Output()
	require.NoError(t, err)
	m := regexp.MustCompile(`^token: (brig_[0-9a-f]{64})\ntoken_sha256: ([0-9a-f]{64})\n$`).FindStringSubmatch(string(out))
	require.NotNil(t, m, "%q", out)
	sum := sha256.Sum256([]byte(m[1]))
	assert.Equal(t, hex.EncodeToString(sum[:]), m[2])
	again, err := exec.Command(bin, "token").Output()
	require.NoError(t, err)
	assert.NotEqual(t, out, again)
	err = exec.Command(bin, "token", "extra").Run()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, exitBrigFailed, ee.ExitCode())
}

// brig serve refuses a bad config with the file and line; a good one
// serves on a unix socket of mode 0660 until SIGTERM, which drains it and
// leaves nothing.
func TestServeCLI(t *testing.T) {
	testenv.RequireRoot(t)
	bin := buildBrig(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("tenants: []\ntemplates: {default: {memroy: 1G}}\n"), 0o600))
	out, err := exec.Command(bin, "serve", "--config", bad).CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, exitBrigFailed, ee.ExitCode())
	assert.Contains(t, string(out), bad+":2: field memroy")

	tokenOut, err := exec.Command(bin, "token").Output()
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(tokenOut)), "\n")
	token, sum := strings.TrimPrefix(lines[0], "token: "), strings.TrimPrefix(lines[1], "token_sha256: ")
	good := filepath.Join(dir, "good.yaml")
	state := filepath.Join(dir, "state")
	require.NoError(t, os.WriteFile(good, []byte(fmt.Sprintf("state_dir: %s\ntenants: [{name: t, token_sha256: %s}]\ntemplates: {default: {memory: 128M}}\n", state, sum)), 0o600))
	sock := filepath.Join(dir, "s.sock")
	srv := exec.Command(bin, "serve", "--config", good, "--listen", "unix:"+sock)
	require.NoError(t, srv.Start())
	defer srv.Process.Kill()
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	deadline := time.Now().Add(testenv.Scaled(20 * time.Second))
	for {
		resp, err := client.Get("http://brig/v1/health")
		if err == nil {
			resp.Body.Close()
			break
		}
		require.True(t, time.Now().Before(deadline), "brig serve did not come up: %v", err)
		time.Sleep(20 * time.Millisecond)
	}
	fi, err := os.Stat(sock)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o660), fi.Mode().Perm())
	req, _ := http.NewRequest("POST", "http://brig/v1/sandboxes", strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 201, resp.StatusCode, "%s", body)
	require.NoError(t, srv.Process.Signal(syscall.SIGTERM))
	require.NoError(t, srv.Wait(), "brig serve exits 0 after a drain")
	entries, err := os.ReadDir(filepath.Join(state, "workspaces"))
	require.NoError(t, err)
	assert.Empty(t, entries, "the drain removed the workspaces")
}
