package supervisor

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/brig-sandbox/brig/internal/stage"
)

// The spawner (stage.SpawnerArg0, spawner.c) is one small process per
// supervisor that forks a helper for each jail. It is started in the
// background when a process starts its second jail (or forked before the Go
// runtime starts, in a program that asks: adoptEarlySpawner), is used once
// it runs, and ends after its helpers when the supervisor dies or calls
// Supervisor.Close.

// spawnerState is a Supervisor's spawner. A jail is one SOCK_SEQPACKET
// message carrying the helper's fds; whatever goes wrong later is reported
// on the jail's own status pipe, so there is no reply.
type spawnerState struct {
	mu       sync.Mutex
	conn     *os.File // our end of the socket; nil until it runs, or after it died
	pid      int
	exited   <-chan struct{} // closed once the spawner of conn is reaped
	starting bool
}

// warmSpawner starts the spawner in the background unless it runs or is
// starting; jails exec their own helper until it is there.
func (s *Supervisor) warmSpawner() {
	spawner := &s.spawner
	spawner.mu.Lock()
	defer spawner.mu.Unlock()
	if spawner.conn != nil || spawner.starting {
		return
	}
	spawner.starting = true
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		conn, pid, exited, err := s.startSpawner()
		if err != nil {
			slog.Debug("jail: no spawner; helpers are exec'd", "err", err)
		}
		spawner.mu.Lock()
		spawner.conn, spawner.pid, spawner.exited = conn, pid, exited
		spawner.starting = err != nil // a failed start is not retried
		spawner.mu.Unlock()
	}()
}

// adoptEarlySpawner makes the spawner the constructor forked before the Go
// runtime started (spawner.c: a program asks with brig_spawner_at_start)
// DefaultSupervisor's spawner, on its first jail or Close: the constructor
// ran before any Supervisor existed, so it belongs to the default one.
var adoptEarlySpawner = sync.OnceFunc(func() {
	s := Default
	fd, pid := stage.EarlySpawner()
	if fd < 0 {
		return
	}
	conn := os.NewFile(uintptr(fd), "spawner")
	// wait4 on the pid rather than os.FindProcess, which first checks the
	// kernel's pidfd support with a vfork'd child (every brig run paid for
	// it). The spawner is our child and no one else reaps it, so its pid
	// stays its own until this wait.
	exited := s.reapSpawner(conn, func() {
		for {
			if _, err := unix.Wait4(pid, nil, 0, nil); err != unix.EINTR {
				return
			}
		}
	})
	spawner := &s.spawner
	spawner.mu.Lock()
	adopted := spawner.conn == nil && !spawner.starting
	if adopted {
		spawner.conn, spawner.pid, spawner.exited = conn, pid, exited
	}
	spawner.mu.Unlock()
	if !adopted {
		conn.Close() // it sees EOF and exits
	}
})

// reapSpawner waits in the background for the spawner at the other end of
// conn (wait); the channel closes once it is reaped, and conn is forgotten.
func (s *Supervisor) reapSpawner(conn *os.File, wait func()) <-chan struct{} {
	exited := make(chan struct{})
	go func() {
		wait()
		close(exited)
		s.spawnerDied(conn)
	}()
	return exited
}

// closeSpawner ends the spawner, if one runs, and returns once it is
// reaped: it exits after the helpers it forked, so after their jails.
func (s *Supervisor) closeSpawner() {
	spawner := &s.spawner
	spawner.mu.Lock()
	conn, exited := spawner.conn, spawner.exited
	s.forgetSpawnerLocked(conn)
	spawner.mu.Unlock()
	if conn != nil {
		<-exited
	}
}

// spawnerDied forgets conn, which could not take a request, so that the
// next jail starts a new spawner.
func (s *Supervisor) spawnerDied(conn *os.File) {
	s.spawner.mu.Lock()
	defer s.spawner.mu.Unlock()
	s.forgetSpawnerLocked(conn)
}

// forgetSpawnerLocked drops conn if it is still the spawner's; spawner.mu is held.
func (s *Supervisor) forgetSpawnerLocked(conn *os.File) {
	if conn != nil && s.spawner.conn == conn {
		s.spawner.conn = nil
		conn.Close()
	}
}

func (s *Supervisor) startSpawner() (*os.File, int, <-chan struct{}, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("spawner socket: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "spawner"), os.NewFile(uintptr(fds[1]), "spawner")
	defer theirs.Close()
	cmd := stageCmd(stage.SpawnerArg0)
	cmd.ExtraFiles = []*os.File{theirs}
	// Its own session: a terminal's ^C reaches the supervisor, which decides
	// what happens to its jails, and not the helpers behind its back.
	cmd.SysProcAttr.Setsid = true
	if err := cmd.Start(); err != nil {
		ours.Close()
		return nil, 0, nil, fmt.Errorf("start spawner: %w", err)
	}
	return ours, cmd.Process.Pid, s.reapSpawner(ours, func() { _ = cmd.Wait() }), nil
}

// spawnHelper asks the running spawner for a helper with fds (stdin,
// stdout, stderr, spec, status, control, extra files...). It reports false
// when no spawner is ready: the caller then execs the helper itself.
func (s *Supervisor) spawnHelper(files []*os.File) bool {
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	defer runtime.KeepAlive(files)
	// Held while sending: the socket must not be closed, and its fd number
	// reused, under our feet.
	spawner := &s.spawner
	spawner.mu.Lock()
	defer spawner.mu.Unlock()
	conn := spawner.conn
	if conn == nil {
		return false
	}
	if err := unix.Sendmsg(int(conn.Fd()), []byte{0}, unix.UnixRights(fds...), nil, 0); err != nil {
		// A spawner that died (killed from outside) is replaced; this jail
		// execs its helper.
		s.forgetSpawnerLocked(conn)
		return false
	}
	return true
}

// stageCmd starts this binary again as a C stage (argv[0] arg0) with an
// empty environment. A privileged stage drops the supplementary groups:
// the jail's user namespace denies setgroups, so they must be gone before
// it exists, or root's group 0 would follow the program in.
func stageCmd(arg0 string) *exec.Cmd {
	attr := &syscall.SysProcAttr{}
	if os.Geteuid() == 0 {
		attr.Credential = &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{}}
	}
	return &exec.Cmd{Path: "/proc/self/exe", Args: []string{arg0}, Env: []string{}, SysProcAttr: attr}
}

// spawnedHelper stands for a helper the spawner forked: the spawner reaps
// it, and its end shows as the EOF of the jail's status pipe.
type spawnedHelper struct{}

func (spawnedHelper) Wait() error { return nil }
