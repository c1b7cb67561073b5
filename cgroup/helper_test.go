package cgroup

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The tests put real processes into real cgroups. The children are this
// test binary re-executed into TestHelperProcess with BRIG_CG_HELPER set.
// A helper first reads one byte from stdin: on cgroup v1 the test writes the
// child's pid into the cgroups before releasing it, so its work (allocating,
// forking, spinning) happens inside the limits.

const helperEnv = "BRIG_CG_HELPER"

func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("only runs as a child of the other tests")
	}
	if mode != "require" && mode != "deleg" {
		var b [1]byte
		if _, err := io.ReadFull(os.Stdin, b[:]); err != nil {
			fmt.Println("helper: no go-ahead:", err)
			os.Exit(90)
		}
	}
	switch mode {
	case "hog":
		helperHog()
	case "spawn":
		helperSpawn()
	case "spin":
		helperSpin()
	case "require":
		helperRequire()
	case "deleg":
		helperDeleg()
	}
	fmt.Println("helper: unknown mode", mode)
	os.Exit(91)
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// helperHog allocates and touches BRIG_CG_MB MiB in 1 MiB steps.
func helperHog() {
	mb := envInt("BRIG_CG_MB", 200)
	var keep [][]byte
	for i := 0; i < mb; i++ {
		b := make([]byte, 1<<20)
		for j := 0; j < len(b); j += 4096 {
			b[j] = 1
		}
		keep = append(keep, b)
	}
	fmt.Printf("hog: survived %d MiB\n", len(keep))
	os.Exit(0)
}

// helperSpawn tries to start up to 40 sleeping children, for at most
// BRIG_CG_SECS seconds, and reports how many it got and the first error.
// It is bounded on purpose: no unbounded fork bomb runs outside a jail.
// It kills its children before it exits.
func helperSpawn() {
	// One P keeps the runtime from starting extra threads while forks fail:
	// a Go runtime that cannot create a thread aborts.
	runtime.GOMAXPROCS(1)
	deadline := time.Now().Add(time.Duration(envInt("BRIG_CG_SECS", 3)) * time.Second)
	var kids []*os.Process
	var firstErr error
	attempts := 0
	for attempts < 40 && time.Now().Before(deadline) {
		attempts++
		p, err := os.StartProcess("/bin/sleep", []string{"sleep", "30"}, &os.ProcAttr{})
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		kids = append(kids, p)
	}
	for _, p := range kids {
		p.Kill()
		p.Wait()
	}
	eagain := errors.Is(firstErr, syscall.EAGAIN)
	fmt.Printf("spawn: attempts=%d started=%d eagain=%v err=%v\n", attempts, len(kids), eagain, firstErr)
	if eagain {
		os.Exit(0)
	}
	os.Exit(3)
}

// helperSpin keeps two threads busy for BRIG_CG_MS milliseconds of wall time.
func helperSpin() {
	runtime.GOMAXPROCS(2)
	d := time.Duration(envInt("BRIG_CG_MS", 1000)) * time.Millisecond
	end := time.Now().Add(d)
	done := make(chan int)
	for range 2 {
		go func() {
			n := 0
			for time.Now().Before(end) {
				for range 10000 {
					n++
				}
			}
			done <- n
		}()
	}
	<-done
	<-done
	fmt.Println("spin: done")
	os.Exit(0)
}

// helperRequire runs as an unprivileged user: cgroups are unusable, so
// Require must fail and Auto must fall back to rlimits.
func helperRequire() {
	opt := Options{Require: true, Parent: os.Getenv("BRIG_CG_PARENT")}
	l, err := New(Limits{Memory: 64 << 20, Pids: 20}, opt)
	if err == nil {
		l.Close()
		fmt.Println("require: New succeeded as uid", os.Getuid())
		os.Exit(1)
	}
	if !errors.Is(err, ErrUnavailable) {
		fmt.Println("require: error does not wrap ErrUnavailable:", err)
		os.Exit(2)
	}
	fmt.Println("require error:", err)
	opt.Require = false
	l, err = New(Limits{Memory: 64 << 20, Pids: 20}, opt)
	if err != nil {
		fmt.Println("fallback: New failed:", err)
		os.Exit(3)
	}
	defer l.Close()
	fmt.Println("fallback kind:", l.Kind())
	if l.Kind() != RlimitOnly {
		os.Exit(4)
	}
	os.Exit(0)
}

// helperCmd prepares a helper child in mode with extra environment.
func helperCmd(mode string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), append([]string{helperEnv + "=" + mode}, env...)...)
	return cmd
}

// helperDeleg starts in a non-root cgroup v2 of its own (as a supervisor
// under systemd Delegate=yes would): New must move it into a leaf, put the
// jail beside that leaf, and the jail's limits must work.
func helperDeleg() {
	l, err := New(Limits{Memory: 64 << 20, Pids: 20}, Options{Kind: Cgroup2, Parent: "jails"})
	if err != nil {
		fmt.Println("deleg error:", err)
		os.Exit(5)
	}
	defer l.Close()
	own, _, _ := ownCgroups()
	fmt.Println("deleg own:", own)
	fmt.Println("deleg jail:", l.Dir())
	fd, err := syscall.Open(l.Dir(), syscall.O_DIRECTORY|syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		fmt.Println("deleg open:", err)
		os.Exit(6)
	}
	hog := helperCmd("hog", "BRIG_CG_MB=200")
	hog.Stdin = strings.NewReader("\n")
	hog.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	err = hog.Run()
	syscall.Close(fd)
	st, serr := l.Stats()
	fmt.Printf("deleg hog: %v stats: %+v %v\n", err, st, serr)
	if ws, ok := hog.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || st.OOMKills < 1 {
		os.Exit(7)
	}
	if err := l.Close(); err != nil {
		fmt.Println("deleg close:", err)
		os.Exit(8)
	}
	os.Exit(0)
}
