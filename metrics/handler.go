package metrics

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// maxTokenLen caps the bearer token a request may present (the header is
// capped by net/http's MaxHeaderBytes already); a longer one is refused
// without hashing it.
const maxTokenLen = 1024

// Handler serves the Set's metrics in Prometheus's exposition format. With
// a token, a request must carry "Authorization: Bearer TOKEN" or is
// answered 401: the metrics name the tenants and templates of the config
// and show their load, which is not for anyone who reaches the port. log
// receives the errors of gathering (nil: slog.Default()).
func (s *Set) Handler(token string, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	h := promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{
		ErrorLog: slogPrinter{log},
		// A gather error still serves what could be gathered: one bad
		// callback must not blind every alert.
		ErrorHandling: promhttp.ContinueOnError,
		// Two slow scrapers at once are enough: more only queue up.
		MaxRequestsInFlight: 2,
	})
	if token == "" {
		return h
	}
	return guarded(h, sha256.Sum256([]byte(token)))
}

// HandlerTokenSHA256 is Handler with the token given by its SHA-256, as a
// config holds it (a config that leaks gives nobody the token).
func (s *Set) HandlerTokenSHA256(sum [sha256.Size]byte, log *slog.Logger) http.Handler {
	return guarded(s.Handler("", log), sum)
}

func guarded(h http.Handler, want [sha256.Size]byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || len(got) > maxTokenLen || !sameToken(got, want) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="brig metrics"`)
			http.Error(w, "unauthorized: this /metrics needs the metrics token (Authorization: Bearer TOKEN)", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// sameToken compares in constant time; hashing both sides first makes it
// constant in the token's length too.
func sameToken(got string, want [sha256.Size]byte) bool {
	sum := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(sum[:], want[:]) == 1
}

// slogPrinter is promhttp's error log, through slog.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) {
	p.log.Error("metrics: gathering", "err", fmt.Sprint(v...))
}
