package jail

import (
	"github.com/brig-sandbox/brig/internal/stage"
)

// The stage's names under the ones the root's files (rootfs.go,
// roottemplate.go) use.
type mountSpec = stage.Mount

const maxEtcCopy = stage.MaxEtcCopy

// The public constants that stage.h spells too stay literals, so that go
// doc shows their values: this does not compile unless they are stage.h's
// (a duplicate key false).
func _() {
	_ = map[bool]int{false: 0, MaxExtraFiles == stage.MaxExtra: 1}
	_ = map[bool]int{false: 0, JailUID == stage.JailUID: 1}
	_ = map[bool]int{false: 0, JailGID == stage.JailGID: 1}
	_ = map[bool]int{false: 0, DefaultPath == stage.DefaultPath: 1}
}

// setupErrorOf is the SetupError an "error" event reports.
func setupErrorOf(ev stage.Event) *SetupError {
	return &SetupError{Step: ev.Step, Err: ev.Cause()}
}
