package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/brig-sandbox/brig/audit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// auditCLI calls `brig audit ARGS` in-process with stdout and stderr sent
// to files.
func auditCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	dir := t.TempDir()
	outF, err := os.Create(filepath.Join(dir, "out"))
	require.NoError(t, err)
	errF, err := os.Create(filepath.Join(dir, "err"))
	require.NoError(t, err)
	savedOut, savedErr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = outF, errF
	code = auditMain(args)
	os.Stdout, os.Stderr = savedOut, savedErr
	o, _ := os.ReadFile(outF.Name())
	e, _ := os.ReadFile(errF.Name())
	return code, string(o), string(e)
}

// writeAuditLog writes n records through audit.Log: tenants t0..t2 in
// turn, every third an OOM.
func writeAuditLog(t *testing.T, path string, n int) {
	t.Helper()
	l, err := audit.Open(path, audit.Options{Fsync: audit.FsyncNever})
	require.NoError(t, err)
	for i := range n {
		reason := "exited"
		if i%3 == 2 {
			reason = "oom"
		}
		require.NoError(t, l.Append(audit.Record{Kind: audit.KindCell, Tenant: fmt.Sprintf("t%d", i%3), Sandbox: "sb-" + fmt.Sprint(i%2),
			Input: audit.CodeInput(audit.CodeFull, "python", fmt.Sprintf("print(%d)", i)), Verdict: &audit.Verdict{Reason: reason}}))
	}
	require.NoError(t, l.Close())
}

func TestAuditVerifyCLI(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	writeAuditLog(t, path, 6)

	code, out, stderr := auditCLI(t, "verify", path)
	assert.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "ok: 6 records, seq 1 to 6, in 1 file(s)")
	assert.Empty(t, stderr)

	b, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := bytes.SplitAfter(b, []byte("\n"))
	lines[3] = bytes.Replace(lines[3], []byte(`"t0"`), []byte(`"t1"`), 1)
	tampered := filepath.Join(dir, "tampered.log")
	require.NoError(t, os.WriteFile(tampered, bytes.Join(lines, nil), 0o600))
	code, out, stderr = auditCLI(t, "verify", tampered)
	assert.Equal(t, exitAuditFound, code)
	assert.Empty(t, out)
	assert.Equal(t, 1, strings.Count(stderr, "\n"), stderr)
	assert.Contains(t, stderr, tampered+":4: edited")

	// A torn tail is reported, not failed.
	torn := filepath.Join(dir, "torn.log")
	require.NoError(t, os.WriteFile(torn, append(bytes.Clone(b), []byte(`{"time":"20`)...), 0o600))
	code, out, stderr = auditCLI(t, "verify", torn)
	assert.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "torn: "+torn)

	for _, args := range [][]string{{"verify"}, {"verify", filepath.Join(dir, "missing")}, {"verify", "--bogus", path}, {"frob"}, {"tail", "-n", "0", path}, {"tail", path, path}, {"grep"}} {
		code, _, stderr = auditCLI(t, args...)
		assert.Equal(t, exitBrigFailed, code, "%q", args)
		assert.Equal(t, 1, strings.Count(stderr, "\n"), "%q: one line: %s", args, stderr)
		assert.True(t, strings.HasPrefix(stderr, "brig: "), stderr)
	}
	code, _, stderr = auditCLI(t)
	assert.Equal(t, exitBrigFailed, code)
	assert.Contains(t, stderr, "brig audit verify FILE...")
	for _, args := range [][]string{{"--help"}, {"verify", "-h"}, {"grep", "--help"}} {
		code, out, _ = auditCLI(t, args...)
		assert.Equal(t, 0, code, "%q", args)
		assert.Contains(t, out, "brig audit", "%q: help on stdout", args)
	}
}

func TestAuditTailCLI(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	writeAuditLog(t, path, 25)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.SplitAfter(string(b), "\n")
	lines = lines[:len(lines)-1]

	code, out, stderr := auditCLI(t, "tail", path)
	assert.Equal(t, 0, code, stderr)
	assert.Equal(t, strings.Join(lines[15:], ""), out, "10 by default")
	code, out, _ = auditCLI(t, "tail", "-n", "3", path)
	assert.Equal(t, 0, code)
	assert.Equal(t, strings.Join(lines[22:], ""), out)
	code, out, _ = auditCLI(t, "tail", "-n", "100", path)
	assert.Equal(t, 0, code)
	assert.Equal(t, string(b), out)

	// A torn last line is a line of its own.
	torn := filepath.Join(dir, "torn.log")
	require.NoError(t, os.WriteFile(torn, []byte(lines[0]+lines[1]+`{"cut`), 0o600))
	code, out, _ = auditCLI(t, "tail", "-n", "2", torn)
	assert.Equal(t, 0, code)
	assert.Equal(t, lines[1]+`{"cut`, out)

	empty := filepath.Join(dir, "empty.log")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	code, out, _ = auditCLI(t, "tail", empty)
	assert.Equal(t, 0, code)
	assert.Empty(t, out)
}

func TestAuditGrepCLI(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	writeAuditLog(t, path, 12)

	grep := func(args ...string) (int, []audit.Record, string) {
		code, out, stderr := auditCLI(t, append(append([]string{"grep"}, args...), path)...)
		var recs []audit.Record
		rd := audit.NewReader(strings.NewReader(out))
		for {
			r, _, err := rd.Next()
			if err != nil {
				break
			}
			recs = append(recs, r)
		}
		require.Equal(t, strings.Count(out, "\n"), len(recs), "every line printed is a record")
		return code, recs, stderr
	}
	code, recs, _ := grep("--tenant", "t2", "--reason", "oom")
	assert.Equal(t, 0, code)
	require.Len(t, recs, 4)
	for _, r := range recs {
		assert.Equal(t, "t2", r.Tenant)
		assert.Equal(t, "oom", r.Verdict.Reason)
	}
	_, recs, _ = grep("--sandbox", "sb-1", "--kind", "cell")
	assert.Len(t, recs, 6)
	_, recs, _ = grep()
	assert.Len(t, recs, 12, "no filter: every record")
	code, recs, _ = grep("--tenant", "t1", "--reason", "oom")
	assert.Equal(t, exitAuditFound, code, "none matched")
	assert.Empty(t, recs)

	// A line that is not a record is skipped with a line on stderr, the
	// rest still searched; a huge one is never held whole.
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	junk := append(append([]byte("not json\n"), bytes.Repeat([]byte("x"), 2*audit.MaxLineBytes)...), '\n')
	require.NoError(t, os.WriteFile(path, append(junk, b...), 0o600))
	code, recs, stderr := grep("--tenant", "t0")
	assert.Equal(t, 0, code)
	assert.Len(t, recs, 4)
	assert.Contains(t, stderr, path+":1: skipped")
	assert.Contains(t, stderr, path+":2: skipped")
}
