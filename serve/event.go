package serve

import "time"

// Event is one execution or decision of the server: every request that
// ran something, and every refusal (authentication, quota, admission,
// bad input). It is the seam for the audit log and the metrics: the
// server hands each one to its Observer and keeps none.
type Event struct {
	Time     time.Time
	Tenant   string // "" when the request named none that the server knows
	Action   string // run, process, execute, interrupt, sandbox.create, sandbox.delete, sandbox.expire, context.create, context.delete, file.read, file.write, file.delete, request, egress
	Sandbox  string
	Context  string
	Status   int    // the HTTP status answered
	Code     string // the error code of a refusal ("" when it went through)
	Quota    string // the quota that refused it, if one did
	Template string
	// What an execution used, when Action ran one.
	Reason     string
	ExitCode   int
	WallTime   time.Duration
	CPUTime    time.Duration
	PeakMemory int64
	// An egress decision of a jail's proxy (Action egress, template with
	// net: proxy): the destination asked for, the address dialed or
	// refused ("" when none), whether it was allowed (Reason then says why
	// not, or why an allowed connection was cut), the bytes each way and
	// how long the connection lasted. Code is egress_refused on a refusal.
	Host      string
	Port      int
	Address   string
	Allowed   bool
	BytesUp   int64
	BytesDown int64
	Duration  time.Duration
}

// Observer receives the server's events. Observe is called synchronously
// from the request's goroutine (egress events from the goroutines of a
// jail's proxy, whose connection waits meanwhile), and from several at
// once: it must not block (queue and drop, as an audit shipper would, or
// count).
type Observer interface {
	Observe(Event)
}

type nopObserver struct{}

func (nopObserver) Observe(Event) {}
