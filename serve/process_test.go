package serve

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A background process: stdin in pieces, its output followed by a
// streamed wait, signals, and the sandbox's deletion ending the rest.
func TestBackgroundProcesses(t *testing.T) {
	ts := startServer(t, noPool)
	sb := ts.newSandbox(t, nil)
	procs := "/v1/sandboxes/" + sb + "/processes"
	a := ts.as(t, "POST", procs, map[string]any{"background": true, "stdin": "first\n",
		"command": []string{"/bin/sh", "-c", `echo ready; while read l; do echo "got:$l"; done; echo eof >&2`}})
	require.Equal(t, http.StatusCreated, a.status, "%s", a.body)
	pid := a.json(t)["id"].(string)
	assert.Equal(t, "running", a.json(t)["status"])
	a = ts.as(t, "POST", procs+"/"+pid+"/stdin", map[string]any{"data": "second\n"})
	require.Equal(t, 200, a.status, "%s", a.body)
	assert.EqualValues(t, 7, a.json(t)["written"])
	a = ts.as(t, "POST", procs+"/"+pid+"/stdin", map[string]any{"eof": true})
	require.Equal(t, 200, a.status, "%s", a.body)
	a = ts.as(t, "POST", procs+"/"+pid+"/stdin", map[string]any{"data": "late"})
	assert.Equal(t, "stdin_closed", a.code())
	a = ts.as(t, "POST", procs+"/"+pid+"/wait", nil, "Accept", NDJSONType)
	evs := readEvents(t, a.body)
	var out, errs string
	for _, e := range evs[:len(evs)-1] {
		if e["type"] == "stdout" {
			out += e["data"].(string)
		} else {
			errs += e["data"].(string)
		}
	}
	assert.Equal(t, "ready\ngot:first\ngot:second\n", out)
	assert.Equal(t, "eof\n", errs)
	assert.Equal(t, "exited", evs[len(evs)-1]["reason"])
	// A second wait, in one document, has the same.
	a = ts.as(t, "POST", procs+"/"+pid+"/wait", nil)
	assert.Equal(t, "ready\ngot:first\ngot:second\n", a.json(t)["stdout"])
	a = ts.as(t, "GET", procs+"/"+pid, nil)
	assert.Equal(t, "ended", a.json(t)["status"])
	a = ts.as(t, "POST", procs+"/"+pid+"/signal", map[string]any{"signal": "TERM"})
	assert.Equal(t, "ended", a.code())
	require.Equal(t, 200, ts.as(t, "DELETE", procs+"/"+pid, nil).status)
	assert.Equal(t, 404, ts.as(t, "GET", procs+"/"+pid, nil).status)

	// Signals: TERM reaches the program.
	a = ts.as(t, "POST", procs, map[string]any{"background": true, "command": []string{"/bin/sleep", "600"}})
	require.Equal(t, http.StatusCreated, a.status, "%s", a.body)
	sleeper := a.json(t)["id"].(string)
	a = ts.as(t, "POST", procs+"/"+sleeper+"/signal", map[string]any{"signal": "SIGTERM"})
	require.Equal(t, 200, a.status, "%s", a.body)
	a = ts.as(t, "POST", procs+"/"+sleeper+"/wait", nil)
	assert.Equal(t, "signaled", a.json(t)["reason"], "%s", a.body)
	assert.EqualValues(t, 15, a.json(t)["signal"])
	a = ts.as(t, "POST", procs+"/"+sleeper+"/signal", map[string]any{"signal": "STOP"})
	assert.Equal(t, 400, a.status)

	// A background process holds a concurrent execution; bob cannot see
	// it; deleting the sandbox ends it and leaves nothing.
	a = ts.as(t, "POST", procs, map[string]any{"background": true, "command": []string{"/bin/sleep", "600"}})
	require.Equal(t, http.StatusCreated, a.status)
	running := a.json(t)["id"].(string)
	assert.Equal(t, 404, ts.do(t, ts.tcp, ts.url, "POST", procs+"/"+running+"/wait", ts.bob, nil).status)
	assert.Equal(t, 404, ts.do(t, ts.tcp, ts.url, "POST", procs+"/"+running+"/signal", ts.bob, `{"signal": "KILL"}`).status)
	a = ts.as(t, "POST", "/v1/runs", map[string]any{"command": []string{"/bin/true"}, "background": true})
	assert.Equal(t, "unknown_field", a.code(), "runs have no background")
	require.Equal(t, 200, ts.as(t, "DELETE", "/v1/sandboxes/"+sb, nil).status)
	waitNoJails(t)
	assert.True(t, strings.HasPrefix(running, "proc_"))
}
