package stage

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/cgroup"
)

// The spec the supervisor encodes is the spec the helper parses, field for
// field (decodeSpec runs wire.c's parse_spec). Every field holds a value
// no other field holds, so two fields swapped on one side show; each spec
// flag is set alone once and each mount has one flag of its own, so a
// flag written as another shows; a spec cut short or with a byte left
// over is refused, as the helper refuses it.
func TestSpecRoundTrip(t *testing.T) {
	base := Spec{
		Path: "/usr/bin/python3", Args: []string{"python3", "-c", "pass"}, Env: []string{"A=1", "B=2"},
		Dir: "/work", Hostname: "host",
		IDs:       IDs{Init: 1_500_000_001, Jail: 1_500_000_002, GID: 1_500_000_003},
		TmpfsSize: 64 << 20,
		CgroupDir: "/sys/fs/cgroup/brig/j1", ProcsFiles: []string{"/p1", "/p2"},
		JoinTasks: []string{"/j1", "/j2", "/j3"}, HomeTasks: []string{"/h1"},
		IPCSysctls: []string{"kernel/msgmni=64", "kernel/shmall=4096"},
		Exec: ExecSettings{
			UID: 1000, GID: 1001, Extra: 2, Seccomp: []byte("01234567abcdefgh"),
			Rlimits: []cgroup.Rlimit{{Resource: 7, Cur: 11, Max: 12}, {Resource: 1, Cur: 1 << 40, Max: 1<<40 + 1}},
		},
	}
	for i, set := range []func(*Mount){
		func(*Mount) {},
		func(m *Mount) { m.Writable = true },
		func(m *Mount) { m.Optional = true },
		func(m *Mount) { m.Copy = true },
		func(m *Mount) { m.CheckID = true },
		func(m *Mount) { m.IDMap = true },
		func(m *Mount) { m.Tmpfs = true },
		func(m *Mount) { m.Dir = true },
		func(m *Mount) { m.File = true },
		func(m *Mount) { m.Device = true },
	} {
		m := Mount{Source: fmt.Sprintf("/src%d", i), Target: fmt.Sprintf("/dst%d", i), Symlink: fmt.Sprintf("link%d", i),
			Content: fmt.Sprintf("content%d\n", i), Mode: uint32(0o500 + i),
			Dev: uint64(100 + i), Ino: uint64(200 + i), OwnerUID: uint32(300 + i), OwnerGID: uint32(400 + i)}
		set(&m)
		base.Mounts = append(base.Mounts, m)
		// The root's entries are the same list in its own place, told apart.
		m.Target += "r"
		base.Root = append(base.Root, m)
	}
	got, ok := decodeSpec(base.Encode())
	require.True(t, ok, "parse_spec refused the spec")
	assert.Equal(t, &base, got)

	for name, set := range map[string]func(*Spec){
		"NewNet":     func(s *Spec) { s.NewNet = true },
		"Pooled":     func(s *Spec) { s.Pooled = true },
		"Privileged": func(s *Spec) { s.IDs.Privileged = true },
		"Prefork":    func(s *Spec) { s.Prefork = true },
		"JoinLater":  func(s *Spec) { s.JoinLater = true },
		"Template":   func(s *Spec) { s.Template = true },
		"TTY":        func(s *Spec) { s.TTY = true },
		"Proxy":      func(s *Spec) { s.Proxy = true },
		"TTY+Proxy":  func(s *Spec) { s.TTY, s.Proxy = true, true },
	} {
		s := base
		set(&s)
		got, ok := decodeSpec(s.Encode())
		require.True(t, ok, name)
		assert.Equal(t, &s, got, name)
	}

	b := base.Encode()
	_, ok = decodeSpec(b[:len(b)-1])
	assert.False(t, ok, "a spec cut short")
	_, ok = decodeSpec(append(b[:len(b):len(b)], 0))
	assert.False(t, ok, "a byte left over")
	_, ok = decodeSpec(append([]byte("BRIGSPEC0"), b[len(specMagic):]...))
	assert.False(t, ok, "another magic")
}
