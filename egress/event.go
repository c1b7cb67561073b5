package egress

import (
	"net/netip"
	"time"
)

// Event is one decision of the proxy: a connection it refused, or one it
// made and that has now ended (with the bytes it carried). The audit log
// takes these as they come; Proxy.Refused summarizes the refusals.
type Event struct {
	Time    time.Time // when the client's connection was accepted
	Allowed bool
	Method  string // CONNECT, or the plain-HTTP method; "" when no request was read
	Host    string // the requested host, a name or an address; "" when none was read
	Port    int
	Addr    netip.Addr // the address dialed or refused; invalid when none
	// Reason says why a connection was refused, or why an allowed one was
	// cut short (idle timeout, a byte cap); "" for one that ended normally.
	Reason    string
	BytesUp   int64 // client to destination
	BytesDown int64 // destination to client
	Duration  time.Duration
}

// Refusal is one refused destination, as a run's result lists it
// (egress_refused): what was asked for, why it was refused, and how often.
// Host is "" for a connection refused before its request was read (the
// connection caps) or whose request was not one the proxy serves.
type Refusal struct {
	Host   string `json:"host"`
	Port   int    `json:"port,omitempty"`
	Reason string `json:"reason"`
	Count  int    `json:"count"`
}

// maxRefusals bounds the distinct refusals a proxy remembers for Refused;
// later ones still count in the audit events.
const maxRefusals = 64
