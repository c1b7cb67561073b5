package seccomp

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// seccompData is struct seccomp_data.
type seccompData struct {
	nr   uint32
	arch uint32
	ip   uint64
	args [6]uint64
}

func (d seccompData) word(off uint32) (uint32, error) {
	switch {
	case off%4 != 0 || off >= 64:
		return 0, fmt.Errorf("load at %d", off)
	case off == 0:
		return d.nr, nil
	case off == 4:
		return d.arch, nil
	case off < 16:
		return uint32(d.ip >> (8 * (off - 8))), nil
	}
	arg := d.args[(off-16)/8]
	if (off-16)%8 == 4 {
		return uint32(arg >> 32), nil // little endian: the high word second
	}
	return uint32(arg), nil
}

// runBPF interprets a classic BPF seccomp program the way the kernel does
// (the instructions seccomp_check_filter admits) and returns its verdict.
func runBPF(p []insn, d seccompData) (uint32, error) {
	var a, x uint32
	var mem [16]uint32
	for pc := 0; pc < len(p); pc++ {
		in := p[pc]
		src := in.k
		if in.code&0x08 == unix.BPF_X {
			src = x
		}
		switch cls := in.code & 0x07; cls {
		case unix.BPF_LD, unix.BPF_LDX:
			var v uint32
			switch in.code & 0xe0 {
			case unix.BPF_ABS:
				w, err := d.word(in.k)
				if err != nil {
					return 0, err
				}
				v = w
			case unix.BPF_LEN:
				v = 64
			case unix.BPF_IMM:
				v = in.k
			case unix.BPF_MEM:
				v = mem[in.k%16]
			default:
				return 0, fmt.Errorf("pc %d: load mode %#x", pc, in.code)
			}
			if cls == unix.BPF_LD {
				a = v
			} else {
				x = v
			}
		case unix.BPF_ST:
			mem[in.k%16] = a
		case unix.BPF_STX:
			mem[in.k%16] = x
		case unix.BPF_ALU:
			switch in.code & 0xf0 {
			case unix.BPF_ADD:
				a += src
			case unix.BPF_SUB:
				a -= src
			case unix.BPF_MUL:
				a *= src
			case unix.BPF_DIV:
				if src == 0 {
					return 0, nil
				}
				a /= src
			case unix.BPF_OR:
				a |= src
			case unix.BPF_AND:
				a &= src
			case unix.BPF_XOR:
				a ^= src
			case unix.BPF_LSH:
				a <<= src
			case unix.BPF_RSH:
				a >>= src
			case unix.BPF_NEG:
				a = -a
			default:
				return 0, fmt.Errorf("pc %d: alu op %#x", pc, in.code)
			}
		case unix.BPF_JMP:
			var taken bool
			switch in.code & 0xf0 {
			case unix.BPF_JA:
				pc += int(in.k)
				continue
			case unix.BPF_JEQ:
				taken = a == src
			case unix.BPF_JGT:
				taken = a > src
			case unix.BPF_JGE:
				taken = a >= src
			case unix.BPF_JSET:
				taken = a&src != 0
			default:
				return 0, fmt.Errorf("pc %d: jump op %#x", pc, in.code)
			}
			if taken {
				pc += int(in.jt)
			} else {
				pc += int(in.jf)
			}
		case unix.BPF_RET:
			if in.code&0x18 == unix.BPF_A {
				return a, nil
			}
			return in.k, nil
		case unix.BPF_MISC:
			if in.code&0xf8 == unix.BPF_TAX {
				x = a
			} else {
				a = x
			}
		}
	}
	return 0, fmt.Errorf("ran off the end of the program")
}

func decode(prog []byte) []insn {
	var p []insn
	for i := 0; i+instructionSize <= len(prog); i += instructionSize {
		p = append(p, insn{binary.NativeEndian.Uint16(prog[i:]), prog[i+2], prog[i+3], binary.NativeEndian.Uint32(prog[i+4:])})
	}
	return p
}

// probeValues are argument values around every constant the policy tests,
// plus random ones.
func probeValues(p *Policy, rng *rand.Rand) []uint64 {
	vals := []uint64{0, 1, 0xffffffff, 0x100000000, 1 << 63, ^uint64(0)}
	for _, r := range p.Rules {
		for _, a := range r.Args {
			for _, c := range []uint64{a.Value, a.Mask, a.Value | a.Mask} {
				vals = append(vals, c, c+1, c-1, c|1<<32, c|0xffffffff00000000, ^c, c&^1, c^0x10)
				for b := 0; b < 64; b += 3 {
					vals = append(vals, c^1<<b)
				}
			}
		}
	}
	for range 300 {
		vals = append(vals, rng.Uint64(), rng.Uint64()&0xffffffff, rng.Uint64()&0xff)
	}
	slices.Sort(vals)
	return slices.Compact(vals)
}

// requireSameVerdicts runs both programs on every system call number (and
// x32 numbers and foreign architectures), with argument values around every
// constant of the policy on the calls that have conditions.
func requireSameVerdicts(t *testing.T, p *Policy, want, got []byte) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	conditional := map[uint32]bool{}
	for _, r := range p.Rules {
		if len(r.Args) == 0 {
			continue
		}
		for _, name := range r.Names {
			if sc, err := libseccomp.GetSyscallFromName(name); err == nil && sc >= 0 {
				conditional[uint32(sc)] = true
			}
		}
	}
	vals := probeValues(p, rng)
	var nrs []uint32
	for nr := uint32(0); nr < 1100; nr++ {
		nrs = append(nrs, nr)
	}
	for nr := uint32(0); nr < 600; nr += 7 {
		nrs = append(nrs, x32SyscallBit|nr)
	}
	nrs = append(nrs, x32SyscallBit-1, 0x7fffffff, 0xffffffff)
	checks := 0
	wantProg, gotProg := decode(want), decode(got)
	check := func(d seccompData) {
		w, err := runBPF(wantProg, d)
		require.NoError(t, err, "libseccomp's program")
		g, err := runBPF(gotProg, d)
		require.NoError(t, err, "generated program")
		if w != g {
			require.Failf(t, "verdicts differ", "nr %d arch %#x args %#x: libseccomp %#08x, generated %#08x", d.nr, d.arch, d.args, w, g)
		}
		checks++
	}
	for _, arch := range []uint32{unix.AUDIT_ARCH_X86_64, unix.AUDIT_ARCH_I386, unix.AUDIT_ARCH_AARCH64, 0} {
		for _, nr := range nrs {
			d := seccompData{nr: nr, arch: arch}
			check(d)
			if arch != unix.AUDIT_ARCH_X86_64 || !conditional[nr] {
				for i := range d.args {
					d.args[i] = rng.Uint64()
				}
				check(d)
				continue
			}
			for i := range 6 {
				for _, v := range vals {
					d := seccompData{nr: nr, arch: arch}
					d.args[i] = v
					check(d)
					d.args[(i+1)%6] = rng.Uint64()
					check(d)
				}
			}
		}
	}
	t.Logf("%d inputs, generated %d instructions, libseccomp %d", checks, len(got)/instructionSize, len(want)/instructionSize)
}

// TestGeneratedMatchesLibseccomp: for the shipped policies and a few of the
// same shape, the generated program gives every input the verdict
// libseccomp's program gives.
func TestGeneratedMatchesLibseccomp(t *testing.T) {
	if arch, err := libseccomp.GetNativeArch(); err != nil || arch != libseccomp.ArchAMD64 {
		t.Skipf("the generator writes x86_64 programs; this host is %v (%v)", arch, err)
	}
	blocklist := &Policy{DefaultAction: ActAllow, Rules: []Rule{
		{Names: []string{"mount", "umount2"}, Action: ActErrno, Errno: 1},
		{Names: []string{"ptrace"}, Action: ActKill},
	}}
	blocklist.Rules = append(blocklist.Rules, allowExcept("ioctl", 1, 0xffffffff, []uint64{0x5412}, 1, "TIOCSTI")...)
	smallMask := &Policy{DefaultAction: ActErrno, DefaultErrno: enosys, Rules: []Rule{{Names: []string{"read", "write"}, Action: ActAllow}}}
	smallMask.Rules = append(smallMask.Rules, allowOnly("fcntl", 1, 0x3, []uint64{1, 2}, eperm, "cmds")...)
	smallMask.Rules = append(smallMask.Rules, allowExcept("prctl", 0, 0xff00, []uint64{0x1200, 0x3400}, eperm, "options")...)
	// An unconditional rule beats the conditional ones for its call, also
	// when it repeats the default action.
	overridden := &Policy{DefaultAction: ActErrno, DefaultErrno: enosys, Rules: []Rule{
		{Names: []string{"socket", "personality"}, Action: ActAllow},
		{Names: []string{"clone"}, Action: ActErrno, Errno: enosys},
	}}
	overridden.Rules = append(overridden.Rules, allowOnly("socket", 0, 0xffffffff, []uint64{1}, eperm, "")...)
	overridden.Rules = append(overridden.Rules, allowOnly("clone", 0, 0x7e020000, []uint64{0}, eperm, "")...)
	overridden.Rules = append(overridden.Rules, allowOnly("personality", 0, 0xffffffff, []uint64{8}, eperm, "")...)

	for name, p := range map[string]*Policy{
		"default": Default(), "default kill": Default().KillOnRefusal(), "default log": Default().LogOnly(),
		"blocklist": blocklist, "small masks": smallMask, "unconditional wins": overridden,
	} {
		t.Run(name, func(t *testing.T) {
			got, err := generate(p)
			require.NoError(t, err)
			want, err := compileLibseccomp(p)
			require.NoError(t, err)
			requireSameVerdicts(t, p, want, got)
		})
	}
}

// TestGeneratedReturnsPooledOrInline: the default policy's program has its
// returns in a pool its jumps reach, and is shorter for it than with them
// inline, with the same verdicts; a policy whose program is too long for
// the pool (every other call allowed: hundreds of runs) is laid out with
// its returns inline, and still gives libseccomp's verdicts.
func TestGeneratedReturnsPooledOrInline(t *testing.T) {
	if arch, err := libseccomp.GetNativeArch(); err != nil || arch != libseccomp.ArchAMD64 {
		t.Skipf("the generator writes x86_64 programs; this host is %v (%v)", arch, err)
	}
	p := Default()
	pooled, err := generateLaidOut(p, true)
	require.NoError(t, err)
	inline, err := generateLaidOut(p, false)
	require.NoError(t, err)
	require.Less(t, len(pooled), len(inline), "pooling the returns does not shorten the default program")
	requireSameVerdicts(t, p, inline, pooled)
	got, err := generate(p)
	require.NoError(t, err)
	require.Equal(t, pooled, got, "generate does not pool the default program's returns")

	alternating := &Policy{DefaultAction: ActErrno, DefaultErrno: enosys}
	for nr := 0; nr < 450; nr += 2 {
		if name, err := libseccomp.ScmpSyscall(nr).GetName(); err == nil {
			alternating.Rules = append(alternating.Rules, Rule{Names: []string{name}, Action: ActAllow})
		}
	}
	_, err = generateLaidOut(alternating, true)
	require.ErrorIs(t, err, errFarReturn)
	got, err = generate(alternating)
	require.NoError(t, err)
	want, err := compileLibseccomp(alternating)
	require.NoError(t, err)
	requireSameVerdicts(t, alternating, want, got)
}

// TestGenerateLeavesOtherShapesToLibseccomp: policies the generator does
// not take still compile, through libseccomp.
func TestGenerateLeavesOtherShapesToLibseccomp(t *testing.T) {
	for name, args := range map[string][]Arg{
		"a comparison":        {{Index: 0, Op: OpLess, Value: 3}},
		"two arguments":       {{Index: 0, Op: OpMaskedEqual, Mask: 1, Value: 1}, {Index: 1, Op: OpEqual, Value: 2}},
		"a 64-bit mask":       {{Index: 0, Op: OpMaskedEqual, Mask: 1 << 40, Value: 1 << 40}},
		"plain equality test": {{Index: 2, Op: OpEqual, Value: 7}},
	} {
		t.Run(name, func(t *testing.T) {
			p := &Policy{DefaultAction: ActErrno, Rules: []Rule{
				{Names: []string{"read"}, Action: ActAllow},
				{Names: []string{"write"}, Action: ActAllow, Args: args},
			}}
			_, err := generate(p)
			require.ErrorIs(t, err, errNotGenerated)
			got, err := p.Compile()
			require.NoError(t, err)
			want, err := compileLibseccomp(p)
			require.NoError(t, err)
			want, err = withCoreGuard(p, want)
			require.NoError(t, err)
			require.Equal(t, want, got)
		})
	}
	// Overlapping rules with different actions: libseccomp decides.
	p := &Policy{DefaultAction: ActErrno, Rules: []Rule{
		{Names: []string{"write"}, Action: ActAllow, Args: []Arg{{Index: 0, Op: OpMaskedEqual, Mask: 0xff, Value: 0x11}}},
		{Names: []string{"write"}, Action: ActLog, Args: []Arg{{Index: 0, Op: OpMaskedEqual, Mask: 0xf0, Value: 0x10}}},
	}}
	_, err := generate(p)
	require.ErrorIs(t, err, errNotGenerated)
}
