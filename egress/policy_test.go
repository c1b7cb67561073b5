package egress

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseRule(t *testing.T) {
	good := map[string]Rule{
		"PyPI.org.":            {Host: "pypi.org"},
		"pypi.org:443":         {Host: "pypi.org", Port: 443},
		"*.example.com":        {Host: "*.example.com"},
		"*.example.com:8443":   {Host: "*.example.com", Port: 8443},
		"198.51.100.7":         {Prefix: netip.MustParsePrefix("198.51.100.7/32")},
		"198.51.100.7:80":      {Prefix: netip.MustParsePrefix("198.51.100.7/32"), Port: 80},
		"198.51.100.9/24":      {Prefix: netip.MustParsePrefix("198.51.100.0/24")},
		"2001:db8::1":          {Prefix: netip.MustParsePrefix("2001:db8::1/128")},
		"[2001:db8::1]:443":    {Prefix: netip.MustParsePrefix("2001:db8::1/128"), Port: 443},
		"2001:db8::/32":        {Prefix: netip.MustParsePrefix("2001:db8::/32")},
		"::ffff:198.51.100.7":  {Prefix: netip.MustParsePrefix("198.51.100.7/32")},
		"[2001:db8::/32]:8080": {Prefix: netip.MustParsePrefix("2001:db8::/32"), Port: 8080},
	}
	for in, want := range good {
		got, err := ParseRule(in)
		if err != nil || got != want {
			t.Errorf("ParseRule(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	// Each bad value is refused with a message naming it and the way out.
	bad := map[string]string{
		"":                               "give HOST",
		"exa mple.com":                   "only letters",
		"example.com:0":                  "1 to 65535",
		"example.com:65536":              "1 to 65535",
		"example.com:+80":                "1 to 65535",
		"example.com:":                   "1 to 65535",
		"*.com":                          "top-level domain",
		"ex*.com":                        "first label",
		"2130706433":                     "looks like a number",
		"127.1":                          "looks like a number",
		"[example.com]:80":               "IPv6",
		"[2001:db8::1":                   "without its ']'",
		"[2001:db8::1]x":                 "only :PORT",
		"198.51.100.0/33":                "CIDR",
		"fe80::1%eth0":                   "zone",
		"a..b":                           "1 to 63",
		strings.Repeat("a", 300):         "longer than",
		strings.Repeat("a.", 130):        "at most 253",
		strings.Repeat("a", 64) + ".com": "1 to 63",
	}
	for in, want := range bad {
		_, err := ParseRule(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseRule(%.50q) = %v; want an error saying %q", in, err, want)
		}
	}
}

func TestPolicyDecideName(t *testing.T) {
	var p Policy
	for _, s := range []string{"example.com", "*.example.org", "api.example.net:8443", "198.51.100.0/24", "[2001:db8::5]:443"} {
		if err := p.AllowDestination(s); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []string{"bad.example.org", "198.51.100.66", "example.com:80"} {
		if err := p.DenyDestination(s); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		host string
		port int
		want string // "" allowed, else a part of the reason
	}{
		{"example.com", 443, ""},
		{"example.com", 80, "denied by --deny example.com:80"},
		{"example.com", 22, "port 22 is not allowed"},
		{"www.example.com", 443, "not on the allow list"},
		{"a.example.org", 80, ""},
		{"a.b.example.org", 443, ""},
		{"example.org", 443, "not on the allow list"}, // *. is below the domain only
		{"bad.example.org", 443, "denied by --deny bad.example.org"},
		{"api.example.net", 8443, ""},
		{"api.example.net", 443, "port 443 is not allowed"},
		{"198.51.100.7", 80, ""},
		{"198.51.100.66", 443, "denied by --deny 198.51.100.66"},
		{"203.0.113.1", 443, "IP address the policy does not name; add --allow 203.0.113.1:443"},
		{"2001:db8::5", 443, ""},
		{"2001:db8::5", 80, "port 80 is not allowed"},
		{"2001:db8::6", 443, "does not name"},
	}
	for _, c := range cases {
		got := p.decideName(c.host, c.port)
		if c.want == "" && got != "" || c.want != "" && !strings.Contains(got, c.want) {
			t.Errorf("decideName(%s, %d) = %q; want %q", c.host, c.port, got, c.want)
		}
	}
	var empty Policy
	if got := empty.decideName("example.com", 443); got == "" {
		t.Error("the zero Policy allowed example.com; it must allow nothing")
	}
}

func TestPresets(t *testing.T) {
	var p Policy
	for name := range Presets() {
		if err := p.AllowPreset(name); err != nil {
			t.Fatalf("preset %s: %v", name, err)
		}
	}
	for _, d := range []struct {
		host string
		port int
	}{{"pypi.org", 443}, {"files.pythonhosted.org", 443}, {"registry.npmjs.org", 443}, {"github.com", 443}, {"objects.githubusercontent.com", 443}, {"codeload.github.com", 443}} {
		if r := p.decideName(d.host, d.port); r != "" {
			t.Errorf("presets refuse %s:%d: %s", d.host, d.port, r)
		}
	}
	if r := p.decideName("pypi.org", 80); r == "" {
		t.Error("the pypi preset allows plain HTTP; presets are HTTPS only")
	}
	err := p.AllowPreset("pip")
	if err == nil || !strings.Contains(err.Error(), "github, npm, pypi") {
		t.Errorf("AllowPreset(pip) = %v; want an error listing the presets", err)
	}
	if err := p.Validate(); err != nil {
		t.Errorf("a policy of presets does not validate: %v", err)
	}
}

func TestPolicyRuleCap(t *testing.T) {
	var p Policy
	for i := range MaxRules {
		if err := p.AllowDestination(netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}).String()); err != nil {
			t.Fatalf("rule %d: %v", i, err)
		}
	}
	if err := p.DenyDestination("example.com"); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("rule %d was accepted (%v); the cap is %d", MaxRules+1, err, MaxRules)
	}
	if err := p.Validate(); err != nil {
		t.Errorf("a policy at the cap does not validate: %v", err)
	}
	p.Allow = append(p.Allow, Rule{Host: "x.example"})
	if err := p.Validate(); err == nil {
		t.Error("a policy over the cap validates")
	}
	bad := Policy{Allow: []Rule{{Host: "Not Normal"}}}
	if err := bad.Validate(); err == nil {
		t.Error("a hand-built malformed rule validates")
	}
}

func TestCheckAddr(t *testing.T) {
	refused := map[string]string{
		"127.0.0.1":              "loopback",
		"::1":                    "loopback",
		"::ffff:127.0.0.1":       "loopback",
		"10.1.2.3":               "private",
		"172.31.255.255":         "private",
		"192.168.0.1":            "private",
		"::ffff:192.168.0.1":     "private",
		"fd12:3456::1":           "private",
		"100.64.0.1":             "CGNAT",
		"169.254.1.1":            "link-local",
		"fe80::1":                "link-local",
		"169.254.169.254":        "metadata",
		"::ffff:169.254.169.254": "metadata",
		"fd00:ec2::254":          "metadata",
		"224.0.0.1":              "multicast",
		"ff02::1":                "multicast",
		"0.0.0.0":                "unspecified",
		"::":                     "unspecified",
		"255.255.255.255":        "broadcast",
		"64:ff9b::a9fe:a9fe":     "metadata", // NAT64 of 169.254.169.254
		"2002:0a00:0001::1":      "private",  // 6to4 of 10.0.0.1
	}
	for s, want := range refused {
		if got := checkAddr(netip.MustParseAddr(s), nil); !strings.Contains(got, want) {
			t.Errorf("checkAddr(%s) = %q; want it refused as %s", s, got, want)
		}
	}
	for _, s := range []string{"198.51.100.2", "2001:db8::2", "203.0.113.9", "8.8.8.8", "2606:4700::1111"} {
		if got := checkAddr(netip.MustParseAddr(s), nil); got != "" {
			t.Errorf("checkAddr(%s) = %q; want it allowed", s, got)
		}
	}
	own := &ownAddrs{maxAge: 1 << 62}
	own.refresh()
	var some netip.Addr
	for a := range own.addrs {
		if checkAddr(a, nil) == "" {
			some = a
		}
	}
	if some.IsValid() {
		if got := checkAddr(some, own); !strings.Contains(got, "this host") {
			t.Errorf("checkAddr(%s, own) = %q; want the host's own address refused", some, got)
		}
	} else {
		t.Log("the host has only special-range addresses; its-own-address refusal is tested by the netlab tests")
	}
}

// FuzzParseRule: any value the CLI takes either fails with a message or
// gives a rule that prints back to itself and, for a name, matches itself.
func FuzzParseRule(f *testing.F) {
	for _, s := range []string{"pypi.org", "*.example.com:8443", "198.51.100.0/24", "[2001:db8::1]:443", "::ffff:1.2.3.4", "a..b", "[", "x:y:z", "*.", "0x7f.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRule(s)
		if err != nil {
			if err.Error() == "" || !utf8.ValidString(err.Error()) && utf8.ValidString(s) {
				t.Fatalf("ParseRule(%q): an empty or garbled error", s)
			}
			return
		}
		if len(s) > MaxRuleLen {
			t.Fatalf("ParseRule accepted %d bytes, over MaxRuleLen", len(s))
		}
		back, err := ParseRule(r.String())
		if err != nil || back != r {
			t.Fatalf("ParseRule(%q) = %+v, which prints as %q and reads back as %+v, %v", s, r, r.String(), back, err)
		}
		if r.Host != "" && !r.wildcard() {
			port := r.Port
			if port == 0 {
				port = 443
			}
			p := Policy{Allow: []Rule{r}}
			if reason := p.decideName(r.Host, port); reason != "" {
				t.Fatalf("rule %q does not allow its own host: %s", r, reason)
			}
		}
	})
}

func TestPolicyJSON(t *testing.T) {
	var p Policy
	for _, s := range []string{"pypi.org:443", "*.example.com", "[2001:db8::1]:443", "198.51.100.0/24"} {
		if err := p.AllowDestination(s); err != nil {
			t.Fatal(err)
		}
	}
	p.Deny = []Rule{{Host: "bad.example.com"}}
	p.MaxConcurrent = 3
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"allow":["pypi.org:443","*.example.com","[2001:db8::1]:443","198.51.100.0/24"]`) {
		t.Errorf("JSON %s does not list destinations as the CLI writes them", b)
	}
	var back Policy
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, p) {
		t.Errorf("round trip: %+v, %v; want %+v", back, err, p)
	}
	err = json.Unmarshal([]byte(`{"allow":["exa mple.com"]}`), &back)
	if err == nil || !strings.Contains(err.Error(), "only letters") {
		t.Errorf("a bad destination in JSON: %v; want ParseRule's error", err)
	}
}
