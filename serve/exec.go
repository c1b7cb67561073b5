package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/brig-sandbox/brig/jail"
)

// NDJSONType is the media type of a streamed answer.
const NDJSONType = "application/x-ndjson"

// MaxArgs caps a command's arguments, beside the body cap.
const MaxArgs = 4096

func wantsStream(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), NDJSONType)
}

// StreamWriteTimeout bounds one write to a client. A client that stops
// reading for this long has its stream ended and its execution killed (or
// its cell interrupted): a stalled client holds no jail and no execution
// slot for long.
const StreamWriteTimeout = 30 * time.Second

// streamWriteTimeout is StreamWriteTimeout, shortened by tests.
var streamWriteTimeout = StreamWriteTimeout

// ndjson writes an answer as NDJSON events, flushed one by one. The jail's
// output is written as it comes, from the jail's copying goroutines: a slow
// client holds up the jail's pipes (and so the program), never the
// server's memory.
type ndjson struct {
	mu     sync.Mutex
	w      http.ResponseWriter
	rc     *http.ResponseController
	enc    *json.Encoder
	failed bool
	onFail func()
}

// newNDJSON starts a streamed answer; onFail (when not nil) is called once
// if a write fails, to end the execution nobody reads.
func newNDJSON(w http.ResponseWriter, onFail func()) *ndjson {
	w.Header().Set("Content-Type", NDJSONType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	return &ndjson{w: w, rc: http.NewResponseController(w), enc: json.NewEncoder(w), onFail: onFail}
}

func (n *ndjson) event(v any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.failed {
		return
	}
	_ = n.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	err := n.enc.Encode(v)
	if err == nil {
		err = n.rc.Flush()
	}
	if err != nil {
		n.failed = true
		if n.onFail != nil {
			go n.onFail()
		}
	}
}

// outputEvent is a chunk of stdout or stderr.
type outputEvent struct {
	Type string `json:"type"`
	Data string `json:"data"`
}

// streamWriter turns one stream's writes into events.
type streamWriter struct {
	n   *ndjson
	typ string
}

func (s streamWriter) Write(p []byte) (int, error) {
	s.n.event(outputEvent{Type: s.typ, Data: string(p)})
	return len(p), nil
}

// runAnswer is a run's or process's answer in one JSON document.
type runAnswer struct {
	Stdout string `json:"stdout"`
	Stderr string `json:"stderr"`
	ResultJSON
}

// runResultEvent ends a streamed run or process.
type runResultEvent struct {
	Type string `json:"type"`
	ResultJSON
}

// cellResultEvent ends a streamed cell.
type cellResultEvent struct {
	Type string `json:"type"`
	CellJSON
}

type runRequest struct {
	Command  []string       `json:"command"`
	Language string         `json:"language"`
	Code     *string        `json:"code"`
	Stdin    *string        `json:"stdin"`
	Timeout  *durationField `json:"timeout"`
	Memory   *sizeField     `json:"memory"`
	Template string         `json:"template"`
	// Background (processes only) starts the process and answers with its
	// id at once.
	Background bool `json:"background"`
}

// argv checks the request's program: a command, or code in a language.
func (req *runRequest) argv(allowCode bool) ([]string, *apiError) {
	switch {
	case allowCode && req.Background:
		return nil, errorf(400, "unknown_field", "background: only a sandbox's process runs in the background")
	case len(req.Command) > 0 && (req.Code != nil || req.Language != ""):
		return nil, errorf(400, "bad_request", "give command, or language and code, not both")
	case len(req.Command) > 0:
		if len(req.Command) > MaxArgs {
			return nil, errorf(400, "bad_request", "command: more than %d arguments", MaxArgs)
		}
		for i, a := range req.Command {
			if strings.ContainsRune(a, 0) {
				return nil, errorf(400, "bad_request", "command[%d]: contains a NUL byte", i)
			}
		}
		if req.Command[0] == "" {
			return nil, errorf(400, "bad_request", "command[0]: empty; name the program")
		}
		return req.Command, nil
	case !allowCode:
		return nil, errorf(400, "bad_request", "command: missing; give the program and its arguments as a list")
	case req.Code == nil:
		return nil, errorf(400, "bad_request", "give command (a list), or language (python or shell) and code")
	case strings.ContainsRune(*req.Code, 0):
		return nil, errorf(400, "bad_request", "code: contains a NUL byte")
	}
	switch req.Language {
	case "python":
		return []string{"/usr/bin/python3", "-c", *req.Code}, nil
	case "shell":
		return []string{"/bin/bash", "-c", *req.Code}, nil
	}
	return nil, errorf(400, "bad_request", "language %.20q: want python or shell", req.Language)
}

// limits applies the request's timeout and memory to cfg, refusing what
// the template does not allow (never clamping). changed reports whether
// cfg differs from the template's.
func (req *runRequest) limits(tpl Template, cfg *jail.Config) (changed bool, _ *apiError) {
	if req.Timeout != nil {
		d := time.Duration(*req.Timeout)
		if tpl.Jail.Timeout > 0 && d > tpl.Jail.Timeout {
			return false, errorf(400, "over_template_limit", "timeout %v: the template %s allows at most %v; ask for less, or use a template that allows more", d, tpl.Name, tpl.Jail.Timeout)
		}
		changed = changed || d != cfg.Timeout
		cfg.Timeout = d
	}
	if req.Memory != nil {
		ceiling := tpl.Jail.Limits.Memory
		if ceiling == 0 {
			ceiling = jail.DefaultMemory
		}
		m := int64(*req.Memory)
		if m > ceiling {
			return false, errorf(400, "over_template_limit", "memory %d bytes: the template %s allows at most %d; ask for less, or use a template that allows more", m, tpl.Name, ceiling)
		}
		if m < jail.MinMemory {
			return false, errorf(400, "bad_request", "memory %d bytes: a jail needs at least %d", m, jail.MinMemory)
		}
		changed = changed || m != cfg.Limits.Memory
		cfg.Limits.Memory = m
	}
	return changed, nil
}

// execute runs cmd (not started) and answers with its output and Result:
// streamed as NDJSON when asked, else in one document. The caller's
// context kills it: a client that goes away leaves nothing running.
// Its output is hashed as it passes (the audit record's sizes and
// sha256), never kept for that.
func (s *Server) execute(w http.ResponseWriter, r *http.Request, cmd *jail.Cmd, stdin *string, template string) (_ *jail.Result, stdoutSum, stderrSum *digestWriter, _ *apiError) {
	if stdin != nil {
		cmd.Stdin = strings.NewReader(*stdin)
	}
	var stream *ndjson
	var stdout, stderr bytes.Buffer // bounded: the jail kills at OutputLimit
	if wantsStream(r) {
		stream = newNDJSON(w, cmd.Kill)
		stdoutSum, stderrSum = newDigestWriter(streamWriter{stream, "stdout"}), newDigestWriter(streamWriter{stream, "stderr"})
	} else {
		stdoutSum, stderrSum = newDigestWriter(&stdout), newDigestWriter(&stderr)
	}
	cmd.Stdout, cmd.Stderr = stdoutSum, stderrSum
	if err := s.startJail(cmd, template); err != nil {
		if stream != nil {
			stream.event(map[string]any{"type": "error", "error": map[string]string{"code": "jail_failed", "message": err.Error()}})
			return nil, nil, nil, nil
		}
		return nil, nil, nil, startError(err)
	}
	_ = cmd.Wait()
	res := cmd.Result
	if res == nil {
		return nil, nil, nil, errorf(500, "internal", "the jail reported no result")
	}
	if stream != nil {
		stream.event(runResultEvent{Type: "result", ResultJSON: NewResultJSON(res)})
		return res, stdoutSum, stderrSum, nil
	}
	if r.Context().Err() != nil {
		return res, stdoutSum, stderrSum, nil // nobody to answer
	}
	writeJSON(w, http.StatusOK, runAnswer{Stdout: stdout.String(), Stderr: stderr.String(), ResultJSON: NewResultJSON(res)})
	return res, stdoutSum, stderrSum, nil
}

// startJail starts cmd, timing it for the metrics: the set-up of a jail
// (or the handover of a pooled one) is what a client waits for first.
func (s *Server) startJail(cmd *jail.Cmd, template string) error {
	t0 := time.Now()
	err := cmd.Start()
	s.setUpDone(template, t0, err)
	return err
}

func (s *Server) setUpDone(template string, t0 time.Time, err error) {
	var se *jail.SetupError
	switch {
	case err == nil:
		s.metrics.JailSetUp(template, time.Since(t0))
	case errors.As(err, &se):
		s.metrics.JailSetUpFailed(template)
	}
}

func startError(err error) *apiError {
	var se *jail.SetupError
	if errors.As(err, &se) {
		return errorf(400, "jail_failed", "%v", err)
	}
	return errorf(500, "jail_failed", "%v", err)
}

// runCell executes code in a context and answers as execute does, with a
// CellJSON. The client going away interrupts the cell (the context lives
// on), as the interrupt endpoint does.
// Its output's digests are of the stream as it passed, or of the
// answer's text.
func (s *Server) runCell(w http.ResponseWriter, r *http.Request, ctx context.Context, interrupt func(), c *execContext, code string, timeout time.Duration, outputLimit int64) (_ CellJSON, stdoutSum, stderrSum *OutputDigest) {
	var stream *ndjson
	var stdout, stderr *digestWriter
	if wantsStream(r) {
		stream = newNDJSON(w, interrupt)
		stdout, stderr = newDigestWriter(streamWriter{stream, "stdout"}), newDigestWriter(streamWriter{stream, "stderr"})
	}
	var res CellJSON
	if stream != nil {
		res = c.in.run(ctx, code, timeout, outputLimit, stdout, stderr)
		stream.event(cellResultEvent{Type: "result", CellJSON: res})
		return res, stdout.digest(res.StdoutTruncated), stderr.digest(res.StderrTruncated)
	}
	res = c.in.run(ctx, code, timeout, outputLimit, nil, nil)
	if r.Context().Err() == nil {
		writeJSON(w, http.StatusOK, res)
	}
	return res, digestOf(res.Stdout, res.StdoutTruncated), digestOf(res.Stderr, res.StderrTruncated)
}
