package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// apiError is an answer of the API other than success: its status, its
// code (stable, for programs) and its message (for people).
type apiError struct {
	status     int
	code       string
	message    string
	quota      string
	retryAfter time.Duration
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// quotaError is a 429 naming the quota. Quotas of live objects free up
// when the client deletes some, not with time: their Retry-After is a
// second, the contract's floor.
func quotaError(quota string, limit any, retry time.Duration) *apiError {
	retry = max(retry, time.Second)
	return &apiError{status: http.StatusTooManyRequests, code: "quota_exceeded", quota: quota, retryAfter: retry,
		message: fmt.Sprintf("over the tenant's %s quota (%v); retry later or ask for a larger quota", quota, limit)}
}

var errNotFound = errorf(http.StatusNotFound, "not_found", "no such object")

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Quota   string `json:"quota,omitempty"`
	} `json:"error"`
}

func writeAPIError(w http.ResponseWriter, e *apiError) {
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((e.retryAfter+time.Second-1)/time.Second)))
	}
	var b errorBody
	b.Error.Code, b.Error.Message, b.Error.Quota = e.code, e.message, e.quota
	writeJSON(w, e.status, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	// A client that does not read its answer holds the handler no longer
	// than this.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decodeBody reads a JSON request body of at most max bytes into v,
// refusing unknown fields and trailing data. Its errors name the field.
func decodeBody(w http.ResponseWriter, r *http.Request, max int64, v any) *apiError {
	body := http.MaxBytesReader(w, r.Body, max)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); !errors.Is(terr, io.EOF) {
			err = errors.New("data after the JSON object")
		}
	}
	if err == nil {
		return nil
	}
	var tooBig *http.MaxBytesError
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &tooBig):
		return errorf(http.StatusBadRequest, "body_too_large", "the request body is larger than the %d-byte cap (max_body_bytes)", max)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errorf(http.StatusBadRequest, "bad_json", "malformed JSON: the body ends inside a value")
	case errors.Is(err, io.EOF):
		return errorf(http.StatusBadRequest, "bad_json", "the request body is empty: send a JSON object")
	case errors.As(err, &typeErr):
		return errorf(http.StatusBadRequest, "bad_json", "field %q: want a JSON %s, not %s", typeErr.Field, typeErr.Type, typeErr.Value)
	case errors.As(err, &syntaxErr):
		return errorf(http.StatusBadRequest, "bad_json", "malformed JSON at byte %d: %v", syntaxErr.Offset, err)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		if aerr := networkFieldRefused(strings.TrimPrefix(err.Error(), "json: unknown field ")); aerr != nil {
			return aerr
		}
		return errorf(http.StatusBadRequest, "unknown_field", "%s: not a field of this request (see docs/api.md)", strings.TrimPrefix(err.Error(), "json: "))
	}
	return errorf(http.StatusBadRequest, "bad_json", "%v", err)
}
