package jail

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/brig-sandbox/brig/internal/testenv"
)

// jailPtys lists the host's ptys whose owner is a jail's id: a pty of the
// jail's own devpts must never show in the host's.
func jailPtys(t *testing.T) []string {
	t.Helper()
	m, err := filepath.Glob("/dev/pts/[0-9]*")
	require.NoError(t, err)
	var left []string
	for _, p := range m {
		var st syscall.Stat_t
		if syscall.Stat(p, &st) == nil && st.Uid >= testHostIDs().First && st.Uid < testHostIDs().First+testHostIDs().Count {
			left = append(left, p)
		}
	}
	return left
}

// ptyFDs counts this process's fds of a pty (a ptmx or a pts): once Wait
// has returned, the supervisor holds none of the jail's.
func ptyFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	n := 0
	for _, fd := range fds {
		var st syscall.Stat_t
		if syscall.Stat("/proc/self/fd/"+fd.Name(), &st) != nil || st.Mode&syscall.S_IFMT != syscall.S_IFCHR {
			continue
		}
		major, minor := unix.Major(st.Rdev), unix.Minor(st.Rdev)
		if (major == 5 && minor == 2) || (major >= 136 && major <= 143) {
			n++
		}
	}
	return n
}

func runTTY(t *testing.T, tty *TTY, stdin string, name string, args ...string) (string, *Result, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := Command(context.Background(), Config{}, name, args...)
	cmd.TTY = tty
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout = &out
	err := cmd.Run()
	require.NotNil(t, cmd.Result, "no result: %v", err)
	return out.String(), cmd.Result, err
}

// The program's stdio is a terminal of the jail's own devpts: a pts the
// host's devpts does not hold, the controlling terminal of the program's
// session, and nothing of it is left on the host afterwards.
func TestTTYIsAPtyOfTheJailsDevpts(t *testing.T) {
	testenv.RequireRoot(t)
	mounts, fds := countMounts(), ptyFDs(t)
	out, r, err := runTTY(t, &TTY{}, "", "/bin/sh", "-c",
		`test -t 0 && test -t 1 && test -t 2 && echo ISATTY; echo "TTY=$(tty)"; `+
			`echo "DEV=$(stat -c %d /dev/pts)"; echo "LS=$(ls /dev/pts | tr '\n' ' ')"; `+
			`echo "TTYNR=$(cut -d' ' -f7 /proc/$$/stat)"`)
	require.NoError(t, err, "output: %q", out)
	assert.True(t, r.Success())
	assert.Contains(t, out, "ISATTY")
	assert.Contains(t, out, "TTY=/dev/pts/0\r\n", "the jail's own devpts counts from 0")
	assert.Contains(t, out, "LS=0 ptmx \r\n", "the jail's devpts holds its one pty")
	var host syscall.Stat_t
	require.NoError(t, syscall.Stat("/dev/pts", &host))
	assert.NotContains(t, out, fmt.Sprintf("DEV=%d\r\n", host.Dev), "the jail's /dev/pts is the host's")
	assert.Contains(t, out, "DEV=")
	// The controlling terminal of the program (its session's leader) is
	// pts 0: major 136, minor 0 in /proc's encoding.
	assert.Contains(t, out, "TTYNR=34816\r\n")
	assert.Empty(t, jailPtys(t), "a jail's pty in the host's devpts")
	assert.Equal(t, fds, ptyFDs(t), "the supervisor still holds the pty")
	assertHostClean(t, mounts)
}

// The window size given is the pty's, and a resize reaches the program
// (stty size reads it; the program's SIGWINCH handler runs).
func TestTTYWindowSizeAndResize(t *testing.T) {
	testenv.RequireRoot(t)
	var out testenv.Buffer
	in, inW, err := os.Pipe()
	require.NoError(t, err)
	defer in.Close()
	defer inW.Close()
	cmd := Command(context.Background(), Config{}, "/bin/sh", "-c",
		`trap 'echo "WINCH $(stty size)"' WINCH; echo "SIZE $(stty size)"; read line; echo "AFTER $(stty size)"`)
	cmd.TTY = &TTY{Rows: 33, Cols: 101}
	cmd.Stdin, cmd.Stdout = in, &out
	require.NoError(t, cmd.Start())
	testenv.WaitFor(t, &out, "SIZE 33 101", 10*time.Second)
	require.NoError(t, cmd.ResizeTTY(50, 132))
	testenv.WaitFor(t, &out, "WINCH 50 132", 10*time.Second)
	_, err = inW.Write([]byte("go\n"))
	require.NoError(t, err)
	require.NoError(t, cmd.Wait(), "output: %q", out.String())
	assert.Contains(t, out.String(), "AFTER 50 132")
	assert.Error(t, cmd.ResizeTTY(1, 1), "the pty is gone once the program has ended")
}

// Python's input() reads a line over the pty (echoed, as a terminal does),
// and the end of Stdin is the terminal's end of file.
func TestTTYPythonInput(t *testing.T) {
	testenv.RequireRoot(t)
	requirePython(t)
	out, r, err := runTTY(t, &TTY{}, "brig\n", python, "-c",
		`import sys; name = input("name? "); print("hello", name, sys.stdin.isatty());`+
			`rest = sys.stdin.read(); print("EOF", repr(rest))`)
	require.NoError(t, err, "output: %q", out)
	assert.True(t, r.Success())
	assert.Contains(t, out, "name? ")
	assert.Contains(t, out, "hello brig True")
	assert.Contains(t, out, "EOF ''")
	assert.NotContains(t, out, "\r\r", "output passes the pty's ONLCR once")
}

// A flood over the pty is capped by the output limit, and the timeout
// still kills: the jail is gone and nothing is left on the host.
func TestTTYOutputLimitAndTimeout(t *testing.T) {
	testenv.RequireRoot(t)
	mounts, fds := countMounts(), ptyFDs(t)
	var out bytes.Buffer
	cmd := Command(context.Background(), Config{OutputLimit: 1 << 20}, "/usr/bin/yes")
	cmd.TTY = &TTY{}
	cmd.Stdout = &out
	err := cmd.Run()
	require.Error(t, err)
	assert.Equal(t, ReasonOutputLimit, cmd.Result.Reason)
	assert.True(t, cmd.Result.StdoutTruncated)
	assert.Equal(t, 1<<20, out.Len(), "exactly the cap is kept")
	assert.True(t, strings.HasPrefix(out.String(), "y\r\ny\r\n"), "%q", out.String()[:min(out.Len(), 20)])

	// A program that reads its terminal forever, with children.
	cmd = Command(context.Background(), Config{Timeout: 500 * time.Millisecond}, "/bin/sh", "-c", "sleep 100 & cat")
	cmd.TTY = &TTY{}
	stdinR, stdinW, err := os.Pipe()
	require.NoError(t, err)
	defer stdinW.Close()
	cmd.Stdin = stdinR
	err = cmd.Run()
	stdinR.Close()
	require.Error(t, err)
	assert.Equal(t, ReasonTimeout, cmd.Result.Reason)
	assert.Empty(t, jailPtys(t))
	assert.Equal(t, fds, ptyFDs(t), "the supervisor still holds a pty")
	assertHostClean(t, mounts)
}

// The pty is no way to push input: TIOCSTI on it is refused (seccomp), so
// nothing typed by the jail reaches a shell reading that terminal, and the
// program has no fd of the caller's terminal to try it on. The benign
// ioctls a terminal program makes (its size, its modes) still work.
func TestTTYRefusesTIOCSTI(t *testing.T) {
	testenv.RequireRoot(t)
	requirePython(t)
	out, r, err := runTTY(t, &TTY{}, "", python, "-c", jailedPrelude+`
import fcntl, termios, struct, os
print("SIZE", struct.unpack("hhhh", fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8))[:2])
attrs = termios.tcgetattr(0); termios.tcsetattr(0, termios.TCSANOW, attrs); print("TERMIOS ok")
try:
    fcntl.ioctl(0, termios.TIOCSTI, b"x")
    print("TIOCSTI allowed")
except OSError as e:
    print("TIOCSTI refused", e.errno)
fds = sorted(int(f) for f in os.listdir("/proc/self/fd"))
print("FDS", [(f, os.readlink("/proc/self/fd/%d" % f)) for f in fds if f < 3])
`)
	require.NoError(t, err, "output: %q", out)
	assert.True(t, r.Success())
	assert.Contains(t, out, "SIZE (24, 80)")
	assert.Contains(t, out, "TERMIOS ok")
	assert.Contains(t, out, "TIOCSTI refused 1", "EPERM")
	assert.Contains(t, out, "FDS [(0, '/dev/pts/0'), (1, '/dev/pts/0'), (2, '/dev/pts/0')]")
}

// A Pool's jails have no pty: the command is refused, by name, and a
// pooled command without one still runs.
func TestTTYRefusedForPool(t *testing.T) {
	testenv.RequireRoot(t)
	p, err := NewPool(context.Background(), Config{}, 1)
	require.NoError(t, err)
	defer p.Close()
	cmd := p.Command(context.Background(), "/bin/true")
	cmd.TTY = &TTY{}
	err = cmd.Start()
	var setup *SetupError
	require.ErrorAs(t, err, &setup)
	assert.Contains(t, setup.Err.Error(), "pooled jail has no TTY")
	require.NoError(t, p.Command(context.Background(), "/bin/true").Run())
}

// The tty socket goes after the caller's extra files and the root
// template's fd: fd 3 is still the caller's first extra file, and the
// socket reaches nothing of the program. Until a jail was built both
// without and from a root template (whose fd comes before the socket).
func TestTTYWithExtraFiles(t *testing.T) {
	testenv.RequireRoot(t)
	seen := map[bool]bool{}
	for i := 0; i < 50 && !(seen[true] && seen[false]); i++ {
		if i > 0 {
			time.Sleep(20 * time.Millisecond) // the template is built in the background
		}
		r, w, err := os.Pipe()
		require.NoError(t, err)
		cmd := Command(context.Background(), Config{}, "/bin/sh", "-c",
			`echo via-extra >&3; ls /proc/self/fd | tr '\n' ' '; test -t 0 && echo TTY`)
		cmd.TTY = &TTY{}
		cmd.ExtraFiles = []*os.File{w}
		var out bytes.Buffer
		cmd.Stdout = &out
		require.NoError(t, cmd.Run(), "output: %q", out.String())
		seen[cmd.inst.FromTemplate()] = true
		w.Close()
		got := make([]byte, 64)
		n, _ := r.Read(got)
		r.Close()
		assert.Equal(t, "via-extra\n", string(got[:n]))
		assert.Contains(t, out.String(), "0 1 2 3 4 TTY", "fds: stdio, the extra file and ls's own directory")
	}
	assert.True(t, seen[true] && seen[false], "jails built cold and from a template: %v", seen)
}
