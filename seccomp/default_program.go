package seccomp

import (
	"fmt"
	"slices"
	"sync"
)

//go:generate go run gen_default_program.go

// DefaultVariant names how a jail's policy acts on a refused call: as
// written, KillOnRefusal or LogOnly. DefaultProgram has the default
// policy's program of each ready.
type DefaultVariant int

const (
	DefaultEnforce DefaultVariant = iota // Default()
	DefaultKill                          // Default().KillOnRefusal()
	DefaultLog                           // Default().LogOnly()
)

func (v DefaultVariant) String() string {
	switch v {
	case DefaultEnforce:
		return "DefaultEnforce"
	case DefaultKill:
		return "DefaultKill"
	case DefaultLog:
		return "DefaultLog"
	}
	return fmt.Sprintf("DefaultVariant(%d)", int(v))
}

// Policy returns the variant of the default policy, a fresh copy.
func (v DefaultVariant) Policy() *Policy { return v.Of(Default()) }

// Of returns the variant of p: p itself, p.KillOnRefusal() or p.LogOnly().
func (v DefaultVariant) Of(p *Policy) *Policy {
	switch v {
	case DefaultKill:
		return p.KillOnRefusal()
	case DefaultLog:
		return p.LogOnly()
	}
	return p
}

// defaultPrograms are the variants' programs where none is prebuilt.
var defaultPrograms [DefaultLog + 1]struct {
	once sync.Once
	prog []byte
	err  error
}

// DefaultProgram returns the program of the variant's policy, the same
// bytes as v.Policy().Compile(). On x86_64 they were compiled when brig
// was built (go generate), since building and compiling the policy costs
// a process's first jail ~1 ms; elsewhere they are compiled on first use.
// The slice is the caller's own.
func DefaultProgram(v DefaultVariant) ([]byte, error) {
	if v < DefaultEnforce || v > DefaultLog {
		return nil, fmt.Errorf("seccomp: unknown default variant %d", int(v))
	}
	if int(v) < len(prebuiltDefault) {
		return []byte(prebuiltDefault[v]), nil
	}
	d := &defaultPrograms[v]
	d.once.Do(func() { d.prog, d.err = v.Policy().Compile() })
	return slices.Clone(d.prog), d.err
}
