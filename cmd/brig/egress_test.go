package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/internal/testenv"
	"github.com/brig-sandbox/brig/internal/testenv/netlab"
)

// The egress flags are refused, in one line and before any jail, when
// they cannot mean what they say: an allow rule without --net proxy, proxy
// mode allowing nothing, an unknown mode, a malformed rule or preset; for
// run and session alike. (The benign side is TestRunEgressEndToEnd.)
func TestEgressFlagsRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--allow", "pypi.org"}, "--allow without --net proxy: the jail has no network to allow anything on; add --net proxy"},
		{[]string{"--allow-preset", "pypi"}, "--allow-preset without --net proxy"},
		{[]string{"--deny", "ads.example.com"}, "--deny without --net proxy"},
		{[]string{"--egress-idle", "5s"}, "--egress-idle without --net proxy"},
		{[]string{"--net", "proxy"}, "--net proxy allows nothing without --allow HOST[:PORT] or --allow-preset NAME"},
		{[]string{"--net", "proxy", "--deny", "x.example.com"}, "--net proxy allows nothing"},
		{[]string{"--net", "host"}, `--net "host": want none (lo alone) or proxy`},
		{[]string{"--net", "proxy", "--allow", "*.com"}, "would allow a whole top-level domain"},
		{[]string{"--net", "proxy", "--allow-preset", "nosuch"}, "no such preset"},
		{[]string{"--net", "proxy", "--allow", "pypi.org", "--egress-concurrent", "0"}, "want a positive whole number"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, stderr := runCLI(t, append(tc.args, "--", "/bin/sh", "-c", "echo ran")...)
			assert.Equal(t, exitBrigFailed, code)
			assert.Empty(t, out, "the program must not run")
			assert.Equal(t, 1, strings.Count(stderr, "\n"), stderr)
			assert.Contains(t, stderr, tc.want)

			f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
			require.NoError(t, err)
			saved := os.Stderr
			os.Stderr = f
			sessionOut := captureStdout(t, func() { code = sessionMain(append([]string{"shell", "--jsonl"}, tc.args...)) })
			os.Stderr = saved
			sessionErr, err := os.ReadFile(f.Name())
			require.NoError(t, err)
			assert.Equal(t, exitBrigFailed, code)
			assert.Empty(t, sessionOut)
			assert.Equal(t, stderr, strings.Replace(string(sessionErr), "brig session shell --help", "brig run --help", 1), "session refuses as run does")
		})
	}
}

// egressProgram fetches an allowed URL and one not on the list, through
// the proxy variables alone.
const egressProgram = `
import urllib.request
print(urllib.request.urlopen("https://198.51.100.2/", timeout=60).read().decode().strip())
try:
    urllib.request.urlopen("https://other.example.net/", timeout=60)
    print("other reached")
except Exception as e:
    print("other refused:", e)
`

// TestRunEgressEndToEnd: `brig run --net proxy --allow ADDRESS` (an
// address: the CLI resolves through the system, which knows no test name)
// fetches from the test internet under the test CA; the refusal is on
// stderr and in --result's egress_refused. Then the same as nobody, from
// the built binary: the proxy needs no privilege.
func TestRunEgressEndToEnd(t *testing.T) {
	testenv.RequireRoot(t)
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skipf("needs /usr/bin/python3: %v", err)
	}
	in := netlab.Start(t)
	// A CA file nobody can read too.
	dir, err := os.MkdirTemp("", "brig-egress-")
	require.NoError(t, err)
	defer os.RemoveAll(dir)
	require.NoError(t, os.Chmod(dir, 0o755))
	ca := filepath.Join(dir, "ca.pem")
	b, err := os.ReadFile(in.CAFile)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(ca, b, 0o644))
	args := []string{"--net", "proxy", "--allow", "198.51.100.2", "--ro-bind", ca + ":/etc/brig-ca.pem",
		"--env", "SSL_CERT_FILE=/etc/brig-ca.pem", "--timeout", "120s"}
	check := func(t *testing.T, code int, stdout, stderr string) {
		t.Helper()
		require.Equal(t, 0, code, stderr)
		assert.Contains(t, stdout, "hello from the test internet, host 198.51.100.2")
		assert.Contains(t, stdout, "other refused:")
		assert.Contains(t, stdout, "403")
		assert.Contains(t, stderr, "brig: egress refused other.example.net:443 (not on the allow list")
	}

	t.Run("root", func(t *testing.T) {
		code, stdout, stderr := runCLI(t, append(args, "--result", "-", "--", "/usr/bin/python3", "-c", egressProgram)...)
		check(t, code, stdout, stderr)
		var res struct {
			EgressRefused []struct {
				Host   string `json:"host"`
				Port   int    `json:"port"`
				Reason string `json:"reason"`
				Count  int    `json:"count"`
			} `json:"egress_refused"`
		}
		i := strings.Index(stdout, "{")
		require.GreaterOrEqual(t, i, 0, stdout)
		require.NoError(t, json.Unmarshal([]byte(stdout[i:]), &res), stdout)
		require.Len(t, res.EgressRefused, 1)
		assert.Equal(t, "other.example.net", res.EgressRefused[0].Host)
		assert.Equal(t, 443, res.EgressRefused[0].Port)
		assert.Equal(t, 1, res.EgressRefused[0].Count)
	})

	t.Run("nobody", func(t *testing.T) {
		asNobody := testenv.AsNobody(t)
		bin := buildBrig(t)
		require.NoError(t, os.Chmod(filepath.Dir(bin), 0o711))
		for _, limiter := range []string{"auto", "rlimit"} {
			cmd := exec.Command(asNobody[0], append(append(asNobody[1:], bin, "run", "--limiter", limiter), append(args, "--", "/usr/bin/python3", "-c", egressProgram)...)...)
			cmd.Dir = dir
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			_ = cmd.Run()
			check(t, cmd.ProcessState.ExitCode(), stdout.String(), stderr.String())
		}
	})
}

// TestSessionEgressEndToEnd: `brig session python --jsonl --net proxy`
// fetches an allowed URL in one cell; the next cell's refused fetch has
// egress_refused in its result line (and the cells around it have none);
// at the session's end brig says the refusal on stderr, as brig run does.
func TestSessionEgressEndToEnd(t *testing.T) {
	testenv.RequireRoot(t)
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skipf("needs /usr/bin/python3: %v", err)
	}
	in := netlab.Start(t)
	dir := t.TempDir()
	var input strings.Builder
	for i, code := range []string{
		"import ssl, urllib.request\nctx = ssl.create_default_context(cafile='/etc/brig-ca.pem')\nget = lambda u: urllib.request.urlopen(u, timeout=60, context=ctx).read().decode().strip()\nget('https://198.51.100.2/')",
		"get('https://other.example.net/')",
		"get('https://198.51.100.2/')",
	} {
		line, err := json.Marshal(map[string]string{"id": fmt.Sprint(i), "code": code, "timeout": "120s"})
		require.NoError(t, err)
		input.Write(append(line, '\n'))
	}
	stdinPath := filepath.Join(dir, "in")
	require.NoError(t, os.WriteFile(stdinPath, []byte(input.String()), 0o600))
	stdin, err := os.Open(stdinPath)
	require.NoError(t, err)
	defer stdin.Close()
	outF, err := os.Create(filepath.Join(dir, "out"))
	require.NoError(t, err)
	errF, err := os.Create(filepath.Join(dir, "err"))
	require.NoError(t, err)
	savedIn, savedOut, savedErr := os.Stdin, os.Stdout, os.Stderr
	os.Stdin, os.Stdout, os.Stderr = stdin, outF, errF
	code := sessionMain([]string{"python", "--jsonl", "--net", "proxy", "--allow", "198.51.100.2", "--ro-bind", in.CAFile + ":/etc/brig-ca.pem"})
	os.Stdin, os.Stdout, os.Stderr = savedIn, savedOut, savedErr
	stdout, _ := os.ReadFile(outF.Name())
	stderr, _ := os.ReadFile(errF.Name())
	require.Equal(t, 0, code, string(stderr))

	type refusal struct {
		Host   string `json:"host"`
		Port   int    `json:"port"`
		Reason string `json:"reason"`
		Count  int    `json:"count"`
	}
	type cell struct {
		ID            string    `json:"id"`
		Status        string    `json:"status"`
		Value         string    `json:"value"`
		EgressRefused []refusal `json:"egress_refused"`
	}
	var cells []cell
	dec := json.NewDecoder(strings.NewReader(string(stdout)))
	for dec.More() {
		var c cell
		require.NoError(t, dec.Decode(&c), string(stdout))
		cells = append(cells, c)
	}
	require.Len(t, cells, 3, string(stdout))
	assert.Equal(t, "ok", cells[0].Status, string(stdout))
	assert.Contains(t, cells[0].Value, "hello from the test internet")
	assert.Empty(t, cells[0].EgressRefused)
	assert.Equal(t, "error", cells[1].Status)
	require.Len(t, cells[1].EgressRefused, 1, string(stdout))
	assert.Equal(t, "other.example.net", cells[1].EgressRefused[0].Host)
	assert.Equal(t, 443, cells[1].EgressRefused[0].Port)
	assert.Contains(t, cells[1].EgressRefused[0].Reason, "not on the allow list")
	assert.Equal(t, "ok", cells[2].Status)
	assert.Empty(t, cells[2].EgressRefused, "a cell lists only the refusals since the previous one")
	assert.Contains(t, string(stderr), "brig: egress refused other.example.net:443 (not on the allow list")
	assert.Equal(t, 1, strings.Count(string(stderr), "brig: egress refused"), string(stderr))
}
