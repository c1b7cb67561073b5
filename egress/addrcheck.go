package egress

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// forbidden are the ranges the proxy never dials, whatever the policy says:
// a name or rule that leads there is how a jail would reach the host, its
// network or the cloud's metadata service.
var forbidden = []struct {
	prefix netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("169.254.169.254/32"), "the cloud metadata address"},
	{netip.MustParsePrefix("fd00:ec2::254/128"), "the cloud metadata address"},
	{netip.MustParsePrefix("0.0.0.0/8"), "an unspecified (this-network) address"},
	{netip.MustParsePrefix("::/128"), "the unspecified address"},
	{netip.MustParsePrefix("127.0.0.0/8"), "a loopback address"},
	{netip.MustParsePrefix("::1/128"), "a loopback address"},
	{netip.MustParsePrefix("10.0.0.0/8"), "a private address (RFC 1918)"},
	{netip.MustParsePrefix("172.16.0.0/12"), "a private address (RFC 1918)"},
	{netip.MustParsePrefix("192.168.0.0/16"), "a private address (RFC 1918)"},
	{netip.MustParsePrefix("fc00::/7"), "a private address (unique local, ULA)"},
	{netip.MustParsePrefix("100.64.0.0/10"), "a shared address (CGNAT)"},
	{netip.MustParsePrefix("169.254.0.0/16"), "a link-local address"},
	{netip.MustParsePrefix("fe80::/10"), "a link-local address"},
	{netip.MustParsePrefix("fec0::/10"), "a site-local address"},
	{netip.MustParsePrefix("224.0.0.0/4"), "a multicast address"},
	{netip.MustParsePrefix("ff00::/8"), "a multicast address"},
	{netip.MustParsePrefix("192.0.0.0/24"), "an IETF protocol address"},
	{netip.MustParsePrefix("198.18.0.0/15"), "a benchmarking address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "a reserved or broadcast address"},
	{netip.MustParsePrefix("100::/64"), "a discard address"},
}

// embedded are IPv6 ranges that carry an IPv4 address a gateway may
// forward to (NAT64, 6to4): the IPv4 address inside is checked too.
var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// checkAddr returns why the proxy must not dial a, or "".
func checkAddr(a netip.Addr, own *ownAddrs) string {
	a = a.WithZone("").Unmap()
	if !a.IsValid() {
		return "not an address"
	}
	for _, f := range forbidden {
		if f.prefix.Contains(a) {
			return f.reason
		}
	}
	if a.Is6() {
		b := a.As16()
		var inner netip.Addr
		switch {
		case nat64.Contains(a):
			inner = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
		case sixToFour.Contains(a):
			inner = netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})
		}
		if inner.IsValid() {
			if r := checkAddr(inner, own); r != "" {
				return r + " (inside " + a.String() + ")"
			}
		}
	}
	if own != nil && own.has(a) {
		return "an address of this host"
	}
	return ""
}

// ownAddrs is the host's own addresses (the supervisor's network
// namespace), re-read when older than maxAge so a new interface counts.
type ownAddrs struct {
	mu     sync.Mutex
	read   time.Time
	addrs  map[netip.Addr]bool
	maxAge time.Duration
}

func (o *ownAddrs) has(a netip.Addr) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.addrs == nil || time.Since(o.read) > o.maxAge {
		o.refresh()
	}
	return o.addrs[a]
}

func (o *ownAddrs) refresh() {
	ifaddrs, err := net.InterfaceAddrs()
	m := make(map[netip.Addr]bool, len(ifaddrs))
	if err == nil {
		for _, ia := range ifaddrs {
			if pfx, err := netip.ParsePrefix(ia.String()); err == nil {
				m[pfx.Addr().WithZone("").Unmap()] = true
			}
		}
	}
	// A failed read keeps the last list rather than none; the fixed ranges
	// above hold loopback either way.
	if err == nil || o.addrs == nil {
		o.addrs = m
	}
	o.read = time.Now()
}
