package seccomp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/bits"
	"slices"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// brig writes the classic BPF program itself for the policies it ships
// (the default and its KillOnRefusal and LogOnly variants) and for any
// policy of the same shape; everything else goes through libseccomp.
//
// Why: the kernel converts and JIT-compiles the program for every jail, in
// time linear in its length (~0.25 ms for libseccomp's 983 instructions of
// the default policy). Most of that length is the masked-equality "cubes"
// libseccomp needs to say "allowed only for these values" (personality
// alone is ~220 instructions); here such a call is one load, one AND and a
// compare per value. The system call numbers are one binary search over
// runs of numbers that share an action, where libseccomp tests each call.
//
// The program has the semantics of libseccomp's for the same policy:
// TestGeneratedMatchesLibseccomp runs both through a BPF interpreter on
// every system call number, foreign architectures, x32 numbers and argument
// values around every constant of the policy.

// errNotGenerated says the policy has a shape the generator leaves to
// libseccomp (comparisons other than masked equality, conditions on several
// arguments, overlapping conditional rules).
var errNotGenerated = errors.New("policy left to libseccomp")

// Classic BPF opcodes (linux/filter.h, linux/bpf_common.h).
const (
	bpfLdWAbs = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	bpfAndK   = unix.BPF_ALU | unix.BPF_AND | unix.BPF_K
	bpfJeqK   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	bpfJgeK   = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	bpfJa     = unix.BPF_JMP | unix.BPF_JA
	bpfRetK   = unix.BPF_RET | unix.BPF_K
)

// Offsets in struct seccomp_data.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

type insn struct {
	code   uint16
	jt, jf uint8
	k      uint32
}

func stmt(code uint16, k uint32) insn { return insn{code: code, k: k} }

func jump(code uint16, k uint32, jt, jf uint8) insn { return insn{code: code, jt: jt, jf: jf, k: k} }

// retValue is the filter's return value for an action.
func retValue(a Action, errno uint) uint32 {
	switch a {
	case ActAllow:
		return unix.SECCOMP_RET_ALLOW
	case ActKill:
		return unix.SECCOMP_RET_KILL_PROCESS
	case ActLog:
		return unix.SECCOMP_RET_LOG
	case ActTrap:
		return unix.SECCOMP_RET_TRAP
	default: // ActErrno
		if errno == 0 {
			errno = eperm
		}
		return unix.SECCOMP_RET_ERRNO | uint32(errno&unix.SECCOMP_RET_DATA)
	}
}

// argTest is a system call whose action depends on one argument: the
// masked value (arg & mask) equal to a key of points gets that action,
// every other value gets other.
type argTest struct {
	index  uint
	mask   uint32 // the low 32 bits only: generate refuses wider masks
	points map[uint32]uint32
	other  uint32
}

// decision is what a system call number gets: a return value, or an
// argument test.
type decision struct {
	ret  uint32
	test *argTest
}

func (d decision) equal(e decision) bool {
	if d.test == nil || e.test == nil {
		return d.test == nil && e.test == nil && d.ret == e.ret
	}
	return d.test == e.test
}

// generate writes the program for p, or returns errNotGenerated. The
// returns go in a pool at the program's end, which the jumps reach
// directly, rather than one return instruction per leaf: the kernel
// converts and JIT-compiles the program for every jail, in time linear in
// its length. A jump reaches at most 255 instructions ahead; a program too
// long for that has its returns inline.
func generate(p *Policy) ([]byte, error) {
	prog, err := generateLaidOut(p, true)
	if errors.Is(err, errFarReturn) {
		return generateLaidOut(p, false)
	}
	return prog, err
}

// generateLaidOut is generate with the returns pooled or inline.
func generateLaidOut(p *Policy, pooled bool) ([]byte, error) {
	var auditArch uint32
	switch arch, err := libseccomp.GetNativeArch(); {
	case err != nil:
		return nil, fmt.Errorf("%w: native architecture: %v", errNotGenerated, err)
	case arch == libseccomp.ArchAMD64:
		auditArch = unix.AUDIT_ARCH_X86_64
	default:
		return nil, fmt.Errorf("%w: architecture %s", errNotGenerated, arch)
	}
	defaultRet := retValue(p.DefaultAction, p.DefaultErrno)

	// Gather each call's rules as libseccomp would keep them: rules that
	// repeat the default action are left out, and an unconditional rule
	// overrides the call's conditional ones.
	type callRules struct {
		uncond []uint32
		cond   []Rule
	}
	calls := map[int]*callRules{}
	for _, r := range p.Rules {
		ret := retValue(r.Action, r.Errno)
		for _, name := range r.Names {
			sc, err := libseccomp.GetSyscallFromName(name)
			if err != nil || sc < 0 {
				continue // unknown here, or not a call of this architecture
			}
			c := calls[int(sc)]
			if c == nil {
				c = &callRules{}
				calls[int(sc)] = c
			}
			if len(r.Args) == 0 {
				c.uncond = append(c.uncond, ret)
			} else if ret != defaultRet {
				c.cond = append(c.cond, r)
			}
		}
	}
	maxNr := 0
	decisions := map[int]decision{}
	for nr, c := range calls {
		maxNr = max(maxNr, nr)
		if len(c.uncond) > 0 {
			if slices.ContainsFunc(c.uncond, func(r uint32) bool { return r != c.uncond[0] }) {
				return nil, fmt.Errorf("%w: call %d has unconditional rules with different actions", errNotGenerated, nr)
			}
			decisions[nr] = decision{ret: c.uncond[0]}
			continue
		}
		if len(c.cond) == 0 {
			continue
		}
		t, err := buildArgTest(c.cond, defaultRet)
		if err != nil {
			return nil, fmt.Errorf("call %d: %w", nr, err)
		}
		if len(t.points) == 0 {
			decisions[nr] = decision{ret: t.other}
		} else {
			decisions[nr] = decision{test: t}
		}
	}

	// Runs of consecutive numbers with the same decision, up to the x32 bit.
	var runs []run
	for nr := 0; nr <= maxNr+1; nr++ {
		d, ok := decisions[nr]
		if !ok {
			d = decision{ret: defaultRet}
		}
		if len(runs) == 0 || !runs[len(runs)-1].d.equal(d) {
			runs = append(runs, run{nr, d})
		}
	}

	prog, err := layout(auditArch, defaultRet, runs, pooled)
	if err != nil {
		return nil, err
	}
	if len(prog) > maxInstructions {
		return nil, fmt.Errorf("%w: %d instructions", errNotGenerated, len(prog))
	}
	out := make([]byte, 0, len(prog)*instructionSize)
	for _, in := range prog {
		out = binary.NativeEndian.AppendUint16(out, in.code)
		out = append(out, in.jt, in.jf)
		out = binary.NativeEndian.AppendUint32(out, in.k)
	}
	return out, nil
}

// run is a run of consecutive system call numbers with the same decision.
type run struct {
	start int
	d     decision
}

// errFarReturn: a jump would have to reach a pooled return more than 255
// instructions ahead.
var errFarReturn = errors.New("a return out of a jump's reach")

// pinsn is an instruction whose jt or jf may be a return of the pool at
// the program's end rather than an offset (a pool index plus one; 0 for
// an offset).
type pinsn struct {
	insn
	jtRet, jfRet int
}

// retPool numbers the distinct return values a program's jumps target.
type retPool struct {
	index map[uint32]int
	rets  []uint32
}

// at is the reference to ret's place in the pool (index plus one).
func (p *retPool) at(ret uint32) int {
	if i, ok := p.index[ret]; ok {
		return i + 1
	}
	p.index[ret] = len(p.rets)
	p.rets = append(p.rets, ret)
	return len(p.rets)
}

// layout writes the program: the architecture check, then a binary search
// over the runs by system call number. With pooled, a decision that is a
// return is a jump target in the pool rather than an instruction of its
// own; errFarReturn when one is out of reach.
func layout(auditArch, defaultRet uint32, runs []run, pooled bool) ([]insn, error) {
	pool := &retPool{index: map[uint32]int{}}
	var prologue []pinsn
	if pooled {
		prologue = []pinsn{
			{insn: stmt(bpfLdWAbs, offArch)},
			{insn: jump(bpfJeqK, auditArch, 0, 0), jfRet: pool.at(defaultRet)},
			// x32 calls come in as x86_64 with bit 30 set: above every
			// x86_64 number, they fall in the last run, the default
			// action, which is also what libseccomp gives them (its
			// bad-architecture action).
			{insn: stmt(bpfLdWAbs, offNr)},
		}
	} else {
		prologue = []pinsn{
			{insn: stmt(bpfLdWAbs, offArch)},
			{insn: jump(bpfJeqK, auditArch, 1, 0)},
			{insn: stmt(bpfRetK, defaultRet)},
			{insn: stmt(bpfLdWAbs, offNr)},
		}
	}
	// tree returns the code of the runs, or, pooled, the return value that
	// is their whole decision (isRet) and no code.
	var tree func(rs []run) (code []pinsn, ret uint32, isRet bool, err error)
	tree = func(rs []run) ([]pinsn, uint32, bool, error) {
		if len(rs) == 1 {
			d := rs[0].d
			switch {
			case d.test != nil:
				code, err := d.test.code(pool, pooled)
				return code, 0, false, err
			case pooled:
				return nil, d.ret, true, nil
			}
			return []pinsn{{insn: stmt(bpfRetK, d.ret)}}, 0, false, nil
		}
		mid := len(rs) / 2
		low, lowRet, lowIsRet, err := tree(rs[:mid])
		if err != nil {
			return nil, 0, false, err
		}
		high, highRet, highIsRet, err := tree(rs[mid:])
		if err != nil {
			return nil, 0, false, err
		}
		// jge split: the high runs when taken, the low ones when not.
		split := uint32(rs[mid].start)
		j := pinsn{insn: jump(bpfJgeK, split, 0, 0)}
		switch {
		case lowIsRet && highIsRet:
			j.jtRet, j.jfRet = pool.at(highRet), pool.at(lowRet)
			return []pinsn{j}, 0, false, nil
		case lowIsRet:
			j.jfRet = pool.at(lowRet)
			return slices.Concat([]pinsn{j}, high), 0, false, nil
		case highIsRet:
			j.jtRet = pool.at(highRet)
			return slices.Concat([]pinsn{j}, low), 0, false, nil
		case len(low) <= 255:
			j.jt = uint8(len(low))
			return slices.Concat([]pinsn{j}, low, high), 0, false, nil
		}
		j.jt, j.jf = 0, 1
		return slices.Concat([]pinsn{j, {insn: stmt(bpfJa, uint32(len(low)))}}, low, high), 0, false, nil
	}
	body, ret, isRet, err := tree(runs)
	if err != nil {
		return nil, err
	}
	if isRet {
		body = []pinsn{{insn: stmt(bpfRetK, ret)}}
	}
	code := slices.Concat(prologue, body)
	prog := make([]insn, 0, len(code)+len(pool.rets))
	reach := func(from, ref int) (uint8, error) {
		off := len(code) + ref - 1 - from - 1
		if off > 255 {
			return 0, errFarReturn
		}
		return uint8(off), nil
	}
	for i, in := range code {
		if in.jtRet != 0 {
			if in.jt, err = reach(i, in.jtRet); err != nil {
				return nil, err
			}
		}
		if in.jfRet != 0 {
			if in.jf, err = reach(i, in.jfRet); err != nil {
				return nil, err
			}
		}
		prog = append(prog, in.insn)
	}
	for _, r := range pool.rets {
		prog = append(prog, stmt(bpfRetK, r))
	}
	return prog, nil
}

// code is the argument test as instructions: load, mask, one compare per
// point, then the returns (in the pool, when pooled).
func (t *argTest) code(pool *retPool, pooled bool) ([]pinsn, error) {
	if len(t.points) > 100 {
		return nil, fmt.Errorf("%w: %d values tested", errNotGenerated, len(t.points))
	}
	values := slices.Sorted(maps.Keys(t.points))
	// The argument's low 32 bits (little endian); the masks are 32-bit.
	out := []pinsn{{insn: stmt(bpfLdWAbs, offArgs+8*uint32(t.index))}}
	if t.mask != 0xffffffff {
		out = append(out, pinsn{insn: stmt(bpfAndK, t.mask)})
	}
	if pooled {
		for _, v := range values {
			out = append(out, pinsn{insn: jump(bpfJeqK, v, 0, 0), jtRet: pool.at(t.points[v])})
		}
		out[len(out)-1].jfRet = pool.at(t.other)
		return out, nil
	}
	rets := []uint32{t.other}
	for _, v := range values {
		if r := t.points[v]; !slices.Contains(rets, r) {
			rets = append(rets, r)
		}
	}
	for i, v := range values {
		// From compare i, the return for rets[j] is (len(values)-1-i)
		// compares plus j returns ahead.
		j := slices.Index(rets, t.points[v])
		out = append(out, pinsn{insn: jump(bpfJeqK, v, uint8(len(values)-1-i+j), 0)})
	}
	for _, r := range rets {
		out = append(out, pinsn{insn: stmt(bpfRetK, r)})
	}
	return out, nil
}

// buildArgTest turns a call's conditional rules into one argument test.
// It accepts what allowOnly and allowExcept produce (and the same with the
// default action's rules left out): every rule one masked-equality condition
// on the same argument, the masks all leading bits of one 32-bit mask, and
// no two rules matching the same value. The values then fall into
// "cubes" (the values sharing a prefix of the mask's bits), each with one
// action or, where no rule matches, the default. Cubes of a single value
// become points; all larger cubes must share one action, which is the
// test's other action.
func buildArgTest(rules []Rule, defaultRet uint32) (*argTest, error) {
	index := rules[0].Args[0].Index
	var mask uint64
	for _, r := range rules {
		if len(r.Args) != 1 || r.Args[0].Op != OpMaskedEqual || r.Args[0].Index != index {
			return nil, fmt.Errorf("%w: not one masked equality on one argument", errNotGenerated)
		}
		mask |= r.Args[0].Mask
	}
	if mask>>32 != 0 || mask == 0 {
		return nil, fmt.Errorf("%w: mask %#x", errNotGenerated, mask)
	}
	var maskBits []uint64 // highest first
	for m := mask; m != 0; m &^= 1 << (63 - bits.LeadingZeros64(m)) {
		maskBits = append(maskBits, 1<<(63-bits.LeadingZeros64(m)))
	}
	// A trie over the mask's bits: a rule is the node at the depth of its
	// mask's bit count, reached by its value's bits.
	type node struct {
		child [2]*node
		ret   uint32
		rule  bool
	}
	root := &node{}
	for _, r := range rules {
		a := r.Args[0]
		m, v := a.Mask, a.Value
		if v&^m != 0 {
			return nil, fmt.Errorf("%w: value %#x outside mask %#x", errNotGenerated, v, m)
		}
		depth := bits.OnesCount64(m)
		var prefix uint64
		for _, b := range maskBits[:depth] {
			prefix |= b
		}
		if m != prefix {
			return nil, fmt.Errorf("%w: mask %#x is not a prefix of %#x", errNotGenerated, m, mask)
		}
		n := root
		for _, b := range maskBits[:depth] {
			if n.rule {
				return nil, fmt.Errorf("%w: overlapping rules", errNotGenerated)
			}
			i := 0
			if v&b != 0 {
				i = 1
			}
			if n.child[i] == nil {
				n.child[i] = &node{}
			}
			n = n.child[i]
		}
		if n.rule || n.child[0] != nil || n.child[1] != nil {
			return nil, fmt.Errorf("%w: overlapping rules", errNotGenerated)
		}
		n.rule, n.ret = true, retValue(r.Action, r.Errno)
	}
	t := &argTest{index: index, mask: uint32(mask), points: map[uint32]uint32{}}
	var wide []uint32 // actions of cubes wider than one value
	var walk func(n *node, depth int, value uint64)
	walk = func(n *node, depth int, value uint64) {
		ret := defaultRet
		if n != nil && n.rule {
			ret = n.ret
		}
		if n != nil && !n.rule && depth < len(maskBits) {
			walk(n.child[0], depth+1, value)
			walk(n.child[1], depth+1, value|maskBits[depth])
			return
		}
		if depth == len(maskBits) {
			t.points[uint32(value)] = ret
		} else {
			wide = append(wide, ret)
		}
	}
	walk(root, 0, 0)
	switch {
	case len(wide) > 0:
		t.other = wide[0]
		if slices.ContainsFunc(wide, func(r uint32) bool { return r != t.other }) {
			return nil, fmt.Errorf("%w: value ranges with different actions", errNotGenerated)
		}
	default:
		// Every value is a point (a mask of few bits): the commonest
		// action is the other one.
		count := map[uint32]int{}
		for _, r := range t.points {
			count[r]++
			if count[r] > count[t.other] || (count[r] == count[t.other] && r < t.other) {
				t.other = r
			}
		}
	}
	for v, r := range t.points {
		if r == t.other {
			delete(t.points, v)
		}
	}
	return t, nil
}
