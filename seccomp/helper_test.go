package seccomp

// The filter tests never load a filter into the test process: a filter
// cannot be removed, and the test binary still has work to do. Instead they
// re-execute the test binary as a child (the usual Go helper-process
// pattern), which installs the program and then either probes system calls
// with raw syscalls and prints what they returned, or execs a real workload.
// The parent asserts on the output.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	envHelper = "BRIG_SECCOMP_HELPER" // what the child does: probe, exec, status, gochild, loop
	envProg   = "BRIG_SECCOMP_PROG"   // file holding the compiled program, or noFilter
	envUID    = "BRIG_SECCOMP_UID"    // switch to this uid (and gid) before installing
	envArgs   = "BRIG_SECCOMP_ARGS"   // JSON array of arguments for the mode
	envLoops  = "BRIG_SECCOMP_LOOPS"  // iterations for mode loop
	testUID   = 61000                 // base of the uids the kill/log tests run as
	probeWait = 20 * time.Second      // no child should take longer than this
	noFilter  = "(none)"              // program path meaning "do not install"
)

// TestHelperProcess is not a test: it is the child's entry point.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(envHelper)
	if mode == "" {
		t.Skip("helper process for the filter tests; runs only as their child")
	}
	os.Exit(helperMain(mode))
}

func helperMain(mode string) int {
	var args []string
	if a := os.Getenv(envArgs); a != "" {
		if err := json.Unmarshal([]byte(a), &args); err != nil {
			fmt.Fprintln(os.Stderr, "helper: bad args:", err)
			return 2
		}
	}
	// Read the program while still root: it sits in the test's 0700
	// temporary directory.
	var prog []byte
	if path := os.Getenv(envProg); path != noFilter {
		var err error
		if prog, err = os.ReadFile(path); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 2
		}
	}
	if s := os.Getenv(envUID); s != "" {
		id, err := strconv.Atoi(s)
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper: bad uid:", err)
			return 2
		}
		// Records are matched by uid, so a test's records are its own.
		if err := syscall.Setgroups(nil); err != nil {
			fmt.Fprintln(os.Stderr, "helper: setgroups:", err)
			return 2
		}
		if err := syscall.Setresgid(id, id, id); err != nil {
			fmt.Fprintln(os.Stderr, "helper: setresgid:", err)
			return 2
		}
		if err := syscall.Setresuid(id, id, id); err != nil {
			fmt.Fprintln(os.Stderr, "helper: setresuid:", err)
			return 2
		}
	}
	if prog != nil {
		if err := Install(prog); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 2
		}
	}

	switch mode {
	case "probe":
		// Run every probe named in args (all of them if none) and print
		// "name errno" lines; errno 0 means the call succeeded.
		names := args
		if len(names) == 0 {
			for _, p := range probes {
				names = append(names, p.name)
			}
		}
		for _, n := range names {
			p, ok := probeByName(n)
			if !ok {
				fmt.Fprintln(os.Stderr, "helper: no probe", n)
				return 2
			}
			fmt.Printf("%s %d\n", n, int(p.run()))
		}
		return 0
	case "exec":
		// The filter survives execve; this is how the jail runs a workload.
		env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8", "TMPDIR=" + os.TempDir()}
		err := syscall.Exec(args[0], args, env)
		fmt.Fprintln(os.Stderr, "helper: exec:", err)
		return 2
	case "status":
		data, err := os.ReadFile("/proc/self/status")
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 2
		}
		os.Stdout.Write(data)
		return 0
	case "gochild":
		// Go's own fork path (clone with CLONE_VFORK|CLONE_VM) must work.
		out, err := exec.Command("/bin/echo", "child").Output()
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 1
		}
		os.Stdout.Write(out)
		return 0
	case "loop":
		n, _ := strconv.Atoi(os.Getenv(envLoops))
		fmt.Println(syscallLoop(n).Nanoseconds())
		return 0
	}
	fmt.Fprintln(os.Stderr, "helper: unknown mode", mode)
	return 2
}

// syscallLoop is the workload of BenchmarkFilterCost: the cheapest system
// call there is, and a small read, so that the filter's share is as large
// as it will ever be.
func syscallLoop(n int) time.Duration {
	fd, err := unix.Open("/dev/zero", unix.O_RDONLY, 0)
	if err != nil {
		panic(err)
	}
	defer unix.Close(fd)
	var buf [64]byte
	start := time.Now()
	for range n {
		unix.RawSyscall(unix.SYS_GETPID, 0, 0, 0)
		unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
	}
	return time.Since(start)
}

// child describes one run of the helper.
type child struct {
	mode   string
	prog   []byte // nil: no filter
	uid    int    // 0: stay root
	args   []string
	loops  int
	stdin  string
	stdout bytes.Buffer
	stderr bytes.Buffer
	state  *os.ProcessState
}

// run starts the helper and waits for it. It fails the test only for
// problems of the harness; how the child ended is in c.state.
func (c *child) run(t testing.TB) {
	t.Helper()
	progPath := noFilter
	if c.prog != nil {
		progPath = filepath.Join(t.TempDir(), "prog.bpf")
		if err := os.WriteFile(progPath, c.prog, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := os.Args[0]
	if c.uid != 0 {
		bin = reachableBinary(t)
	}
	argsJSON, err := json.Marshal(c.args)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		envHelper+"="+c.mode,
		envProg+"="+progPath,
		envArgs+"="+string(argsJSON),
		envLoops+"="+strconv.Itoa(c.loops),
	)
	if c.uid != 0 {
		cmd.Env = append(cmd.Env, envUID+"="+strconv.Itoa(c.uid))
	}
	cmd.Stdin = strings.NewReader(c.stdin)
	cmd.Stdout = &c.stdout
	cmd.Stderr = &c.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(probeWait, func() { cmd.Process.Kill() })
	defer timer.Stop()
	err = cmd.Wait()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatal(err)
	}
	c.state = cmd.ProcessState
}

// signal returns the signal that killed the child, or 0.
func (c *child) signal() syscall.Signal {
	ws := c.state.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return ws.Signal()
	}
	return 0
}

// results parses the "name errno" lines of a probe run.
func (c *child) results(t testing.TB) map[string]unix.Errno {
	t.Helper()
	if !c.state.Success() {
		t.Fatalf("probe child failed: %v\nstdout:\n%s\nstderr:\n%s", c.state, c.stdout.String(), c.stderr.String())
	}
	res := map[string]unix.Errno{}
	sc := bufio.NewScanner(bytes.NewReader(c.stdout.Bytes()))
	for sc.Scan() {
		name, num, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(num)
		if err != nil {
			t.Fatalf("bad probe line %q", sc.Text())
		}
		res[name] = unix.Errno(n)
	}
	return res
}

var (
	sharedDir  string // a 0755 directory holding a copy of the test binary
	sharedOnce sync.Once
	sharedErr  error
)

// reachableBinary returns a copy of the test binary that another uid can
// execute: go test builds it under a 0700 directory in /tmp. TestMain
// removes the copy.
func reachableBinary(t testing.TB) string {
	t.Helper()
	sharedOnce.Do(func() {
		sharedDir, sharedErr = os.MkdirTemp("", "brig-seccomp-test-")
		if sharedErr != nil {
			return
		}
		if sharedErr = os.Chmod(sharedDir, 0o755); sharedErr != nil {
			return
		}
		var data []byte
		if data, sharedErr = os.ReadFile(os.Args[0]); sharedErr != nil {
			return
		}
		sharedErr = os.WriteFile(filepath.Join(sharedDir, "seccomp.test"), data, 0o755)
	})
	if sharedErr != nil {
		t.Fatalf("copy test binary: %v", sharedErr)
	}
	return filepath.Join(sharedDir, "seccomp.test")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedDir != "" {
		os.RemoveAll(sharedDir)
	}
	os.Exit(code)
}
