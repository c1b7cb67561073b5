package egress

import (
	"errors"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// splicePipeSize is the pipe each spliced direction moves bytes through:
// large enough that one splice carries what a socket holds at once, small
// enough that an unprivileged supervisor's many tunnels stay under the
// kernel's per-user pipe allowance (fs.pipe-user-pages-soft), past which
// new pipes shrink to two pages.
const splicePipeSize = 256 << 10

// spliceBytes copies src to dst, at most limit bytes (a negative limit:
// to src's end), inside the kernel: splice(2) through a pipe of its own, the
// bytes never entering the proxy's memory, with Go's poller waiting on
// either socket. Every splice is reserved against the byte cap first and
// touches the connection's activity when it moves bytes, so neither the
// cap nor the idle timeout needs a deadline per chunk: a wait that meets a
// deadline, reading src or writing dst, checks the activity of both
// directions as idleReader does, and a peer that stops reading idles like
// one that stops sending. handled is false when the two cannot be spliced;
// then nothing has been read and the caller copies through user space.
func (p *Proxy) spliceBytes(dst, src *meteredConn, limit int64) (handled bool, err error) {
	srcRaw, dstRaw := rawConn(src.Conn), rawConn(dst.Conn)
	if srcRaw == nil || dstRaw == nil {
		return false, nil
	}
	var pipe [2]int
	if err := unix.Pipe2(pipe[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return false, nil
	}
	defer unix.Close(pipe[0])
	defer unix.Close(pipe[1])
	// A smaller pipe than asked for (the per-user allowance is spent) only
	// means more splices.
	pipeSize, err := unix.FcntlInt(uintptr(pipe[0]), unix.F_SETPIPE_SZ, splicePipeSize)
	if err != nil {
		if pipeSize, err = unix.FcntlInt(uintptr(pipe[0]), unix.F_GETPIPE_SZ, 0); err != nil {
			return false, nil
		}
	}
	const flags = unix.SPLICE_F_NONBLOCK | unix.SPLICE_F_MOVE
	first := true
	for limit != 0 {
		want := int64(pipeSize)
		if limit > 0 {
			want = min(want, limit)
		}
		if want = dst.reserve(want); want == 0 {
			return true, errByteCap
		}
		in, err := spliceWait(srcRaw.Read, src.Conn.SetReadDeadline, dst.act, func(fd int) (int64, error) {
			return unix.Splice(fd, nil, pipe[1], nil, int(want), flags)
		})
		dst.unreserve(want - in)
		if errors.Is(err, unix.EINVAL) && first {
			// Not a socket the kernel splices from; nothing was read.
			return false, nil
		}
		if first {
			dst.Conn.SetWriteDeadline(dst.act.deadline())
			first = false
		}
		if err != nil || in == 0 {
			return true, err // nil at src's end
		}
		dst.act.touch()
		if limit > 0 {
			limit -= in
		}
		for in > 0 {
			out, err := spliceWait(dstRaw.Write, dst.Conn.SetWriteDeadline, dst.act, func(fd int) (int64, error) {
				return unix.Splice(pipe[0], nil, fd, nil, int(in), flags)
			})
			in -= out
			dst.written.Add(out)
			if err != nil {
				dst.unreserve(in)
				return true, err
			}
			dst.act.touch()
		}
	}
	return true, nil
}

func rawConn(c net.Conn) syscall.RawConn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// spliceWait runs one splice on a socket of wait's (a RawConn's Read or
// Write, with that direction's deadline set by setDeadline), waiting for
// the socket while it would block; a deadline met while the connection
// moved bytes within the idle timeout moves on, one met with none moved is
// errIdle.
func spliceWait(wait func(func(fd uintptr) bool) error, setDeadline func(time.Time) error, act *activity, splice func(fd int) (int64, error)) (int64, error) {
	for {
		var n int64
		var serr error
		err := wait(func(fd uintptr) bool {
			for {
				n, serr = splice(int(fd))
				if serr != unix.EINTR {
					return serr != unix.EAGAIN
				}
			}
		})
		if err == nil {
			return max(n, 0), serr
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return 0, err
		}
		d := act.deadline()
		if !time.Now().Before(d) {
			return 0, errIdle
		}
		setDeadline(d)
	}
}
