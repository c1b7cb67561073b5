package hostile

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// corePatternFile is the kernel's core_pattern. It is global to the
// machine (no namespace has its own), so a CoreLogger changes what every
// crash on the host does for as long as it is installed.
const corePatternFile = "/proc/sys/kernel/core_pattern"

// coreLoggerMu keeps one CoreLogger at a time in this process: each
// restores the value it found.
var coreLoggerMu sync.Mutex

// CoreLogger points kernel.core_pattern at a harmless logger, the way
// apport or systemd-coredump are installed (a "|helper args" pipe that the
// kernel runs as root in the host's namespaces for every crash), so that a
// test can see whether a crash started the host's helper. The logger only
// appends one line per crash to a file (global pid, host uid, hostname of
// the crashed process's UTS namespace, its RLIMIT_CORE, its name) and
// exits without reading the dump.
type CoreLogger struct {
	dir, script, marks string
	old                string
	closed             bool
}

// CoreCrash is one line of the logger: a crash that ran the helper.
type CoreCrash struct {
	PID      int
	UID      uint32
	Hostname string
	Limit    string // RLIMIT_CORE of the crashed process, as the kernel printed it
	Comm     string
}

// InstallCoreLogger installs a logger, to be undone with Close (which
// restores the exact value it replaced). It needs root. It waits for any
// other CoreLogger of this process to close first.
func InstallCoreLogger() (*CoreLogger, error) {
	coreLoggerMu.Lock()
	l, err := installCoreLogger()
	if err != nil {
		coreLoggerMu.Unlock()
		return nil, err
	}
	return l, nil
}

func installCoreLogger() (*CoreLogger, error) {
	old, err := os.ReadFile(corePatternFile)
	if err != nil {
		return nil, fmt.Errorf("core logger: read %s: %w", corePatternFile, err)
	}
	dir, err := os.MkdirTemp("", "brig-core-logger-")
	if err != nil {
		return nil, fmt.Errorf("core logger: %w", err)
	}
	l := &CoreLogger{dir: dir, script: filepath.Join(dir, "logger"), marks: filepath.Join(dir, "marks"),
		old: strings.TrimSuffix(string(old), "\n")}
	// The name (%e) goes last: it is the one part the crashed process chose.
	script := "#!/bin/sh\necho \"$*\" >>" + l.marks + "\n"
	if err := os.WriteFile(l.script, []byte(script), 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("core logger: %w", err)
	}
	if err := os.WriteFile(corePatternFile, []byte("|"+l.script+" %P %u %h %c %e"), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("core logger: set %s (needs root): %w", corePatternFile, err)
	}
	return l, nil
}

// Close restores core_pattern to the value it had and removes the logger.
func (l *CoreLogger) Close() error {
	if l.closed {
		return nil
	}
	l.closed = true
	defer coreLoggerMu.Unlock()
	err := os.WriteFile(corePatternFile, []byte(l.old), 0o644)
	if err != nil {
		err = fmt.Errorf("core logger: restore %s to %q: %w", corePatternFile, l.old, err)
	}
	l.waitIdle(10 * time.Second)
	return errors.Join(err, os.RemoveAll(l.dir))
}

// Crashes waits until no logger is running any more (a helper the kernel
// started for a crash is exec'd before the crashed process is gone, so
// once a jail has ended every helper of its crashes is either here or
// running) and returns what the logger recorded.
func (l *CoreLogger) Crashes() ([]CoreCrash, error) {
	if err := l.waitIdle(10 * time.Second); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(l.marks)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("core logger: %w", err)
	}
	var out []CoreCrash
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.SplitN(line, " ", 5)
		if len(f) < 5 {
			continue
		}
		pid, _ := strconv.Atoi(f[0])
		uid, _ := strconv.ParseUint(f[1], 10, 32)
		out = append(out, CoreCrash{PID: pid, UID: uint32(uid), Hostname: f[2], Limit: f[3], Comm: f[4]})
	}
	return out, nil
}

// waitIdle waits until no process runs the logger script.
func (l *CoreLogger) waitIdle(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		running := false
		cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, f := range cmdlines {
			if b, err := os.ReadFile(f); err == nil && strings.Contains(string(b), l.script) {
				running = true
				break
			}
		}
		if !running {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("core logger: a logger still runs after %v", limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Control crashes a host process (sleep, outside any jail, its
// RLIMIT_CORE unlimited, killed with SIGABRT) and waits for the logger to
// record it: the proof that the logger works, so that a jail crash it did
// not record was not recorded because it did not run.
func (l *CoreLogger) Control() error {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("core logger control: %w", err)
	}
	pid := cmd.Process.Pid
	inf := unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
	if err := unix.Prlimit(pid, unix.RLIMIT_CORE, &inf, nil); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return fmt.Errorf("core logger control: prlimit: %w", err)
	}
	if err := cmd.Process.Signal(syscall.SIGABRT); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return fmt.Errorf("core logger control: %w", err)
	}
	err := cmd.Wait()
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGABRT {
		return fmt.Errorf("core logger control: sleep ended %v (%v), not by SIGABRT", cmd.ProcessState, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		crashes, err := l.Crashes()
		if err != nil {
			return err
		}
		for _, c := range crashes {
			if c.PID == pid {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("core logger control: a host sleep killed by SIGABRT (core dumped: %v) did not run the logger %s", ws.CoreDump(), l.script)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
