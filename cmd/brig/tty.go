package main

import (
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/brig-sandbox/brig/jail"
	"golang.org/x/sys/unix"
)

// callerTerminal is what `brig run -t` does to the terminal it was started
// from: the program gets a pty of the jail's own (jail.Cmd.TTY) and brig
// copies between the two, with the caller's terminal in raw mode so that
// every key, ^C included, reaches the jail's pty, whose line discipline
// the program sets up as it likes. The caller's terminal never enters the
// jail.
type callerTerminal struct {
	fd      int            // stdin's fd when it is a terminal, else -1
	saved   *unix.Termios  // its modes before, restored at the end
	winch   chan os.Signal // SIGWINCH, forwarded as a resize
	done    chan struct{}
	restore sync.Once
}

// windowSize is the caller's window size: stdin's terminal's, else
// stdout's, else 0 (jail.TTY's default).
func windowSize() (rows, cols uint16) {
	for _, fd := range []int{int(os.Stdin.Fd()), int(os.Stdout.Fd())} {
		if ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ); err == nil && ws.Row > 0 && ws.Col > 0 {
			return ws.Row, ws.Col
		}
	}
	return 0, 0
}

// attachTerminal gives cmd a pty of the window's size and, when stdin is a
// terminal, puts it in raw mode; release undoes that on every way out.
func attachTerminal(cmd *jail.Cmd) (*callerTerminal, error) {
	rows, cols := windowSize()
	cmd.TTY = &jail.TTY{Rows: rows, Cols: cols}
	ct := &callerTerminal{fd: -1, done: make(chan struct{})}
	fd := int(os.Stdin.Fd())
	if saved, err := unix.IoctlGetTermios(fd, unix.TCGETS); err == nil {
		raw := *saved
		// cfmakeraw(3): no echo, no line editing, no signals from keys,
		// no translation either way, 8-bit characters.
		raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		raw.Oflag &^= unix.OPOST
		raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		raw.Cflag &^= unix.CSIZE | unix.PARENB
		raw.Cflag |= unix.CS8
		raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
		if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
			return nil, err
		}
		ct.fd, ct.saved = fd, saved
	}
	ct.winch = make(chan os.Signal, 1)
	signal.Notify(ct.winch, syscall.SIGWINCH)
	go func() {
		for {
			select {
			case <-ct.done:
				return
			case <-ct.winch:
				if r, c := windowSize(); r > 0 {
					_ = cmd.ResizeTTY(r, c) // fails only once the program has ended
				}
			}
		}
	}()
	return ct, nil
}

// release restores the caller's terminal and stops forwarding resizes;
// safe to call more than once.
func (ct *callerTerminal) release() {
	ct.restore.Do(func() {
		signal.Stop(ct.winch)
		close(ct.done)
		if ct.saved != nil {
			_ = unix.IoctlSetTermios(ct.fd, unix.TCSETS, ct.saved)
		}
	})
}
