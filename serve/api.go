package serve

import (
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/brig-sandbox/brig/jail"
)

// handler is an API endpoint: it answers itself, or returns the error to
// answer with.
type handler func(w http.ResponseWriter, r *http.Request, t *tenant) *apiError

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /v1/health", s.health)
	methods := map[string][]string{} // path → its methods, for the 405s
	handle := func(pattern, action string, h handler) {
		m.Handle(pattern, s.authed(action, h))
		method, path, _ := strings.Cut(pattern, " ")
		methods[path] = append(methods[path], method)
	}
	handle("POST /v1/runs", "run", s.postRun)
	handle("POST /v1/sandboxes", "sandbox.create", s.postSandbox)
	handle("GET /v1/sandboxes", "sandbox.list", s.listSandboxes)
	handle("GET /v1/sandboxes/{id}", "sandbox.get", s.getSandbox)
	handle("DELETE /v1/sandboxes/{id}", "sandbox.delete", s.deleteSandboxH)
	handle("POST /v1/sandboxes/{id}/contexts", "context.create", s.postContext)
	handle("DELETE /v1/sandboxes/{id}/contexts/{cid}", "context.delete", s.deleteContextH)
	handle("POST /v1/sandboxes/{id}/contexts/{cid}/execute", "execute", s.postExecute)
	handle("POST /v1/sandboxes/{id}/contexts/{cid}/interrupt", "interrupt", s.postInterrupt)
	handle("POST /v1/sandboxes/{id}/processes", "process", s.postProcess)
	handle("GET /v1/sandboxes/{id}/processes/{pid}", "process.get", s.getProcess)
	handle("POST /v1/sandboxes/{id}/processes/{pid}/stdin", "process.stdin", s.postStdin)
	handle("POST /v1/sandboxes/{id}/processes/{pid}/signal", "process.signal", s.postSignal)
	handle("POST /v1/sandboxes/{id}/processes/{pid}/wait", "process.wait", s.postWait)
	handle("DELETE /v1/sandboxes/{id}/processes/{pid}", "process.delete", s.deleteProcess)
	handle("GET /v1/sandboxes/{id}/files", "file.read", s.getFile)
	handle("GET /v1/sandboxes/{id}/files/{path...}", "file.read", s.getFile)
	handle("HEAD /v1/sandboxes/{id}/files/{path...}", "file.read", s.headFile)
	handle("PUT /v1/sandboxes/{id}/files/{path...}", "file.write", s.putFile)
	handle("DELETE /v1/sandboxes/{id}/files/{path...}", "file.delete", s.deleteFile)
	for path, allowed := range methods {
		allow := strings.Join(allowed, ", ")
		m.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeAPIError(w, errorf(http.StatusMethodNotAllowed, "method_not_allowed", "%s %.200s: this endpoint takes %s", r.Method, r.URL.Path, allow))
		})
	}
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, errorf(http.StatusNotFound, "not_found", "no such endpoint: %s %.200s (see docs/api.md)", r.Method, r.URL.Path))
	})
	s.mux = m
}

// authed authenticates the request (401 with no detail), takes its
// rate-limit token, refuses new work while draining, and reports an Event
// for every refusal.
func (s *Server) authed(action string, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := s.authenticate(r)
		if t == nil {
			w.Header().Set("WWW-Authenticate", "Bearer")
			writeAPIError(w, errorf(http.StatusUnauthorized, "unauthorized", "unauthorized"))
			s.observe(r, Event{Action: action, Status: http.StatusUnauthorized, Code: "unauthorized"})
			return
		}
		aerr := t.admit()
		if aerr == nil && s.draining.Load() {
			aerr = errDraining
		}
		if aerr == nil {
			aerr = h(w, r, t)
		}
		if aerr != nil {
			writeAPIError(w, aerr)
			s.observe(r, Event{Tenant: t.Name, Action: action, Sandbox: r.PathValue("id"), Context: r.PathValue("cid"),
				Status: aerr.status, Code: aerr.code, Quota: aerr.quota, Message: aerr.message})
		}
	})
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	status, code := "ok", http.StatusOK
	if s.draining.Load() {
		status, code = "draining", http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]any{"status": status})
}

func (s *Server) postRun(w http.ResponseWriter, r *http.Request, t *tenant) *apiError {
	var req runRequest
	if aerr := decodeBody(w, r, s.cfg.MaxBodyBytes, &req); aerr != nil {
		return aerr
	}
	argv, aerr := req.argv(true)
	if aerr != nil {
		return aerr
	}
	tpl, aerr := s.template(req.Template)
	if aerr != nil {
		return aerr
	}
	cfg := tpl.Jail
	changed, aerr := req.limits(tpl, &cfg)
	if aerr != nil {
		return aerr
	}
	done, aerr := s.startExecution(r, t)
	if aerr != nil {
		return aerr
	}
	defer done()
	ctx, cancel := s.workCtx(r.Context())
	defer cancel()
	var cmd *jail.Cmd
	if p := s.pools[tpl.Name]; p != nil && !changed {
		cmd = p.Command(ctx, argv[0], argv[1:]...)
	} else {
		cmd = jail.Command(ctx, cfg, argv[0], argv[1:]...)
	}
	cmd.Env = tpl.Env
	s.hookEgress(cmd, cfg, Event{RequestID: requestID(r), Remote: r.RemoteAddr, Tenant: t.Name, Template: tpl.Name})
	res, stdout, stderr, aerr := s.execute(w, r, cmd, req.Stdin, tpl.Name)
	if aerr == nil {
		ev := runEvent("run", t, "", tpl.Name, argv, res, stdout, stderr)
		if req.Code != nil {
			ev.Command, ev.Language, ev.Program = nil, req.Language, *req.Code
		}
		s.observe(r, ev)
	}
	return aerr
}

func (s *Server) postSandbox(w http.ResponseWriter, r *http.Request, t *tenant) *apiError {
	var req createSandboxRequest
	if aerr := decodeBody(w, r, s.cfg.MaxBodyBytes, &req); aerr != nil {
		return aerr
	}
	if aerr := s.auditGate(r); aerr != nil {
		return aerr
	}
	sb, aerr := s.createSandbox(t, req)
	if aerr != nil {
		return aerr
	}
	s.observe(r, Event{Tenant: t.Name, Action: "sandbox.create", Sandbox: sb.id, Template: sb.template.Name, Status: http.StatusCreated})
	writeJSON(w, http.StatusCreated, sb.describe())
	return nil
}

func (s *Server) listSandboxes(w http.ResponseWriter, r *http.Request, t *tenant) *apiError {
	list := []map[string]any{}
	for _, sb := range s.sortedSandboxes(t) {
		list = append(list, sb.describe())
	}
	writeJSON(w, http.StatusOK, map[string]any{"sandboxes": list})
	return nil
}

func (s *Server) getSandbox(w http.ResponseWriter, r *http.Request, t *tenant) *apiError {
	sb, aerr := s.lookup(t, r.PathValue("id"))
	if aerr != nil {
		return aerr
	}
	writeJSON(w, http.StatusOK, sb.describe())
	return nil
}

func (s *Server) deleteSandboxH(w http.ResponseWriter, r *http.Request, t *tenant) *apiError {
	sb, aerr := s.lookup(t, r.PathValue("id"))
	if aerr != nil {
		return aerr
	}
	s.deleteSandbox(sb)
	s.observe(r, Event{Tenant: t.Name, Action: "sandbox.delete", Sandbox: sb.id, Template: sb.template.Name, Status: http.StatusOK})
	writeJSON(w, http.StatusOK, map[string]any{"id": sb.id, "deleted": true})
	return nil
}

// inSandbox looks the request's sandbox up and marks it used while fn runs.
func (s *Server) inSandbox(r *http.Request, t *tenant, fn func(sb *sandbox) *apiError) *apiError {
	sb, aerr := s.lookup(t, r.PathValue("id"))
	if aerr != nil {
		return aerr
	}
	release, ok := sb.use()
	if !ok {
		return errorf(http.StatusNotFound, "not_found", "no such sandbox")
	}
	defer release()
	return fn(sb)
}

func (s *Server) postContext(w http.ResponseWriter, r *http.Request, t *tenant) *apiError {
	var req createContextRequest
	if aerr := decodeBody(w, r, s.cfg.MaxBodyBytes, &req); aerr != nil {
		return aerr
	}
	return s.inSandbox(r, t, func(sb *sandbox) *apiError {
		c, aerr := s.createContext(r, sb, req)
		if aerr != nil {
			return aerr
		}
		s.observe(r, Event{Tenant: t.Name, Action: "context.create", Sandbox: sb.id, Context: c.id, Template: sb.template.Name, Language: c.language, Status: http.StatusCreated})
		writeJSON(w, http.StatusCreated, map[string]any{"id": c.id, "language": c.language, "status": "idle", "workspace": c.workspace})
		return nil
	})
}

func (s *Server) deleteContextH(w http.ResponseWriter, r *http.Request, t *tenant) *apiError {
	return s.inSandbox(r, t, func(sb *sandbox) *apiError {
		if aerr := s.deleteContext(sb, r.PathValue("cid")); aerr != nil {
			return aerr
		}
		s.observe(r, Event{Tenant: t.Name, Action: "context.delete", Sandbox: sb.id, Context: r.PathValue("cid"), Template: sb.template.Name, Status: http.StatusOK})
		writeJSON(w, http.StatusOK, map[string]any{"id": r.PathValue("cid"), "deleted": true})
		return nil
	})
}

type executeRequest struct {
	Code    *string        `json:"code"`
	Timeout *durationField `json:"timeout"`
}

func (s *Server) postExecute(w http.ResponseWriter, r *http.Request, t *tenant) *apiError {
	var req executeRequest
	if aerr := decodeBody(w, r, s.cfg.MaxBodyBytes, &req); aerr != nil {
		return aerr
	}
	if req.Code == nil {
		return errorf(400, "bad_request", "code: missing")
	}
	return s.inSandbox(r, t, func(sb *sandbox) *apiError {
		c, aerr := sb.context(r.PathValue("cid"))
		if aerr != nil {
			return aerr
		}
		tpl := sb.template
		timeout := tpl.Jail.Timeout
		if req.Timeout != nil {
			d := time.Duration(*req.Timeout)
			if tpl.Jail.Timeout > 0 && d > tpl.Jail.Timeout {
				return errorf(400, "over_template_limit", "timeout %v: the template %s allows at most %v; ask for less", d, tpl.Name, tpl.Jail.Timeout)
			}
			timeout = d
		}
		done, aerr := s.startExecution(r, t)
		if aerr != nil {
			return aerr
		}
		defer done()
		ctx, cancel := s.workCtx(r.Context(), sb.ctx)
		defer cancel()
		c.mu.Lock()
		if c.running {
			c.mu.Unlock()
			return errorf(http.StatusConflict, "busy", "the context runs a cell already; wait for it, or interrupt it")
		}
		c.running, c.stop = true, cancel
		c.mu.Unlock()
		defer func() {
			c.mu.Lock()
			c.running, c.stop = false, nil
			c.mu.Unlock()
		}()
		res, stdout, stderr := s.runCell(w, r, ctx, cancel, c, *req.Code, timeout, tpl.Jail.OutputLimit)
		ev := Event{Tenant: t.Name, Action: "execute", Sandbox: sb.id, Context: c.id, Template: tpl.Name, Status: http.StatusOK,
			Language: c.language, Program: *req.Code, Reason: res.Status, CellStatus: res.Status, Stdout: stdout, Stderr: stderr,
			WallTime: time.Duration(res.WallTimeMS) * time.Millisecond, CPUTime: time.Duration(res.CPUTimeMS) * time.Millisecond}
		if res.ExitCode != nil {
			ev.ExitCode = *res.ExitCode
		}
		if res.Status == "dead" && res.Reason != "" {
			ev.Reason = res.Reason // oom, cpu_time...: what killed the interpreter
			if res.Reason == "oom" {
				ev.LimitsHit = []string{"oom_kill"}
			}
		}
		if res.StdoutTruncated || res.StderrTruncated {
			ev.LimitsHit = append(ev.LimitsHit, "output_limit")
		}
		s.observe(r, ev)
		return nil
	})
}

func (s *Server) postInterrupt(w http.ResponseWriter, r *http.Request, t *tenant) *apiError {
	return s.inSandbox(r, t, func(sb *sandbox) *apiError {
		c, aerr := sb.context(r.PathValue("cid"))
		if aerr != nil {
			return aerr
		}
		c.mu.Lock()
		stop := c.stop
		c.mu.Unlock()
		if stop != nil {
			stop() // the cell is interrupted (KeyboardInterrupt, ^C); the context lives on
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": c.id, "interrupted": stop != nil})
		return nil
	})
}

func (s *Server) postProcess(w http.ResponseWriter, r *http.Request, t *tenant) *apiError {
	var req runRequest
	if aerr := decodeBody(w, r, s.cfg.MaxBodyBytes, &req); aerr != nil {
		return aerr
	}
	if req.Template != "" {
		return errorf(400, "unknown_field", "template: a process runs with its sandbox's template")
	}
	if req.Background && wantsStream(r) {
		return errorf(400, "bad_request", "background: a background process answers with its id; stream its output with POST .../processes/{pid}/wait")
	}
	argv, aerr := req.argv(false)
	if aerr != nil {
		return aerr
	}
	return s.inSandbox(r, t, func(sb *sandbox) *apiError {
		cfg := sb.jailConfig()
		if _, aerr := req.limits(sb.template, &cfg); aerr != nil {
			return aerr
		}
		done, aerr := s.startExecution(r, t)
		if aerr != nil {
			return aerr
		}
		if req.Background {
			p, aerr := s.startProcess(r, sb, cfg, argv, req.Stdin, done)
			if aerr != nil {
				return aerr
			}
			writeJSON(w, http.StatusCreated, map[string]any{"id": p.id, "command": p.command, "status": "running"})
			return nil
		}
		defer done()
		ctx, cancel := s.workCtx(r.Context(), sb.ctx)
		defer cancel()
		cmd := jail.Command(ctx, cfg, argv[0], argv[1:]...)
		cmd.Env = sb.template.Env
		s.hookEgress(cmd, cfg, Event{RequestID: requestID(r), Remote: r.RemoteAddr, Tenant: t.Name, Sandbox: sb.id, Template: sb.template.Name})
		res, stdout, stderr, aerr := s.execute(w, r, cmd, req.Stdin, sb.template.Name)
		if aerr == nil {
			s.observe(r, runEvent("process", t, sb.id, sb.template.Name, argv, res, stdout, stderr))
		}
		return aerr
	})
}

func (s *Server) getFile(w http.ResponseWriter, r *http.Request, t *tenant) *apiError {
	rel, aerr := cleanPath(r.PathValue("path"))
	if aerr != nil {
		return aerr
	}
	return s.inSandbox(r, t, func(sb *sandbox) *apiError {
		kind, err := statBeneath(sb.dir, rel)
		if err != nil {
			return fileError(rel, err)
		}
		if kind.dir {
			entries, err := listWorkspaceDir(sb.dir, dotIfEmpty(rel))
			if err != nil {
				return fileError(rel, err)
			}
			writeJSON(w, http.StatusOK, map[string]any{"path": rel, "entries": entries})
			return nil
		}
		data, err := readWorkspaceFile(sb.dir, rel, s.cfg.MaxFileBytes)
		if err != nil {
			return fileError(rel, err)
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(data)
		return nil
	})
}

func dotIfEmpty(rel string) string {
	if rel == "" {
		return "."
	}
	return rel
}

func (s *Server) headFile(w http.ResponseWriter, r *http.Request, t *tenant) *apiError {
	rel, aerr := cleanPath(r.PathValue("path"))
	if aerr != nil {
		return aerr
	}
	return s.inSandbox(r, t, func(sb *sandbox) *apiError {
		kind, err := statBeneath(sb.dir, rel)
		if err != nil {
			return fileError(rel, err)
		}
		if kind.dir {
			w.Header().Set("X-Brig-File-Type", "directory")
		} else {
			w.Header().Set("X-Brig-File-Type", "file")
			w.Header().Set("Content-Length", strconv.FormatInt(kind.size, 10))
		}
		w.WriteHeader(http.StatusOK)
		return nil
	})
}

func (s *Server) putFile(w http.ResponseWriter, r *http.Request, t *tenant) *apiError {
	rel, aerr := cleanPath(r.PathValue("path"))
	if aerr != nil {
		return aerr
	}
	if r.ContentLength > s.cfg.MaxFileBytes {
		return errorf(400, "body_too_large", "the file is larger than the %d-byte cap (max_file_bytes)", s.cfg.MaxFileBytes)
	}
	if aerr := s.auditGate(r); aerr != nil {
		return aerr
	}
	return s.inSandbox(r, t, func(sb *sandbox) *apiError {
		sum := newDigestWriter(nil)
		n, err := writeBeneath(sb.dir, rel, sb.owner, io.TeeReader(r.Body, sum), s.cfg.MaxFileBytes)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return errorf(400, "body_too_large", "the file is larger than the %d-byte cap", s.cfg.MaxFileBytes)
			}
			return fileError(rel, err)
		}
		s.observe(r, Event{Tenant: t.Name, Action: "file.write", Sandbox: sb.id, Template: sb.template.Name, Status: http.StatusOK,
			Path: rel, FileBytes: n, FileSHA256: sum.digest(false).SHA256})
		writeJSON(w, http.StatusOK, map[string]any{"path": rel, "size": n})
		return nil
	})
}

func (s *Server) deleteFile(w http.ResponseWriter, r *http.Request, t *tenant) *apiError {
	rel, aerr := cleanPath(r.PathValue("path"))
	if aerr != nil {
		return aerr
	}
	if aerr := s.auditGate(r); aerr != nil {
		return aerr
	}
	return s.inSandbox(r, t, func(sb *sandbox) *apiError {
		if err := removeBeneath(sb.dir, rel, sb.owner); err != nil {
			if errors.Is(err, os.ErrPermission) && rel == "" {
				return errorf(400, "bad_path", "the workspace itself cannot be removed; delete the sandbox")
			}
			return fileError(rel, err)
		}
		s.observe(r, Event{Tenant: t.Name, Action: "file.delete", Sandbox: sb.id, Template: sb.template.Name, Status: http.StatusOK, Path: rel})
		writeJSON(w, http.StatusOK, map[string]any{"path": rel, "deleted": true})
		return nil
	})
}
