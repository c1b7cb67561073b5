package sandboxd

import (
	"net/http"
	"path"
	"strings"
	"testing"
)

// FuzzParseFileRequest: the REST side's parser of outside input, the
// escaped path after /v1/files/ and the query. Whatever it is given, an
// accepted path is relative, clean and beneath the workspace, and an
// accepted mode has no bits beyond 0777. Inputs over the size cap are
// refused, never parsed.
func FuzzParseFileRequest(f *testing.F) {
	for _, s := range [][3]string{
		{"PUT", "src%2Fmain.py", "mode=0755"},
		{"GET", "..%2F..%2Fetc%2Fpasswd", ""},
		{"DELETE", "d", "recursive=true"},
		{"DELETE", "%2Fworkspace%2Fa", "recursive=1&recursive=0"},
		{"PUT", "a%00b", "mode=04755"},
		{"GET", "%2Fworkspace%2F..%2Fx", "a=%zz"},
		{"PUT", "x", "mode=0644&mode=0600"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, method, escaped, query string) {
		if len(escaped)+len(query) > 4*MaxPathBytes {
			// Longer than the cap by far: refused by length, tested below.
			escaped = escaped[:min(len(escaped), 3*MaxPathBytes+1)]
		}
		req, code, e := parseFileRequest(method, escaped, query)
		if code != 0 {
			if code != http.StatusForbidden && code != http.StatusBadRequest {
				t.Fatalf("status %d", code)
			}
			if e.Code == "" || e.Message == "" {
				t.Fatalf("an error without code or message: %+v", e)
			}
			return
		}
		r := req.rel
		if r == "" || strings.HasPrefix(r, "/") || r == ".." || strings.HasPrefix(r, "../") || strings.Contains(r, "\x00") || path.Clean(r) != r {
			t.Fatalf("accepted %q as %q", escaped, r)
		}
		if len(r) > MaxPathBytes {
			t.Fatalf("accepted a path of %d bytes", len(r))
		}
		if req.mode&^0o777 != 0 {
			t.Fatalf("mode %o", req.mode)
		}
	})
}

func TestParseFileRequestCaps(t *testing.T) {
	long := strings.Repeat("a", MaxPathBytes+1)
	if _, code, _ := parseFileRequest("GET", long, ""); code != http.StatusForbidden {
		t.Fatalf("a path over MaxPathBytes: status %d", code)
	}
	if _, code, _ := parseFileRequest("GET", "a", "x="+long); code != http.StatusForbidden {
		t.Fatalf("a query over MaxPathBytes: status %d", code)
	}
	if r, code, _ := parseFileRequest("GET", strings.Repeat("a", MaxPathBytes), ""); code != 0 || len(r.rel) != MaxPathBytes {
		t.Fatalf("a path of MaxPathBytes: status %d", code)
	}
}
