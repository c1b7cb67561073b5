package seccomp

import (
	"fmt"
	"slices"
	"sync"
)

//go:generate go run gen_default_program.go

// DefaultVariant names the default policy and the two policies derived
// from it that brig's jails use.
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

// Policy returns the variant's policy, a fresh copy.
func (v DefaultVariant) Policy() *Policy {
	switch v {
	case DefaultKill:
		return Default().KillOnRefusal()
	case DefaultLog:
		return Default().LogOnly()
	}
	return Default()
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
