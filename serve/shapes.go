package serve

import (
	"github.com/brig-sandbox/brig/egress"
	"github.com/brig-sandbox/brig/jail"
)

// The JSON shapes of brig's results: `brig run --result` writes a
// ResultJSON, `brig session --jsonl` a CellJSON per cell, and the server
// answers with the same keys (runs and processes with a ResultJSON, cells
// with a CellJSON). They are a contract with the programs that read them,
// so they live here, apart from the library's types: keys and value
// formats change only on purpose (cmd/brig/jsonshapes_test.go holds them).
// Durations are whole milliseconds.

// ResultJSON is a jail.Result as `brig run --result` writes it.
type ResultJSON struct {
	ExitCode        int      `json:"exit_code"`
	Signal          int      `json:"signal"`
	Reason          string   `json:"reason"`
	PeakMemory      int64    `json:"peak_memory_bytes"`
	WallTimeMS      int64    `json:"wall_time_ms"`
	CPUTimeMS       int64    `json:"cpu_time_ms"`
	StdoutTruncated bool     `json:"stdout_truncated"`
	StderrTruncated bool     `json:"stderr_truncated"`
	Limiter         string   `json:"limiter"`
	OOMKills        int64    `json:"oom_kills"`
	PidsLimitHits   int64    `json:"pids_limit_hits"`
	SeccompSyscall  string   `json:"seccomp_syscall,omitempty"`
	SeccompLogged   []string `json:"seccomp_logged,omitempty"`
	// EgressRefused: what the egress proxy refused (network "proxy").
	EgressRefused []EgressRefusalJSON `json:"egress_refused,omitempty"`
}

// EgressRefusalJSON is an egress.Refusal in a ResultJSON.
type EgressRefusalJSON struct {
	Host   string `json:"host"`
	Port   int    `json:"port,omitempty"`
	Reason string `json:"reason"`
	Count  int    `json:"count"`
}

// NewResultJSON is r in the shape of `brig run --result`.
func NewResultJSON(r *jail.Result) ResultJSON {
	j := ResultJSON{ExitCode: r.ExitCode, Signal: r.Signal, Reason: string(r.Reason), PeakMemory: r.PeakMemory,
		WallTimeMS: r.WallTime.Milliseconds(), CPUTimeMS: r.CPUTime.Milliseconds(),
		StdoutTruncated: r.StdoutTruncated, StderrTruncated: r.StderrTruncated, Limiter: string(r.Limiter),
		OOMKills: r.OOMKills, PidsLimitHits: r.PidsLimitHits, SeccompSyscall: r.SeccompSyscall, SeccompLogged: r.SeccompLogged}
	j.EgressRefused = newEgressRefusalsJSON(r.EgressRefused)
	return j
}

func newEgressRefusalsJSON(rs []egress.Refusal) []EgressRefusalJSON {
	var j []EgressRefusalJSON
	for _, f := range rs {
		j = append(j, EgressRefusalJSON{Host: f.Host, Port: f.Port, Reason: f.Reason, Count: f.Count})
	}
	return j
}

// CellJSON is one result line of `brig session --jsonl`: a cell's result
// with the request's id (null when the request had none; the server's
// answers have none).
type CellJSON struct {
	ID              *string        `json:"id"`
	Status          string         `json:"status"`
	Stdout          string         `json:"stdout"`
	Stderr          string         `json:"stderr"`
	Value           *string        `json:"value"`
	Error           *ExceptionJSON `json:"error"`
	ExitCode        *int           `json:"exit_code"`
	Reason          string         `json:"reason"`
	WallTimeMS      int64          `json:"wall_time_ms"`
	CPUTimeMS       int64          `json:"cpu_time_ms"`
	StdoutTruncated bool           `json:"stdout_truncated"`
	StderrTruncated bool           `json:"stderr_truncated"`
	// EgressRefused: what the session's egress proxy refused since the
	// previous cell (network "proxy"); omitted when nothing was.
	EgressRefused []EgressRefusalJSON `json:"egress_refused,omitempty"`
}

// ExceptionJSON is a Python cell's exception in a CellJSON.
type ExceptionJSON struct {
	Type      string `json:"type"`
	Message   string `json:"message"`
	Traceback string `json:"traceback"`
}
