package serve

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/brig-sandbox/brig/jail"
)

// sandbox is a workspace and a template; its contexts and processes are
// jails that see the workspace.
type sandbox struct {
	id       string
	tenant   *tenant
	template Template
	dir      string // the workspace's mount point on the host
	owner    uint32 // the workspace's owner id
	bytes    int64
	inodes   int64
	created  time.Time
	// ctx ends with the sandbox: its processes and sessions die with it.
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	lastUsed  time.Time
	busy      int // requests using it now: it is not idle meanwhile
	contexts  map[string]*execContext
	processes map[string]*process // background processes
	deleted   bool
	gone      chan struct{} // closed once deleted and cleaned up
	// paused: its contexts are frozen (pause.go); pauseFailed: a pause
	// failed, and is not tried again before the next request.
	paused, pauseFailed bool
	// pausedNow mirrors paused for the metrics' scrape, which takes no lock.
	pausedNow atomic.Bool
	srv       *Server
}

// execContext is a context: a live interpreter of the sandbox.
type execContext struct {
	id       string
	language string
	in       interpreter
	// workspace is "sandbox" when the context sees the sandbox's
	// /workspace, "private" for a pooled one (pool.go).
	workspace string

	mu      sync.Mutex
	running bool
	stop    context.CancelFunc // interrupts the running cell
}

func (sb *sandbox) expired(now time.Time, lc Lifecycle) string {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	switch {
	case now.Sub(sb.created) >= lc.MaxLifetime:
		return "max_lifetime"
	case sb.busy == 0 && now.Sub(sb.lastUsed) >= lc.IdleTimeout:
		return "idle_timeout"
	}
	return ""
}

// use marks the sandbox in use by a request until the returned func.
func (sb *sandbox) use() (func(), bool) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.deleted {
		return nil, false
	}
	sb.resumeLocked()
	sb.busy++
	sb.lastUsed = time.Now()
	return func() {
		sb.mu.Lock()
		sb.busy--
		sb.lastUsed = time.Now()
		sb.mu.Unlock()
	}, true
}

// jailConfig is the template's config with the workspace bound at
// /workspace, writable, idmapped to the workspace's owner, and the working
// directory there.
func (sb *sandbox) jailConfig() jail.Config {
	cfg := sb.template.Jail
	cfg.Binds = append(append([]jail.Bind(nil), cfg.Binds...), jail.Bind{Source: sb.dir, Target: WorkspaceTarget, Writable: true,
		IDMap: true, OwnerUID: sb.owner, OwnerGID: sb.owner})
	cfg.WorkDir = WorkspaceTarget
	return cfg
}

type createSandboxRequest struct {
	Template        string     `json:"template"`
	WorkspaceBytes  *sizeField `json:"workspace_bytes"`
	WorkspaceInodes *int64     `json:"workspace_inodes"`
}

// createSandbox makes a sandbox of the tenant, its quotas allowing.
func (s *Server) createSandbox(t *tenant, req createSandboxRequest) (*sandbox, *apiError) {
	tpl, aerr := s.template(req.Template)
	if aerr != nil {
		return nil, aerr
	}
	bytes, inodes := tpl.WorkspaceBytes, tpl.WorkspaceInodes
	if req.WorkspaceBytes != nil {
		if int64(*req.WorkspaceBytes) > tpl.WorkspaceBytes || *req.WorkspaceBytes < 64<<10 {
			return nil, errorf(http.StatusBadRequest, "over_template_limit", "workspace_bytes %d: the template %s allows 64K to %d bytes; ask for less, or use a template that allows more", *req.WorkspaceBytes, tpl.Name, tpl.WorkspaceBytes)
		}
		bytes = int64(*req.WorkspaceBytes)
	}
	if req.WorkspaceInodes != nil {
		if *req.WorkspaceInodes > tpl.WorkspaceInodes || *req.WorkspaceInodes < 16 {
			return nil, errorf(http.StatusBadRequest, "over_template_limit", "workspace_inodes %d: the template %s allows 16 to %d; ask for less", *req.WorkspaceInodes, tpl.Name, tpl.WorkspaceInodes)
		}
		inodes = *req.WorkspaceInodes
	}
	if s.draining.Load() {
		return nil, errDraining
	}
	t.mu.Lock()
	switch {
	case t.sandboxes >= t.Quotas.Sandboxes:
		t.mu.Unlock()
		return nil, quotaError("sandboxes", t.Quotas.Sandboxes, 0)
	case t.wsBytes+bytes > t.Quotas.WorkspaceBytes:
		t.mu.Unlock()
		return nil, quotaError("workspace_bytes", t.Quotas.WorkspaceBytes, 0)
	case t.wsInodes+inodes > t.Quotas.WorkspaceInodes:
		t.mu.Unlock()
		return nil, quotaError("workspace_inodes", t.Quotas.WorkspaceInodes, 0)
	}
	t.sandboxes++
	t.wsBytes += bytes
	t.wsInodes += inodes
	t.mu.Unlock()
	giveBack := func() {
		t.mu.Lock()
		t.sandboxes--
		t.wsBytes -= bytes
		t.wsInodes -= inodes
		t.mu.Unlock()
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		giveBack()
		return nil, errDraining
	}
	owner, ok := s.takeOwnerLocked()
	s.mu.Unlock()
	if !ok {
		giveBack()
		return nil, errorf(http.StatusServiceUnavailable, "overloaded", "every workspace owner id is in use (%d live sandboxes on this server)", WorkspaceIDs.Count)
	}
	id := newID("sb_")
	dir, err := mountWorkspace(s.cfg.StateDir, id, bytes, inodes, owner)
	if err != nil {
		s.freeOwner(owner)
		giveBack()
		s.log.Error("sandbox workspace", "err", err)
		return nil, errorf(http.StatusInternalServerError, "internal", "making the workspace failed: %v", err)
	}
	now := time.Now()
	sb := &sandbox{id: id, tenant: t, template: tpl, dir: dir, owner: owner, bytes: bytes, inodes: inodes, created: now, lastUsed: now,
		contexts: map[string]*execContext{}, processes: map[string]*process{}, gone: make(chan struct{}), srv: s}
	sb.ctx, sb.cancel = context.WithCancel(s.ctx)
	s.mu.Lock()
	s.sandboxes[id] = sb
	s.mu.Unlock()
	return sb, nil
}

func (s *Server) takeOwnerLocked() (uint32, bool) {
	for range WorkspaceIDs.Count {
		id := WorkspaceIDs.First + s.nextOwner%WorkspaceIDs.Count
		s.nextOwner++
		if !s.owners[id] {
			s.owners[id] = true
			return id, true
		}
	}
	return 0, false
}

func (s *Server) freeOwner(id uint32) {
	s.mu.Lock()
	delete(s.owners, id)
	s.mu.Unlock()
}

// deleteSandbox kills the sandbox's jails and removes its workspace; a
// second call waits for the first.
func (s *Server) deleteSandbox(sb *sandbox) {
	sb.mu.Lock()
	if sb.deleted {
		sb.mu.Unlock()
		<-sb.gone
		return
	}
	sb.deleted = true
	ctxs := sb.contexts
	sb.contexts = map[string]*execContext{}
	procs := sb.processes
	sb.processes = map[string]*process{}
	sb.mu.Unlock()
	s.mu.Lock()
	delete(s.sandboxes, sb.id)
	s.mu.Unlock()
	sb.cancel() // kills its processes
	for _, c := range ctxs {
		c.in.close()
	}
	for _, p := range procs {
		<-p.done // killed with the sandbox's context
	}
	// Processes of the sandbox end with its context; their handlers wait
	// for the jail before they give the sandbox back.
	for {
		sb.mu.Lock()
		busy := sb.busy
		sb.mu.Unlock()
		if busy == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := removeWorkspace(sb.dir); err != nil {
		s.log.Error("removing a workspace", "sandbox", sb.id, "err", err)
	}
	s.freeOwner(sb.owner)
	t := sb.tenant
	t.mu.Lock()
	t.sandboxes--
	t.contexts -= len(ctxs)
	t.wsBytes -= sb.bytes
	t.wsInodes -= sb.inodes
	t.mu.Unlock()
	close(sb.gone)
}

// lookup finds a sandbox of the tenant; another tenant's is not found.
func (s *Server) lookup(t *tenant, id string) (*sandbox, *apiError) {
	s.mu.Lock()
	sb := s.sandboxes[id]
	s.mu.Unlock()
	if sb == nil || sb.tenant != t {
		return nil, errorf(http.StatusNotFound, "not_found", "no such sandbox")
	}
	return sb, nil
}

func (s *Server) template(name string) (Template, *apiError) {
	if name == "" {
		name = "default"
	}
	tpl, ok := s.cfg.Templates[name]
	if !ok {
		return tpl, errorf(http.StatusBadRequest, "unknown_template", "template %.64q: not in the server's config", name)
	}
	return tpl, nil
}

type createContextRequest struct {
	Language string `json:"language"`
}

// createContext starts an interpreter in the sandbox.
func (s *Server) createContext(r *http.Request, sb *sandbox, req createContextRequest) (*execContext, *apiError) {
	if req.Language != "python" && req.Language != "shell" {
		return nil, errorf(http.StatusBadRequest, "bad_request", "language %.20q: want python or shell", req.Language)
	}
	t := sb.tenant
	t.mu.Lock()
	if t.contexts >= t.Quotas.Contexts {
		t.mu.Unlock()
		return nil, quotaError("contexts", t.Quotas.Contexts, 0)
	}
	t.contexts++
	t.mu.Unlock()
	giveBack := func() {
		t.mu.Lock()
		t.contexts--
		t.mu.Unlock()
	}
	done, aerr := s.startExecution(r, t)
	if aerr != nil {
		giveBack()
		return nil, aerr
	}
	defer done()
	cfg := sb.jailConfig()
	cfg.Timeout = -1 // a context lives until deleted; cells have their own timeouts
	cfg.Pausable = s.cfg.Lifecycle.IdlePause > 0
	id := newID("ctx_")
	workspace := "private"
	var (
		in  interpreter
		err error
	)
	// A proxy template's sessions report their egress decisions as events
	// of this context: they are started for it, never taken from a pool.
	if cfg.Network != "proxy" {
		in, err = s.pooledInterpreter(sb.template, req.Language)
	}
	if in == nil && err == nil {
		workspace = "sandbox"
		t0 := time.Now()
		in, err = startInterpreterWith(sb.ctx, req.Language, cfg, s.sessionOptions(cfg, Event{RequestID: requestID(r), Remote: r.RemoteAddr, Tenant: t.Name, Sandbox: sb.id, Context: id, Template: sb.template.Name}))
		s.setUpDone(sb.template.Name, t0, err)
	}
	if err != nil {
		giveBack()
		return nil, errorf(http.StatusInternalServerError, "jail_failed", "starting the %s interpreter: %v", req.Language, err)
	}
	c := &execContext{id: id, language: req.Language, in: in, workspace: workspace}
	sb.mu.Lock()
	if sb.deleted {
		sb.mu.Unlock()
		in.close()
		giveBack()
		return nil, errNotFound
	}
	sb.contexts[c.id] = c
	sb.mu.Unlock()
	return c, nil
}

func (sb *sandbox) context(id string) (*execContext, *apiError) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	c := sb.contexts[id]
	if c == nil {
		return nil, errorf(http.StatusNotFound, "not_found", "no context %.40q in this sandbox", id)
	}
	return c, nil
}

func (s *Server) deleteContext(sb *sandbox, id string) *apiError {
	sb.mu.Lock()
	c := sb.contexts[id]
	delete(sb.contexts, id)
	sb.mu.Unlock()
	if c == nil {
		return errorf(http.StatusNotFound, "not_found", "no context %.40q in this sandbox", id)
	}
	c.in.close()
	sb.tenant.mu.Lock()
	sb.tenant.contexts--
	sb.tenant.mu.Unlock()
	return nil
}

// status of a context for listings.
func (c *execContext) status() string {
	if c.in.err() != nil {
		return "dead"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return "busy"
	}
	return "idle"
}

func (sb *sandbox) describe() map[string]any {
	sb.mu.Lock()
	ctxs := make([]map[string]any, 0, len(sb.contexts))
	list := make([]*execContext, 0, len(sb.contexts))
	for _, c := range sb.contexts {
		ctxs = append(ctxs, map[string]any{"id": c.id, "language": c.language, "workspace": c.workspace})
		list = append(list, c)
	}
	last, paused := sb.lastUsed, sb.paused
	sb.mu.Unlock()
	for i, c := range list {
		ctxs[i]["status"] = c.status()
	}
	return map[string]any{"id": sb.id, "template": sb.template.Name, "created_at": sb.created.UTC().Format(time.RFC3339Nano),
		"last_used_at": last.UTC().Format(time.RFC3339Nano), "workspace_bytes": sb.bytes, "workspace_inodes": sb.inodes, "contexts": ctxs, "paused": paused}
}
