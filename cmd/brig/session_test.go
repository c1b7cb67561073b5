package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/jail"
	"github.com/brig-sandbox/brig/session"
)

func decodeAll(t *testing.T, out string) []map[string]any {
	t.Helper()
	var res []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		res = append(res, m)
	}
	return res
}

func TestJSONLPythonSession(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a jail")
	}
	requireRootCLI(t)
	p, err := session.NewPython(context.Background(), jail.Config{})
	require.NoError(t, err)
	defer p.Close()
	in := strings.Join([]string{
		`{"id": "c1", "code": "x = 1"}`,
		`{"id": "c2", "code": "print('p'); x + 1"}`,
		`not json`,
		`{"id": "c3", "code": "import time; time.sleep(9)", "timeout": "200ms"}`,
		`{"id": "c4"}`,
		`{"code": "1/0"}`,
	}, "\n")
	var out bytes.Buffer
	serveJSONL(context.Background(), p, strings.NewReader(in), &out, 5*time.Second)
	res := decodeAll(t, out.String())
	require.Len(t, res, 6)
	for _, r := range res {
		for _, k := range []string{"id", "status", "stdout", "stderr", "value", "error", "exit_code", "reason"} {
			assert.Contains(t, r, k)
		}
	}
	assert.Equal(t, "c1", res[0]["id"])
	assert.Equal(t, "ok", res[0]["status"])
	assert.Equal(t, "2", res[1]["value"])
	assert.Equal(t, "p\n", res[1]["stdout"])
	assert.Equal(t, "error", res[2]["status"])
	assert.Nil(t, res[2]["id"])
	assert.Equal(t, "timeout", res[3]["status"])
	assert.Equal(t, "c4", res[4]["id"], "a malformed request keeps its id")
	assert.Equal(t, "error", res[4]["status"])
	assert.Equal(t, "ZeroDivisionError", res[5]["error"].(map[string]any)["type"])
	assert.Nil(t, res[5]["exit_code"])
}

func TestJSONLShellSession(t *testing.T) {
	requireRootCLI(t)
	sh, err := session.NewShell(context.Background(), jail.Config{})
	require.NoError(t, err)
	defer sh.Close()
	in := `{"id":"a","code":"cd /tmp && V=7"}` + "\n" + `{"id":"b","code":"echo $V; pwd; exit 2"}` + "\n" + `{"id":"c","code":"true"}` + "\n"
	var out bytes.Buffer
	serveJSONL(context.Background(), sh, strings.NewReader(in), &out, 5*time.Second)
	res := decodeAll(t, out.String())
	require.Len(t, res, 3)
	assert.Equal(t, float64(0), res[0]["exit_code"])
	assert.Equal(t, "dead", res[1]["status"], "exit ends the shell session")
	assert.Equal(t, "dead", res[2]["status"])
	assert.Contains(t, res[2]["reason"], "status 2")
}

func requireRootCLI(t *testing.T) {
	t.Helper()
	code, _, _ := runCLI(t, "--", "/bin/true") // skips when not root
	require.Equal(t, 0, code)
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{`{"id": "c1", "code": "x = 1", "timeout": "5s"}`, `{"code": ""}`, `{}`, `[]`, `{"id": 3}`, `{"timeout": "-1s", "code": "x"}`, "\x00", `{"code": "a", "extra": 1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		_, code, opts, _, err := parseRequest(line, time.Second)
		if err == nil && opts.Timeout <= 0 {
			t.Fatalf("accepted a non-positive timeout: %q", line)
		}
		if err != nil && code != "" {
			t.Fatalf("code returned with an error")
		}
	})
}

// A request line over the cap is answered as malformed, naming the cap,
// and the requests after it are still answered.
func TestJSONLOversizedLineAnswered(t *testing.T) {
	requireRootCLI(t)
	p, err := session.NewPython(context.Background(), jail.Config{})
	require.NoError(t, err)
	defer p.Close()
	huge := `{"id": "big", "code": "` + strings.Repeat("x", MaxRequestLine) + `"}`
	in := `{"id": "a", "code": "1 + 1"}` + "\n" + huge + "\n" + `{"id": "b", "code": "2 + 2"}` + "\n"
	var out bytes.Buffer
	serveJSONL(context.Background(), p, strings.NewReader(in), &out, 5*time.Second)
	res := decodeAll(t, out.String())
	require.Len(t, res, 3, "every line is answered")
	assert.Equal(t, "2", res[0]["value"])
	assert.Equal(t, "error", res[1]["status"])
	assert.Contains(t, res[1]["error"].(map[string]any)["message"], "cap")
	assert.Equal(t, "b", res[2]["id"])
	assert.Equal(t, "4", res[2]["value"])
}

// The line reader holds no more than its cap of a line, whatever comes.
func TestLineReaderBounded(t *testing.T) {
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	const max = 1 << 20
	lr := newLineReader(io.MultiReader(io.LimitReader(zeros{}, 256<<20), strings.NewReader("\nnext\n")), max)
	line, tooLong, err := lr.next()
	require.NoError(t, err)
	assert.True(t, tooLong)
	assert.Nil(t, line)
	runtime.ReadMemStats(&m1)
	assert.Less(t, m1.TotalAlloc-m0.TotalAlloc, uint64(16*max), "the oversized line was buffered")
	line, tooLong, err = lr.next()
	require.NoError(t, err)
	assert.False(t, tooLong)
	assert.Equal(t, "next", string(line))
	_, _, err = lr.next()
	assert.ErrorIs(t, err, io.EOF)
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'z'
	}
	return len(p), nil
}

// SIGTERM's context ends serveJSONL while stdin stays open.
func TestJSONLEndsWithContext(t *testing.T) {
	requireRootCLI(t)
	sh, err := session.NewShell(context.Background(), jail.Config{})
	require.NoError(t, err)
	defer sh.Close()
	inR, inW := io.Pipe()
	defer inW.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var out bytes.Buffer
	go func() {
		serveJSONL(ctx, sh, inR, &out, 5*time.Second)
		close(done)
	}()
	_, err = io.WriteString(inW, `{"id": "a", "code": "exec >/dev/null 2>&1; echo hidden"}`+"\n")
	require.NoError(t, err)
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("serveJSONL did not end with its context while stdin was open")
	}
}

func FuzzLineReader(f *testing.F) {
	for _, s := range []string{"a\nb\n", "", "\n\n", "no newline", "toolongline\nok\n", "\r\n"} {
		f.Add([]byte(s), uint8(4))
	}
	f.Fuzz(func(t *testing.T, data []byte, max uint8) {
		lr := newLineReader(bytes.NewReader(data), int(max))
		want := strings.SplitAfter(string(data), "\n")
		if want[len(want)-1] == "" {
			want = want[:len(want)-1]
		}
		for i, w := range want {
			w = strings.TrimSuffix(w, "\n")
			line, tooLong, err := lr.next()
			if err != nil {
				t.Fatalf("line %d: %v", i, err)
			}
			if tooLong != (len(w) > int(max)) {
				t.Fatalf("line %d %q: tooLong=%v with max %d", i, w, tooLong, max)
			}
			if !tooLong && string(line) != w {
				t.Fatalf("line %d: %q, want %q", i, line, w)
			}
			if len(line) > int(max) {
				t.Fatalf("line %d: %d bytes over the cap %d", i, len(line), max)
			}
		}
		if _, _, err := lr.next(); !errors.Is(err, io.EOF) {
			t.Fatalf("after the last line: %v", err)
		}
	})
}
