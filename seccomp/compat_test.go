package seccomp

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildCompatABI compiles testdata/seccomp/compat_abi.c, or skips.
func buildCompatABI(t *testing.T) string {
	t.Helper()
	if runtime.GOARCH != "amd64" {
		t.Skip("the i386 and x32 ABIs exist only on x86_64")
	}
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not installed; cannot build the int 0x80 probe")
	}
	// Not t.TempDir: its parent is 0700, and one test runs the binary as
	// another uid.
	dir, err := os.MkdirTemp("", "brig-compat-abi-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "compat_abi")
	out, err := exec.Command(gcc, "-O0", "-o", bin, "../testdata/seccomp/compat_abi.c").CombinedOutput()
	if err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	return bin
}

// TestCompatABIRefused: system calls through the i386 (int 0x80) and x32
// ABIs never reach the kernel under the default policy.
func TestCompatABIRefused(t *testing.T) {
	bin := buildCompatABI(t)
	prog, err := Default().Compile()
	if err != nil {
		t.Fatal(err)
	}
	enosys := -int(syscall.ENOSYS)

	for _, abi := range []string{"i386", "x32"} {
		t.Run(abi, func(t *testing.T) {
			// Without a filter: the i386 getpid is real (IA32 emulation is
			// on here); x32 depends on the kernel configuration.
			plain := &child{mode: "exec", args: []string{bin, abi}}
			plain.run(t)
			t.Logf("without filter: %s", strings.TrimSpace(plain.stdout.String()))

			c := &child{mode: "exec", prog: prog, args: []string{bin, abi}}
			c.run(t)
			out := c.stdout.String()
			var ret, pid int
			if _, err := fmt.Sscanf(out, abi+" %d pid %d", &ret, &pid); err != nil || !c.state.Success() {
				t.Fatalf("under filter: %v, output %q, stderr %q", c.state, out, c.stderr.String())
			}
			if ret != enosys {
				t.Errorf("%s getpid under the default policy returned %d, want %d (ENOSYS)", abi, ret, enosys)
			}
		})
	}
}

// TestCompatABIKilled: under KillOnRefusal the i386 call kills the process,
// and the audit record names the call in the i386 table.
func TestCompatABIKilled(t *testing.T) {
	bin := buildCompatABI(t)
	prog, err := Default().KillOnRefusal().Compile()
	if err != nil {
		t.Fatal(err)
	}
	// x32: the kernel here may not even have the ABI, but the filter sees
	// the call first and must refuse it.
	x32 := &child{mode: "exec", prog: prog, args: []string{bin, "x32"}}
	x32.run(t)
	if x32.signal() != syscall.SIGSYS {
		t.Errorf("x32 call under KillOnRefusal: %v, want SIGSYS\nstdout: %s", x32.state, x32.stdout.String())
	}

	cur := openCursor(t)
	uid := testUID + 3
	c := &child{mode: "exec", prog: prog, uid: uid, args: []string{bin, "i386"}}
	c.run(t)
	if c.signal() != syscall.SIGSYS {
		t.Fatalf("int 0x80 under KillOnRefusal: %v, want SIGSYS\nstdout: %s\nstderr: %s", c.state, c.stdout.String(), c.stderr.String())
	}
	if !actionLogged(t, "kill_process") {
		t.Skip("kernel does not log kill_process")
	}
	recs, err := cur.Wait(uint32(uid), 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 {
		t.Skip("no seccomp audit record in /dev/kmsg within 3s (audit daemon, or rate limiting)")
	}
	t.Logf("record: %+v", recs[0])
	if r := recs[0]; r.Arch != "x86" || r.Syscall != "getpid" || r.Nr != 20 || r.Action != "kill" || r.Comm != "compat_abi" {
		t.Errorf("record %+v: want the i386 getpid (20), kill, comm compat_abi", r)
	}
}
