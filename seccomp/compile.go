package seccomp

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"

	libseccomp "github.com/seccomp/libseccomp-golang"
)

// maxInstructions is BPF_MAXINSNS: the kernel refuses longer filters.
const maxInstructions = 4096

// instructionSize is sizeof(struct sock_filter): u16 code, u8 jt, u8 jf, u32 k.
const instructionSize = 8

// compiled caches one program per distinct policy content. Policies are few
// (the default, its variants, a handful of loaded profiles), so the cache is
// never pruned. Each entry is computed once even when many goroutines ask
// for it at the same time.
var compiled struct {
	mu      sync.Mutex
	entries map[[sha256.Size]byte]*compiledEntry
}

type compiledEntry struct {
	once sync.Once
	prog []byte
	err  error
}

// Compile turns the policy into a classic BPF program for the native
// architecture: the raw array of struct sock_filter (8 bytes per
// instruction, native byte order) that seccomp(SECCOMP_SET_MODE_FILTER) takes
// through a struct sock_fprog. The result is cached by a hash of the policy's
// content, so calling Compile once per jail costs a hash, not a compile.
// It is safe for concurrent use; the returned slice is the caller's own.
func (p *Policy) Compile() ([]byte, error) {
	// Hash and compile a copy: the caller may change p while we run, and
	// the cache entry must match its key.
	if p == nil {
		return nil, fmt.Errorf("compile seccomp policy: nil policy")
	}
	q := p.Clone()
	if err := q.Validate(); err != nil {
		return nil, fmt.Errorf("compile seccomp policy: %w", err)
	}
	data, err := q.canonical()
	if err != nil {
		return nil, fmt.Errorf("compile seccomp policy: %w", err)
	}
	key := sha256.Sum256(data)

	compiled.mu.Lock()
	if compiled.entries == nil {
		compiled.entries = make(map[[sha256.Size]byte]*compiledEntry)
	}
	e, ok := compiled.entries[key]
	if !ok {
		e = &compiledEntry{}
		compiled.entries[key] = e
	}
	compiled.mu.Unlock()

	e.once.Do(func() { e.prog, e.err = compile(q) })
	if e.err != nil {
		return nil, e.err
	}
	return slices.Clone(e.prog), nil
}

// UnknownSyscalls lists the names in the policy that the running libseccomp
// cannot resolve for the native architecture. Compile skips them, so they
// get the default action; a profile tool may want to warn about them.
func (p *Policy) UnknownSyscalls() []string {
	var unknown []string
	for _, r := range p.Rules {
		for _, name := range r.Names {
			if _, err := libseccomp.GetSyscallFromName(name); err != nil && !slices.Contains(unknown, name) {
				unknown = append(unknown, name)
			}
		}
	}
	return unknown
}

// compile writes the program itself when the policy has a shape generate
// knows (the shipped policies do) and asks libseccomp otherwise, and puts
// the core guard (coreguard.go) in front of either.
func compile(p *Policy) ([]byte, error) {
	prog, err := generate(p)
	switch {
	case errors.Is(err, errNotGenerated):
		if prog, err = compileLibseccomp(p); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("compile seccomp policy: %w", err)
	}
	if prog, err = withCoreGuard(p, prog); err != nil {
		return nil, fmt.Errorf("compile seccomp policy: %w", err)
	}
	return prog, nil
}

func compileLibseccomp(p *Policy) ([]byte, error) {
	defaultAct := scmpAction(p.DefaultAction, p.DefaultErrno)
	f, err := libseccomp.NewFilter(defaultAct)
	if err != nil {
		return nil, fmt.Errorf("compile seccomp policy: new filter: %w", err)
	}
	defer f.Release()

	// Only the native architecture is in the filter. Calls through another
	// ABI (i386 int 0x80 on x86_64) get the default action, so a refusal;
	// libseccomp's own default would kill only the calling thread.
	if err := f.SetBadArchAction(defaultAct); err != nil {
		return nil, fmt.Errorf("compile seccomp policy: bad-arch action: %w", err)
	}
	// The jail sets no_new_privs itself before loading; the exported
	// program does not carry this bit anyway, but say it to avoid surprise.
	if err := f.SetNoNewPrivsBit(false); err != nil {
		return nil, fmt.Errorf("compile seccomp policy: nnp bit: %w", err)
	}
	// A binary search on the syscall number instead of a linear scan of
	// ~300 allowed calls: this is what BenchmarkFilterCost measures.
	if err := f.SetOptimize(2); err != nil {
		return nil, fmt.Errorf("compile seccomp policy: optimize: %w", err)
	}

	// libseccomp refuses rules that repeat the default action, so they are
	// left out. A conditional one changes nothing. An unconditional one
	// does: in libseccomp an unconditional rule for a call overrides every
	// conditional rule for it, so the call always gets the default action
	// and its other rules must go too. (runc only drops the rule, which
	// would let the conditional rules through.)
	pinned := map[string]bool{}
	for _, r := range p.Rules {
		if len(r.Args) == 0 && scmpAction(r.Action, r.Errno) == defaultAct {
			for _, name := range r.Names {
				pinned[name] = true
			}
		}
	}

	for i, r := range p.Rules {
		act := scmpAction(r.Action, r.Errno)
		if act == defaultAct {
			continue
		}
		conds := make([]libseccomp.ScmpCondition, 0, len(r.Args))
		for _, a := range r.Args {
			c, err := scmpCondition(a)
			if err != nil {
				return nil, fmt.Errorf("compile seccomp policy: rule %d (%s): %w", i, r.Names[0], err)
			}
			conds = append(conds, c)
		}
		for _, name := range r.Names {
			if pinned[name] {
				continue
			}
			sc, err := libseccomp.GetSyscallFromName(name)
			if err != nil {
				continue // unknown to this libseccomp or arch: default action
			}
			if len(conds) == 0 {
				err = f.AddRule(sc, act)
			} else {
				err = f.AddRuleConditional(sc, act, conds)
			}
			if err != nil {
				return nil, fmt.Errorf("compile seccomp policy: rule %d: %s: %w", i, name, err)
			}
		}
	}

	prog, err := exportBPF(f)
	if err != nil {
		return nil, fmt.Errorf("compile seccomp policy: %w", err)
	}
	if len(prog) == 0 || len(prog)%instructionSize != 0 {
		return nil, fmt.Errorf("compile seccomp policy: libseccomp exported %d bytes, not a whole number of instructions", len(prog))
	}
	if n := len(prog) / instructionSize; n > maxInstructions {
		return nil, fmt.Errorf("compile seccomp policy: %d instructions, the kernel takes at most %d", n, maxInstructions)
	}
	return prog, nil
}

// exportBPF writes the program through a pipe: libseccomp 2.5 can only
// export to a file descriptor (seccomp_export_bpf_mem is 2.6). A goroutine
// drains the pipe so that a program larger than the pipe buffer cannot
// deadlock the export.
func exportBPF(f *libseccomp.ScmpFilter) ([]byte, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("export bpf: %w", err)
	}
	type result struct {
		data []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		data, err := io.ReadAll(r)
		r.Close()
		done <- result{data, err}
	}()
	exportErr := f.ExportBPF(w)
	closeErr := w.Close()
	res := <-done
	if err := errors.Join(exportErr, closeErr, res.err); err != nil {
		return nil, fmt.Errorf("export bpf: %w", err)
	}
	return res.data, nil
}

func scmpAction(a Action, errno uint) libseccomp.ScmpAction {
	switch a {
	case ActAllow:
		return libseccomp.ActAllow
	case ActKill:
		return libseccomp.ActKillProcess
	case ActLog:
		return libseccomp.ActLog
	case ActTrap:
		return libseccomp.ActTrap
	default: // ActErrno; Validate has rejected anything else
		if errno == 0 {
			errno = eperm
		}
		return libseccomp.ActErrno.SetReturnCode(int16(errno))
	}
}

func scmpCondition(a Arg) (libseccomp.ScmpCondition, error) {
	var op libseccomp.ScmpCompareOp
	switch a.Op {
	case OpEqual:
		op = libseccomp.CompareEqual
	case OpNotEqual:
		op = libseccomp.CompareNotEqual
	case OpLess:
		op = libseccomp.CompareLess
	case OpLessEqual:
		op = libseccomp.CompareLessOrEqual
	case OpGreater:
		op = libseccomp.CompareGreater
	case OpGreaterEqual:
		op = libseccomp.CompareGreaterEqual
	case OpMaskedEqual:
		// libseccomp takes the mask first, then the value.
		return libseccomp.MakeCondition(a.Index, libseccomp.CompareMaskedEqual, a.Mask, a.Value)
	default:
		return libseccomp.ScmpCondition{}, fmt.Errorf("invalid operator %q", a.Op)
	}
	return libseccomp.MakeCondition(a.Index, op, a.Value)
}
