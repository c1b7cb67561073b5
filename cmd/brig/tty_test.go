package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// callerPty is a terminal the test makes to be brig's: brig's stdio is its
// slave, and the test types into and reads from its master.
type callerPty struct {
	master, slave *os.File
	mu            sync.Mutex
	out           bytes.Buffer
	done          chan struct{}
}

func openCallerPty(t *testing.T, rows, cols uint16) *callerPty {
	t.Helper()
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	require.NoError(t, err)
	require.NoError(t, unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0))
	s, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(m), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	require.Zero(t, errno)
	require.NoError(t, unix.IoctlSetWinsize(m, unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}))
	p := &callerPty{master: os.NewFile(uintptr(m), "ptmx"), slave: os.NewFile(s, "pts"), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		buf := make([]byte, 4096)
		for {
			n, err := p.master.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		p.slave.Close()
		p.master.Close()
	})
	return p
}

func (p *callerPty) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *callerPty) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.output(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q on the caller's terminal: %q", want, p.output())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *callerPty) modes(t *testing.T) *unix.Termios {
	t.Helper()
	tm, err := unix.IoctlGetTermios(int(p.slave.Fd()), unix.TCGETS)
	require.NoError(t, err)
	return tm
}

// brigOnTerminal starts the built brig with the pty as its controlling
// terminal and stdio, as a shell would start it.
func brigOnTerminal(t *testing.T, p *callerPty, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(buildBrig(t), args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = p.slave, p.slave, p.slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	require.NoError(t, cmd.Start())
	return cmd
}

// brig run -t: the caller's terminal is raw for the run (so ^C reaches the
// jail's pty, and is the program's SIGINT, not brig's), its window size is
// the program's, a resize is forwarded, and its modes are restored at the
// end before brig's own messages.
func TestRunTTYRawModeResizeAndInterrupt(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: jails use a private host uid range")
	}
	p := openCallerPty(t, 40, 120)
	before := p.modes(t)
	require.NotZero(t, before.Lflag&unix.ICANON, "the test's pty starts cooked")
	cmd := brigOnTerminal(t, p, "run", "-t", "--", "/bin/sh", "-c",
		`trap 'echo "WINCH $(stty size)"' WINCH; trap 'echo GOT-INT; exit 5' INT; `+
			`echo "READY $(stty size) $(tty)"; while :; do sleep 0.05; done`)
	p.waitFor(t, "READY 40 120 /dev/pts/0")
	during := p.modes(t)
	assert.Zero(t, during.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG), "the caller's terminal is raw during the run")
	assert.Zero(t, during.Oflag&unix.OPOST)

	require.NoError(t, unix.IoctlSetWinsize(int(p.master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 30, Col: 90}))
	p.waitFor(t, "WINCH 30 90")
	_, err := p.master.Write([]byte{3}) // ^C
	require.NoError(t, err)
	p.waitFor(t, "GOT-INT")
	err = cmd.Wait()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "output: %q", p.output())
	assert.Equal(t, 5, exit.ExitCode(), "the program's own status: ^C was its SIGINT, not brig's")
	assert.Equal(t, before, p.modes(t), "the caller's terminal is restored")
}

// Every way a run ends restores the caller's terminal: a timeout (whose
// message then shows with the terminal's own line ends), brig's own
// SIGTERM, and a program that cannot start.
func TestRunTTYRestoresTerminalOnEveryExit(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: jails use a private host uid range")
	}
	for _, tc := range []struct {
		name   string
		args   []string
		signal bool
		want   string
		code   int
	}{
		{"timeout", []string{"run", "-t", "--timeout", "500ms", "--", "/bin/sh", "-c", "echo READY; sleep 100"}, false, "brig: jail stopped: timeout\r\n", 128 + 9},
		{"sigterm", []string{"run", "--tty", "--", "/bin/sh", "-c", "echo READY; sleep 100"}, true, "", -1},
		{"no program", []string{"run", "-t", "--", "/no/such/program"}, false, "no/such/program", exitBrigFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := openCallerPty(t, 24, 80)
			before := p.modes(t)
			cmd := brigOnTerminal(t, p, tc.args...)
			if tc.signal {
				p.waitFor(t, "READY")
				require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
			}
			err := cmd.Wait()
			assert.Equal(t, before, p.modes(t), "the caller's terminal is restored; output %q", p.output())
			if tc.code >= 0 {
				var exit *exec.ExitError
				require.ErrorAs(t, err, &exit)
				assert.Equal(t, tc.code, exit.ExitCode(), "output %q", p.output())
			} else {
				assert.Error(t, err)
			}
			if tc.want != "" {
				p.waitFor(t, tc.want)
			}
		})
	}
}

// -t without a terminal on stdin: the program still gets its pty, and
// brig touches no terminal.
func TestRunTTYWithoutCallerTerminal(t *testing.T) {
	null, err := os.Open(os.DevNull)
	require.NoError(t, err)
	defer null.Close()
	saved := os.Stdin
	os.Stdin = null // not the terminal go test may have been started from
	defer func() { os.Stdin = saved }()
	code, out, _ := runCLI(t, "-t", "--", "/bin/sh", "-c", "test -t 0 && test -t 1 && echo TTY; echo err >&2")
	assert.Equal(t, 0, code)
	assert.Equal(t, "TTY\r\nerr\r\n", out, "stdout and stderr merged, as a terminal shows them")
}
