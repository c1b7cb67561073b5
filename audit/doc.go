// Package audit is brig's tamper-evident audit log: one JSON line per
// event (a run, a context cell, a file written through the API, a
// sandbox's life, a refusal, a network decision), appended to a file that
// only grows, each record holding the sha256 of the line before it, so
// that an edited, deleted, reordered or inserted record is found by
// Verify (and `brig audit verify`).
//
//	log, err := audit.Open("/var/lib/brig/audit.log", audit.Options{})
//	...
//	err = log.Append(audit.Record{Kind: audit.KindRun, Tenant: "t1",
//		Input: audit.CodeInput(audit.CodeFull, "python", code),
//		Verdict: &audit.Verdict{Reason: "exited"}})
//	// err != nil: the record is not in the log; refuse the work (503)
//
// Every record is written with one write(2) before Append returns, so a
// crash of the process loses nothing; Options.Fsync says what a power cut
// may lose (by default the last second). A record is bounded whatever its
// inputs (MaxLineBytes; code past MaxInputText is cut, its hash kept).
// The file rotates by size, the chain going on across files. Open
// continues the chain of what is on disk and moves aside a torn last line
// left by a crash. The package imports nothing of brig. docs/audit.md
// describes the format.
package audit
