package serve

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzRequestBodies feeds the API's JSON bodies to the decoder and checks
// of each request kind: no input panics, none above the body cap is
// taken, and what is taken passes the checks a jail start relies on.
func FuzzRequestBodies(f *testing.F) {
	for _, s := range []string{
		`{"command": ["/bin/true"]}`, `{"language": "python", "code": "print(1)", "timeout": 1.5, "memory": "64M"}`,
		`{"language": "shell", "code": "x", "stdin": "a", "timeout": "2s", "template": "t"}`, `{"code": "1"}`,
		`{"workspace_bytes": 100000, "workspace_inodes": 20}`, `{"language": "python"}`, `{"command": []}`, `[]`, `{"x": 1}`,
	} {
		f.Add([]byte(s))
	}
	const max = 4096
	tpl := Template{Name: "t", WorkspaceBytes: 1 << 20, WorkspaceInodes: 1024}
	tpl.Jail.Timeout = 10_000_000_000
	tpl.Jail.Limits.Memory = 256 << 20
	f.Fuzz(func(t *testing.T, body []byte) {
		decode := func(v any) bool {
			r := httptest.NewRequest("POST", "/", strings.NewReader(string(body)))
			w := httptest.NewRecorder()
			aerr := decodeBody(w, r, max, v)
			if aerr != nil && aerr.status != http.StatusBadRequest {
				t.Fatalf("refusal with status %d", aerr.status)
			}
			if aerr == nil && len(body) > max {
				t.Fatalf("a %d-byte body above the %d cap was taken", len(body), max)
			}
			return aerr == nil
		}
		var run runRequest
		if decode(&run) {
			if argv, aerr := run.argv(true); aerr == nil {
				if len(argv) == 0 || argv[0] == "" || len(argv) > MaxArgs {
					t.Fatalf("argv %q taken", argv)
				}
			}
			cfg := tpl.Jail
			if _, aerr := run.limits(tpl, &cfg); aerr == nil {
				if cfg.Timeout > tpl.Jail.Timeout || cfg.Limits.Memory > tpl.Jail.Limits.Memory {
					t.Fatalf("limits above the template's taken: %v %d", cfg.Timeout, cfg.Limits.Memory)
				}
			}
		}
		var exec executeRequest
		decode(&exec)
		var sb createSandboxRequest
		decode(&sb)
		var cx createContextRequest
		decode(&cx)
	})
}

// FuzzRequestID feeds X-Request-Id headers to the server's check: the id a
// request ends up with is always short and printable (it goes into log
// lines and audit records), and a valid client id is kept as it is.
func FuzzRequestID(f *testing.F) {
	for _, s := range []string{"", "client-req-1", "bad id", "a\nb", strings.Repeat("x", 64), strings.Repeat("x", 65), "\x7f", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header["X-Request-Id"] = []string{id}
		r, got := withRequestID(r)
		if !validRequestID(got) || requestID(r) != got {
			t.Fatalf("request id %q from %q", got, id)
		}
		if validRequestID(id) != (got == id) {
			t.Fatalf("client id %q: kept %v", id, got == id)
		}
		for _, c := range []byte(got) {
			if c < 0x21 || c > 0x7e {
				t.Fatalf("id %q has byte %#x", got, c)
			}
		}
		if len(got) > MaxRequestIDBytes {
			t.Fatalf("id of %d bytes", len(got))
		}
	})
}
