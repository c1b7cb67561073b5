package serve

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/internal/testenv"
)

func TestAuthRefused(t *testing.T) {
	ts := startServer(t, nil)
	for name, token := range map[string]string{"missing": "", "wrong": "brig_0000", "other scheme": ""} {
		t.Run(name, func(t *testing.T) {
			hdr := []string{}
			if name == "other scheme" {
				hdr = []string{"Authorization", "Basic " + ts.alice}
			}
			a := ts.do(t, ts.tcp, ts.url, "GET", "/v1/sandboxes", token, nil, hdr...)
			assert.Equal(t, http.StatusUnauthorized, a.status)
			assert.JSONEq(t, `{"error":{"code":"unauthorized","message":"unauthorized"}}`, string(a.body), "no detail")
		})
	}
	// The benign side: both tenants' tokens work, over both listeners; the
	// scheme's case does not matter (RFC 9110).
	assert.Equal(t, 200, ts.do(t, ts.tcp, ts.url, "GET", "/v1/sandboxes", "", nil, "Authorization", "bearer "+ts.alice).status)
	assert.Equal(t, 200, ts.do(t, ts.tcp, ts.url, "GET", "/v1/sandboxes", ts.bob, nil).status)
	assert.Equal(t, 200, ts.do(t, ts.unix, ts.sockURL, "GET", "/v1/sandboxes", ts.alice, nil).status)
	assert.NotEmpty(t, ts.events.find("sandbox.list"), "refusals are events")
}

// Another tenant's ids answer 404, exactly as ids that do not exist.
func TestTenantsIsolated(t *testing.T) {
	ts := startServer(t, nil)
	sb := ts.newSandbox(t, nil)
	cx := ts.newContext(t, sb, "shell")
	require.Equal(t, 200, ts.as(t, "PUT", "/v1/sandboxes/"+sb+"/files/secret", "alice's").status)
	bob := func(method, path string, body any) answer {
		return ts.do(t, ts.tcp, ts.url, method, path, ts.bob, body)
	}
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"GET", "/v1/sandboxes/" + sb, nil},
		{"DELETE", "/v1/sandboxes/" + sb, nil},
		{"POST", "/v1/sandboxes/" + sb + "/contexts", map[string]string{"language": "python"}},
		{"POST", "/v1/sandboxes/" + sb + "/contexts/" + cx + "/execute", map[string]string{"code": "echo hi"}},
		{"POST", "/v1/sandboxes/" + sb + "/contexts/" + cx + "/interrupt", nil},
		{"DELETE", "/v1/sandboxes/" + sb + "/contexts/" + cx, nil},
		{"POST", "/v1/sandboxes/" + sb + "/processes", map[string]any{"command": []string{"/bin/true"}}},
		{"GET", "/v1/sandboxes/" + sb + "/files/secret", nil},
		{"PUT", "/v1/sandboxes/" + sb + "/files/secret", "bob's"},
		{"DELETE", "/v1/sandboxes/" + sb + "/files/secret", nil},
	} {
		a := bob(c.method, c.path, c.body)
		assert.Equal(t, http.StatusNotFound, a.status, "%s %s: %s", c.method, c.path, a.body)
		missing := bob(c.method, strings.Replace(c.path, sb, "sb_000000000000000000000000", 1), c.body)
		assert.Equal(t, a.body, missing.body, "the answer leaks that the id exists")
	}
	a := bob("GET", "/v1/sandboxes", nil)
	assert.JSONEq(t, `{"sandboxes":[]}`, string(a.body))
	// Alice's objects are untouched.
	assert.Equal(t, "alice's", string(ts.as(t, "GET", "/v1/sandboxes/"+sb+"/files/secret", nil).body))
	a = ts.as(t, "POST", "/v1/sandboxes/"+sb+"/contexts/"+cx+"/execute", map[string]string{"code": "echo hi"})
	assert.Equal(t, "hi\n", a.json(t)["stdout"])
}

func TestBadJSONRefused(t *testing.T) {
	ts := startServer(t, nil)
	for _, c := range []struct {
		name, body, code, mention string
	}{
		{"malformed", `{"command": [`, "bad_json", "malformed"},
		{"unknown field", `{"command": ["/bin/true"], "comand": 1}`, "unknown_field", `"comand"`},
		{"wrong type", `{"command": "/bin/true"}`, "bad_json", `"command"`},
		{"trailing data", `{"command": ["/bin/true"]} {}`, "bad_json", "after"},
		{"empty", ``, "bad_json", "empty"},
		{"oversized", `{"command": ["/bin/echo", "` + strings.Repeat("x", 5000) + `"]}`, "body_too_large", "4096"},
		{"both", `{"command": ["/bin/true"], "language": "python", "code": "1"}`, "bad_request", "not both"},
		{"bad language", `{"language": "ruby", "code": "1"}`, "bad_request", "ruby"},
		{"NUL argument", `{"command": ["/bin/echo", "a\u0000b"]}`, "bad_request", "NUL"},
		{"bad timeout", `{"command": ["/bin/true"], "timeout": -1}`, "bad_json", "duration"},
		{"unknown template", `{"command": ["/bin/true"], "template": "huge"}`, "unknown_template", "huge"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := ts.as(t, "POST", "/v1/runs", c.body)
			assert.Equal(t, http.StatusBadRequest, a.status, "%s", a.body)
			assert.Equal(t, c.code, a.code(), "%s", a.body)
			var e errorBody
			require.NoError(t, json.Unmarshal(a.body, &e))
			assert.Contains(t, e.Error.Message, c.mention)
		})
	}
	// A body at the cap's side that is fine runs.
	a := ts.as(t, "POST", "/v1/runs", `{"command": ["/bin/echo", "`+strings.Repeat("x", 3000)+`"]}`)
	require.Equal(t, 200, a.status, "%s", a.body)
	assert.Equal(t, strings.Repeat("x", 3000)+"\n", a.json(t)["stdout"])
	// A method an endpoint does not take is a JSON 405.
	a = ts.as(t, "PATCH", "/v1/sandboxes", nil)
	assert.Equal(t, 405, a.status)
	assert.Equal(t, "method_not_allowed", a.code())
	assert.Contains(t, a.header.Get("Allow"), "POST")
	// An unknown endpoint is a JSON 404 too.
	a = ts.as(t, "GET", "/v1/nothing", nil)
	assert.Equal(t, 404, a.status)
	assert.Equal(t, "not_found", a.code())
}

// Limits above the template's are refused with a clear error, never
// clamped.
func TestTemplateCeilingRefused(t *testing.T) {
	ts := startServer(t, nil)
	for _, body := range []string{
		`{"command": ["/bin/true"], "memory": "1G"}`,
		`{"command": ["/bin/true"], "timeout": "1m"}`,
		`{"command": ["/bin/true"], "template": "tiny", "memory": "128M"}`,
	} {
		a := ts.as(t, "POST", "/v1/runs", body)
		assert.Equal(t, http.StatusBadRequest, a.status, "%s", a.body)
		assert.Equal(t, "over_template_limit", a.code(), "%s", a.body)
		assert.Contains(t, string(a.body), "allows at most")
	}
	a := ts.as(t, "POST", "/v1/sandboxes", `{"workspace_bytes": "2M"}`)
	assert.Equal(t, "over_template_limit", a.code(), "%s", a.body)
	// Within the ceiling: the limit is the one asked for.
	a = ts.as(t, "POST", "/v1/runs", `{"command": ["/bin/sh", "-c", "cat /proc/self/limits >/dev/null; echo ok"], "memory": "128M", "timeout": 3}`)
	require.Equal(t, 200, a.status, "%s", a.body)
	assert.Equal(t, "ok\n", a.json(t)["stdout"])
	a = ts.as(t, "POST", "/v1/runs", `{"command": ["/bin/sleep", "10"], "timeout": "300ms"}`)
	require.Equal(t, 200, a.status, "%s", a.body)
	assert.Equal(t, "timeout", a.json(t)["reason"])
}

func TestQuotas(t *testing.T) {
	ts := startServer(t, func(s string) string {
		s = noPool(s)
		return strings.Replace(s, "quotas: {requests_per_second: 1000, burst: 1000, concurrent: 4, sandboxes: 4, contexts: 4}",
			"quotas: {requests_per_second: 1000, burst: 1000, concurrent: 1, sandboxes: 2, contexts: 1, workspace_bytes: 1536K}", 1)
	})
	// sandboxes and workspace_bytes.
	sb := ts.newSandbox(t, map[string]any{"workspace_bytes": "1M"})
	a := ts.as(t, "POST", "/v1/sandboxes", map[string]any{"workspace_bytes": "1M"})
	assert.Equal(t, 429, a.status)
	assert.Contains(t, string(a.body), `"quota":"workspace_bytes"`)
	ts.newSandbox(t, map[string]any{"workspace_bytes": "256K"})
	a = ts.as(t, "POST", "/v1/sandboxes", map[string]any{"workspace_bytes": "128K"})
	assert.Equal(t, 429, a.status)
	assert.Contains(t, string(a.body), `"quota":"sandboxes"`)
	assert.Equal(t, "1", a.header.Get("Retry-After"))
	assert.NotEmpty(t, ts.events.find("sandbox.create"))

	// contexts.
	ts.newContext(t, sb, "shell")
	a = ts.as(t, "POST", "/v1/sandboxes/"+sb+"/contexts", map[string]string{"language": "shell"})
	assert.Equal(t, 429, a.status)
	assert.Contains(t, string(a.body), `"quota":"contexts"`)

	// concurrent: one run holds the only place; the second is refused,
	// and runs once the first is done.
	started := make(chan struct{})
	done := make(chan answer)
	go func() {
		req, _ := http.NewRequest("POST", ts.url+"/v1/runs", strings.NewReader(`{"command": ["/bin/sh", "-c", "echo up; sleep 2"]}`))
		req.Header.Set("Authorization", "Bearer "+ts.alice)
		req.Header.Set("Accept", NDJSONType)
		resp, err := ts.tcp.Do(req)
		if err != nil {
			close(started)
			done <- answer{}
			return
		}
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		_, _ = br.ReadString('\n')
		close(started)
		rest, _ := bufio.NewReader(br).ReadString(0)
		done <- answer{status: resp.StatusCode, body: []byte(rest)}
	}()
	<-started
	a = ts.as(t, "POST", "/v1/runs", `{"command": ["/bin/true"]}`)
	assert.Equal(t, 429, a.status)
	assert.Contains(t, string(a.body), `"quota":"concurrent"`)
	assert.NotEmpty(t, a.header.Get("Retry-After"))
	first := <-done
	assert.Equal(t, 200, first.status)
	a = ts.as(t, "POST", "/v1/runs", `{"command": ["/bin/true"]}`)
	assert.Equal(t, 200, a.status, "%s", a.body)

	// The workspace's own size is the kernel's: a write past it fails in
	// the jail and in a PUT, and the host's disk never sees it.
	a = ts.as(t, "POST", "/v1/sandboxes/"+sb+"/processes", map[string]any{"command": []string{"/bin/sh", "-c", "head -c 2M /dev/zero > big; echo $?"}})
	require.Equal(t, 200, a.status, "%s", a.body)
	assert.Contains(t, a.json(t)["stderr"], "No space left")
	ts.as(t, "DELETE", "/v1/sandboxes/"+sb+"/files/big", nil)
	for i := 0; i < 20; i++ {
		a = ts.as(t, "PUT", "/v1/sandboxes/"+sb+"/files/f"+string(rune('a'+i)), strings.Repeat("y", 60<<10))
		if a.status != 200 {
			break
		}
	}
	assert.Equal(t, 507, a.status, "%s", a.body)
	assert.Equal(t, "workspace_full", a.code())
}

func TestRateLimit(t *testing.T) {
	ts := startServer(t, func(s string) string {
		return strings.Replace(s, "requests_per_second: 1000, burst: 1000", "requests_per_second: 0.5, burst: 2", 1)
	})
	assert.Equal(t, 200, ts.as(t, "GET", "/v1/sandboxes", nil).status)
	assert.Equal(t, 200, ts.as(t, "GET", "/v1/sandboxes", nil).status)
	a := ts.as(t, "GET", "/v1/sandboxes", nil)
	assert.Equal(t, 429, a.status)
	assert.Contains(t, string(a.body), `"quota":"requests_per_second"`)
	assert.Equal(t, "2", a.header.Get("Retry-After"))
	// Another tenant has its own bucket.
	assert.Equal(t, 200, ts.do(t, ts.tcp, ts.url, "GET", "/v1/sandboxes", ts.bob, nil).status)
	assert.NotEmpty(t, ts.events.find("sandbox.list"))
}

// Paths that leave the workspace, and traps planted by jailed code, are
// refused; nothing outside the workspace is touched.
func TestFilePathsRefused(t *testing.T) {
	ts := startServer(t, nil)
	outside := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(outside, []byte("host secret"), 0o644))
	sb := ts.newSandbox(t, nil)
	files := "/v1/sandboxes/" + sb + "/files/"
	for _, p := range []string{"..%2F..%2F..%2Fetc%2Fpasswd", "a/%2e%2e/%2e%2e/x", "%2Fetc%2Fpasswd", "a%00b", "/" + outside} {
		for _, method := range []string{"GET", "PUT", "DELETE"} {
			a := ts.as(t, method, files+p, "x")
			assert.True(t, a.status >= 300, "%s %s: %d %s", method, p, a.status, a.body)
		}
	}
	// Jailed code plants symlinks (to the host path, and to /), a FIFO,
	// and replaces a file by a directory.
	a := ts.as(t, "POST", "/v1/sandboxes/"+sb+"/processes", map[string]any{"command": []string{"/bin/sh", "-c",
		"ln -s " + outside + " link && ln -s / root && mkfifo fifo && mkdir -p d/x && echo ok"}})
	require.Equal(t, 200, a.status, "%s", a.body)
	require.Equal(t, "ok\n", a.json(t)["stdout"], "%s", a.body)
	for _, c := range []struct{ method, path, code string }{
		{"GET", "link", "symlink_refused"},
		{"PUT", "link", "symlink_refused"},
		{"HEAD", "link", ""},
		{"GET", "root/etc/passwd", "symlink_refused"},
		{"PUT", "root/tmp/planted", ""}, // the link is not a directory to make it in
		{"GET", "fifo", "not_a_file"},
		{"PUT", "fifo", "not_a_file"},
		{"PUT", "d", "is_a_directory"},
		{"DELETE", "d", "directory_not_empty"},
	} {
		a := ts.as(t, c.method, files+c.path, "overwritten")
		assert.True(t, a.status >= 400 && a.status < 500, "%s %s: %d %s", c.method, c.path, a.status, a.body)
		if c.code != "" {
			assert.Equal(t, c.code, a.code(), "%s %s: %s", c.method, c.path, a.body)
		}
	}
	data, err := os.ReadFile(outside)
	require.NoError(t, err)
	assert.Equal(t, "host secret", string(data))
	_, err = os.Stat("/tmp/planted")
	assert.True(t, os.IsNotExist(err))
	// Removing the link removes the link, not its target.
	assert.Equal(t, 200, ts.as(t, "DELETE", files+"link", nil).status)
	_, err = os.Stat(outside)
	assert.NoError(t, err)
	// The benign side: a directory lists, a file in it reads.
	a = ts.as(t, "GET", files+"d", nil)
	require.Equal(t, 200, a.status, "%s", a.body)
	var listing struct{ Entries []map[string]any }
	require.NoError(t, json.Unmarshal(a.body, &listing))
	require.Len(t, listing.Entries, 1)
	assert.Equal(t, "x", listing.Entries[0]["name"])
	assert.Equal(t, 200, ts.as(t, "PUT", files+"d/x/ok", "fine").status)
	assert.Equal(t, "fine", string(ts.as(t, "GET", files+"d/x/ok", nil).body))
}

// A client that goes away mid-stream: its run is killed and cleaned up;
// its cell is interrupted and the context lives on.
func TestClientDisconnect(t *testing.T) {
	ts := startServer(t, noPool)
	stream := func(path, body string) {
		req, _ := http.NewRequest("POST", ts.url+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+ts.alice)
		req.Header.Set("Accept", NDJSONType)
		resp, err := ts.tcp.Do(req)
		require.NoError(t, err)
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		require.NoError(t, err)
		assert.Contains(t, line, "started")
		resp.Body.Close() // the client goes
	}
	stream("/v1/runs", `{"language": "python", "code": "import time\nprint('started', flush=True)\ntime.sleep(600)"}`)
	waitNoJails(t)
	deadline := time.Now().Add(testenv.Scaled(5 * time.Second))
	for len(ts.events.find("run")) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	require.NotEmpty(t, ts.events.find("run"))
	assert.Equal(t, "canceled", ts.events.find("run")[0].Reason)

	sb := ts.newSandbox(t, nil)
	cx := ts.newContext(t, sb, "python")
	stream("/v1/sandboxes/"+sb+"/contexts/"+cx+"/execute", `{"code": "import time\nn = 1\nprint('started', flush=True)\ntime.sleep(600)\nn = 2"}`)
	deadline = time.Now().Add(testenv.Scaled(5 * time.Second))
	for len(ts.events.find("execute")) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	require.NotEmpty(t, ts.events.find("execute"))
	assert.Equal(t, "canceled", ts.events.find("execute")[0].Reason)
	a := ts.as(t, "POST", "/v1/sandboxes/"+sb+"/contexts/"+cx+"/execute", map[string]string{"code": "n"})
	require.Equal(t, 200, a.status, "%s", a.body)
	assert.Equal(t, "1", a.json(t)["value"], "the context lives on, its cell stopped")
}

// A context whose interpreter dies reports dead with what it had flushed,
// and stays dead.
func TestContextDeadKeepsOutput(t *testing.T) {
	ts := startServer(t, nil)
	sb := ts.newSandbox(t, nil)
	cx := ts.newContext(t, sb, "python")
	a := ts.as(t, "POST", "/v1/sandboxes/"+sb+"/contexts/"+cx+"/execute", map[string]string{"code": "import os\nprint('flushed', flush=True)\nos._exit(3)"})
	require.Equal(t, 200, a.status, "%s", a.body)
	m := a.json(t)
	assert.Equal(t, "dead", m["status"])
	assert.Equal(t, "flushed\n", m["stdout"])
	assert.Contains(t, m["reason"], "status 3")
	a = ts.as(t, "POST", "/v1/sandboxes/"+sb+"/contexts/"+cx+"/execute", map[string]string{"code": "1"}, "Accept", NDJSONType)
	evs := readEvents(t, a.body)
	require.NotEmpty(t, evs)
	assert.Equal(t, "dead", evs[len(evs)-1]["status"])
	a = ts.as(t, "GET", "/v1/sandboxes/"+sb, nil)
	assert.Contains(t, string(a.body), `"status":"dead"`)
	// A context that runs a cell already is busy; interrupt stops it.
	// (Python: a shell's ^C that comes between its fork and the command's
	// exec is lost in the library's driver, so a test could not know when
	// to send it.)
	cx2 := ts.newContext(t, sb, "python")
	started := make(chan struct{})
	done := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest("POST", ts.url+"/v1/sandboxes/"+sb+"/contexts/"+cx2+"/execute", strings.NewReader(`{"code": "import time\nprint('started', flush=True)\ntime.sleep(600)"}`))
		req.Header.Set("Authorization", "Bearer "+ts.alice)
		req.Header.Set("Accept", NDJSONType)
		resp, err := ts.tcp.Do(req)
		if err != nil {
			close(started)
			done <- answer{}
			return
		}
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		first, _ := br.ReadString('\n')
		close(started)
		rest, _ := br.ReadString(0)
		done <- answer{status: resp.StatusCode, body: []byte(first + rest)}
	}()
	<-started
	a = ts.as(t, "POST", "/v1/sandboxes/"+sb+"/contexts/"+cx2+"/execute", map[string]string{"code": "1"})
	assert.Equal(t, 409, a.status)
	assert.Equal(t, "busy", a.code())
	a = ts.as(t, "POST", "/v1/sandboxes/"+sb+"/contexts/"+cx2+"/interrupt", nil)
	assert.Equal(t, true, a.json(t)["interrupted"])
	evs = readEvents(t, (<-done).body)
	require.NotEmpty(t, evs)
	first := evs[len(evs)-1]
	assert.Equal(t, "canceled", first["status"], "%v", first)
	// print may write "started" and its newline apart; the line itself is
	// what the cell wrote before the interrupt.
	assert.Contains(t, first["stdout"], "started")
}
