package serve

import "time"

// Event is one execution or decision of the server: every request that
// ran something, and every refusal (authentication, quota, admission,
// bad input). It is the seam for the audit log and the metrics: the
// server hands each one to its audit log, its metrics and its Observer,
// and keeps none.
type Event struct {
	Time      time.Time
	RequestID string // the request's X-Request-Id; "" for the server's own (expiry)
	Remote    string // the client's address
	Tenant    string // "" when the request named none that the server knows
	Action    string // run, process, execute, interrupt, sandbox.create, sandbox.delete, sandbox.expire, context.create, context.delete, file.read, file.write, file.delete, request, egress
	Sandbox   string
	Context   string
	Process   string // a background process's id
	Status    int    // the HTTP status answered
	Code      string // the error code of a refusal ("" when it went through)
	Quota     string // the quota that refused it, if one did
	Message   string // a refusal's message
	Detail    string // why the server did it by itself (sandbox.expire: idle_timeout, max_lifetime)
	Template  string

	// What an execution ran: a command, or code in a language.
	Language string
	Program  string
	Command  []string

	// What an execution used, when Action ran one. For execute, Reason is
	// the cell's status (ok, error, timeout, canceled), except for a cell
	// whose interpreter died: then it is why the session died (oom,
	// cpu_time...), CellStatus saying dead, so that a memory bomb in a
	// context counts as the OOM it is.
	Reason         string
	CellStatus     string
	ExitCode       int
	Signal         int
	LimitsHit      []string // oom_kill, pids, output_limit
	SeccompSyscall string
	Limiter        string // the limiter that bounded the jail (cgroup2, cgroup1, rlimit); "" for cells
	WallTime       time.Duration
	CPUTime        time.Duration
	PeakMemory     int64
	Stdout, Stderr *OutputDigest

	// A file written or deleted through the API.
	Path       string
	FileBytes  int64
	FileSHA256 string

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

// OutputDigest is what an execution wrote to one stream, hashed as it
// passed: its size and sha256, never its text.
type OutputDigest struct {
	Bytes     int64
	SHA256    string
	Truncated bool
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
