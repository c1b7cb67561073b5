// Package serve is brig's code-execution service (`brig serve`): an
// HTTP/JSON API under /v1 over the jail library, for agent hosts that call
// a service rather than embed Go. docs/api.md is its contract: every
// endpoint with a request and a response, the caps, the error codes.
//
//	cfg, err := serve.LoadConfig("/etc/brig/serve.yaml")
//	srv, err := serve.New(cfg, serve.Options{})
//	http.Serve(listener, srv)
//	...
//	srv.Drain(ctx) // on SIGTERM: new work 503, running work drain_grace, then all removed
//
// The model: a tenant is a bearer token (the config holds its SHA-256);
// a sandbox is a workspace (a tmpfs of its own under state_dir, with a byte
// and inode quota the kernel enforces, bound read-write at /workspace in
// every jail of the sandbox) and a template (a named jail configuration,
// whose limits are the ceilings of what a request may ask); a context is a
// persistent Python or shell session in its own jail of the sandbox; a
// process is one command in a fresh jail of the sandbox; a run is a
// one-shot command with no sandbox, from the template's warm pool.
//
// Every quota is checked before a jail starts: requests per second (a
// token bucket), concurrent executions, live sandboxes and contexts,
// workspace bytes and inodes; over one the answer is 429 with Retry-After
// and the quota's name. A host-wide admission cap queues a request for a
// moment, then answers 503. The server needs root (the workspaces' tmpfs
// and idmapped binds).
//
// Files: config.go reads the YAML config; server.go holds tenants,
// admission, expiry and drain; sandbox.go sandboxes and contexts; api.go
// the endpoints; exec.go runs and streams executions; files.go and
// workspace.go the workspaces; engine.go every call into the library's
// session API; shapes.go the JSON shapes shared with the CLI; event.go the
// Event every execution and decision reports; observe.go turns events into
// audit records (package audit, docs/audit.md) and metrics (package
// metrics, docs/observability.md) before the Options' Observer sees them,
// and gives every request its X-Request-Id; observeconfig.go reads the
// config's audit: and metrics: sections.
//
// Nothing runs unaudited: before an execution, a context start, a sandbox
// creation or a file write or delete, the audit log must be able to take a
// record, or the request is answered 503 audit_unavailable (unless the
// config says audit.on_failure: warn).
package serve
