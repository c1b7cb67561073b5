package serve

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/audit"
	"github.com/brig-sandbox/brig/internal/testenv/netlab"
)

// egressConfig is goodConfig with a template web of the given keys.
func egressConfig(template string) string {
	return strings.Replace(goodConfig, "  big:\n", "  web:"+template+"\n  big:\n", 1)
}

// TestParseTemplateNetwork: a template's net: proxy with allow,
// allow-preset, deny and the caps becomes the jails' egress policy, its
// pool is dropped (runs start cold); every misuse is a config error naming
// the file, the line and the fix.
func TestParseTemplateNetwork(t *testing.T) {
	cfg, err := ParseConfig("brig.yaml", []byte(egressConfig(`
    net: proxy
    allow: [example.com, "api.example.com:8443", "198.51.100.0/24"]
    allow-preset: [pypi]
    deny: [bad.example.com]
    egress-concurrent: 8
    egress-connections: 100
    egress-bytes-up: 1M
    egress-bytes-down: 100M
    egress-idle: 30s
    egress-connect-timeout: 5s
    pool: 4`)))
	require.NoError(t, err)
	web := cfg.Templates["web"]
	assert.Equal(t, "proxy", web.Jail.Network)
	require.NotNil(t, web.Jail.Egress)
	var allow []string
	for _, r := range web.Jail.Egress.Allow {
		allow = append(allow, r.String())
	}
	assert.Contains(t, allow, "example.com")
	assert.Contains(t, allow, "api.example.com:8443")
	assert.Contains(t, allow, "198.51.100.0/24")
	assert.Contains(t, allow, "pypi.org:443")
	require.Len(t, web.Jail.Egress.Deny, 1)
	assert.Equal(t, 8, web.Jail.Egress.MaxConcurrent)
	assert.Equal(t, 100, web.Jail.Egress.MaxConnections)
	assert.Equal(t, int64(1<<20), web.Jail.Egress.MaxBytesUp)
	assert.Equal(t, int64(100<<20), web.Jail.Egress.MaxBytesDown)
	assert.Equal(t, "30s", web.Jail.Egress.IdleTimeout.String())
	assert.Equal(t, "5s", web.Jail.Egress.ConnectTimeout.String())
	assert.Equal(t, 0, web.Pool, "jail.Pool refuses proxy mode: the template's runs start cold")
	// The templates without the keys keep lo alone.
	assert.Equal(t, "", cfg.Templates["default"].Jail.Network)
	assert.Nil(t, cfg.Templates["default"].Jail.Egress)
	assert.Equal(t, 2, cfg.Templates["default"].Pool)

	// line is that of the web template's first key.
	line := strings.Count(egressConfig("")[:strings.Index(egressConfig(""), "  web:")], "\n") + 2
	for _, tc := range []struct{ keys, want string }{
		{"\n    allow: [example.com]", fmt.Sprintf("brig.yaml:%d: allow without net: proxy", line)},
		{"\n    net: none\n    deny: [x.com]", fmt.Sprintf("brig.yaml:%d: deny without net: proxy", line+1)},
		{"\n    egress-idle: 5s", "egress-idle without net: proxy: the template's jails have no network to allow anything on; add net: proxy"},
		{"\n    net: proxy", fmt.Sprintf("brig.yaml:%d: net: proxy allows nothing without allow:", line)},
		{"\n    net: proxy\n    deny: [x.com]", "net: proxy allows nothing without allow:"},
		{"\n    net: host", fmt.Sprintf("brig.yaml:%d: net \"host\": want none", line)},
		{"\n    net: proxy\n    allow:\n      - example.com\n      - \"*.com\"", fmt.Sprintf("brig.yaml:%d: allow ", line+3)},
		{"\n    net: proxy\n    allow: [\"example.com:99999\"]", fmt.Sprintf("brig.yaml:%d: allow ", line+1)},
		{"\n    net: proxy\n    allow-preset: [cpan]", "allow-preset \"cpan\": no such preset; use one of github, npm, pypi"},
		{"\n    net: proxy\n    allow: [a.com]\n    egress-concurrent: 0", fmt.Sprintf("brig.yaml:%d: egress-concurrent 0: want a positive whole number", line+2)},
		{"\n    net: proxy\n    allow: [a.com]\n    egress-bytes-up: 0", "egress-bytes-up: want a positive size"},
		{"\n    net: proxy\n    allow: [{host: a.com}]", fmt.Sprintf("brig.yaml:%d: want a destination like example.com", line+1)},
		{"\n    net: proxy\n    alow: [a.com]", "field alow is not a key of"},
	} {
		_, err := ParseConfig("brig.yaml", []byte(egressConfig(tc.keys)))
		require.Error(t, err, tc.keys)
		assert.Contains(t, err.Error(), tc.want, tc.keys)
	}
}

// FuzzTemplateNetwork: whatever a template's network keys hold, a config
// taken has a proxy template only with a policy that allows something,
// validates and keeps no pool, and a template without net: proxy has no
// policy; a refusal names the file.
func FuzzTemplateNetwork(f *testing.F) {
	for _, s := range []string{
		"\n    net: proxy\n    allow: [example.com]",
		"\n    net: proxy\n    allow: [\"*.example.com:8443\", 198.51.100.7, \"[2001:db8::1]:443\"]\n    allow-preset: [pypi, npm, github]\n    deny: [10.0.0.0/8]\n    pool: 3",
		"\n    net: proxy\n    allow: [a.com]\n    egress-bytes-down: 1G\n    egress-idle: 1m\n    egress-concurrent: 2",
		"\n    net: none", "\n    allow: [a.com]", "\n    net: proxy\n    allow-preset: [x]", "\n    net: [proxy]",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, keys string) {
		cfg, err := ParseConfig("f.yaml", []byte(egressConfig(keys)))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for name, tpl := range cfg.Templates {
			switch tpl.Jail.Network {
			case "proxy":
				p := tpl.Jail.Egress
				if p == nil || len(p.Allow) == 0 || p.Validate() != nil || tpl.Pool != 0 {
					t.Fatalf("template %s: proxy with policy %+v, pool %d taken", name, p, tpl.Pool)
				}
			case "", "none":
				if tpl.Jail.Egress != nil {
					t.Fatalf("template %s: a policy without net: proxy taken", name)
				}
			default:
				t.Fatalf("template %s: network %q taken", name, tpl.Jail.Network)
			}
		}
	})
}

// The program every egress test runs: an allowed plain-HTTP fetch, an
// allowed CONNECT (the test CA is not in the jail: the tunnel is what is
// tested), and a host off the list, through the proxy variables alone.
const egressProbe = `
import ssl, urllib.request
def get(u):
    try:
        r = urllib.request.urlopen(u, timeout=60, context=ssl._create_unverified_context())
        return "got " + r.read().decode().strip()
    except Exception as e:
        return "failed %s" % e
print("plain:", get("http://198.51.100.2/"))
print("tls:", get("https://198.51.100.2/"))
print("other:", get("https://other.example.net/"))
`

// TestServeEgress over real HTTP, netlab as the internet: a template with
// net: proxy lets a run, a process (foreground and background) and a
// context's cells reach the allowed address and refuses another host
// (egress_refused in the run's and process's result, in the refusing
// cell's result only, and an egress Event for every decision); a template
// without it has no route; a request that names the network is refused; a
// pool asked of the proxy template is not made (runs start cold); nothing
// is left after.
func TestServeEgress(t *testing.T) {
	netlab.Start(t)
	ts := startServer(t, func(s string) string {
		return strings.Replace(s, "  tiny:", "  web: {memory: 256M, pids: 64, timeout: 60s, workspace-size: 1M, pool: 2, net: proxy, allow: [198.51.100.2]}\n  tiny:", 1)
	})
	require.Nil(t, ts.srv.pools["web"], "no pool for a proxy template")
	require.NotNil(t, ts.srv.pools["default"])

	checkProbe := func(t *testing.T, stdout string) {
		t.Helper()
		assert.Contains(t, stdout, "plain: got hello from the test internet", stdout)
		assert.Contains(t, stdout, "tls: got hello from the test internet", stdout)
		assert.Contains(t, stdout, "other: failed", stdout)
		assert.Contains(t, stdout, "403", stdout)
	}
	checkRefused := func(t *testing.T, m map[string]any) {
		t.Helper()
		refused, _ := m["egress_refused"].([]any)
		require.Len(t, refused, 1, "%v", m)
		r := refused[0].(map[string]any)
		assert.Equal(t, "other.example.net", r["host"])
		assert.EqualValues(t, 443, r["port"])
		assert.Contains(t, r["reason"], "not on the allow list")
	}

	t.Run("run", func(t *testing.T) {
		a := ts.as(t, "POST", "/v1/runs", map[string]any{"template": "web", "language": "python", "code": egressProbe})
		require.Equal(t, http.StatusOK, a.status, "%s", a.body)
		m := a.json(t)
		checkProbe(t, m["stdout"].(string))
		checkRefused(t, m)

		var allowed, refused []Event
		for _, e := range ts.events.find("egress") {
			if e.Allowed {
				allowed = append(allowed, e)
			} else {
				refused = append(refused, e)
			}
		}
		require.Len(t, allowed, 2, "%+v", allowed)
		runID := a.header.Get("X-Request-Id")
		require.NotEmpty(t, runID)
		for _, e := range append(allowed, refused...) {
			assert.Equal(t, runID, e.RequestID, "an egress event carries the id of the request whose jail made it")
		}
		for _, e := range allowed {
			assert.Equal(t, "alice", e.Tenant)
			assert.Equal(t, "web", e.Template)
			assert.Equal(t, "198.51.100.2", e.Host)
			assert.Equal(t, "198.51.100.2", e.Address)
			assert.Contains(t, []int{80, 443}, e.Port)
			assert.Positive(t, e.BytesDown)
			assert.Positive(t, e.BytesUp)
			assert.Empty(t, e.Code)
		}
		require.Len(t, refused, 1, "%+v", refused)
		assert.Equal(t, "other.example.net", refused[0].Host)
		assert.Equal(t, "egress_refused", refused[0].Code)
		assert.Contains(t, refused[0].Reason, "not on the allow list")
		assert.Equal(t, "alice", refused[0].Tenant)
	})

	t.Run("streamed run", func(t *testing.T) {
		a := ts.as(t, "POST", "/v1/runs", map[string]any{"template": "web", "language": "python", "code": egressProbe}, "Accept", NDJSONType)
		require.Equal(t, http.StatusOK, a.status, "%s", a.body)
		evs := readEvents(t, a.body)
		var out strings.Builder
		for _, e := range evs[:len(evs)-1] {
			if e["type"] == "stdout" {
				out.WriteString(e["data"].(string))
			}
		}
		checkProbe(t, out.String())
		require.Equal(t, "result", evs[len(evs)-1]["type"])
		checkRefused(t, evs[len(evs)-1])
	})

	t.Run("no proxy, no route", func(t *testing.T) {
		a := ts.as(t, "POST", "/v1/runs", map[string]any{"language": "python", "code": egressProbe + `
import os, socket
print("env:", sorted(k for k in os.environ if "proxy" in k.lower()))
s = socket.socket()
try:
    s.connect(("198.51.100.2", 80))
    print("direct: connected")
except OSError as e:
    print("direct: failed", e.errno)
`})
		require.Equal(t, http.StatusOK, a.status, "%s", a.body)
		m := a.json(t)
		out := m["stdout"].(string)
		assert.Contains(t, out, "plain: failed", out)
		assert.Contains(t, out, "tls: failed", out)
		assert.Contains(t, out, "env: []", out)
		assert.Contains(t, out, "direct: failed 101", out) // ENETUNREACH
		assert.NotContains(t, m, "egress_refused")
	})

	t.Run("process", func(t *testing.T) {
		sb := ts.newSandbox(t, map[string]any{"template": "web"})
		defer ts.as(t, "DELETE", "/v1/sandboxes/"+sb, nil)
		a := ts.as(t, "POST", "/v1/sandboxes/"+sb+"/processes", map[string]any{"command": []string{"/usr/bin/python3", "-c", egressProbe}})
		require.Equal(t, http.StatusOK, a.status, "%s", a.body)
		m := a.json(t)
		checkProbe(t, m["stdout"].(string))
		checkRefused(t, m)
		n := 0
		for _, e := range ts.events.find("egress") {
			if e.Sandbox == sb {
				n++
			}
		}
		assert.Equal(t, 3, n, "one event per decision, with the sandbox")
	})

	t.Run("background process", func(t *testing.T) {
		sb := ts.newSandbox(t, map[string]any{"template": "web"})
		defer ts.as(t, "DELETE", "/v1/sandboxes/"+sb, nil)
		a := ts.as(t, "POST", "/v1/sandboxes/"+sb+"/processes", map[string]any{"command": []string{"/usr/bin/python3", "-c", egressProbe}, "background": true})
		require.Equal(t, http.StatusCreated, a.status, "%s", a.body)
		pid := a.json(t)["id"].(string)
		a = ts.as(t, "POST", "/v1/sandboxes/"+sb+"/processes/"+pid+"/wait", nil)
		require.Equal(t, http.StatusOK, a.status, "%s", a.body)
		m := a.json(t)
		checkProbe(t, m["stdout"].(string))
		checkRefused(t, m)
	})

	t.Run("context", func(t *testing.T) {
		sb := ts.newSandbox(t, map[string]any{"template": "web"})
		defer ts.as(t, "DELETE", "/v1/sandboxes/"+sb, nil)
		cx := ts.newContext(t, sb, "python")
		exec := func(code string) map[string]any {
			a := ts.as(t, "POST", "/v1/sandboxes/"+sb+"/contexts/"+cx+"/execute", map[string]any{"code": code, "timeout": 60})
			require.Equal(t, http.StatusOK, a.status, "%s", a.body)
			return a.json(t)
		}
		m := exec("import ssl, urllib.request\nget = lambda u: urllib.request.urlopen(u, timeout=60).read().decode().strip()\nget('http://198.51.100.2/')")
		require.Equal(t, "ok", m["status"], "%v", m)
		assert.Contains(t, m["value"], "hello from the test internet")
		assert.NotContains(t, m, "egress_refused")
		m = exec("get('https://other.example.net/')")
		assert.Equal(t, "error", m["status"], "%v", m)
		checkRefused(t, m)
		m = exec("get('http://198.51.100.2/')")
		assert.Equal(t, "ok", m["status"], "%v", m)
		assert.NotContains(t, m, "egress_refused", "a cell lists the refusals since the previous cell")
		// An allowed connection's event comes when it ends, which may be
		// after its cell's answer; the context's end closes its proxy and
		// so delivers every one.
		a := ts.as(t, "DELETE", "/v1/sandboxes/"+sb+"/contexts/"+cx, nil)
		require.Equal(t, http.StatusOK, a.status, "%s", a.body)
		var withContext int
		for _, e := range ts.events.find("egress") {
			if e.Context == cx {
				assert.Equal(t, sb, e.Sandbox)
				withContext++
			}
		}
		assert.Equal(t, 3, withContext, "one event per decision, with the context")
	})

	t.Run("a request cannot ask for the network", func(t *testing.T) {
		before := len(ts.events.find("egress"))
		for _, body := range []map[string]any{
			{"command": []string{"/bin/true"}, "net": "proxy"},
			{"command": []string{"/bin/true"}, "template": "web", "allow": []string{"other.example.net"}},
			{"language": "python", "code": "1", "allow-preset": []string{"pypi"}},
			{"command": []string{"/bin/true"}, "network": "host"},
			{"command": []string{"/bin/true"}, "egress-bytes-down": "1G"},
		} {
			a := ts.as(t, "POST", "/v1/runs", body)
			assert.Equal(t, http.StatusBadRequest, a.status, "%v: %s", body, a.body)
			assert.Equal(t, "over_template_limit", a.code(), "%s", a.body)
			assert.Contains(t, string(a.body), "the network policy is the template's")
		}
		a := ts.as(t, "POST", "/v1/sandboxes", map[string]any{"deny": []string{"x.com"}})
		assert.Equal(t, "over_template_limit", a.code(), "%s", a.body)
		sb := ts.newSandbox(t, nil)
		defer ts.as(t, "DELETE", "/v1/sandboxes/"+sb, nil)
		a = ts.as(t, "POST", "/v1/sandboxes/"+sb+"/contexts", map[string]any{"language": "python", "net": "proxy"})
		assert.Equal(t, "over_template_limit", a.code(), "%s", a.body)
		a = ts.as(t, "POST", "/v1/sandboxes/"+sb+"/processes", map[string]any{"command": []string{"/bin/true"}, "allow": []string{"x.com"}})
		assert.Equal(t, "over_template_limit", a.code(), "%s", a.body)
		// The benign request beside them runs.
		a = ts.as(t, "POST", "/v1/runs", map[string]any{"command": []string{"/bin/true"}})
		assert.Equal(t, http.StatusOK, a.status, "%s", a.body)
		assert.Equal(t, before, len(ts.events.find("egress")), "no refused request reached a proxy")
	})

	t.Run("every decision is audited", func(t *testing.T) {
		recs := ofKind(auditRecords(t, filepath.Join(ts.stateDir, DefaultAuditFile)), audit.KindEgress)
		require.Len(t, recs, len(ts.events.find("egress")), "one audit record per decision")
		var allowed, refused int
		for _, r := range recs {
			require.NotNil(t, r.Egress)
			if r.Egress.Allowed {
				allowed++
				assert.Equal(t, "198.51.100.2", r.Egress.Address)
			} else {
				refused++
				require.NotNil(t, r.Verdict)
				assert.Equal(t, "egress_refused", r.Verdict.Reason)
				assert.NotEmpty(t, r.Verdict.Message, "a refusal says why")
			}
		}
		assert.Positive(t, allowed)
		assert.Positive(t, refused)
	})
}
