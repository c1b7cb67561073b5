package seccomp

import (
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// checkProbes runs every probe in a child under prog and compares with the
// expectations in probes_test.go.
func checkProbes(t *testing.T, prog []byte) {
	t.Helper()
	c := &child{mode: "probe", prog: prog}
	c.run(t)
	res := c.results(t)
	for _, p := range probes {
		got, ok := res[p.name]
		if !ok {
			t.Errorf("%s: no result", p.name)
			continue
		}
		switch p.want {
		case allowed:
			if got == unix.EPERM || got == unix.ENOSYS {
				t.Errorf("%s: got %v (%d), want the filter to let it through", p.name, got, int(got))
			}
		default:
			if got != p.want {
				t.Errorf("%s: got %v (%d), want %v (%d)", p.name, got, int(got), p.want, int(p.want))
			}
		}
	}
}

func TestDefaultRefusals(t *testing.T) {
	prog, err := Default().Compile()
	if err != nil {
		t.Fatal(err)
	}
	checkProbes(t, prog)
}

// TestProbesWithoutFilter shows that the probes reach the kernel and fail
// there for their own harmless reasons, so the EPERMs above are the filter's
// doing. Only calls whose unfiltered failure is certain are checked.
func TestProbesWithoutFilter(t *testing.T) {
	c := &child{mode: "probe", args: []string{"clone_newuser", "clone3", "ioctl_tiocsti", "ioctl_tiocsti_high", "socket_inet", "fork", "reboot", "sethostname"}}
	c.run(t)
	res := c.results(t)
	want := map[string]unix.Errno{
		"clone_newuser":      unix.EINVAL,
		"clone3":             unix.EINVAL,
		"ioctl_tiocsti":      unix.ENOTTY,
		"ioctl_tiocsti_high": unix.ENOTTY,
		"socket_inet":        0,
		"fork":               0,
		"reboot":             unix.EINVAL,
		"sethostname":        unix.EINVAL,
	}
	for name, w := range want {
		if res[name] != w {
			t.Errorf("%s without filter: got %v, want %v", name, res[name], w)
		}
	}
}

func TestStatusShowsFilter(t *testing.T) {
	prog, err := Default().Compile()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{mode: "status", prog: prog}
	c.run(t)
	if !c.state.Success() {
		t.Fatalf("child failed: %v\n%s", c.state, c.stderr.String())
	}
	status := c.stdout.String()
	for _, want := range []string{"\nSeccomp:\t2\n", "\nNoNewPrivs:\t1\n"} {
		if !strings.Contains(status, want) {
			t.Errorf("/proc/self/status lacks %q:\n%s", strings.TrimSpace(want), status)
		}
	}
}

// TestGoForkExec: Go's own fork path (clone(CLONE_VM|CLONE_VFORK)) works
// under the filter, so a Go supervisor inside a jail could still spawn.
func TestGoForkExec(t *testing.T) {
	prog, err := Default().Compile()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{mode: "gochild", prog: prog}
	c.run(t)
	if !c.state.Success() || c.stdout.String() != "child\n" {
		t.Fatalf("child: %v\nstdout: %q\nstderr:\n%s", c.state, c.stdout.String(), c.stderr.String())
	}
}

// runWorkload execs argv under prog in a child and fails unless it prints
// "all ok" and exits 0.
func runWorkload(t *testing.T, prog []byte, argv ...string) {
	t.Helper()
	if _, err := os.Stat(argv[0]); err != nil {
		t.Skipf("%s not available: %v", argv[0], err)
	}
	c := &child{mode: "exec", prog: prog, args: argv}
	c.run(t)
	out := c.stdout.String()
	if !c.state.Success() || !strings.Contains(out, "all ok") {
		t.Fatalf("%s under the filter: %v\nstdout:\n%s\nstderr:\n%s", argv[0], c.state, out, c.stderr.String())
	}
}

// benignWorkloads are the ordinary programs every policy variant must run.
func benignWorkloads(t *testing.T) map[string][]string {
	script, err := os.ReadFile("../testdata/seccomp/benign.sh")
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]string{
		// /usr/bin/python3, the system interpreter, not whatever is first
		// on PATH (a pyenv shim under /root on the development machines).
		"python": {"/usr/bin/python3", "-I", "../testdata/seccomp/benign.py"},
		"shell":  {"/bin/bash", "-c", string(script)},
	}
}

// TestBenignWorkloads runs real Python and shell under the default policy
// and under KillOnRefusal: the latter proves that they make no refused call
// at all (an ENOSYS a program shrugs off would kill it there), except
// clone3, which glibc probes and KillOnRefusal keeps answering with ENOSYS.
func TestBenignWorkloads(t *testing.T) {
	for _, variant := range []struct {
		name string
		p    *Policy
	}{
		{"default", Default()},
		{"kill", Default().KillOnRefusal()},
	} {
		prog, err := variant.p.Compile()
		if err != nil {
			t.Fatal(err)
		}
		for name, argv := range benignWorkloads(t) {
			t.Run(variant.name+"/"+name, func(t *testing.T) {
				runWorkload(t, prog, argv...)
			})
		}
	}
}
