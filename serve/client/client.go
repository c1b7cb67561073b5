// Package client is a Go client of brig serve (docs/api.md). It imports
// nothing of brig, so that a program that calls the service does not link
// the jail library; its result types hold the same JSON keys as the
// server's (package serve's tests compare them).
//
//	c, err := client.New("unix:///run/brig/brig.sock", token)
//	res, err := c.Run(ctx, client.RunRequest{Language: "python", Code: "print(6*7)"})
//	fmt.Print(res.Stdout)
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// MaxEventLine caps one line of a streamed answer.
const MaxEventLine = 64 << 20

// Client calls one brig serve.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// New returns a client of the server at addr: unix:///PATH, http://HOST:PORT
// or https://HOST:PORT.
func New(addr, token string) (*Client, error) {
	u, err := url.Parse(addr)
	if err != nil {
		return nil, fmt.Errorf("brig client: %q: %w", addr, err)
	}
	switch u.Scheme {
	case "unix":
		path := u.Path
		tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		}}
		return &Client{base: "http://brig", token: token, http: &http.Client{Transport: tr}}, nil
	case "http", "https":
		return &Client{base: strings.TrimSuffix(addr, "/"), token: token, http: &http.Client{}}, nil
	}
	return nil, fmt.Errorf("brig client: %q: want unix:///PATH, http://HOST:PORT or https://HOST:PORT", addr)
}

// Error is an error answer of the server.
type Error struct {
	Status     int
	Code       string
	Message    string
	Quota      string
	RetryAfter int // seconds, when the server said
}

func (e *Error) Error() string {
	return fmt.Sprintf("brig serve: %d %s: %s", e.Status, e.Code, e.Message)
}

// Result is a run's or a process's result (the keys of brig run --result),
// with its output when not streamed.
type Result struct {
	Stdout          string   `json:"stdout"`
	Stderr          string   `json:"stderr"`
	ExitCode        int      `json:"exit_code"`
	Signal          int      `json:"signal"`
	Reason          string   `json:"reason"`
	PeakMemory      int64    `json:"peak_memory_bytes"`
	WallTimeMS      int64    `json:"wall_time_ms"`
	CPUTimeMS       int64    `json:"cpu_time_ms"`
	StdoutTruncated bool     `json:"stdout_truncated"`
	StderrTruncated bool     `json:"stderr_truncated"`
	Limiter         string   `json:"limiter"`
	OOMKills        int64    `json:"oom_kills"`
	PidsLimitHits   int64    `json:"pids_limit_hits"`
	SeccompSyscall  string   `json:"seccomp_syscall,omitempty"`
	SeccompLogged   []string `json:"seccomp_logged,omitempty"`
	// EgressRefused: what the template's egress proxy refused.
	EgressRefused []EgressRefusal `json:"egress_refused,omitempty"`
}

// EgressRefusal is a destination the egress proxy refused, how often and
// why.
type EgressRefusal struct {
	Host   string `json:"host"`
	Port   int    `json:"port,omitempty"`
	Reason string `json:"reason"`
	Count  int    `json:"count"`
}

// CellResult is a cell's result (the keys of brig session --jsonl).
type CellResult struct {
	ID              *string    `json:"id"`
	Status          string     `json:"status"`
	Stdout          string     `json:"stdout"`
	Stderr          string     `json:"stderr"`
	Value           *string    `json:"value"`
	Error           *Exception `json:"error"`
	ExitCode        *int       `json:"exit_code"`
	Reason          string     `json:"reason"`
	WallTimeMS      int64      `json:"wall_time_ms"`
	CPUTimeMS       int64      `json:"cpu_time_ms"`
	StdoutTruncated bool       `json:"stdout_truncated"`
	StderrTruncated bool       `json:"stderr_truncated"`
	// EgressRefused: what the proxy refused since the previous cell.
	EgressRefused []EgressRefusal `json:"egress_refused,omitempty"`
}

// Exception is a Python cell's exception.
type Exception struct {
	Type      string `json:"type"`
	Message   string `json:"message"`
	Traceback string `json:"traceback"`
}

// RunRequest is a run or a process: Command, or Language and Code.
type RunRequest struct {
	Command  []string `json:"command,omitempty"`
	Language string   `json:"language,omitempty"`
	Code     *string  `json:"code,omitempty"`
	Stdin    *string  `json:"stdin,omitempty"`
	Timeout  float64  `json:"timeout,omitempty"` // seconds
	Memory   int64    `json:"memory,omitempty"`  // bytes
	Template string   `json:"template,omitempty"`
}

// Code is a helper for RunRequest.Code.
func Code(s string) *string { return &s }

// Sandbox describes a sandbox.
type Sandbox struct {
	ID              string `json:"id"`
	Template        string `json:"template"`
	CreatedAt       string `json:"created_at"`
	LastUsedAt      string `json:"last_used_at"`
	WorkspaceBytes  int64  `json:"workspace_bytes"`
	WorkspaceInodes int64  `json:"workspace_inodes"`
	Contexts        []struct {
		ID       string `json:"id"`
		Language string `json:"language"`
		Status   string `json:"status"`
	} `json:"contexts"`
}

// FileInfo is an entry of a workspace listing.
type FileInfo struct {
	Name  string `json:"name"`
	Size  int64  `json:"size"`
	Mode  uint32 `json:"mode"`
	IsDir bool   `json:"is_dir"`
}

// OnOutput receives a streamed execution's output as it comes; stream is
// "stdout" or "stderr".
type OnOutput func(stream, data string)

func (c *Client) do(ctx context.Context, method, path string, body any, raw io.Reader, stream bool) (*http.Response, error) {
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		raw = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, raw)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if stream {
		req.Header.Set("Accept", "application/x-ndjson")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		var e struct {
			Error struct{ Code, Message, Quota string }
		}
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(data, &e) != nil || e.Error.Code == "" {
			e.Error.Code, e.Error.Message = "http_"+strconv.Itoa(resp.StatusCode), string(data)
		}
		retry, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return nil, &Error{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message, Quota: e.Error.Quota, RetryAfter: retry}
	}
	return resp, nil
}

func (c *Client) json(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.do(ctx, method, path, body, nil, false)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// execution posts an execution; with onOutput it streams, calling it for
// each chunk, and decodes the final result event into out.
func (c *Client) execution(ctx context.Context, path string, body any, onOutput OnOutput, out any) error {
	if onOutput == nil {
		return c.json(ctx, "POST", path, body, out)
	}
	resp, err := c.do(ctx, "POST", path, body, nil, true)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	r := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		line, err := readLine(r)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return errors.New("brig serve: the stream ended without a result")
			}
			return err
		}
		var head struct {
			Type  string          `json:"type"`
			Data  string          `json:"data"`
			Error json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(line, &head); err != nil {
			return fmt.Errorf("brig serve: a bad event: %w", err)
		}
		switch head.Type {
		case "stdout", "stderr":
			onOutput(head.Type, head.Data)
		case "result":
			return json.Unmarshal(line, out)
		case "error":
			var e struct{ Code, Message string }
			_ = json.Unmarshal(head.Error, &e)
			return &Error{Status: 200, Code: e.Code, Message: e.Message}
		}
	}
}

func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line)+len(chunk) > MaxEventLine {
			return nil, fmt.Errorf("brig serve: an event longer than %d bytes", MaxEventLine)
		}
		line = append(line, chunk...)
		if err == nil {
			return line, nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
	}
}

// Health reports the server's status ("ok" or "draining").
func (c *Client) Health(ctx context.Context) (string, error) {
	var h struct{ Status string }
	err := c.json(ctx, "GET", "/v1/health", nil, &h)
	return h.Status, err
}

// Run runs a one-shot command; onOutput, when not nil, streams its output.
func (c *Client) Run(ctx context.Context, req RunRequest, onOutput OnOutput) (*Result, error) {
	var r Result
	return &r, c.execution(ctx, "/v1/runs", req, onOutput, &r)
}

// CreateSandbox makes a sandbox of template ("" for default).
func (c *Client) CreateSandbox(ctx context.Context, template string, workspaceBytes int64) (*Sandbox, error) {
	body := map[string]any{}
	if template != "" {
		body["template"] = template
	}
	if workspaceBytes > 0 {
		body["workspace_bytes"] = workspaceBytes
	}
	var sb Sandbox
	return &sb, c.json(ctx, "POST", "/v1/sandboxes", body, &sb)
}

// Sandbox describes one sandbox.
func (c *Client) Sandbox(ctx context.Context, id string) (*Sandbox, error) {
	var sb Sandbox
	return &sb, c.json(ctx, "GET", "/v1/sandboxes/"+url.PathEscape(id), nil, &sb)
}

// Sandboxes lists the tenant's sandboxes.
func (c *Client) Sandboxes(ctx context.Context) ([]Sandbox, error) {
	var l struct{ Sandboxes []Sandbox }
	return l.Sandboxes, c.json(ctx, "GET", "/v1/sandboxes", nil, &l)
}

// DeleteSandbox deletes a sandbox with its contexts and workspace.
func (c *Client) DeleteSandbox(ctx context.Context, id string) error {
	return c.json(ctx, "DELETE", "/v1/sandboxes/"+url.PathEscape(id), nil, nil)
}

// CreateContext starts a python or shell context in a sandbox; it returns
// its id.
func (c *Client) CreateContext(ctx context.Context, sandbox, language string) (string, error) {
	var r struct{ ID string }
	err := c.json(ctx, "POST", "/v1/sandboxes/"+url.PathEscape(sandbox)+"/contexts", map[string]string{"language": language}, &r)
	return r.ID, err
}

// Execute runs code as a cell of a context; timeout in seconds (0: the
// template's); onOutput, when not nil, streams its output.
func (c *Client) Execute(ctx context.Context, sandbox, context, code string, timeout float64, onOutput OnOutput) (*CellResult, error) {
	body := map[string]any{"code": code}
	if timeout > 0 {
		body["timeout"] = timeout
	}
	var r CellResult
	return &r, c.execution(ctx, "/v1/sandboxes/"+url.PathEscape(sandbox)+"/contexts/"+url.PathEscape(context)+"/execute", body, onOutput, &r)
}

// Interrupt interrupts the context's running cell; it reports whether one
// ran.
func (c *Client) Interrupt(ctx context.Context, sandbox, context string) (bool, error) {
	var r struct{ Interrupted bool }
	err := c.json(ctx, "POST", "/v1/sandboxes/"+url.PathEscape(sandbox)+"/contexts/"+url.PathEscape(context)+"/interrupt", map[string]any{}, &r)
	return r.Interrupted, err
}

// DeleteContext ends a context.
func (c *Client) DeleteContext(ctx context.Context, sandbox, context string) error {
	return c.json(ctx, "DELETE", "/v1/sandboxes/"+url.PathEscape(sandbox)+"/contexts/"+url.PathEscape(context), nil, nil)
}

// Process runs a command in a fresh jail of the sandbox.
func (c *Client) Process(ctx context.Context, sandbox string, req RunRequest, onOutput OnOutput) (*Result, error) {
	var r Result
	return &r, c.execution(ctx, "/v1/sandboxes/"+url.PathEscape(sandbox)+"/processes", req, onOutput, &r)
}

func filePath(sandbox, path string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return "/v1/sandboxes/" + url.PathEscape(sandbox) + "/files/" + strings.Join(parts, "/")
}

// ReadFile reads a workspace file.
func (c *Client) ReadFile(ctx context.Context, sandbox, path string) ([]byte, error) {
	resp, err := c.do(ctx, "GET", filePath(sandbox, path), nil, nil, false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// WriteFile writes a workspace file, making its parents.
func (c *Client) WriteFile(ctx context.Context, sandbox, path string, data []byte) error {
	resp, err := c.do(ctx, "PUT", filePath(sandbox, path), nil, bytes.NewReader(data), false)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// ListDir lists a workspace directory ("" for the workspace).
func (c *Client) ListDir(ctx context.Context, sandbox, path string) ([]FileInfo, error) {
	var l struct{ Entries []FileInfo }
	p := filePath(sandbox, strings.Trim(path, "/"))
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return l.Entries, c.json(ctx, "GET", p, nil, &l)
}

// RemoveFile removes a workspace file or empty directory.
func (c *Client) RemoveFile(ctx context.Context, sandbox, path string) error {
	return c.json(ctx, "DELETE", filePath(sandbox, path), nil, nil)
}

// StartProcess starts a command in the background in a fresh jail of the
// sandbox; it returns the process's id at once.
func (c *Client) StartProcess(ctx context.Context, sandbox string, req RunRequest) (string, error) {
	body := struct {
		RunRequest
		Background bool `json:"background"`
	}{req, true}
	var r struct{ ID string }
	err := c.json(ctx, "POST", "/v1/sandboxes/"+url.PathEscape(sandbox)+"/processes", body, &r)
	return r.ID, err
}

func processPath(sandbox, process string) string {
	return "/v1/sandboxes/" + url.PathEscape(sandbox) + "/processes/" + url.PathEscape(process)
}

// WriteStdin writes data to a background process's stdin, and closes it
// when eof; it returns how many bytes went in.
func (c *Client) WriteStdin(ctx context.Context, sandbox, process string, data []byte, eof bool) (int, error) {
	body := map[string]any{"eof": eof}
	if data != nil {
		body["data"] = string(data)
	}
	var r struct{ Written int }
	err := c.json(ctx, "POST", processPath(sandbox, process)+"/stdin", body, &r)
	return r.Written, err
}

// Signal sends INT, TERM, HUP, QUIT, USR1, USR2 or KILL to a background
// process.
func (c *Client) Signal(ctx context.Context, sandbox, process, signal string) error {
	return c.json(ctx, "POST", processPath(sandbox, process)+"/signal", map[string]string{"signal": signal}, nil)
}

// Wait waits for a background process to end; onOutput, when not nil,
// streams its output from the start.
func (c *Client) Wait(ctx context.Context, sandbox, process string, onOutput OnOutput) (*Result, error) {
	var r Result
	return &r, c.execution(ctx, processPath(sandbox, process)+"/wait", map[string]any{}, onOutput, &r)
}

// DeleteProcess kills a background process if it runs and forgets it.
func (c *Client) DeleteProcess(ctx context.Context, sandbox, process string) error {
	return c.json(ctx, "DELETE", processPath(sandbox, process), nil, nil)
}
