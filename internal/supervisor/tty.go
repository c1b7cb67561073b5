package supervisor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// A program's pty (Instance.TTY) is 24 rows of 80 columns unless the TTY
// says otherwise.
const (
	defaultTTYRows = 24
	defaultTTYCols = 80
)

// ttyStdio opens what the helper gets as stdio for a jail whose program
// has a pty (nothing of the caller's: the program's stdio is the pty's
// slave) and the socket on which init sends the pty's master (tty.c's
// tty_open), whose jail end it returns. The window size goes ahead on it.
func (c *Instance) ttyStdio() (stdin, stdout, stderr, sock *os.File, err error) {
	if stdin, err = os.Open(os.DevNull); err != nil {
		return nil, nil, nil, nil, err
	}
	c.closers = append(c.closers, stdin)
	if stdout, err = os.OpenFile(os.DevNull, os.O_WRONLY, 0); err != nil {
		return nil, nil, nil, nil, err
	}
	c.closers = append(c.closers, stdout)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("tty socket: %w", err)
	}
	c.ttySock = os.NewFile(uintptr(fds[0]), "tty socket")
	sock = os.NewFile(uintptr(fds[1]), "tty socket (jail)")
	c.closers = append(c.closers, sock)
	rows, cols := c.TTY.Rows, c.TTY.Cols
	if rows == 0 || cols == 0 {
		rows, cols = defaultTTYRows, defaultTTYCols
	}
	size := binary.NativeEndian.AppendUint16(binary.NativeEndian.AppendUint16(nil, rows), cols)
	if _, err := c.ttySock.Write(size); err != nil {
		return nil, nil, nil, nil, fmt.Errorf("tty socket: %w", err)
	}
	return stdin, stdout, stdout, sock, nil
}

// startTTY takes the pty's master from init, which sent it before the
// program started, and copies between it and the caller's Stdin and Stdout
// (the pty has one output stream, stdout and stderr merged, as a
// terminal's). The output is capped as any other.
func (c *Instance) startTTY() error {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(int(c.ttySock.Fd()), buf, oob, unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return &StepError{Step: "open tty", Err: fmt.Errorf("receive the pty's master from init: %w", err)}
	}
	fds, err := receivedFDs(oob[:oobn])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return &StepError{Step: "open tty", Err: fmt.Errorf("receive the pty's master from init: %d fds (%v)", len(fds), err)}
	}
	// Non-blocking, so that the runtime's poller serves it and Close ends
	// a copy blocked on it.
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		return &StepError{Step: "open tty", Err: err}
	}
	master := os.NewFile(uintptr(fds[0]), "pty master")
	c.ttyMaster.Store(master)
	c.ttySock.Close()
	c.ttySock = nil
	out := c.Stdout
	if out == nil {
		out = io.Discard
	}
	c.copiers.Add(1)
	go func() {
		defer c.copiers.Done()
		// Ends with EIO once no process holds the slave: the jail is gone.
		c.copyCapped(out, master, &c.stdoutCut)
	}()
	in := c.Stdin
	if in == nil {
		in = bytes.NewReader(nil)
	}
	go func() {
		// Not waited for, as stdinFile's: a reader that never ends must not
		// hang Wait. Its end is the terminal's end-of-file character, as
		// script(1) sends it: once after a full line, twice after a partial
		// one, which the first only flushes.
		last := byte('\n')
		buf := make([]byte, 32<<10)
		for {
			n, err := in.Read(buf)
			if n > 0 {
				if _, werr := master.Write(buf[:n]); werr != nil {
					return
				}
				last = buf[n-1]
			}
			if err != nil {
				break
			}
		}
		eof := []byte{4}
		// Not master.Fd(), which would make the fd blocking again.
		if raw, err := master.SyscallConn(); err == nil {
			_ = raw.Control(func(fd uintptr) {
				if t, err := unix.IoctlGetTermios(int(fd), unix.TCGETS); err == nil {
					eof[0] = t.Cc[unix.VEOF]
				}
			})
		}
		if last != '\n' {
			eof = append(eof, eof[0])
		}
		_, _ = master.Write(eof)
	}()
	return nil
}

func receivedFDs(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var fds []int
	for _, m := range msgs {
		f, err := unix.ParseUnixRights(&m)
		if err != nil {
			return fds, err
		}
		fds = append(fds, f...)
	}
	return fds, nil
}

// ResizeTTY sets the window size of the program's pty (Instance.TTY); the
// kernel sends SIGWINCH to the program's foreground process group, as a
// terminal emulator's resize does.
func (c *Instance) ResizeTTY(rows, cols uint16) error {
	if c.TTY == nil {
		return errors.New("jail: ResizeTTY: the command has no TTY")
	}
	m := c.ttyMaster.Load()
	if m == nil {
		return errors.New("jail: ResizeTTY: not started")
	}
	raw, err := m.SyscallConn()
	if err != nil {
		return fmt.Errorf("jail: ResizeTTY: %w", err)
	}
	var ioctlErr error
	if err := raw.Control(func(fd uintptr) {
		ioctlErr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
	}); err != nil {
		return fmt.Errorf("jail: ResizeTTY: the program has ended: %w", err)
	}
	if ioctlErr != nil {
		return fmt.Errorf("jail: ResizeTTY: %w", ioctlErr)
	}
	return nil
}
