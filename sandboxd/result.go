package sandboxd

import (
	"encoding/json"

	"github.com/brig-sandbox/brig/jail"
)

// ResultMetadataKey is the trailing-metadata key of Start and Execute that
// carries the jail's Result as one JSON object, with the keys of `brig run
// --result`: exit_code, signal, reason (exited, signaled, timeout,
// output_limit, canceled, oom, cpu_time, seccomp), peak_memory_bytes,
// wall_time_ms, cpu_time_ms, stdout_truncated, stderr_truncated, limiter
// (cgroup2, cgroup1, rlimit), oom_kills, pids_limit_hits, and
// seccomp_syscall and seccomp_logged when set. It is an extension of the
// protocol: clients that do not read trailers see nothing of it.
const ResultMetadataKey = "brig-result"

// resultJSON is a jail.Result as ResultMetadataKey carries it. The keys are
// the CLI's (cmd/brig's resultJSON): one shape for one thing.
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
}

func encodeResult(r *jail.Result) []byte {
	b, _ := json.Marshal(resultJSON{ExitCode: r.ExitCode, Signal: r.Signal, Reason: string(r.Reason), PeakMemory: r.PeakMemory,
		WallTimeMS: r.WallTime.Milliseconds(), CPUTimeMS: r.CPUTime.Milliseconds(),
		StdoutTruncated: r.StdoutTruncated, StderrTruncated: r.StderrTruncated, Limiter: string(r.Limiter),
		OOMKills: r.OOMKills, PidsLimitHits: r.PidsLimitHits, SeccompSyscall: r.SeccompSyscall, SeccompLogged: r.SeccompLogged})
	return b
}
