// Package metrics is brig's Prometheus instrumentation: a Set of every
// metric the server exposes on /metrics, on a registry of its own, and the
// HTTP handler that serves it behind an optional bearer token.
//
// It imports nothing of brig. The server (brig serve) makes one Set from
// its config and calls a method with plain arguments for each thing that
// happens: an execution ended (ExecutionDone), a jail was set up
// (JailSetUp) or failed to be (JailSetUpFailed), a quota refused a request
// (QuotaRefused), a request waited for the host's admission
// (AdmissionQueued, then AdmissionLeft), the audit log wrote a record
// (AuditWritten) or failed to (AuditWriteFailed), the library reported its
// limiter (LimiterInUse). What the server and the library already count
// (live sandboxes and contexts, the pools' counters, the admission slots
// in use, the stale cgroups the library removed) is read at scrape time
// through the callbacks of Options, so nothing is counted twice.
//
// Label values are bounded, since every label value is a series kept in
// memory by the server and by Prometheus: tenants and templates come from
// the config given to NewSet, and any other value (a name a request
// supplied, a tenant the config does not know) is counted as "_unknown";
// reasons and limiter kinds outside the known sets are counted as "other".
// docs/observability.md lists the metrics, the alert rules of
// deploy/prometheus/brig-rules.yml and how the server wires the Set.
package metrics
