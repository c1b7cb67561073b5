package serve

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/brig-sandbox/brig/egress"
	"github.com/brig-sandbox/brig/jail"
	"github.com/brig-sandbox/brig/session"
)

// A template's network policy (docs/api.md, docs/egress.md): the keys of
// brig run's egress flags. Only the template sets it; a request cannot
// loosen it, so a request field naming the network is refused.

// fileTemplateEgress is inlined into a template's keys.
type fileTemplateEgress struct {
	Net                  string         `yaml:"net"`
	Allow                []ruleValue    `yaml:"allow"`
	AllowPreset          []ruleValue    `yaml:"allow-preset"`
	Deny                 []ruleValue    `yaml:"deny"`
	EgressConcurrent     *int           `yaml:"egress-concurrent"`
	EgressConnections    *int           `yaml:"egress-connections"`
	EgressBytesUp        *sizeValue     `yaml:"egress-bytes-up"`
	EgressBytesDown      *sizeValue     `yaml:"egress-bytes-down"`
	EgressIdle           *durationValue `yaml:"egress-idle"`
	EgressConnectTimeout *durationValue `yaml:"egress-connect-timeout"`
}

// ruleValue is one destination or preset name, with its line for messages.
type ruleValue struct {
	v    string
	line int
}

func (r *ruleValue) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a destination like example.com, example.com:8443, *.example.com or 198.51.100.0/24", n.Line)
	}
	r.v, r.line = n.Value, n.Line
	return nil
}

// network sets cfg.Network and cfg.Egress from the template's keys. A
// proxy-mode template keeps no pool of jails (jail.Pool refuses proxy
// mode), so pool is set to 0 and its runs start cold.
func (fe fileTemplateEgress) network(t *Template, at func(string) string) error {
	cfg := &t.Jail
	// lineOf is FILE:LINE of one item of a list key.
	lineOf := func(key string, line int) string {
		pos := at(key)
		if i := strings.LastIndexByte(pos, ':'); i > 0 && line > 0 {
			return fmt.Sprintf("%s:%d", pos[:i], line)
		}
		return pos
	}
	var pol egress.Policy
	var given []string
	lists := []struct {
		key  string
		list []ruleValue
		add  func(string) error
	}{{"allow", fe.Allow, pol.AllowDestination}, {"allow-preset", fe.AllowPreset, pol.AllowPreset}, {"deny", fe.Deny, pol.DenyDestination}}
	for _, l := range lists {
		if len(l.list) > 0 {
			given = append(given, l.key)
		}
		for _, r := range l.list {
			if err := l.add(r.v); err != nil {
				return fmt.Errorf("%s: %s", lineOf(l.key, r.line), strings.TrimPrefix(err.Error(), "--"))
			}
		}
	}
	counts := []struct {
		key string
		src *int
		dst *int
	}{{"egress-concurrent", fe.EgressConcurrent, &pol.MaxConcurrent}, {"egress-connections", fe.EgressConnections, &pol.MaxConnections}}
	for _, c := range counts {
		if c.src == nil {
			continue
		}
		given = append(given, c.key)
		if *c.src <= 0 {
			return fmt.Errorf("%s: %s %d: want a positive whole number, or leave it out for the default", at(c.key), c.key, *c.src)
		}
		*c.dst = *c.src
	}
	sizes := []struct {
		key string
		src *sizeValue
		dst *int64
	}{{"egress-bytes-up", fe.EgressBytesUp, &pol.MaxBytesUp}, {"egress-bytes-down", fe.EgressBytesDown, &pol.MaxBytesDown}}
	for _, s := range sizes {
		if s.src == nil {
			continue
		}
		given = append(given, s.key)
		if s.src.v <= 0 {
			return fmt.Errorf("%s: %s: want a positive size like 100M, or leave it out for no cap", at(s.key), s.key)
		}
		*s.dst = s.src.v
	}
	durations := []struct {
		key string
		src *durationValue
		dst *time.Duration
	}{{"egress-idle", fe.EgressIdle, &pol.IdleTimeout}, {"egress-connect-timeout", fe.EgressConnectTimeout, &pol.ConnectTimeout}}
	for _, d := range durations {
		if d.src == nil {
			continue
		}
		given = append(given, d.key)
		*d.dst = d.src.v
	}
	switch fe.Net {
	case "", "none":
		if len(given) > 0 {
			return fmt.Errorf("%s: %s without net: proxy: the template's jails have no network to allow anything on; add net: proxy, or remove %s", at(given[0]), given[0], given[0])
		}
		return nil
	case "proxy":
	default:
		return fmt.Errorf("%s: net %q: want none (a namespace with lo alone, the default) or proxy (lo and an egress proxy under allow:, allow-preset: and deny:)", at("net"), fe.Net)
	}
	if len(pol.Allow) == 0 {
		return fmt.Errorf("%s: net: proxy allows nothing without allow: [HOST[:PORT], ...] or allow-preset: [pypi, ...]; add one", at("net"))
	}
	if err := pol.Validate(); err != nil {
		return fmt.Errorf("%s: %w", at("net"), err)
	}
	cfg.Network, cfg.Egress = "proxy", &pol
	t.Pool = 0
	return nil
}

// networkFieldRefused answers a request body's unknown field that names
// the network: the policy is the template's alone, so such a field is
// refused with that said, never ignored. nil for any other field.
func networkFieldRefused(field string) *apiError {
	f := strings.ToLower(strings.Trim(field, `"`))
	switch {
	case f == "net", f == "network", f == "allow", f == "allow-preset", f == "allow_preset", f == "deny", f == "proxy",
		strings.HasPrefix(f, "egress"):
		return errorf(http.StatusBadRequest, "over_template_limit", "%s: the network policy is the template's and no request can change it; use a template whose net: and allow: give what you need (docs/api.md)", f)
	}
	return nil
}

// hookEgress makes cmd's egress decisions events of the server (Action
// egress), when its Config has a proxy.
func (s *Server) hookEgress(cmd *jail.Cmd, cfg jail.Config, base Event) {
	if cfg.Network == "proxy" {
		cmd.OnEgress = s.egressObserver(base)
	}
}

// sessionOptions are a context's session options: its egress decisions
// become events, as a run's do.
func (s *Server) sessionOptions(cfg jail.Config, base Event) session.Options {
	if cfg.Network != "proxy" {
		return session.Options{}
	}
	return session.Options{OnEgress: s.egressObserver(base)}
}

// egressObserver turns the proxy's decisions into Events carrying base's
// request id, tenant, sandbox, context and template, handed on as every
// event is (audit log, metrics, Observer). The request id is that of the
// request that started the jail: for a context, its creation. It runs on
// the proxy's goroutines; Observe must not block (Observer says so).
func (s *Server) egressObserver(base Event) func(egress.Event) {
	return func(ev egress.Event) {
		e := base
		e.Time, e.Action = ev.Time, "egress"
		e.Host, e.Port, e.Allowed, e.Reason = ev.Host, ev.Port, ev.Allowed, ev.Reason
		if ev.Addr.IsValid() {
			e.Address = ev.Addr.String()
		}
		e.BytesUp, e.BytesDown, e.Duration = ev.BytesUp, ev.BytesDown, ev.Duration
		if !ev.Allowed {
			e.Code = "egress_refused"
		}
		s.observe(nil, e)
	}
}
