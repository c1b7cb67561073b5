package metrics

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// The token check reads the Authorization header, outside input (capped by
// net/http's MaxHeaderBytes, and at maxTokenLen here): only the exact
// "Bearer TOKEN" gets the metrics, and no header makes it fail otherwise.
func FuzzHandlerToken(f *testing.F) {
	const token = "fuzz-metrics-token"
	s, err := NewSet([]string{"a"}, Options{Templates: []string{"t"}})
	if err != nil {
		f.Fatal(err)
	}
	h := s.Handler(token, nil)
	for _, seed := range []string{"", "Bearer " + token, "Bearer " + token + "x", "bearer " + token, "Bearer", "Bearer  " + token, "Basic eDp5"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, auth string) {
		req := httptest.NewRequest("GET", "/metrics", nil)
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		want := http.StatusUnauthorized
		if auth == "Bearer "+token {
			want = http.StatusOK
		}
		if rec.Code != want {
			t.Fatalf("Authorization %q: %d, want %d", auth, rec.Code, want)
		}
	})
}
