// Package sandboxd makes brig the in-pod runtime of kubernetes-sigs/agent-sandbox:
// it speaks the sandboxd protocol of KEP-539.2, the gRPC ProcessService of
// sigs.k8s.io/agent-sandbox/packages/sandboxd/spec/process/v1 (its
// generated stubs, imported) and the REST surface of that module's
// packages/sandboxd/spec/filesystem/v1/filesystem.yaml, and runs every
// process a client starts in a fresh jail of its own.
//
// The agent-sandbox reference daemon runs each process directly in the
// pod; here each Start or Execute gets a jail built from the server's
// template jail.Config, with the workspace directory bound read-write at
// /workspace (an idmapped bind: the jail's user reads and writes as the
// workspace's owner, the same owner the REST side writes as). A server
// that is not root (the pod's mode, docs/kubernetes.md) must own the
// workspace itself: its jails' user is its own uid. What the
// jail reports that the protocol has no field for (why it ended, the
// limits it hit, wall and CPU time, peak memory, the limiter) travels in
// the trailing metadata of the Start stream and of Execute under the key
// ResultMetadataKey, as JSON with the keys of `brig run --result`: a
// client that ignores trailers sees the protocol unchanged.
//
// Bounds, each documented where it is enforced:
//   - Start's output passes through a queue of at most 256 KiB
//     (outputQueueBytes) between the jail's copiers and the stream; a
//     client that reads slowly fills it, the copiers wait, the jail's pipe
//     fills and the jailed program blocks in write(2). Adjacent chunks of
//     one stream are merged while the client is behind.
//   - Execute collects at most ExecuteOutputLimit bytes of each stream
//     (so the reply fits gRPC's default 4 MiB message limit); the jail is
//     stopped, reason output_limit, when a stream passes it.
//   - WriteStdin takes what a gRPC message holds (MaxStdinMessage).
//   - The REST side reads at most MaxPutBytes of a PUT body (into a
//     temporary file, never memory), streams a file through a fixed buffer,
//     lists at most MaxListEntries entries, and parses a path and a query
//     of at most MaxPathBytes each.
//
// Both listeners must be loopback addresses, as the protocol requires:
// the agent code in the pod can reach them, nothing outside can.
package sandboxd
