package stage

// The jail's stages are C, layered as stage.h says; see wire.go. A call
// without its header is an error, so the includes layers_test.go checks are
// the calls.

// #cgo CFLAGS: -Wall -O2 -Werror=implicit-function-declaration
// #cgo LDFLAGS: -Wl,-z,now
import "C"

import (
	"bytes"
	"encoding/binary"

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
	var b bytes.Buffer
	b.WriteString(execStageMagic)
	put := func(v any) { _ = binary.Write(&b, binary.NativeEndian, v) }
	put(s.UID)
	put(s.GID)
	put(uint32(len(s.Rlimits)))
	for _, r := range s.Rlimits {
		put(uint32(r.Resource))
		put(r.Cur)
		put(r.Max)
	}
	put(uint32(s.Extra))
	put(uint32(len(s.Seccomp)))
	b.Write(s.Seccomp)
	return b.Bytes()
}
