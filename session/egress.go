package session

import (
	"context"
	"sync"

	"github.com/brig-sandbox/brig/egress"
	"github.com/brig-sandbox/brig/jail"
)

// Options are a session's settings beyond its jail.Config: the egress
// hooks a jail.Cmd has (Config.Network "proxy"), which the session's one
// jail takes for its whole life.
type Options struct {
	// OnEgress receives every decision of the session's egress proxy, as
	// jail.Cmd.OnEgress does, from the proxy's goroutines.
	OnEgress func(egress.Event)
	// EgressResolver resolves the names the proxy is asked for; nil is the
	// supervisor's host's resolver.
	EgressResolver egress.Resolver
}

// NewPythonWithOptions is NewPythonWith with the session's Options.
func NewPythonWithOptions(ctx context.Context, sup *jail.Supervisor, cfg jail.Config, opts Options) (*Python, error) {
	return startPython(ctx, sup, cfg, opts)
}

// NewShellWithOptions is NewShellWith with the session's Options.
func NewShellWithOptions(ctx context.Context, sup *jail.Supervisor, cfg jail.Config, opts Options) (*Shell, error) {
	return startShell(ctx, sup, cfg, opts)
}

// maxCellRefusals caps the distinct refusals one cell reports, as the
// jail's Result caps its own.
const maxCellRefusals = 64

// cellRefusals collects what the egress proxy refused since the last cell
// took them, so that a cell's result says why its download failed. The
// proxy records a refusal before the client is answered, so a fetch that
// failed in a cell is in that cell's list.
type cellRefusals struct {
	mu   sync.Mutex
	list []egress.Refusal
	at   map[egress.Refusal]int // a refusal without its count, to its index
}

func (c *cellRefusals) add(ev egress.Event) {
	if ev.Allowed {
		return
	}
	key := egress.Refusal{Host: ev.Host, Port: ev.Port, Reason: ev.Reason}
	c.mu.Lock()
	defer c.mu.Unlock()
	if i, ok := c.at[key]; ok {
		c.list[i].Count++
		return
	}
	if len(c.list) >= maxCellRefusals {
		return
	}
	if c.at == nil {
		c.at = map[egress.Refusal]int{}
	}
	c.at[key] = len(c.list)
	key.Count = 1
	c.list = append(c.list, key)
}

// take returns the refusals since the last take and forgets them.
func (c *cellRefusals) take() []egress.Refusal {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.list
	c.list, c.at = nil, nil
	return l
}

// hookEgress gives a proxy-mode session's Cmd its egress hooks: the
// per-cell refusals, then the caller's OnEgress.
func (s *session) hookEgress(opts Options) {
	if s.cfg.Network != "proxy" {
		return
	}
	s.refusals = &cellRefusals{}
	s.cmd.EgressResolver = opts.EgressResolver
	s.cmd.OnEgress = func(ev egress.Event) {
		s.refusals.add(ev)
		if opts.OnEgress != nil {
			opts.OnEgress(ev)
		}
	}
}
