package audit

import (
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// pathWatch tells whether the log's path may have come to name another
// file, so that the log stats the path only then and not before every
// record (a path walk per record is a measurable part of an audited
// request). The kernel queues an inotify event inside the unlink or
// rename that causes it, so a record begun after the call returned sees
// it: a non-blocking read of the queue is as prompt as a stat, and far
// cheaper. A change no event covers (a mount over the directory) is found
// by the stat the watch asks for at least every statEvery.
type pathWatch struct {
	fd       int // inotify, non-blocking; -1: no watch, stat every time
	lastStat time.Time
}

// statEvery bounds how long a change without an inotify event goes
// unnoticed.
const statEvery = time.Second

// fileEvents are the events on the log's file that can leave its path
// naming another file or none: a link count change (removed, or another
// file renamed over it) and a move. IN_ATTRIB also fires on chmod and the
// like: the stat that follows clears it.
const fileEvents = unix.IN_ATTRIB | unix.IN_MOVE_SELF | unix.IN_DELETE_SELF | unix.IN_DONT_FOLLOW

// dirEvents are those of a directory on the path: moved or removed.
const dirEvents = unix.IN_MOVE_SELF | unix.IN_DELETE_SELF | unix.IN_DONT_FOLLOW | unix.IN_ONLYDIR

// watchPath watches path's file and every directory above it. Without
// inotify (the instance or watch limit reached) it returns a watch that
// asks for a stat every time, as if nothing were known.
func watchPath(path string) *pathWatch {
	w := &pathWatch{fd: -1}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return w
	}
	if _, err := unix.InotifyAddWatch(fd, path, fileEvents); err != nil {
		unix.Close(fd)
		return w
	}
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		if _, err := unix.InotifyAddWatch(fd, dir, dirEvents); err != nil {
			unix.Close(fd)
			return w
		}
		if dir == "/" || dir == "." || dir == filepath.Dir(dir) {
			break
		}
	}
	w.fd = fd
	return w
}

// needStat reports whether the path must be stat'ed now: something
// happened on it, the queue overflowed or cannot be read, or the last
// stat is older than statEvery. It empties the queue; the caller stats
// and calls statted.
func (w *pathWatch) needStat(now time.Time) bool {
	if w.fd < 0 || now.Sub(w.lastStat) >= statEvery {
		return true
	}
	var buf [4 * (unix.SizeofInotifyEvent + unix.NAME_MAX + 1)]byte
	changed := false
	for {
		n, err := unix.Read(w.fd, buf[:])
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return changed
		case err != nil || n <= 0:
			return true
		}
		changed = true
	}
}

func (w *pathWatch) statted(now time.Time) { w.lastStat = now }

func (w *pathWatch) close() {
	if w.fd >= 0 {
		unix.Close(w.fd)
		w.fd = -1
	}
}
