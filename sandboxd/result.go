package sandboxd

import (
	"encoding/json"

	"github.com/brig-sandbox/brig/jail"
	"github.com/brig-sandbox/brig/serve"
)

// ResultMetadataKey is the trailing-metadata key of Start and Execute that
// carries the jail's Result as one JSON object, with the keys of `brig run
// --result`: exit_code, signal, reason (exited, signaled, timeout,
// output_limit, canceled, oom, cpu_time, seccomp), peak_memory_bytes,
// wall_time_ms, cpu_time_ms, stdout_truncated, stderr_truncated, limiter
// (cgroup2, cgroup1, rlimit), oom_kills, pids_limit_hits, and
// seccomp_syscall, seccomp_logged and egress_refused when set. It is an extension of the
// protocol: clients that do not read trailers see nothing of it.
const ResultMetadataKey = "brig-result"

// resultJSON is a jail.Result as ResultMetadataKey carries it: the shape
// of `brig run --result`, which package serve holds for the CLI and the
// service alike (one shape for one thing).
type resultJSON = serve.ResultJSON

func encodeResult(r *jail.Result) []byte {
	b, _ := json.Marshal(serve.NewResultJSON(r))
	return b
}
