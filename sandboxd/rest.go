package sandboxd

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Caps of the REST side.
const (
	// MaxPutBytes is the largest PUT body written; a larger one is refused
	// (400) and nothing is left of it.
	MaxPutBytes = 1 << 30
	// MaxListEntries is the most entries a directory listing returns.
	MaxListEntries = 100_000
	// MaxPathBytes is the longest path (after URL decoding) and the longest
	// query string accepted.
	MaxPathBytes = 4096
)

// The error codes of the REST error body (filesystem.yaml's Error).
const (
	codeInvalidArgument  = "INVALID_ARGUMENT"
	codePermissionDenied = "PERMISSION_DENIED"
	codeNotFound         = "NOT_FOUND"
	codeConflict         = "CONFLICT"
	codeUnavailable      = "UNAVAILABLE"
	codeInternal         = "INTERNAL"
)

type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type fileEntry struct {
	Name       string `json:"name"`
	Size       int64  `json:"size"`
	Type       string `json:"type"`
	ModifiedAt string `json:"modified_at"`
	Mode       string `json:"mode"`
}

type directoryListing struct {
	Path    string      `json:"path"`
	Entries []fileEntry `json:"entries"`
}

type healthResponse struct {
	Status        string `json:"status"`
	UptimeSeconds int64  `json:"uptime_seconds"`
}

type metadataResponse struct {
	Env map[string]string `json:"env"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, apiError{Code: code, Message: msg})
}

// fileRequest is a parsed /v1/files request: the path relative to the
// workspace and the query's options.
type fileRequest struct {
	rel       string
	mode      uint32 // PUT
	recursive bool   // DELETE
}

var modePattern = regexp.MustCompile(`^0[0-7]{3}$`)

// parseFileRequest parses the escaped path after /v1/files/ and the raw
// query of a /v1/files request. Its errors are the HTTP status and body
// to answer with. Input: at most MaxPathBytes of each.
func parseFileRequest(method, escapedPath, rawQuery string) (fileRequest, int, apiError) {
	req := fileRequest{mode: 0o644}
	if len(escapedPath) > 3*MaxPathBytes || len(rawQuery) > MaxPathBytes {
		return req, http.StatusForbidden, apiError{codePermissionDenied, fmt.Sprintf("path or query longer than %d bytes", MaxPathBytes)}
	}
	p, err := url.PathUnescape(escapedPath)
	if err != nil {
		return req, http.StatusForbidden, apiError{codePermissionDenied, fmt.Sprintf("path: %v", err)}
	}
	if req.rel, err = workspaceRel(p); err != nil {
		return req, http.StatusForbidden, apiError{codePermissionDenied, err.Error()}
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return req, http.StatusBadRequest, apiError{codeInvalidArgument, fmt.Sprintf("query: %v", err)}
	}
	switch method {
	case http.MethodPut:
		if m, ok := q["mode"]; ok {
			if len(m) != 1 || !modePattern.MatchString(m[0]) {
				return req, http.StatusBadRequest, apiError{codeInvalidArgument, fmt.Sprintf("mode %q: want one octal mode matching ^0[0-7]{3}$, e.g. 0644 or 0755", m)}
			}
			v, _ := strconv.ParseUint(m[0], 8, 32)
			req.mode = uint32(v)
		}
	case http.MethodDelete:
		if r, ok := q["recursive"]; ok {
			b, err := strconv.ParseBool(strings.Join(r, ","))
			if len(r) != 1 || err != nil {
				return req, http.StatusBadRequest, apiError{codeInvalidArgument, fmt.Sprintf("recursive %q: want true or false", r)}
			}
			req.recursive = b
		}
	}
	return req, 0, apiError{}
}

// restHandler serves filesystem.yaml's paths under /v1.
func (s *Server) restHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/files/", s.serveFiles)
	mux.HandleFunc("GET /v1/health", s.serveHealth)
	mux.HandleFunc("GET /v1/metadata", s.serveMetadata)
	return mux
}

func (s *Server) serveFiles(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete:
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT, DELETE")
		writeError(w, http.StatusMethodNotAllowed, codeInvalidArgument, r.Method+": /v1/files takes GET, HEAD, PUT and DELETE")
		return
	}
	escaped := strings.TrimPrefix(r.URL.EscapedPath(), "/v1/files/")
	req, code, e := parseFileRequest(r.Method, escaped, r.URL.RawQuery)
	if code != 0 {
		if r.Method == http.MethodPut {
			_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20)) // let the client read the answer
		}
		writeError(w, code, e.Code, e.Message)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.getFile(w, r, req)
	case http.MethodPut:
		s.putFile(w, r, req)
	case http.MethodDelete:
		s.deleteFile(w, req)
	}
}

// fileError answers with the status a workspace error calls for.
func fileError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, errEscape):
		writeError(w, http.StatusForbidden, codePermissionDenied, err.Error())
	case errors.Is(err, fs.ErrNotExist):
		writeError(w, http.StatusNotFound, codeNotFound, "no such file or directory in the workspace")
	case errors.Is(err, errNotEmpty):
		writeError(w, http.StatusConflict, codeConflict, err.Error())
	case errors.Is(err, errIsDir), errors.Is(err, errTooLarge), errors.Is(err, unix.ENOTDIR):
		writeError(w, http.StatusBadRequest, codeInvalidArgument, err.Error())
	case errors.Is(err, fs.ErrPermission), errors.Is(err, unix.EWOULDBLOCK), errors.Is(err, unix.ENXIO), errors.Is(err, errNotRegular):
		writeError(w, http.StatusForbidden, codePermissionDenied, err.Error())
	default:
		writeError(w, http.StatusInternalServerError, codeInternal, err.Error())
	}
}

var errNotRegular = errors.New("not a regular file or directory (a FIFO, socket or device is never opened)")

// getFile serves a regular file's bytes, streamed through a fixed buffer,
// or a directory's listing. HEAD answers the same headers.
func (s *Server) getFile(w http.ResponseWriter, r *http.Request, req fileRequest) {
	var f *os.File
	err := s.ws.asOwner(func() error {
		var err error
		// O_NONBLOCK: a FIFO the jail planted does not wait for a writer,
		// a file it holds a lease on fails at once.
		f, err = openat2(s.ws.fd, req.rel, unix.O_RDONLY|unix.O_NONBLOCK, 0)
		return err
	})
	if err != nil {
		fileError(w, err)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		fileError(w, err)
		return
	}
	switch {
	case fi.IsDir():
		s.listDir(w, f, req.rel)
	case fi.Mode().IsRegular():
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
		w.Header().Set("Last-Modified", fi.ModTime().UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			// A file that grows meanwhile is cut at the size announced.
			_, _ = io.Copy(w, io.LimitReader(f, fi.Size()))
		}
	default:
		fileError(w, errNotRegular)
	}
}

// listDir lists a directory's files and directories (at most
// MaxListEntries, sorted by name), described and never followed: symlinks
// and other special files have no type in filesystem.yaml and are left
// out.
func (s *Server) listDir(w http.ResponseWriter, dir *os.File, rel string) {
	names, err := dir.Readdirnames(MaxListEntries)
	if err != nil && err != io.EOF {
		fileError(w, err)
		return
	}
	sort.Strings(names)
	entries := make([]fileEntry, 0, len(names))
	for _, n := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(int(dir.Fd()), n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue // gone meanwhile
		}
		e := fileEntry{Name: n, Size: st.Size, Mode: fmt.Sprintf("%04o", st.Mode&0o777),
			ModifiedAt: time.Unix(st.Mtim.Unix()).UTC().Format(time.RFC3339)}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			e.Type = "file"
		case unix.S_IFDIR:
			e.Type = "directory"
		default:
			continue
		}
		entries = append(entries, e)
	}
	p := WorkspaceMount
	if rel != "." {
		p = path.Join(WorkspaceMount, rel)
	}
	writeJSON(w, http.StatusOK, directoryListing{Path: p, Entries: entries})
}

// putFile writes the body (raw, or a multipart form's "file" part)
// atomically.
func (s *Server) putFile(w http.ResponseWriter, r *http.Request, req fileRequest) {
	body := io.Reader(r.Body)
	if ct := r.Header.Get("Content-Type"); strings.HasPrefix(ct, "multipart/form-data") {
		mr, err := r.MultipartReader()
		if err != nil {
			writeError(w, http.StatusBadRequest, codeInvalidArgument, fmt.Sprintf("multipart body: %v", err))
			return
		}
		for {
			part, err := mr.NextPart()
			if err != nil {
				writeError(w, http.StatusBadRequest, codeInvalidArgument, `multipart body: no "file" part`)
				return
			}
			if part.FormName() == "file" {
				body = part
				break
			}
		}
	}
	if err := s.ws.writeAtomic(req.rel, body, req.mode); err != nil {
		fileError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) deleteFile(w http.ResponseWriter, req fileRequest) {
	if err := s.ws.remove(req.rel, req.recursive); err != nil {
		fileError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) serveHealth(w http.ResponseWriter, _ *http.Request) {
	if s.draining.Load() {
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, "sandboxd is shutting down")
		return
	}
	writeJSON(w, http.StatusOK, healthResponse{Status: "ok", UptimeSeconds: int64(time.Since(s.started).Seconds())})
}

// serveMetadata serves the server's environment variables that start with
// Options.MetadataPrefix, leaving out any whose name looks like a
// credential: the agent's code can read this endpoint.
func (s *Server) serveMetadata(w http.ResponseWriter, _ *http.Request) {
	env := map[string]string{}
	for _, kv := range s.environ() {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, s.metadataPrefix) || looksSecret(k) {
			continue
		}
		env[k] = v
	}
	writeJSON(w, http.StatusOK, metadataResponse{Env: env})
}

func looksSecret(name string) bool {
	u := strings.ToUpper(name)
	for _, m := range []string{"TOKEN", "SECRET", "PASSWORD", "PASSWD", "CRED", "KEY", "AUTH", "BEARER", "PRIVATE", "CERT"} {
		if strings.Contains(u, m) {
			return true
		}
	}
	return false
}

func randomSuffix() uint64 { return rand.Uint64() }
