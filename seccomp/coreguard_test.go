package seccomp

import (
	"math/rand/v2"
	"testing"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// guardRefuses says, independently of coreguard.go and with the numbers
// written out, which calls the core guard refuses on x86_64.
func guardRefuses(d seccompData) bool {
	var setrlimit, prlimit64 uint32
	nr := d.nr
	switch d.arch {
	case unix.AUDIT_ARCH_X86_64:
		setrlimit, prlimit64 = 160, 302
		nr &^= x32SyscallBit
	case unix.AUDIT_ARCH_I386:
		setrlimit, prlimit64 = 75, 340
	default:
		return false
	}
	switch nr {
	case setrlimit:
		return uint32(d.args[0]) == unix.RLIMIT_CORE
	case prlimit64:
		return uint32(d.args[1]) == unix.RLIMIT_CORE && d.args[2] != 0
	}
	return false
}

// TestCoreGuardVerdicts runs the compiled programs of several policies
// through the BPF interpreter: the guarded calls are refused whatever the
// policy says, and every other input gets exactly the policy's own verdict.
func TestCoreGuardVerdicts(t *testing.T) {
	if arch, err := libseccomp.GetNativeArch(); err != nil || arch != libseccomp.ArchAMD64 {
		t.Skipf("the test's numbers are x86_64's; this host is %v (%v)", arch, err)
	}
	// A policy that allows everything, setrlimit and prlimit64 by name:
	// the guard still refuses.
	open := &Policy{DefaultAction: ActAllow, Rules: []Rule{
		{Names: []string{"setrlimit", "prlimit64"}, Action: ActAllow},
		{Names: []string{"ptrace"}, Action: ActErrno, Errno: 1},
	}}
	// A policy libseccomp compiles (a comparison the generator leaves).
	other := &Policy{DefaultAction: ActErrno, DefaultErrno: enosys, Rules: []Rule{
		{Names: []string{"prlimit64", "setrlimit", "read"}, Action: ActAllow},
		{Names: []string{"write"}, Action: ActAllow, Args: []Arg{{Index: 0, Op: OpLess, Value: 3}}},
	}}
	rng := rand.New(rand.NewPCG(3, 4))
	for name, tc := range map[string]struct {
		p      *Policy
		refuse uint32
	}{
		"default":      {Default(), unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
		"default kill": {Default().KillOnRefusal(), unix.SECCOMP_RET_KILL_PROCESS},
		"default log":  {Default().LogOnly(), unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
		"allow all":    {open, unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
		"libseccomp":   {other, unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
	} {
		t.Run(name, func(t *testing.T) {
			guarded, err := tc.p.Compile()
			require.NoError(t, err)
			plain, err := generate(tc.p)
			if err != nil {
				plain, err = compileLibseccomp(tc.p)
			}
			require.NoError(t, err)
			g, u := decode(guarded), decode(plain)
			require.Greater(t, len(g), len(u))
			require.Equal(t, u, g[len(g)-len(u):], "the policy's program follows the guard unchanged")

			args := []uint64{0, 1, 3, 4, 5, 0xffffffff, 1 << 32, 1<<32 | 4, 1<<32 | 5, 0xffffffff00000004, 0x7ffd1234, ^uint64(0)}
			var nrs []uint32
			for nr := uint32(0); nr < 500; nr++ {
				nrs = append(nrs, nr, x32SyscallBit|nr)
			}
			refused := 0
			for _, arch := range []uint32{unix.AUDIT_ARCH_X86_64, unix.AUDIT_ARCH_I386, unix.AUDIT_ARCH_AARCH64, 0} {
				for _, nr := range nrs {
					datas := []seccompData{}
					for _, a0 := range args {
						for _, a1 := range args {
							for _, a2 := range []uint64{0, 1, 1 << 32, 0x7ffd1000, rng.Uint64()} {
								datas = append(datas, seccompData{nr: nr, arch: arch, args: [6]uint64{a0, a1, a2, rng.Uint64()}})
							}
						}
					}
					if nr%64 != 0 && nr != 160 && nr != 302 && nr != 75 && nr != 340 {
						datas = datas[:len(datas)/20] // every call, but the full grid only where it matters
					}
					for _, d := range datas {
						want, err := runBPF(u, d)
						require.NoError(t, err)
						if guardRefuses(d) {
							want = tc.refuse
							refused++
						}
						got, err := runBPF(g, d)
						require.NoError(t, err)
						if got != want {
							require.Failf(t, "wrong verdict", "nr %d arch %#x args %#x: got %#08x, want %#08x", d.nr, d.arch, d.args[:3], got, want)
						}
					}
				}
			}
			require.NotZero(t, refused)
		})
	}
}

// TestCoreGuardInKernel: a process under a policy that allows every call
// still cannot change its RLIMIT_CORE, and reads it as before.
func TestCoreGuardInKernel(t *testing.T) {
	prog, err := (&Policy{DefaultAction: ActAllow}).Compile()
	require.NoError(t, err)
	names := []string{"setrlimit_core", "setrlimit_core_high", "prlimit64_core_set", "prlimit64_core_set_high",
		"prlimit64_core_set_high_pointer", "prlimit64_core_get", "getrlimit_core", "setrlimit_nofile", "prlimit64_nofile_set", "sync"}
	c := &child{mode: "probe", prog: prog, args: names}
	c.run(t)
	res := c.results(t)
	want := map[string]unix.Errno{
		"setrlimit_core": unix.EPERM, "setrlimit_core_high": unix.EPERM, "prlimit64_core_set": unix.EPERM,
		"prlimit64_core_set_high": unix.EPERM, "prlimit64_core_set_high_pointer": unix.EPERM,
		"prlimit64_core_get": 0, "getrlimit_core": 0, "setrlimit_nofile": 0, "prlimit64_nofile_set": 0,
		// The policy allows it: only the guard is unconditional.
		"sync": 0,
	}
	for _, n := range names {
		require.Equal(t, want[n], res[n], "%s under an allow-all policy", n)
	}

	// Without a filter the same calls go through (the high pointer one
	// faults): the EPERMs above are the guard's.
	c = &child{mode: "probe", args: names[:5]}
	c.run(t)
	res = c.results(t)
	for _, n := range names[:4] {
		require.Equal(t, unix.Errno(0), res[n], "%s without a filter", n)
	}
	require.Equal(t, unix.EFAULT, res["prlimit64_core_set_high_pointer"])
}
