package supervisor

import "github.com/brig-sandbox/brig/internal/stage"

// The stage's names under the ones the root's files (rootfs.go,
// roottemplate.go) use.
type mountSpec = stage.Mount

const maxEtcCopy = stage.MaxEtcCopy

// setupErrorOf is the StepError an "error" event reports.
func setupErrorOf(ev stage.Event) *StepError {
	return &StepError{Step: ev.Step, Err: ev.Cause()}
}
