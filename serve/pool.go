package serve

import (
	"fmt"

	"github.com/brig-sandbox/brig/jail"
	"github.com/brig-sandbox/brig/session"
)

// Context pools (Template.ContextPool). A started session's jail has its
// binds fixed when it is built, and a sandbox's workspace is bound with
// the sandbox's own owner id: a session started before its sandbox exists
// cannot have that sandbox's /workspace, and binding it into a running
// jail later would need a mount moved into the jail's mount namespace,
// which brig does not do. So a pooled context is a template's session with
// a private, empty /workspace of its own (the jail's scratch tmpfs): it
// keeps its files between cells, but does not see the sandbox's files,
// and the sandbox's files API, processes and other contexts do not see
// its. The pool is an explicit trade, per template: a context in about a
// hand-over instead of an interpreter's start, for a context without the
// shared workspace. Every context of a pooled template is private (one
// made when the pool is empty starts with the pool's Config), and every
// context of a template without context-pool has the sandbox's
// workspace: a pool miss never changes what a client gets.

// contextPoolKey names the pool of a template and language.
func contextPoolKey(template, language string) string { return template + "\x00" + language }

// pooledContextConfig is the Config of a template's pooled sessions: the
// template's jail, working in a private /workspace, living until deleted,
// freezable when the server pauses idle sandboxes.
func (s *Server) pooledContextConfig(tpl Template) jail.Config {
	cfg := tpl.Jail
	cfg.WorkDir = WorkspaceTarget
	cfg.Timeout = -1
	cfg.Pausable = s.cfg.Lifecycle.IdlePause > 0
	return cfg
}

// startContextPools starts the templates' context pools.
func (s *Server) startContextPools() error {
	for name, tpl := range s.cfg.Templates {
		if tpl.ContextPool == 0 {
			continue
		}
		for _, language := range []string{session.LanguagePython, session.LanguageShell} {
			p, err := newContextPool(s.ctx, language, s.pooledContextConfig(tpl), tpl.ContextPool)
			if err != nil {
				return fmt.Errorf("%s: template %s: its %s context pool: %w", s.cfg.File, name, language, err)
			}
			s.contextPools[contextPoolKey(name, language)] = p
		}
	}
	return nil
}

// pooledInterpreter takes a session of the template's pool for the
// language: a ready one, or one started now with the pool's Config when
// none is ready, so that every context of a pooled template is alike. It
// returns nil, nil when the template has no context pool.
func (s *Server) pooledInterpreter(tpl Template, language string) (interpreter, error) {
	p := s.contextPools[contextPoolKey(tpl.Name, language)]
	if p == nil {
		return nil, nil
	}
	return takeInterpreter(p)
}
