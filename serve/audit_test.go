package serve

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/brig-sandbox/brig/audit"
	"github.com/brig-sandbox/brig/internal/testenv"
)

// auditRecords reads every record of the log at path.
func auditRecords(t testing.TB, path string) []audit.Record {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	rd := audit.NewReader(f)
	var out []audit.Record
	for {
		rec, _, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		out = append(out, rec)
	}
}

func ofKind(recs []audit.Record, kind audit.Kind) []audit.Record {
	var out []audit.Record
	for _, r := range recs {
		if r.Kind == kind {
			out = append(out, r)
		}
	}
	return out
}

func hexSHA(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// Every kind of event the API makes leaves its record, with the tenant,
// the ids, the request id, the code or command, the verdict and the
// output's size and sha256; the chain verifies.
func TestAuditRecords(t *testing.T) {
	ts := startServer(t, func(s string) string {
		return strings.Replace(s, "tiny: {", "tiny: {record_code: sha256, ", 1) + "audit: {fsync: always}\n"
	})
	logPath := filepath.Join(ts.stateDir, DefaultAuditFile)

	// An auth failure.
	a := ts.do(t, ts.tcp, ts.url, "POST", "/v1/runs", "brig_wrong", map[string]any{"command": []string{"/bin/true"}})
	require.Equal(t, 401, a.status)
	// A run with the client's request id, and one with code under the
	// sha256 setting, streamed.
	a = ts.as(t, "POST", "/v1/runs", map[string]any{"command": []string{"/bin/echo", "hello"}}, "X-Request-Id", "client-req-1")
	require.Equal(t, 200, a.status, "%s", a.body)
	assert.Equal(t, "client-req-1", a.header.Get("X-Request-Id"))
	a = ts.as(t, "POST", "/v1/runs", map[string]any{"language": "python", "code": "print('x' * 10)", "template": "tiny"}, "Accept", NDJSONType)
	require.Equal(t, 200, a.status, "%s", a.body)
	streamedID := a.header.Get("X-Request-Id")
	assert.True(t, strings.HasPrefix(streamedID, "req_"), "a request without an id gets one: %q", streamedID)
	// A client's id that is not short and printable is replaced.
	a = ts.as(t, "GET", "/v1/sandboxes", nil, "X-Request-Id", "bad id\twith tab")
	assert.NotEqual(t, "bad id\twith tab", a.header.Get("X-Request-Id"))
	assert.True(t, strings.HasPrefix(a.header.Get("X-Request-Id"), "req_"))

	sb := ts.newSandbox(t, nil)
	a = ts.as(t, "PUT", "/v1/sandboxes/"+sb+"/files/notes.txt", "some notes")
	require.Equal(t, 200, a.status, "%s", a.body)
	a = ts.as(t, "POST", "/v1/sandboxes/"+sb+"/processes", map[string]any{"command": []string{"/bin/cat", "notes.txt"}})
	require.Equal(t, 200, a.status, "%s", a.body)
	a = ts.as(t, "POST", "/v1/sandboxes/"+sb+"/processes", map[string]any{"command": []string{"/bin/sh", "-c", "echo bg"}, "background": true})
	require.Equal(t, 201, a.status, "%s", a.body)
	pid := a.json(t)["id"].(string)
	a = ts.as(t, "POST", "/v1/sandboxes/"+sb+"/processes/"+pid+"/wait", nil)
	require.Equal(t, 200, a.status, "%s", a.body)
	a = ts.as(t, "DELETE", "/v1/sandboxes/"+sb+"/files/notes.txt", nil)
	require.Equal(t, 200, a.status, "%s", a.body)
	cx := ts.newContext(t, sb, "python")
	a = ts.as(t, "POST", "/v1/sandboxes/"+sb+"/contexts/"+cx+"/execute", map[string]any{"code": "print(6 * 7)"})
	require.Equal(t, 200, a.status, "%s", a.body)
	// A memory bomb kills the interpreter: the record's reason is the
	// session's (oom), not "dead".
	a = ts.as(t, "POST", "/v1/sandboxes/"+sb+"/contexts/"+cx+"/execute", map[string]any{"code": "x = bytearray(1 << 30)"})
	require.Equal(t, 200, a.status, "%s", a.body)
	require.Equal(t, "dead", a.json(t)["status"], "%s", a.body)
	a = ts.as(t, "DELETE", "/v1/sandboxes/"+sb+"/contexts/"+cx, nil)
	require.Equal(t, 200, a.status, "%s", a.body)
	// Over the sandboxes quota (4): a quota refusal.
	for range 3 {
		ts.newSandbox(t, nil)
	}
	a = ts.as(t, "POST", "/v1/sandboxes", map[string]any{})
	require.Equal(t, 429, a.status, "%s", a.body)
	a = ts.as(t, "DELETE", "/v1/sandboxes/"+sb, nil)
	require.Equal(t, 200, a.status, "%s", a.body)

	// The process's record is written when it ends, after its wait
	// answered: wait for it.
	deadline := time.Now().Add(testenv.Scaled(5 * time.Second))
	for len(ofKind(auditRecords(t, logPath), audit.KindProcess)) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	rep, err := audit.Verify(logPath)
	require.NoError(t, err)
	recs := auditRecords(t, logPath)
	assert.Equal(t, len(recs), rep.Records)

	auth := ofKind(recs, audit.KindAuthFailed)
	require.Len(t, auth, 1)
	assert.Empty(t, auth[0].Tenant)
	assert.NotEmpty(t, auth[0].Remote)
	assert.True(t, strings.HasPrefix(auth[0].RequestID, "req_"))

	runs := ofKind(recs, audit.KindRun)
	require.Len(t, runs, 2)
	r := runs[0]
	assert.Equal(t, "alice", r.Tenant)
	assert.Equal(t, "client-req-1", r.RequestID)
	assert.Equal(t, "default", r.Template)
	require.NotNil(t, r.Input)
	assert.Equal(t, []string{"/bin/echo", "hello"}, r.Input.Command)
	require.NotNil(t, r.Verdict)
	assert.Equal(t, "exited", r.Verdict.Reason)
	assert.Equal(t, 0, r.Verdict.ExitCode)
	require.NotNil(t, r.Stdout)
	assert.Equal(t, int64(6), r.Stdout.Bytes)
	assert.Equal(t, hexSHA("hello\n"), r.Stdout.SHA256)
	assert.Positive(t, r.Verdict.PeakMemoryBytes)
	// record_code: sha256 (the tiny template): the hash, never the text;
	// the streamed output hashed as it passed.
	r = runs[1]
	assert.Equal(t, streamedID, r.RequestID)
	require.NotNil(t, r.Input)
	assert.Empty(t, r.Input.Code)
	assert.Equal(t, hexSHA("print('x' * 10)"), r.Input.SHA256)
	assert.Equal(t, hexSHA(strings.Repeat("x", 10)+"\n"), r.Stdout.SHA256)

	creates := ofKind(recs, audit.KindSandboxCreate)
	require.Len(t, creates, 4)
	assert.Equal(t, sb, creates[0].Sandbox)
	fw := ofKind(recs, audit.KindFileWrite)
	require.Len(t, fw, 1)
	assert.Equal(t, &audit.File{Path: "notes.txt", Bytes: 10, SHA256: hexSHA("some notes")}, fw[0].File)
	fd := ofKind(recs, audit.KindFileDelete)
	require.Len(t, fd, 1)
	assert.Equal(t, "notes.txt", fd[0].File.Path)

	procs := ofKind(recs, audit.KindProcess)
	require.Len(t, procs, 2)
	assert.Equal(t, hexSHA("some notes"), procs[0].Stdout.SHA256, "the process read the file the API wrote")
	assert.Equal(t, pid, procs[1].Process, "the background process's record names it")
	assert.Equal(t, hexSHA("bg\n"), procs[1].Stdout.SHA256)
	assert.NotEmpty(t, procs[1].RequestID)

	cells := ofKind(recs, audit.KindCell)
	require.Len(t, cells, 2)
	assert.Equal(t, cx, cells[0].Context)
	assert.Equal(t, "print(6 * 7)", cells[0].Input.Code)
	assert.Equal(t, "python", cells[0].Input.Language)
	assert.Equal(t, "ok", cells[0].Verdict.Reason)
	assert.Equal(t, hexSHA("42\n"), cells[0].Stdout.SHA256)
	assert.Equal(t, "oom", cells[1].Verdict.Reason, "a dead cell's record names what killed it")
	assert.Contains(t, cells[1].Verdict.LimitsHit, "oom_kill")

	require.Len(t, ofKind(recs, audit.KindContextCreate), 1)
	require.Len(t, ofKind(recs, audit.KindContextDelete), 1)
	q := ofKind(recs, audit.KindQuotaRefused)
	require.Len(t, q, 1)
	assert.Equal(t, "sandboxes", q[0].Verdict.Quota)
	assert.Equal(t, "alice", q[0].Tenant)
	del := ofKind(recs, audit.KindSandboxDelete)
	require.Len(t, del, 1)
	assert.Equal(t, sb, del[0].Sandbox)
}

// fullTmpfs mounts a small tmpfs (unmounted at the test's end) for an
// audit log to fill.
func smallTmpfs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=1m,mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fillFile writes path until its file system is full.
func fillFile(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	block := make([]byte, 4096)
	for {
		if _, err := f.Write(block); err != nil {
			require.ErrorIs(t, err, unix.ENOSPC)
			return
		}
	}
}

// A full disk under the audit log: executions are answered 503
// audit_unavailable naming why, and none runs (a run that would write a
// marker into a bound directory writes nothing); once space returns, work
// goes on and the chain holds, with a record of the failures.
func TestAuditDiskFullRefuses(t *testing.T) {
	testenv.RequireRoot(t)
	dir := smallTmpfs(t)
	logPath := filepath.Join(dir, "audit.log")
	markers := t.TempDir()
	require.NoError(t, os.Chmod(markers, 0o777))
	ts := startServer(t, func(s string) string {
		return noPool(s) + "audit: {path: " + logPath + "}\n"
	})
	sb := ts.newSandbox(t, nil)
	a := ts.as(t, "POST", "/v1/runs", map[string]any{"command": []string{"/bin/true"}})
	require.Equal(t, 200, a.status, "%s", a.body)

	fillFile(t, filepath.Join(dir, "filler"))
	// A run whose code would write a marker into the workspace: refused
	// before any jail starts.
	a = ts.as(t, "POST", "/v1/sandboxes/"+sb+"/processes", map[string]any{"command": []string{"/bin/sh", "-c", "echo ran > marker"}})
	require.Equal(t, 503, a.status, "%s", a.body)
	assert.Equal(t, "audit_unavailable", a.code())
	assert.Contains(t, string(a.body), "no space left")
	assert.NotEmpty(t, a.header.Get("Retry-After"))
	a = ts.as(t, "POST", "/v1/runs", map[string]any{"command": []string{"/bin/true"}})
	assert.Equal(t, 503, a.status, "%s", a.body)
	a = ts.as(t, "PUT", "/v1/sandboxes/"+sb+"/files/marker", "x")
	assert.Equal(t, 503, a.status, "%s", a.body)
	a = ts.as(t, "HEAD", "/v1/sandboxes/"+sb+"/files/marker", nil)
	assert.Equal(t, 404, a.status, "nothing ran unaudited: no marker in the workspace")
	assert.Empty(t, jailProcesses(t))

	require.NoError(t, os.Remove(filepath.Join(dir, "filler")))
	a = ts.as(t, "POST", "/v1/sandboxes/"+sb+"/processes", map[string]any{"command": []string{"/bin/sh", "-c", "echo ran > marker"}})
	require.Equal(t, 200, a.status, "%s", a.body)
	a = ts.as(t, "HEAD", "/v1/sandboxes/"+sb+"/files/marker", nil)
	assert.Equal(t, 200, a.status)
	ts.srv.Close()
	_, err := audit.Verify(logPath)
	require.NoError(t, err)
	recs := auditRecords(t, logPath)
	require.Len(t, ofKind(recs, audit.KindWriteResumed), 1)
	require.Len(t, ofKind(recs, audit.KindProcess), 1, "one process ran, after space returned")
}

// audit.on_failure: warn lets work go on while the log cannot be written.
func TestAuditDiskFullWarn(t *testing.T) {
	testenv.RequireRoot(t)
	dir := smallTmpfs(t)
	logPath := filepath.Join(dir, "audit.log")
	ts := startServer(t, func(s string) string {
		return noPool(s) + "audit: {path: " + logPath + ", on_failure: warn}\n"
	})
	fillFile(t, filepath.Join(dir, "filler"))
	a := ts.as(t, "POST", "/v1/runs", map[string]any{"command": []string{"/bin/echo", "went on"}})
	require.Equal(t, 200, a.status, "%s", a.body)
	assert.Contains(t, string(a.body), "went on")
	m := ts.do(t, ts.tcp, httpServe(t, ts.srv.MetricsHandler()), "GET", "/metrics", "", nil)
	assert.Contains(t, string(m.body), "brig_audit_write_failures_total 1", "the record that failed is counted, for the alert")
	require.NoError(t, os.Remove(filepath.Join(dir, "filler")))
	ts.srv.Close()
	_, err := audit.Verify(logPath)
	require.NoError(t, err, "the records that failed left no part in the log")
}
