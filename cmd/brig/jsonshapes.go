package main

import (
	"github.com/brig-sandbox/brig/egress"
	"github.com/brig-sandbox/brig/jail"
	"github.com/brig-sandbox/brig/session"
)

// The CLI's JSON: `brig run --result` writes a resultJSON, `brig session
// --jsonl` a cellJSON per cell. They are brig's output format, a contract
// with the programs that read it, so they live here and not on the
// library's types: keys and value formats change only on purpose
// (jsonshapes_test.go holds them). Durations are whole milliseconds.

// resultJSON is a jail.Result as `brig run --result` writes it.
type resultJSON struct {
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
	// EgressRefused: what the egress proxy refused (--net proxy).
	EgressRefused []egressRefusalJSON `json:"egress_refused,omitempty"`
}

// egressRefusalJSON is an egress.Refusal in a resultJSON.
type egressRefusalJSON struct {
	Host   string `json:"host"`
	Port   int    `json:"port,omitempty"`
	Reason string `json:"reason"`
	Count  int    `json:"count"`
}

func newResultJSON(r *jail.Result) resultJSON {
	return resultJSON{ExitCode: r.ExitCode, Signal: r.Signal, Reason: string(r.Reason), PeakMemory: r.PeakMemory,
		WallTimeMS: r.WallTime.Milliseconds(), CPUTimeMS: r.CPUTime.Milliseconds(),
		StdoutTruncated: r.StdoutTruncated, StderrTruncated: r.StderrTruncated, Limiter: string(r.Limiter),
		OOMKills: r.OOMKills, PidsLimitHits: r.PidsLimitHits, SeccompSyscall: r.SeccompSyscall, SeccompLogged: r.SeccompLogged,
		EgressRefused: egressRefusalsJSON(r.EgressRefused)}
}

func egressRefusalsJSON(rs []egress.Refusal) []egressRefusalJSON {
	var out []egressRefusalJSON
	for _, f := range rs {
		out = append(out, egressRefusalJSON{Host: f.Host, Port: f.Port, Reason: f.Reason, Count: f.Count})
	}
	return out
}

// cellJSON is one result line of `brig session --jsonl`: a session.CellResult
// with the request's id (null when the request had none).
type cellJSON struct {
	ID              *string        `json:"id"`
	Status          string         `json:"status"`
	Stdout          string         `json:"stdout"`
	Stderr          string         `json:"stderr"`
	Value           *string        `json:"value"`
	Error           *exceptionJSON `json:"error"`
	ExitCode        *int           `json:"exit_code"`
	Reason          string         `json:"reason"`
	WallTimeMS      int64          `json:"wall_time_ms"`
	CPUTimeMS       int64          `json:"cpu_time_ms"`
	StdoutTruncated bool           `json:"stdout_truncated"`
	StderrTruncated bool           `json:"stderr_truncated"`
}

// exceptionJSON is a session.CellException in a cellJSON.
type exceptionJSON struct {
	Type      string `json:"type"`
	Message   string `json:"message"`
	Traceback string `json:"traceback"`
}

func newCellJSON(id *string, c *session.CellResult) cellJSON {
	j := cellJSON{ID: id, Status: string(c.Status), Stdout: c.Stdout, Stderr: c.Stderr, Value: c.Value, ExitCode: c.ExitCode,
		Reason: c.Reason, WallTimeMS: c.WallTime.Milliseconds(), CPUTimeMS: c.CPUTime.Milliseconds(),
		StdoutTruncated: c.StdoutTruncated, StderrTruncated: c.StderrTruncated}
	if e := c.Error; e != nil {
		j.Error = &exceptionJSON{Type: e.Type, Message: e.Message, Traceback: e.Traceback}
	}
	return j
}
