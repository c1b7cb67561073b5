package seccomp

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

// TestComplementCubes checks the cube construction exhaustively on an
// 8-bit space with a mask that has holes: every value outside the excluded
// set is matched by exactly one cube, and no excluded value by any.
func TestComplementCubes(t *testing.T) {
	const mask = 0b1101_0110
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		var excluded []uint64
		for range rng.IntN(5) + 1 {
			excluded = append(excluded, rng.Uint64N(256))
		}
		cubes := complementCubes(mask, excluded)
		if max := 8 * len(excluded); len(cubes) > max {
			t.Errorf("trial %d: %d cubes for %d values, want at most %d", trial, len(cubes), len(excluded), max)
		}
		for x := range uint64(1 << 10) { // bits outside 8 must not matter
			matches := 0
			for _, c := range cubes {
				if x&c.mask == c.value {
					matches++
				}
			}
			isExcluded := slices.ContainsFunc(excluded, func(v uint64) bool { return v&mask == x&mask })
			if isExcluded && matches != 0 || !isExcluded && matches != 1 {
				t.Fatalf("trial %d: excluded %v, x=%#x: %d matching cubes (excluded=%v)", trial, excluded, x, matches, isExcluded)
			}
		}
	}
}

// TestDefaultNamesTheRequiredRefusals: the calls the design requires to be
// refused with EPERM are named in the default policy, known to libseccomp,
// and not also allowed.
func TestDefaultNamesTheRequiredRefusals(t *testing.T) {
	required := []string{
		"mount", "umount2", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount",
		"open_tree", "mount_setattr", "pivot_root", "chroot", "unshare", "setns", "ptrace",
		"process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "bpf",
		"perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter",
		"io_uring_register", "keyctl", "add_key", "request_key", "kexec_load",
		"kexec_file_load", "init_module", "finit_module", "delete_module",
		"open_by_handle_at", "name_to_handle_at", "reboot", "swapon", "swapoff",
		"settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "sethostname",
		"setdomainname", "acct", "quotactl", "iopl", "ioperm", "syslog",
	}
	p := Default()
	refused := map[string]bool{}
	allowedNames := map[string]bool{}
	for _, r := range p.Rules {
		for _, n := range r.Names {
			switch {
			case r.Action == ActErrno && r.Errno == eperm && len(r.Args) == 0:
				refused[n] = true
			case r.Action == ActAllow && len(r.Args) == 0:
				if allowedNames[n] {
					t.Errorf("%s allowed twice", n)
				}
				allowedNames[n] = true
			}
		}
	}
	for _, n := range required {
		if !refused[n] {
			t.Errorf("%s is not refused with EPERM", n)
		}
	}
	for n := range refused {
		if allowedNames[n] {
			t.Errorf("%s is both allowed and refused", n)
		}
	}
	if unknown := p.UnknownSyscalls(); len(unknown) > 0 {
		t.Errorf("names unknown to this libseccomp (they would get ENOSYS): %v", unknown)
	}
	if err := p.Validate(); err != nil {
		t.Error(err)
	}
}

func TestVariantsLeaveOriginalAlone(t *testing.T) {
	p := Default()
	before, _ := p.canonical()
	k := p.KillOnRefusal()
	l := p.LogOnly()
	after, _ := p.canonical()
	if !bytes.Equal(before, after) {
		t.Fatal("KillOnRefusal/LogOnly modified the receiver")
	}
	if k.DefaultAction != ActKill || l.DefaultAction != ActLog {
		t.Errorf("defaults: kill variant %s, log variant %s", k.DefaultAction, l.DefaultAction)
	}
	for _, r := range k.Rules {
		if r.Action == ActErrno && r.Errno != enosys {
			t.Errorf("KillOnRefusal kept errno %d for %v", r.Errno, r.Names)
		}
		if slices.Contains(r.Names, "clone3") && !(r.Action == ActErrno && r.Errno == enosys) {
			t.Errorf("KillOnRefusal changed clone3 to %s: glibc's pthread_create would die", r.Action)
		}
	}
	for _, r := range l.Rules {
		if r.Action.refusal() {
			t.Errorf("LogOnly kept refusal %s for %v", r.Action, r.Names)
		}
	}
	// Deep copy: changing the variant must not reach the original.
	k.Rules[0].Names[0] = "changed"
	if p.Rules[0].Names[0] == "changed" {
		t.Error("variant shares slices with the original")
	}
}

func TestValidate(t *testing.T) {
	ok := Rule{Names: []string{"read"}, Action: ActAllow}
	for name, p := range map[string]*Policy{
		"nil":            nil,
		"no default":     {},
		"bad default":    {DefaultAction: "maybe"},
		"default errno":  {DefaultAction: ActErrno, DefaultErrno: 4096},
		"no names":       {DefaultAction: ActAllow, Rules: []Rule{{Action: ActErrno}}},
		"bad action":     {DefaultAction: ActAllow, Rules: []Rule{ok, {Names: []string{"x"}, Action: "nope"}}},
		"bad errno":      {DefaultAction: ActAllow, Rules: []Rule{{Names: []string{"x"}, Action: ActErrno, Errno: 99999}}},
		"bad index":      {DefaultAction: ActAllow, Rules: []Rule{{Names: []string{"x"}, Action: ActErrno, Args: []Arg{{Index: 6, Op: OpEqual}}}}},
		"bad op":         {DefaultAction: ActAllow, Rules: []Rule{{Names: []string{"x"}, Action: ActErrno, Args: []Arg{{Index: 0, Op: "~"}}}}},
		"arg twice":      {DefaultAction: ActAllow, Rules: []Rule{{Names: []string{"x"}, Action: ActErrno, Args: []Arg{{Index: 0, Op: OpEqual}, {Index: 0, Op: OpEqual}}}}},
		"too many conds": {DefaultAction: ActAllow, Rules: []Rule{{Names: []string{"x"}, Action: ActErrno, Args: make([]Arg, 7)}}},
	} {
		if err := p.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, p)
		}
		if _, err := p.Compile(); err == nil {
			t.Errorf("%s: Compile accepted %+v", name, p)
		}
	}
}

func TestCompileCache(t *testing.T) {
	p := Default()
	first, err := p.Compile()
	if err != nil {
		t.Fatal(err)
	}
	if len(first)%instructionSize != 0 || len(first)/instructionSize > maxInstructions {
		t.Fatalf("program of %d bytes", len(first))
	}
	t.Logf("default policy: %d BPF instructions", len(first)/instructionSize)
	// The caller owns the returned slice.
	first[0] ^= 0xff
	again, err := Default().Compile()
	if err != nil {
		t.Fatal(err)
	}
	if again[0] == first[0] {
		t.Error("changing a returned program changed the cached one")
	}

	// Concurrent compiles of the same and of different policies agree.
	policies := []*Policy{Default(), Default().KillOnRefusal(), Default().LogOnly()}
	want := make([][]byte, len(policies))
	for i, q := range policies {
		if want[i], err = q.Compile(); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			i := g % len(policies)
			got, err := policies[i].Compile()
			if err != nil || !bytes.Equal(got, want[i]) {
				t.Errorf("goroutine %d: concurrent compile differs (err %v)", g, err)
			}
		}()
	}
	wg.Wait()
	if bytes.Equal(want[0], want[1]) || bytes.Equal(want[0], want[2]) {
		t.Error("different policies compiled to the same program")
	}
}

func TestCompileSkipsUnknownNames(t *testing.T) {
	p := &Policy{DefaultAction: ActErrno, DefaultErrno: enosys, Rules: []Rule{
		{Names: []string{"read", "brig_no_such_call", "write"}, Action: ActAllow},
	}}
	if _, err := p.Compile(); err != nil {
		t.Fatal(err)
	}
	if got := p.UnknownSyscalls(); !slices.Equal(got, []string{"brig_no_such_call"}) {
		t.Errorf("UnknownSyscalls = %v", got)
	}
}

func TestInstallRejectsGarbage(t *testing.T) {
	// None of these reach the kernel, so the test process stays unfiltered.
	for _, prog := range [][]byte{nil, {1, 2, 3}, make([]byte, 8*(maxInstructions+1))} {
		if err := Install(prog); err == nil {
			t.Errorf("Install accepted %d bytes", len(prog))
		}
	}
}

// TestCompileDefaultActionOverride: an unconditional rule with the default
// action pins the call to the default, as libseccomp's "unconditional rule
// wins" would, even though libseccomp cannot take the rule itself.
func TestCompileDefaultActionOverride(t *testing.T) {
	base := &Policy{DefaultAction: ActErrno, DefaultErrno: eperm, Rules: []Rule{
		{Names: []string{"getpid"}, Action: ActAllow},
	}}
	withCond := base.Clone()
	withCond.Rules = append(withCond.Rules, Rule{Names: []string{"read"}, Action: ActAllow, Args: []Arg{{Index: 0, Op: OpEqual, Value: 0}}})
	pinned := withCond.Clone()
	pinned.Rules = append(pinned.Rules, Rule{Names: []string{"read"}, Action: ActErrno, Errno: eperm})

	progBase, err := base.Compile()
	if err != nil {
		t.Fatal(err)
	}
	progCond, err := withCond.Compile()
	if err != nil {
		t.Fatal(err)
	}
	progPinned, err := pinned.Compile()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(progBase, progCond) {
		t.Fatal("the conditional read rule changed nothing; the test proves nothing")
	}
	if !bytes.Equal(progBase, progPinned) {
		t.Error("an unconditional default-action rule for read did not override read's conditional allow")
	}
}
