package serve

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every endpoint once, over loopback TCP and the unix socket, with real
// jails.
func TestEndpoints(t *testing.T) {
	ts := startServer(t, nil)

	for _, c := range []struct {
		name   string
		client *http.Client
		base   string
	}{{"tcp", ts.tcp, ts.url}, {"unix", ts.unix, ts.sockURL}} {
		t.Run(c.name, func(t *testing.T) {
			a := ts.do(t, c.client, c.base, "GET", "/v1/health", "", nil)
			assert.Equal(t, 200, a.status)
			assert.Equal(t, "ok", a.json(t)["status"])

			a = ts.do(t, c.client, c.base, "POST", "/v1/runs", ts.alice, map[string]any{"language": "python", "code": "import sys; print(6*7); print('e', file=sys.stderr)"})
			require.Equal(t, 200, a.status, "%s", a.body)
			m := a.json(t)
			assert.Equal(t, "42\n", m["stdout"])
			assert.Equal(t, "e\n", m["stderr"])
			assert.Equal(t, "exited", m["reason"])
			assert.EqualValues(t, 0, m["exit_code"])
			for _, k := range []string{"signal", "wall_time_ms", "cpu_time_ms", "peak_memory_bytes", "stdout_truncated", "stderr_truncated", "limiter", "oom_kills", "pids_limit_hits"} {
				assert.Contains(t, m, k)
			}
		})
	}

	// A command with stdin, and a non-zero exit.
	a := ts.as(t, "POST", "/v1/runs", map[string]any{"command": []string{"/bin/sh", "-c", "cat; exit 3"}, "stdin": "in\n"})
	require.Equal(t, 200, a.status, "%s", a.body)
	assert.Equal(t, "in\n", a.json(t)["stdout"])
	assert.EqualValues(t, 3, a.json(t)["exit_code"])

	// Streamed: output events in order, then the result.
	a = ts.as(t, "POST", "/v1/runs", map[string]any{"language": "shell", "code": "echo one; echo two >&2; echo three"}, "Accept", NDJSONType)
	require.Equal(t, 200, a.status, "%s", a.body)
	assert.Equal(t, NDJSONType, a.header.Get("Content-Type"))
	evs := readEvents(t, a.body)
	require.NotEmpty(t, evs)
	var out, errs string
	for _, e := range evs[:len(evs)-1] {
		switch e["type"] {
		case "stdout":
			out += e["data"].(string)
		case "stderr":
			errs += e["data"].(string)
		default:
			t.Fatalf("event %v", e)
		}
	}
	assert.Equal(t, "one\nthree\n", out)
	assert.Equal(t, "two\n", errs)
	last := evs[len(evs)-1]
	assert.Equal(t, "result", last["type"])
	assert.Equal(t, "exited", last["reason"])

	// Sandboxes.
	sb := ts.newSandbox(t, map[string]any{"workspace_bytes": "512K"})
	a = ts.as(t, "GET", "/v1/sandboxes/"+sb, nil)
	require.Equal(t, 200, a.status)
	assert.EqualValues(t, 512<<10, a.json(t)["workspace_bytes"])
	assert.Equal(t, "default", a.json(t)["template"])
	a = ts.as(t, "GET", "/v1/sandboxes", nil)
	require.Equal(t, 200, a.status)
	assert.Len(t, a.json(t)["sandboxes"], 1)

	// Files: PUT, GET, HEAD, listing.
	a = ts.as(t, "PUT", "/v1/sandboxes/"+sb+"/files/dir/in.txt", "hello from the client\n")
	require.Equal(t, 200, a.status, "%s", a.body)
	a = ts.as(t, "GET", "/v1/sandboxes/"+sb+"/files/dir/in.txt", nil)
	require.Equal(t, 200, a.status)
	assert.Equal(t, "hello from the client\n", string(a.body))
	a = ts.as(t, "HEAD", "/v1/sandboxes/"+sb+"/files/dir/in.txt", nil)
	require.Equal(t, 200, a.status)
	assert.Equal(t, "22", a.header.Get("Content-Length"))
	assert.Equal(t, "file", a.header.Get("X-Brig-File-Type"))
	a = ts.as(t, "GET", "/v1/sandboxes/"+sb+"/files/", nil)
	require.Equal(t, 200, a.status)
	assert.Contains(t, string(a.body), `"name":"dir"`)

	// A process sees the file at /workspace and writes one there, which a
	// context of the same sandbox (another jail) reads and changes.
	a = ts.as(t, "POST", "/v1/sandboxes/"+sb+"/processes", map[string]any{"command": []string{"/bin/sh", "-c", "pwd; cat dir/in.txt; echo made > out.txt"}})
	require.Equal(t, 200, a.status, "%s", a.body)
	assert.Equal(t, "/workspace\nhello from the client\n", a.json(t)["stdout"])
	cx := ts.newContext(t, sb, "python")
	a = ts.as(t, "POST", "/v1/sandboxes/"+sb+"/contexts/"+cx+"/execute", map[string]any{"code": "x = open('out.txt').read().strip(); open('out.txt', 'a').write('more\\n')"})
	require.Equal(t, 200, a.status, "%s", a.body)
	assert.Equal(t, "ok", a.json(t)["status"], "%s", a.body)
	a = ts.as(t, "POST", "/v1/sandboxes/"+sb+"/contexts/"+cx+"/execute", map[string]any{"code": "print(x); x + '!'"})
	require.Equal(t, 200, a.status)
	m := a.json(t)
	assert.Equal(t, "made\n", m["stdout"])
	assert.Equal(t, "'made!'", m["value"])
	for _, k := range []string{"status", "stdout", "stderr", "value", "error", "exit_code", "reason", "wall_time_ms", "cpu_time_ms", "stdout_truncated", "stderr_truncated"} {
		assert.Contains(t, m, k)
	}
	a = ts.as(t, "GET", "/v1/sandboxes/"+sb+"/files/out.txt", nil)
	assert.Equal(t, "made\nmore\n", string(a.body))

	// A shell context, streamed.
	sh := ts.newContext(t, sb, "shell")
	a = ts.as(t, "POST", "/v1/sandboxes/"+sb+"/contexts/"+sh+"/execute", map[string]any{"code": "cd dir && echo $PWD; false", "timeout": 5}, "Accept", NDJSONType)
	evs = readEvents(t, a.body)
	require.GreaterOrEqual(t, len(evs), 2)
	assert.Equal(t, map[string]any{"type": "stdout", "data": "/workspace/dir\n"}, evs[0])
	assert.Equal(t, "result", evs[len(evs)-1]["type"])
	assert.EqualValues(t, 1, evs[len(evs)-1]["exit_code"])

	// Interrupt with nothing running says so.
	a = ts.as(t, "POST", "/v1/sandboxes/"+sb+"/contexts/"+cx+"/interrupt", nil)
	require.Equal(t, 200, a.status)
	assert.Equal(t, false, a.json(t)["interrupted"])

	// Deletes.
	a = ts.as(t, "DELETE", "/v1/sandboxes/"+sb+"/files/dir/in.txt", nil)
	require.Equal(t, 200, a.status, "%s", a.body)
	a = ts.as(t, "HEAD", "/v1/sandboxes/"+sb+"/files/dir/in.txt", nil)
	assert.Equal(t, 404, a.status)
	a = ts.as(t, "DELETE", "/v1/sandboxes/"+sb+"/contexts/"+sh, nil)
	require.Equal(t, 200, a.status)
	a = ts.as(t, "POST", "/v1/sandboxes/"+sb+"/contexts/"+sh+"/execute", map[string]any{"code": "true"})
	assert.Equal(t, 404, a.status)
	a = ts.as(t, "DELETE", "/v1/sandboxes/"+sb, nil)
	require.Equal(t, 200, a.status)
	a = ts.as(t, "GET", "/v1/sandboxes/"+sb, nil)
	assert.Equal(t, 404, a.status)
	assert.NotEmpty(t, ts.events.find("run"))
	assert.NotEmpty(t, ts.events.find("execute"))
	assert.Len(t, ts.events.find("sandbox.delete"), 1)
	assert.True(t, strings.HasPrefix(sb, "sb_"))
}
