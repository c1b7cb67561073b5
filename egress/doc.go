// Package egress is brig's door out of a jail: an allow-list [Policy] of
// destinations and a [Proxy] that enforces it for HTTP proxy clients.
//
// A jail's network namespace keeps only lo, so nothing leaves it unless it
// goes through a listening socket that the supervisor serves with a Proxy.
// The proxy speaks CONNECT (for TLS) and absolute-URI requests (plain HTTP),
// nothing else. It resolves every name itself, so the jail needs no resolver
// and DNS cannot carry data out; it checks every resolved address when it
// dials and refuses loopback, private, link-local, CGNAT, multicast,
// unspecified and reserved addresses, the cloud metadata addresses and the
// host's own addresses, whatever name led there (DNS rebinding); and it
// dials exactly the address it checked, re-checking it as the socket
// connects. An IP literal is allowed only when the policy names that
// address or a range holding it.
//
// Every decision is an [Event] for the caller's audit log, and
// [Proxy.Refused] lists the refused destinations for a run's result.
//
// What it does not stop: a TLS client that names an allowed host in CONNECT
// and a different one inside the tunnel (SNI or Host of a CDN that serves
// both: domain fronting). Only TLS interception stops fronting; brig does
// not intercept. DNS-over-HTTPS to an allowed host works as any HTTPS does,
// but it gives the jail no route: every connection still goes through the
// proxy and its policy.
//
// The package imports nothing of brig; the jail's network mode "proxy" and
// the CLI's --net proxy build on it (docs/egress.md).
package egress
