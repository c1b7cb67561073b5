package seccomp

import (
	"encoding/binary"
	"fmt"
	"sync"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// The core guard: every program Compile returns starts with a few
// instructions that refuse setrlimit(RLIMIT_CORE, ...) and
// prlimit64(_, RLIMIT_CORE, new, _) with new != NULL, whatever the policy
// says, before the policy's own program decides.
//
// Why: a jail runs with RLIMIT_CORE soft = hard = 1 (jail/coredump.go). With a
// piped kernel.core_pattern ("|/usr/lib/systemd/systemd-coredump ...",
// apport), every crash starts the host's helper as root, in the host's
// namespaces and cgroup, fed the crashed process's memory; RLIMIT_CORE = 0
// does not stop that, the kernel skips a piped dump only when the limit is
// exactly 1 (fs/coredump.c, coredump_pipe: the value it gives its own
// helpers to catch a crashing helper). The hard limit of 1 keeps the jail
// from raising it; lowering it to 0 would start the helper again, and only
// the filter can refuse that. It is not a rule of the policy so that no
// policy can lose it: a custom or OCI profile that allows setrlimit, or
// libseccomp's "an unconditional rule overrides the conditional ones",
// would otherwise undo it. Reading the limit (prlimit64 with new == NULL,
// which is how glibc's getrlimit asks) stays allowed. A socket core_pattern
// ("@/path", Linux 6.16 on) is another matter: the kernel consults no
// RLIMIT_CORE before it connects (coredump_socket), and nothing in the
// jail can stop that.
//
// No other process of a jail can dump with another limit: init is not
// dumpable (PR_SET_DUMPABLE 0, jail/helper.c), the exec stage shares its
// memory until execve and sets the rlimits before it, and what the
// program starts inherits its limits.
//
// The arguments are compared the way the kernel reads them: resource is an
// unsigned int (the low 32 bits of the register; 0x1_0000_0004 is
// RLIMIT_CORE to the kernel), new is a pointer (all 64 bits: a pointer
// whose low half is zero is not NULL).
//
// The guard covers the native ABI, x32 (the native numbers with bit 30 set)
// and, on x86_64 and arm64, the 32-bit compat ABI: a policy whose default
// action allows lets foreign-ABI calls through, and int 0x80 setrlimit must
// not pass where the native one is refused. On an architecture the guard
// does not know it is left out (coreGuard returns nil): brig's jails are
// built and tested on x86_64.
//
// A refusal is EPERM, or a kill when the policy's default action kills
// (KillOnRefusal), so that --seccomp-kill names the call. LogOnly keeps
// the refusal: it is about the host's core helper, not the jail's needs.

// rlimitCore is RLIMIT_CORE, the same number on every architecture.
const rlimitCore = unix.RLIMIT_CORE

// guardABI is one system call ABI the guard checks.
type guardABI struct {
	arch                 uint32 // AUDIT_ARCH_*
	nrMask               uint32 // applied to the number first: clears the x32 bit
	setrlimit, prlimit64 uint32
}

// guardABIs are the ABIs a process on this machine can call through, with
// their numbers from libseccomp's tables.
var guardABIs = sync.OnceValues(func() ([]guardABI, error) {
	native, err := libseccomp.GetNativeArch()
	if err != nil {
		return nil, fmt.Errorf("core guard: native architecture: %w", err)
	}
	type abi struct {
		arch   libseccomp.ScmpArch
		audit  uint32
		nrMask uint32
	}
	var abis []abi
	switch native {
	case libseccomp.ArchAMD64:
		abis = []abi{{libseccomp.ArchAMD64, unix.AUDIT_ARCH_X86_64, ^uint32(x32SyscallBit)},
			{libseccomp.ArchX86, unix.AUDIT_ARCH_I386, ^uint32(0)}}
	case libseccomp.ArchARM64:
		abis = []abi{{libseccomp.ArchARM64, unix.AUDIT_ARCH_AARCH64, ^uint32(0)},
			{libseccomp.ArchARM, unix.AUDIT_ARCH_ARM, ^uint32(0)}}
	default:
		return nil, nil
	}
	var out []guardABI
	for _, a := range abis {
		g := guardABI{arch: a.audit, nrMask: a.nrMask}
		for name, nr := range map[string]*uint32{"setrlimit": &g.setrlimit, "prlimit64": &g.prlimit64} {
			sc, err := libseccomp.GetSyscallFromNameByArch(name, a.arch)
			if err != nil || sc < 0 {
				return nil, fmt.Errorf("core guard: %s has no number on %s: %v", name, a.arch, err)
			}
			*nr = uint32(sc)
		}
		out = append(out, g)
	}
	return out, nil
})

// coreGuard returns the guard's instructions for a policy whose program
// follows them: every path that does not refuse falls through to the
// first instruction after the guard. Classic BPF jumps only forward and
// relative to the next instruction, so the policy's program runs unchanged
// behind it; it starts by loading the architecture itself, so nothing the
// guard leaves in the accumulator matters.
func coreGuard(p *Policy) ([]insn, error) {
	abis, err := guardABIs()
	if err != nil || abis == nil {
		return nil, err
	}
	refuse := retValue(ActErrno, eperm)
	if p.DefaultAction == ActKill {
		refuse = retValue(ActKill, 0)
	}
	// Written with labels, then resolved: "" is the policy's program.
	type linsn struct {
		in     insn
		jt, jf string // jump targets; a JA's target is in jt
		label  string // this instruction's label
	}
	const end, refuseLabel = "end", "refuse"
	var code []linsn
	emit := func(l linsn) { code = append(code, l) }
	emit(linsn{in: stmt(bpfLdWAbs, offArch)})
	for i, a := range abis {
		next := fmt.Sprintf("abi%d", i+1)
		if i == len(abis)-1 {
			next = end
		}
		set, pr := fmt.Sprintf("set%d", i), fmt.Sprintf("pr%d", i)
		emit(linsn{in: insn{code: bpfJeqK, k: a.arch}, jf: next})
		emit(linsn{in: stmt(bpfLdWAbs, offNr)})
		if a.nrMask != ^uint32(0) {
			emit(linsn{in: stmt(bpfAndK, a.nrMask)})
		}
		emit(linsn{in: insn{code: bpfJeqK, k: a.setrlimit}, jt: set})
		emit(linsn{in: insn{code: bpfJeqK, k: a.prlimit64}, jt: pr, jf: end})
		// setrlimit(resource, rlim): any rlim.
		emit(linsn{in: stmt(bpfLdWAbs, offArgs), label: set})
		emit(linsn{in: insn{code: bpfJeqK, k: rlimitCore}, jt: refuseLabel, jf: end})
		// prlimit64(pid, resource, new, old): refused when new is not NULL.
		emit(linsn{in: stmt(bpfLdWAbs, offArgs+8), label: pr})
		emit(linsn{in: insn{code: bpfJeqK, k: rlimitCore}, jf: end})
		emit(linsn{in: stmt(bpfLdWAbs, offArgs+16)})
		emit(linsn{in: insn{code: bpfJeqK, k: 0}, jf: refuseLabel})
		emit(linsn{in: stmt(bpfLdWAbs, offArgs+16+4)})
		emit(linsn{in: insn{code: bpfJeqK, k: 0}, jt: end, jf: refuseLabel})
		if i < len(abis)-1 {
			// The next ABI's check starts by loading the architecture again.
			emit(linsn{in: stmt(bpfLdWAbs, offArch), label: next})
		}
	}
	emit(linsn{in: stmt(bpfRetK, refuse), label: refuseLabel})
	at := map[string]int{end: len(code)}
	for i, l := range code {
		if l.label != "" {
			at[l.label] = i
		}
	}
	out := make([]insn, len(code))
	for i, l := range code {
		in := l.in
		for _, t := range []struct {
			label string
			off   *uint8
		}{{l.jt, &in.jt}, {l.jf, &in.jf}} {
			if t.label == "" {
				continue
			}
			target, ok := at[t.label]
			d := target - i - 1
			if !ok || d < 0 || d > 255 {
				return nil, fmt.Errorf("core guard: jump to %q from %d", t.label, i)
			}
			*t.off = uint8(d)
		}
		out[i] = in
	}
	return out, nil
}

// withCoreGuard puts the guard in front of prog.
func withCoreGuard(p *Policy, prog []byte) ([]byte, error) {
	guard, err := coreGuard(p)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(guard)*instructionSize+len(prog))
	for _, in := range guard {
		out = binary.NativeEndian.AppendUint16(out, in.code)
		out = append(out, in.jt, in.jf)
		out = binary.NativeEndian.AppendUint32(out, in.k)
	}
	out = append(out, prog...)
	if n := len(out) / instructionSize; n > maxInstructions {
		return nil, fmt.Errorf("%d instructions with the core guard, the kernel takes at most %d", n, maxInstructions)
	}
	return out, nil
}
