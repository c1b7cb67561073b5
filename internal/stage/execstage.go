package stage

// The jail's stages are C, layered as stage.h says; see wire.go. A call
// without its header is an error, so the includes layers_test.go checks are
// the calls.

// #cgo CFLAGS: -Wall -O2 -Werror=implicit-function-declaration
// #cgo LDFLAGS: -Wl,-z,now
import "C"

import (
	"github.com/brig-sandbox/brig/cgroup"
)

// ExecSettings is what the exec stage applies before it runs the program.
type ExecSettings struct {
	UID, GID uint32
	Rlimits  []cgroup.Rlimit
	Extra    int    // extra files the program gets from fd 3 on
	Seccomp  []byte // raw struct sock_filter array; empty means no filter
}

// encode lays the settings out as wire.c's parse_exec_settings reads them.
func (s ExecSettings) Encode() []byte {
	var e Encoder
	e.Grow(len(execStageMagic) + 16 + 20*len(s.Rlimits) + len(s.Seccomp))
	e.WriteString(execStageMagic)
	e.U32(s.UID)
	e.U32(s.GID)
	e.U32(uint32(len(s.Rlimits)))
	for _, r := range s.Rlimits {
		e.U32(uint32(r.Resource))
		e.U64(r.Cur)
		e.U64(r.Max)
	}
	e.U32(uint32(s.Extra))
	e.U32(uint32(len(s.Seccomp)))
	e.Write(s.Seccomp)
	return e.Bytes()
}
