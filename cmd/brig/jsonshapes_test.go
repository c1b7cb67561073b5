package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/cgroup"
	"github.com/brig-sandbox/brig/egress"
	"github.com/brig-sandbox/brig/jail"
	"github.com/brig-sandbox/brig/session"
)

// The CLI's JSON is a contract with the programs that read it. These are
// the bytes brig wrote when the shapes were still json tags on jail.Result
// and session.CellResult; the shapes moved to cmd/brig without changing them.
// egress_refused came later, with --net proxy (issue 21), omitted when empty
// (in a cell's line: the refusals since the previous cell).
const (
	goldenResultFull = `{
  "exit_code": -1,
  "signal": 31,
  "reason": "seccomp",
  "peak_memory_bytes": 4096,
  "wall_time_ms": 1500,
  "cpu_time_ms": 250,
  "stdout_truncated": true,
  "stderr_truncated": false,
  "limiter": "cgroup1",
  "oom_kills": 2,
  "pids_limit_hits": 3,
  "seccomp_syscall": "unshare",
  "seccomp_logged": [
    "ptrace",
    "mount"
  ],
  "egress_refused": [
    {
      "host": "other.example.net",
      "port": 443,
      "reason": "not on the allow list",
      "count": 2
    },
    {
      "host": "",
      "reason": "too many connections at once",
      "count": 1
    }
  ]
}
`
	goldenResultBare = `{
  "exit_code": 0,
  "signal": 0,
  "reason": "exited",
  "peak_memory_bytes": 0,
  "wall_time_ms": 0,
  "cpu_time_ms": 0,
  "stdout_truncated": false,
  "stderr_truncated": false,
  "limiter": "rlimit",
  "oom_kills": 0,
  "pids_limit_hits": 0
}
`
	goldenCellFull = `{"id":"c1","status":"error","stdout":"o","stderr":"e","value":"42","error":{"type":"T","message":"m","traceback":"tb"},"exit_code":3,"reason":"why","wall_time_ms":1500,"cpu_time_ms":250,"stdout_truncated":true,"stderr_truncated":true,"egress_refused":[{"host":"other.example.net","port":443,"reason":"not on the allow list","count":1}]}`
	goldenCellBare = `{"id":null,"status":"ok","stdout":"","stderr":"","value":null,"error":null,"exit_code":null,"reason":"","wall_time_ms":0,"cpu_time_ms":0,"stdout_truncated":false,"stderr_truncated":false}`
)

// --result writes the same bytes as before, through the result file's own
// path (a fresh file renamed over the name); durations are cut to whole
// milliseconds, never rounded up.
func TestResultJSONGolden(t *testing.T) {
	full := &jail.Result{ExitCode: -1, Signal: 31, Reason: jail.ReasonSeccomp, WallTime: 1500*time.Millisecond + 999*time.Microsecond,
		CPUTime: 250 * time.Millisecond, PeakMemory: 4096, StdoutTruncated: true, Limiter: cgroup.Cgroup1, OOMKills: 2, PidsLimitHits: 3,
		SeccompSyscall: "unshare", SeccompLogged: []string{"ptrace", "mount"},
		EgressRefused: []egress.Refusal{{Host: "other.example.net", Port: 443, Reason: "not on the allow list", Count: 2},
			{Reason: "too many connections at once", Count: 1}}}
	bare := &jail.Result{Reason: jail.ReasonExited, Limiter: cgroup.RlimitOnly}
	for name, tc := range map[string]struct {
		r    *jail.Result
		want string
	}{"full": {full, goldenResultFull}, "bare": {bare, goldenResultBare}} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "r.json")
			f, err := openResultFile(path)
			require.NoError(t, err)
			defer f.close()
			require.NoError(t, f.commit(tc.r))
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(b))
		})
	}
}

func TestCellJSONGolden(t *testing.T) {
	id, v, code := "c1", "42", 3
	full := &session.CellResult{Status: session.CellError, Stdout: "o", Stderr: "e", Value: &v,
		Error: &session.CellException{Type: "T", Message: "m", Traceback: "tb"}, ExitCode: &code, Reason: "why",
		WallTime: 1500 * time.Millisecond, CPUTime: 250*time.Millisecond + 999*time.Microsecond, StdoutTruncated: true, StderrTruncated: true,
		EgressRefused: []egress.Refusal{{Host: "other.example.net", Port: 443, Reason: "not on the allow list", Count: 1}}}
	b, err := json.Marshal(newCellJSON(&id, full))
	require.NoError(t, err)
	assert.Equal(t, goldenCellFull, string(b))
	b, err = json.Marshal(newCellJSON(nil, &session.CellResult{Status: session.CellOK}))
	require.NoError(t, err)
	assert.Equal(t, goldenCellBare, string(b))
}

// jsonType names the JSON type of a decoded value.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "bool"
	case float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "?"
}

// assertShape checks that m has exactly the keys of shape, each of one of
// the JSON types listed for it.
func assertShape(t *testing.T, shape map[string][]string, m map[string]any) {
	t.Helper()
	var keys, want []string
	for k := range m {
		keys = append(keys, k)
	}
	for k := range shape {
		want = append(want, k)
	}
	slices.Sort(keys)
	slices.Sort(want)
	assert.Equal(t, want, keys, "%v", m)
	for k, v := range m {
		if types, ok := shape[k]; ok {
			assert.Contains(t, types, jsonType(v), "key %s: %v", k, m)
		}
	}
}

var resultShape = map[string][]string{
	"exit_code": {"number"}, "signal": {"number"}, "reason": {"string"}, "peak_memory_bytes": {"number"},
	"wall_time_ms": {"number"}, "cpu_time_ms": {"number"}, "stdout_truncated": {"bool"}, "stderr_truncated": {"bool"},
	"limiter": {"string"}, "oom_kills": {"number"}, "pids_limit_hits": {"number"},
}

// A real run's --result has the keys and types of the contract: the
// optional seccomp keys only when they say something.
func TestRunResultJSONShape(t *testing.T) {
	dir := t.TempDir()
	res := filepath.Join(dir, "r.json")
	code, _, stderr := runCLI(t, "--result", res, "--", "/bin/true")
	require.Equal(t, 0, code, stderr)
	b, err := os.ReadFile(res)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	assertShape(t, resultShape, m)
	assert.Contains(t, []string{"cgroup2", "cgroup1", "rlimit"}, m["limiter"])

	code, _, stderr = runCLI(t, "--result", res, "--seccomp-kill", "--", "/usr/bin/python3", "-c", "import ctypes; ctypes.CDLL(None).unshare(0x10000000)")
	require.Equal(t, 128+31, code, stderr)
	b, err = os.ReadFile(res)
	require.NoError(t, err)
	m = nil
	require.NoError(t, json.Unmarshal(b, &m))
	assert.Equal(t, "seccomp", m["reason"])
	// The call is named when the kernel's record could be read (kmsg,
	// under printk's rate limit); the key is left out otherwise.
	if sc, ok := m["seccomp_syscall"]; ok {
		assert.Equal(t, "unshare", sc)
		delete(m, "seccomp_syscall")
	}
	assertShape(t, resultShape, m)
}

// Every JSONL result line, of a value, an exception, a shell status and a
// malformed request, has the keys and types of the contract.
func TestJSONLResultShape(t *testing.T) {
	cellShape := map[string][]string{
		"id": {"string", "null"}, "status": {"string"}, "stdout": {"string"}, "stderr": {"string"},
		"value": {"string", "null"}, "error": {"object", "null"}, "exit_code": {"number", "null"}, "reason": {"string"},
		"wall_time_ms": {"number"}, "cpu_time_ms": {"number"}, "stdout_truncated": {"bool"}, "stderr_truncated": {"bool"},
	}
	errorShape := map[string][]string{"type": {"string"}, "message": {"string"}, "traceback": {"string"}}
	serve := func(kind, in string) []map[string]any {
		var out bytes.Buffer
		serveJSONL(context.Background(), newSession(t, kind), strings.NewReader(in), &out, 10*time.Second)
		return decodeAll(t, out.String())
	}
	py := serve("python", `{"id": "v", "code": "1 + 1"}`+"\n"+`{"id": "e", "code": "1/0"}`+"\n"+"not json\n")
	require.Len(t, py, 3)
	sh := serve("shell", `{"id": "s", "code": "(exit 3)"}`+"\n")
	require.Len(t, sh, 1)
	for _, m := range append(py, sh...) {
		assertShape(t, cellShape, m)
		if e, ok := m["error"].(map[string]any); ok {
			assertShape(t, errorShape, e)
		}
	}
	assert.Equal(t, "2", py[0]["value"])
	assert.Equal(t, "ZeroDivisionError", py[1]["error"].(map[string]any)["type"])
	assert.Equal(t, "ProtocolError", py[2]["error"].(map[string]any)["type"])
	assert.Nil(t, py[2]["id"])
	assert.Equal(t, 3.0, sh[0]["exit_code"])
}
