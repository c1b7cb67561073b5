package egress

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The caps a zero field of a Policy takes. Bytes have no cap unless set.
const (
	DefaultMaxConcurrent  = 64
	DefaultMaxConnections = 4096
	DefaultConnectTimeout = 10 * time.Second
	DefaultIdleTimeout    = 60 * time.Second
	DefaultHeaderTimeout  = 10 * time.Second
)

// Size caps on what a Policy is built from (CLI flags, a service template):
// one destination is at most MaxRuleLen bytes (a 253-byte DNS name and a
// port), a policy holds at most MaxRules allow and deny rules together.
const (
	MaxRuleLen = 260
	MaxRules   = 1024
)

// DefaultPorts are the ports a rule without ":PORT" allows.
var DefaultPorts = []int{80, 443}

// presets are the named allow-lists of --allow-preset. HTTPS only: the
// registries serve nothing brig's users need over plain HTTP.
var presets = map[string][]string{
	// pip: the index (pypi.org/simple) and the files it links to.
	"pypi": {"pypi.org:443", "files.pythonhosted.org:443"},
	// npm: the registry serves both metadata and tarballs.
	"npm": {"registry.npmjs.org:443"},
	// git over HTTPS, the API, archives (codeload) and raw files, release
	// assets and avatars (*.githubusercontent.com).
	"github": {"github.com:443", "api.github.com:443", "codeload.github.com:443", "*.githubusercontent.com:443"},
}

// Presets returns the names --allow-preset accepts and the rules each adds.
func Presets() map[string][]string {
	out := make(map[string][]string, len(presets))
	for k, v := range presets {
		out[k] = slices.Clone(v)
	}
	return out
}

// Rule is one destination of a policy: a host name (exact, or "*.DOMAIN"
// for every name below DOMAIN but not DOMAIN itself), or an IP address or
// range; and a port, 0 meaning DefaultPorts in an allow rule and every port
// in a deny rule.
type Rule struct {
	Host   string       // lower case, no trailing dot; "" for an address rule
	Prefix netip.Prefix // the address or range of an address rule
	Port   int
}

// String gives the rule in the form ParseRule reads.
func (r Rule) String() string {
	var s string
	switch {
	case r.Host != "":
		s = r.Host
	case r.Prefix.IsSingleIP():
		s = r.Prefix.Addr().String()
	default:
		s = r.Prefix.String()
	}
	if r.Port == 0 {
		return s
	}
	if r.Host == "" && r.Prefix.Addr().Is6() {
		s = "[" + s + "]"
	}
	return s + ":" + strconv.Itoa(r.Port)
}

// MarshalText writes the rule as String does, so a Policy in JSON (a
// service template) lists destinations as the CLI takes them.
func (r Rule) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads a rule as ParseRule does.
func (r *Rule) UnmarshalText(b []byte) error {
	v, err := ParseRule(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

func (r Rule) wildcard() bool { return strings.HasPrefix(r.Host, "*.") }

// matchesName says whether the rule names host (already normalized).
func (r Rule) matchesName(host string) bool {
	if r.wildcard() {
		suffix := r.Host[1:] // ".example.com"
		return len(host) > len(suffix) && strings.HasSuffix(host, suffix)
	}
	return r.Host != "" && r.Host == host
}

// matchesAddr says whether the rule's range holds a.
func (r Rule) matchesAddr(a netip.Addr) bool {
	return r.Host == "" && r.Prefix.IsValid() && r.Prefix.Contains(a.Unmap())
}

func (r Rule) allowsPort(port int) bool {
	if r.Port == 0 {
		return slices.Contains(DefaultPorts, port)
	}
	return r.Port == port
}

func (r Rule) deniesPort(port int) bool { return r.Port == 0 || r.Port == port }

// ParseRule reads one destination as --allow and --deny take it:
// HOST, *.DOMAIN, an IPv4 or IPv6 address, a CIDR range, each optionally
// followed by :PORT (an IPv6 address or range with a port in brackets:
// [2001:db8::1]:443). At most MaxRuleLen bytes.
func ParseRule(s string) (Rule, error) {
	if len(s) > MaxRuleLen {
		return Rule{}, fmt.Errorf("%.40q...: longer than %d bytes; a destination is a host name or an address and an optional :PORT", s, MaxRuleLen)
	}
	if s == "" {
		return Rule{}, errors.New("empty destination: give HOST, *.DOMAIN, an IP address or CIDR range, optionally with :PORT")
	}
	hostPart, portPart, err := splitRule(s)
	if err != nil {
		return Rule{}, fmt.Errorf("%q: %w", s, err)
	}
	var r Rule
	if portPart != "" {
		p, err := parsePort(portPart)
		if err != nil {
			return Rule{}, fmt.Errorf("%q: %w", s, err)
		}
		r.Port = p
	}
	if strings.Contains(hostPart, "/") {
		pfx, err := netip.ParsePrefix(hostPart)
		if err != nil {
			return Rule{}, fmt.Errorf("%q: not a CIDR range (%w); write it as 198.51.100.0/24 or 2001:db8::/32", s, err)
		}
		if pfx.Addr().Zone() != "" {
			return Rule{}, fmt.Errorf("%q: a range has no zone; drop the %%zone", s)
		}
		r.Prefix = unmapPrefix(pfx).Masked()
		return r, nil
	}
	if a, err := netip.ParseAddr(hostPart); err == nil {
		if a.Zone() != "" {
			return Rule{}, fmt.Errorf("%q: an address with a zone (%%%s) names a link, not a destination; drop the zone", s, a.Zone())
		}
		a = a.Unmap()
		r.Prefix = netip.PrefixFrom(a, a.BitLen())
		return r, nil
	}
	host, err := normalizeRuleHost(hostPart)
	if err != nil {
		return Rule{}, fmt.Errorf("%q: %w", s, err)
	}
	r.Host = host
	return r, nil
}

// splitRule separates a rule's host or address from its port.
func splitRule(s string) (host, port string, err error) {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", "", errors.New("a '[' without its ']'; write an IPv6 destination with a port as [2001:db8::1]:443")
		}
		host, rest := s[1:end], s[end+1:]
		if rest == "" {
			return host, "", nil
		}
		if !strings.HasPrefix(rest, ":") {
			return "", "", errors.New("after ']' only :PORT may follow; write [2001:db8::1]:443")
		}
		if !strings.Contains(host, ":") {
			return "", "", errors.New("brackets are for IPv6 addresses only; write HOST:PORT without them")
		}
		if rest == ":" {
			return "", "", errors.New("port \"\": a port is a number from 1 to 65535")
		}
		return host, rest[1:], nil
	}
	switch strings.Count(s, ":") {
	case 0:
		return s, "", nil
	case 1:
		i := strings.IndexByte(s, ':')
		if i == len(s)-1 {
			return "", "", errors.New("port \"\": a port is a number from 1 to 65535")
		}
		return s[:i], s[i+1:], nil
	default:
		// An IPv6 address or range without a port.
		return s, "", nil
	}
}

func parsePort(s string) (int, error) {
	if s == "" || len(s) > 5 || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("port %q: a port is a number from 1 to 65535", s)
	}
	p, _ := strconv.Atoi(s)
	if p < 1 || p > 65535 {
		return 0, fmt.Errorf("port %q: a port is a number from 1 to 65535", s)
	}
	return p, nil
}

func unmapPrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

// normalizeRuleHost checks a host name of a rule, allowing a leading "*.".
func normalizeRuleHost(s string) (string, error) {
	if rest, ok := strings.CutPrefix(s, "*."); ok {
		h, err := normalizeHost(rest)
		if err != nil {
			return "", err
		}
		if !strings.Contains(h, ".") {
			return "", fmt.Errorf("*.%s would allow a whole top-level domain; name the domain (*.example.com)", h)
		}
		return "*." + h, nil
	}
	if strings.Contains(s, "*") {
		return "", errors.New("'*' is allowed only as a whole first label (*.example.com)")
	}
	return normalizeHost(s)
}

// normalizeHost lower-cases a DNS name, drops one trailing dot, and checks
// it is a name: labels of 1 to 63 letters, digits, '-' or '_', at most 253
// bytes, and a last label that is not a number (inet_aton reads "2130706433"
// and "127.1" as addresses: write those as addresses).
func normalizeHost(s string) (string, error) {
	s = strings.TrimSuffix(strings.ToLower(s), ".")
	if s == "" {
		return "", errors.New("empty host name")
	}
	if len(s) > 253 {
		return "", errors.New("a host name is at most 253 bytes")
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return "", fmt.Errorf("host %q: each dot-separated label holds 1 to 63 characters", s)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "", fmt.Errorf("host %q: a host name holds only letters, digits, '-', '_' and '.'; write HOST, *.DOMAIN, an IP address or a CIDR range", s)
			}
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" || strings.HasPrefix(labels[len(labels)-1], "0x") {
		return "", fmt.Errorf("host %q looks like a number; write an address in dotted form (198.51.100.7)", s)
	}
	return s, nil
}

// Policy is what a proxy lets through: destinations allowed and denied
// (deny wins), caps and timeouts. The zero Policy allows nothing; zero caps
// and timeouts take the Default* values.
type Policy struct {
	Allow []Rule `json:"allow,omitempty"`
	Deny  []Rule `json:"deny,omitempty"`

	// MaxConcurrent caps the connections open at once; MaxConnections the
	// connections over the proxy's life (a run's).
	MaxConcurrent  int `json:"max_concurrent,omitempty"`
	MaxConnections int `json:"max_connections,omitempty"`
	// MaxBytesUp and MaxBytesDown cap the bytes sent out and received over
	// the proxy's life; 0 is no cap.
	MaxBytesUp   int64 `json:"max_bytes_up,omitempty"`
	MaxBytesDown int64 `json:"max_bytes_down,omitempty"`

	// ConnectTimeout bounds resolving and dialing a destination;
	// IdleTimeout a connection with no byte moving either way;
	// HeaderTimeout a client's whole request header (slowloris).
	ConnectTimeout time.Duration `json:"connect_timeout_ns,omitempty"`
	IdleTimeout    time.Duration `json:"idle_timeout_ns,omitempty"`
	HeaderTimeout  time.Duration `json:"header_timeout_ns,omitempty"`
}

// AllowDestination adds the destination s (ParseRule's form); it has the
// signature of flag.Func for --allow.
func (p *Policy) AllowDestination(s string) error {
	r, err := ParseRule(s)
	if err != nil {
		return fmt.Errorf("--allow %w", err)
	}
	return p.add(&p.Allow, r, "--allow")
}

// DenyDestination adds a destination that no allow rule can open: a host
// (every port unless :PORT), *.DOMAIN, an address or a range. It has the
// signature of flag.Func for --deny.
func (p *Policy) DenyDestination(s string) error {
	r, err := ParseRule(s)
	if err != nil {
		return fmt.Errorf("--deny %w", err)
	}
	return p.add(&p.Deny, r, "--deny")
}

// AllowPreset adds the rules of a named preset (Presets); it has the
// signature of flag.Func for --allow-preset.
func (p *Policy) AllowPreset(name string) error {
	rules, ok := presets[strings.ToLower(name)]
	if !ok {
		names := make([]string, 0, len(presets))
		for k := range presets {
			names = append(names, k)
		}
		slices.Sort(names)
		return fmt.Errorf("--allow-preset %.40q: no such preset; use one of %s, or --allow HOST for others", name, strings.Join(names, ", "))
	}
	for _, s := range rules {
		r, err := ParseRule(s)
		if err != nil {
			panic("egress: preset " + name + ": " + err.Error())
		}
		if err := p.add(&p.Allow, r, "--allow-preset"); err != nil {
			return err
		}
	}
	return nil
}

func (p *Policy) add(list *[]Rule, r Rule, flag string) error {
	if len(p.Allow)+len(p.Deny) >= MaxRules {
		return fmt.Errorf("%s %s: a policy holds at most %d destinations; use *.DOMAIN or a CIDR range to name many at once", flag, r, MaxRules)
	}
	if !slices.Contains(*list, r) {
		*list = append(*list, r)
	}
	return nil
}

// Validate reports a policy that cannot be served: too many rules,
// malformed ones built by hand, negative caps.
func (p *Policy) Validate() error {
	if n := len(p.Allow) + len(p.Deny); n > MaxRules {
		return fmt.Errorf("egress policy: %d destinations, more than %d; use *.DOMAIN or a CIDR range", n, MaxRules)
	}
	for _, list := range [][]Rule{p.Allow, p.Deny} {
		for _, r := range list {
			back, err := ParseRule(r.String())
			if err != nil || back != r {
				return fmt.Errorf("egress policy: rule %+v is not one ParseRule makes; build rules with ParseRule", r)
			}
		}
	}
	if p.MaxConcurrent < 0 || p.MaxConnections < 0 || p.MaxBytesUp < 0 || p.MaxBytesDown < 0 ||
		p.ConnectTimeout < 0 || p.IdleTimeout < 0 || p.HeaderTimeout < 0 {
		return errors.New("egress policy: a negative cap or timeout; use 0 for the default")
	}
	return nil
}

// withDefaults returns a copy with zero caps and timeouts filled in.
func (p Policy) withDefaults() Policy {
	if p.MaxConcurrent == 0 {
		p.MaxConcurrent = DefaultMaxConcurrent
	}
	if p.MaxConnections == 0 {
		p.MaxConnections = DefaultMaxConnections
	}
	if p.ConnectTimeout == 0 {
		p.ConnectTimeout = DefaultConnectTimeout
	}
	if p.IdleTimeout == 0 {
		p.IdleTimeout = DefaultIdleTimeout
	}
	if p.HeaderTimeout == 0 {
		p.HeaderTimeout = DefaultHeaderTimeout
	}
	return p
}

// Destination is a host (a name or an address literal) and a port.
type Destination struct {
	Host string
	Port int
}

// decideName applies the rules to a requested destination, before any
// address is known. host is normalized (normalizeTarget). It returns ""
// when the destination may be dialed, once its addresses pass checkAddr.
func (p *Policy) decideName(host string, port int) string {
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.Unmap()
		for _, r := range p.Deny {
			if r.matchesAddr(a) && r.deniesPort(port) {
				return fmt.Sprintf("denied by --deny %s", r)
			}
		}
		named := false
		for _, r := range p.Allow {
			if r.matchesAddr(a) {
				named = true
				if r.allowsPort(port) {
					return ""
				}
			}
		}
		if named {
			return fmt.Sprintf("port %d is not allowed for %s; add --allow %s", port, a, Rule{Prefix: netip.PrefixFrom(a, a.BitLen()), Port: port})
		}
		return fmt.Sprintf("an IP address the policy does not name; add --allow %s to open it", Rule{Prefix: netip.PrefixFrom(a, a.BitLen()), Port: port})
	}
	for _, r := range p.Deny {
		if r.matchesName(host) && r.deniesPort(port) {
			return fmt.Sprintf("denied by --deny %s", r)
		}
	}
	named := false
	for _, r := range p.Allow {
		if r.matchesName(host) {
			named = true
			if r.allowsPort(port) {
				return ""
			}
		}
	}
	if named {
		return fmt.Sprintf("port %d is not allowed for %s; add --allow %s:%d", port, host, host, port)
	}
	return fmt.Sprintf("not on the allow list; add --allow %s to open it", host)
}

// deniedAddr applies the deny ranges to a resolved address.
func (p *Policy) deniedAddr(a netip.Addr, port int) string {
	a = a.Unmap()
	for _, r := range p.Deny {
		if r.matchesAddr(a) && r.deniesPort(port) {
			return fmt.Sprintf("resolves to %s, denied by --deny %s", a, r)
		}
	}
	return ""
}

// normalizeTarget checks the host of a request: an address literal (the
// brackets of an IPv6 one already removed) or a DNS name.
func normalizeTarget(host string) (string, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return "", errors.New("an address with a zone")
		}
		return a.Unmap().String(), nil
	}
	return normalizeHost(host)
}
