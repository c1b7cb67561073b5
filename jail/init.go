package jail

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// runInit is PID 1 of the jail. It builds the jail's filesystem, starts the
// program through the exec stage, reaps every orphan, and exits when the
// program exits: the kernel then kills whatever is left in the PID
// namespace, which is how a double-forked daemon dies with the jail. It runs
// with an empty environment, so /proc/1/environ discloses nothing.
func runInit() {
	// Stay on the main thread: the cgroup namespace below is per thread and
	// the program is forked from this thread.
	runtime.LockOSThread()
	status := os.NewFile(statusFD, "status")
	syscall.CloseOnExec(statusFD)
	syscall.CloseOnExec(specFD)
	s, err := readSpec(os.NewFile(specFD, "spec"))
	if err != nil {
		reportError(status, "init", err)
	}
	// Nobody in the jail may read this process's memory or open its
	// /proc/1/exe, which is the host's brig binary (CVE-2019-5736).
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		reportError(status, "set non-dumpable", err)
	}
	if err := buildRoot(s); err != nil {
		reportError(status, stepOf(err), err)
	}
	if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
		reportError(status, "set hostname", err)
	}
	if s.NewNet {
		if err := bringUpLoopback(); err != nil {
			reportError(status, "bring up lo", err)
		}
	}
	// Entered only now, after init sits in the jail's cgroups, so the
	// program sees its own cgroup as the root.
	if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
		reportError(status, "create cgroup namespace", err)
	}
	// Signals the supervisor sends (Cmd.Signal) go to the program's whole
	// process group, as a terminal's ^C would. Subscribed before the program
	// starts so none is lost or, as Go's default, fatal to init.
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, forwardedSignals...)
	// An unprivileged jail's program shares init's uid and may signal it:
	// nothing else may crash init, stop it or make Go dump its goroutines
	// into the jail's stderr. (The exec stage resets these for the program.)
	signal.Ignore(ignoredSignals...)
	stdio := [3]*os.File{os.Stdin, os.Stdout, os.Stderr}
	var extra []*os.File
	for i := range s.Exec.Extra {
		extra = append(extra, os.NewFile(uintptr(initExtraFD+i), "extra"))
	}
	if s.Pooled {
		// The jail is built; the program and its stdio come with the request.
		report(status, event{Kind: "ready"})
		files, err := readRequest(s)
		if err != nil {
			reportError(status, "read request", err)
		}
		copy(stdio[:], files)
		extra = files[3:]
	}
	prog, err := startExecStage(s, stdio, extra)
	if err != nil {
		reportError(status, stepOf(err), err)
	}
	if s.Pooled {
		// Only the program holds the caller's stdio, so its EOF is the program's.
		for _, f := range stdio {
			f.Close()
		}
	}
	go func() {
		for sig := range signals {
			_ = unix.Kill(-prog, sig.(syscall.Signal))
		}
	}()
	report(status, event{Kind: "started"})
	os.Exit(reap(status, prog))
}

// startExecStage forks the exec stage, which becomes the program, and
// returns its pid once execve succeeded.
func startExecStage(s *spec, stdio [3]*os.File, extra []*os.File) (int, error) {
	path, err := lookPath(s.Path, s.Env)
	if err != nil {
		return 0, &stepError{"exec " + s.Path, err}
	}
	settingsR, settingsW, err := os.Pipe()
	if err != nil {
		return 0, &stepError{"exec stage pipe", err}
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		return 0, &stepError{"exec stage pipe", err}
	}
	files := append([]*os.File{settingsR, errW}, extra...)
	cmd := &exec.Cmd{
		Path:        "/proc/self/exe",
		Args:        append([]string{execStageArg0, path}, s.Args...),
		Env:         s.Env,
		Dir:         s.Dir,
		Stdin:       stdio[0],
		Stdout:      stdio[1],
		Stderr:      stdio[2],
		ExtraFiles:  files,
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if err := cmd.Start(); err != nil {
		return 0, &stepError{"start exec stage", err}
	}
	for _, f := range files {
		f.Close()
	}
	_, werr := settingsW.Write(s.Exec.encode())
	settingsW.Close()
	msg, _ := io.ReadAll(errR)
	errR.Close()
	if len(msg) > 0 {
		_ = cmd.Wait()
		step, cause, _ := strings.Cut(string(msg), ": ")
		if step == "exec" {
			step = "exec " + s.Path
		}
		return 0, &stepError{step, errors.New(cause)}
	}
	if werr != nil {
		_ = cmd.Wait()
		return 0, &stepError{"send exec settings", werr}
	}
	return cmd.Process.Pid, nil
}

// reap waits for every child; when the program itself is reaped it reports
// the program's status and returns init's exit code.
func reap(status *os.File, prog int) int {
	var maxRSS int64
	for {
		var ws unix.WaitStatus
		var ru unix.Rusage
		pid, err := unix.Wait4(-1, &ws, 0, &ru)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			report(status, event{Kind: "error", Step: "reap", Err: err.Error()})
			return 1
		}
		maxRSS = max(maxRSS, ru.Maxrss)
		if pid != prog {
			continue
		}
		ev := event{Kind: "exit", MaxRSSKB: maxRSS}
		if ws.Signaled() {
			ev.Signal = int(ws.Signal())
			ev.Code = -1
		} else {
			ev.Code = ws.ExitStatus()
		}
		report(status, ev)
		return 0
	}
}

// lookPath finds the program in the jail's PATH, as a shell would.
func lookPath(file string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		return file, executable(file)
	}
	path := DefaultPath
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("not found in PATH %q", path)
}

func executable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s: permission denied", path)
	}
	return nil
}

// ignoredSignals are every signal init neither forwards nor needs: not
// SIGCHLD (the reaper waits for children) nor SIGURG (Go's preemption,
// harmless when sent); SIGKILL and SIGSTOP from inside never reach a PID 1.
var ignoredSignals = []os.Signal{
	syscall.SIGABRT, syscall.SIGSEGV, syscall.SIGBUS, syscall.SIGFPE, syscall.SIGILL, syscall.SIGTRAP,
	syscall.SIGSYS, syscall.SIGXCPU, syscall.SIGXFSZ, syscall.SIGPROF, syscall.SIGVTALRM, syscall.SIGALRM,
	syscall.SIGPIPE, syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGWINCH, syscall.SIGCONT,
	syscall.SIGPWR, syscall.SIGSTKFLT, syscall.SIGIO,
}

// forwardedSignals are the signals Cmd.Signal may send.
var forwardedSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}

// stepError names the set-up step that failed, for SetupError.
type stepError struct {
	step string
	err  error
}

func (e *stepError) Error() string { return e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

func stepOf(err error) string {
	var se *stepError
	if errors.As(err, &se) {
		return se.step
	}
	return "init"
}
