package metrics

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, url, auth string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body), resp.Header
}

// With a token, only a request bearing it gets the metrics; every other
// answer is a 401 that shows none of them.
func TestHandlerToken(t *testing.T) {
	s := newTestSet(t, Options{})
	s.ExecutionDone("alice", "python", "oom", 0, 0, 0)
	srv := httptest.NewServer(s.Handler("s3cret-metrics-token", nil))
	defer srv.Close()

	code, body, _ := get(t, srv.URL+"/metrics", "Bearer s3cret-metrics-token")
	if code != http.StatusOK || !strings.Contains(body, `brig_executions_total{reason="oom",template="python",tenant="alice"} 1`) {
		t.Fatalf("with the token: %d %.300q (alice: %q)", code, body, grepLines(body, "alice"))
	}
	for _, auth := range []string{
		"",
		"Bearer ",
		"Bearer wrong",
		"Bearer  s3cret-metrics-token",
		"Bearer s3cret-metrics-tokenX",
		"Bearer s3cret-metrics-toke",
		"bearer s3cret-metrics-token",
		"Basic czNjcmV0LW1ldHJpY3MtdG9rZW4=",
		"s3cret-metrics-token",
		"Bearer " + strings.Repeat("x", 4000),
	} {
		code, body, h := get(t, srv.URL+"/metrics", auth)
		if code != http.StatusUnauthorized || strings.Contains(body, "brig_") || h.Get("WWW-Authenticate") == "" {
			t.Errorf("Authorization %.40q: %d %.200q, want 401 with no metrics and a WWW-Authenticate", auth, code, body)
		}
	}
}

// Without a token the metrics are open, as a loopback-only or firewalled
// listener may want.
func TestHandlerWithoutToken(t *testing.T) {
	s := newTestSet(t, Options{LiveSandboxes: func() int { return 7 }})
	srv := httptest.NewServer(s.Handler("", nil))
	defer srv.Close()
	code, body, _ := get(t, srv.URL+"/metrics", "Bearer anything")
	if code != http.StatusOK || !strings.Contains(body, "\nbrig_live_sandboxes 7\n") {
		t.Fatalf("%d %.300q", code, body)
	}
	// Tenants a request names in its URL never reach a label.
	code, body, _ = get(t, srv.URL+"/metrics?tenant=mallory", "")
	if code != http.StatusOK || strings.Contains(body, "mallory") {
		t.Fatalf("%d, mallory in the metrics: %v", code, strings.Contains(body, "mallory"))
	}
}

func grepLines(s, sub string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return out
}

// HandlerTokenSHA256 guards as Handler does, given the token's hash as a
// config holds it.
func TestHandlerTokenSHA256(t *testing.T) {
	s := newTestSet(t, Options{})
	srv := httptest.NewServer(s.HandlerTokenSHA256(sha256.Sum256([]byte("s3cret-metrics-token")), nil))
	defer srv.Close()
	if code, body, _ := get(t, srv.URL+"/metrics", "Bearer s3cret-metrics-token"); code != http.StatusOK || !strings.Contains(body, "brig_executions_total") {
		t.Fatalf("with the token: %d %.300q", code, body)
	}
	for _, auth := range []string{"", "Bearer wrong", "Bearer " + hex.EncodeToString(func() []byte { h := sha256.Sum256([]byte("s3cret-metrics-token")); return h[:] }())} {
		if code, body, _ := get(t, srv.URL+"/metrics", auth); code != http.StatusUnauthorized || strings.Contains(body, "brig_") {
			t.Errorf("Authorization %.40q: %d, want 401 (the hash is not the token)", auth, code)
		}
	}
}
