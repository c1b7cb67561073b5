package session

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/brig-sandbox/brig/internal/supervisor"
)

// Files of a session's working directory, read and written from the host.
// The jailed code controls that directory and may plant symlinks in it
// (judge0 CVE-2024-28185, go-judge #176 were exactly this), so every path
// is opened with openat2 beneath the working directory, refusing symlinks
// and magic links at every step: a link never leads the host elsewhere.
// The jailed code may also plant a FIFO (whose open waits for a reader)
// or hold a lease on a file (whose open waits for the lease to break), so
// every file is opened with O_NONBLOCK, anything but a regular file (or a
// directory, to list) is refused, and every operation has a deadline.
//
// ReadFileIn and ListDirIn read a host directory the same way: the output
// a jail left in a writable bind, which may hold the same traps.

// ErrNotRegular is wrapped by the errors of the file API for a path that
// is neither a regular file nor (where one is wanted) a directory: a FIFO,
// socket or device the jail made.
var ErrNotRegular = errors.New("not a regular file")

// ErrFileTooLarge is wrapped by WriteFileIn's error for data larger than
// its limit.
var ErrFileTooLarge = errors.New("larger than the limit")

// DefaultFileLimit caps ReadFile.
const DefaultFileLimit = 16 << 20

// DefaultListLimit caps the entries ListDir returns.
const DefaultListLimit = 100_000

// FileOpTimeout bounds every file operation of a session's file API and of
// ReadFileIn and ListDirIn. Opens never wait (O_NONBLOCK), so this is a
// backstop for a file system that does; an operation that overruns it
// fails, and its thread finishes in the background.
const FileOpTimeout = 10 * time.Second

// FileInfo describes one entry of a session's directory.
type FileInfo struct {
	Name  string      `json:"name"`
	Size  int64       `json:"size"`
	Mode  os.FileMode `json:"mode"`
	IsDir bool        `json:"is_dir"`
}

// workDir opens the session's working directory from the host side,
// through init's view of the jail's root.
func (s *session) workDir() (int, error) {
	if err := s.Err(); err != nil {
		return -1, err
	}
	j := supervisor.RunningOf(s.cmd)
	root, err := unix.Open(fmt.Sprintf("/proc/%d/root", j.InitPID()), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open jail root: %w", err)
	}
	defer unix.Close(root)
	return openat2(root, strings.TrimPrefix(j.WorkDir(), "/"), unix.O_PATH|unix.O_DIRECTORY)
}

func openat2(dir int, path string, flags int) (int, error) {
	if path == "" {
		path = "."
	}
	how := unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC | unix.O_NOFOLLOW),
		Mode:    0o644,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	if flags&unix.O_CREAT == 0 {
		how.Mode = 0
	}
	fd, err := unix.Openat2(dir, path, &how)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return fd, nil
}

// openPlanted opens a path the jail controls without waiting on it and
// checks it is a regular file, or a directory when dir is set. The errors
// say which trap it was.
func openPlanted(dirfd int, rel, name string, flags int, dir bool) (*os.File, error) {
	fd, err := openat2(dirfd, rel, flags|unix.O_NONBLOCK)
	switch {
	case errors.Is(err, unix.EWOULDBLOCK):
		return nil, fmt.Errorf("%s: the jail holds a lease on it (open with O_NONBLOCK: %w); brig does not wait for the lease to break", name, err)
	case errors.Is(err, unix.ENXIO):
		return nil, fmt.Errorf("%s: not a regular file (a FIFO with no reader, or a socket): %w", name, err)
	case errors.Is(err, unix.ELOOP):
		return nil, fmt.Errorf("%s: a symlink on the way, which brig does not follow: %w", name, err)
	case err != nil:
		return nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if dir && !fi.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%s: not a directory (%v)", name, fi.Mode().Type())
	}
	if !dir && !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: %w (%v)", name, ErrNotRegular, fi.Mode().Type())
	}
	return f, nil
}

// withDeadline runs a file operation with FileOpTimeout. The operation owns
// every descriptor it opens, so it can be left to finish on its own.
func withDeadline[T any](op, name string, fn func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := fn()
		done <- result{v, err}
	}()
	t := time.NewTimer(FileOpTimeout)
	defer t.Stop()
	select {
	case r := <-done:
		if r.err != nil {
			return r.v, fmt.Errorf("%s %w", op, r.err)
		}
		return r.v, nil
	case <-t.C:
		var zero T
		return zero, fmt.Errorf("%s %s: gave up after %v (FileOpTimeout): the file system did not answer", op, name, FileOpTimeout)
	}
}

// cleanRel checks a path relative to the directory it is opened in.
func cleanRel(name string) (string, error) {
	c := filepath.Clean(name)
	if filepath.IsAbs(c) || c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("path %q: must be relative to the directory and stay beneath it", name)
	}
	return c, nil
}

// WriteFile writes data to name (relative to the working directory),
// creating missing parent directories, as the jail's user. Only a regular
// file (or none) is written: a FIFO, a socket, a directory or a file the
// jail holds a lease on is refused.
func (s *session) WriteFile(name string, data []byte) error {
	rel, err := cleanRel(name)
	if err != nil {
		return err
	}
	_, err = withDeadline("write", name, func() (struct{}, error) {
		dir, err := s.workDir()
		if err != nil {
			return struct{}{}, err
		}
		defer unix.Close(dir)
		return struct{}{}, s.asJailUser(func() error {
			if err := mkdirs(dir, filepath.Dir(rel)); err != nil {
				return err
			}
			// Not O_TRUNC: nothing is changed before the file is known to
			// be a regular one.
			f, err := openPlanted(dir, rel, name, unix.O_WRONLY|unix.O_CREAT, false)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := f.Truncate(0); err != nil {
				return err
			}
			if _, err := f.Write(data); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil
		})
	})
	return err
}

func mkdirs(dir int, rel string) error {
	if rel == "." {
		return nil
	}
	parts := strings.Split(rel, "/")
	for i := range parts {
		sub := strings.Join(parts[:i+1], "/")
		parent, err := openat2(dir, filepath.Dir(sub), unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return err
		}
		err = unix.Mkdirat(parent, parts[i], 0o755)
		unix.Close(parent)
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("mkdir %s: %w", sub, err)
		}
	}
	return nil
}

// asJailUser runs fn with this thread's filesystem ids set to the jail
// user's host ids. The jail's tmpfs belongs to its user namespace, where
// host root is not mapped: the kernel refuses to create a file owned by an
// unmapped id (EOVERFLOW). Acting as the jail user also gives what the host
// creates to that user, and checks permissions as that user would see them.
// Go starts new threads from a clean template thread while one is locked,
// so the changed ids never spread.
func (s *session) asJailUser(fn func() error) error {
	id, mapped := supervisor.RunningOf(s.cmd).JailHostID()
	if !mapped {
		return fn() // an unprivileged supervisor is the jail's user already
	}
	return asIDs(&Owner{UID: id, GID: id}, fn)
}

// asIDs runs fn with this thread's filesystem ids set to o's (fn as it is
// when o is nil). The thread is locked, and Go starts new threads from a
// clean template while one is locked, so the changed ids never spread.
func asIDs(o *Owner, fn func() error) error {
	if o == nil {
		return fn()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	unix.Setfsgid(int(o.GID))
	unix.Setfsuid(int(o.UID))
	defer func() {
		unix.Setfsuid(os.Geteuid())
		unix.Setfsgid(os.Getegid())
	}()
	return fn()
}

// ReadFile reads name (relative to the working directory), refusing files
// larger than limit bytes (DefaultFileLimit when 0) and anything that is
// not a regular file.
func (s *session) ReadFile(name string, limit int64) ([]byte, error) {
	rel, err := cleanRel(name)
	if err != nil {
		return nil, err
	}
	return withDeadline("read", name, func() ([]byte, error) {
		dir, err := s.workDir()
		if err != nil {
			return nil, err
		}
		defer unix.Close(dir)
		return readFileAt(dir, rel, name, limit)
	})
}

// ListDir lists a directory relative to the working directory ("" or "."),
// at most DefaultListLimit entries. Entries are described, never followed.
func (s *session) ListDir(name string) ([]FileInfo, error) {
	rel, err := cleanRel(name)
	if err != nil {
		return nil, err
	}
	return withDeadline("list", name, func() ([]FileInfo, error) {
		dir, err := s.workDir()
		if err != nil {
			return nil, err
		}
		defer unix.Close(dir)
		return listDirAt(dir, rel, name)
	})
}

// ReadFileIn reads name beneath the host directory dir with the safety of
// a session's ReadFile: for the output a jail left in a writable bind. No
// symlink or magic link is followed on the way beneath dir, only a regular
// file is read (not a FIFO, socket or device), and a file larger than
// limit bytes (DefaultFileLimit when 0; a jail can leave a huge sparse
// file) is refused without reading it. dir itself is the caller's: its
// last component must not be a symlink.
func ReadFileIn(dir, name string, limit int64) ([]byte, error) {
	rel, err := cleanRel(name)
	if err != nil {
		return nil, err
	}
	return withDeadline("read", name, func() ([]byte, error) {
		d, err := openHostDir(dir)
		if err != nil {
			return nil, err
		}
		defer unix.Close(d)
		return readFileAt(d, rel, name, limit)
	})
}

// ListDirIn lists name beneath the host directory dir ("" or "." for dir
// itself) as ListDir does: entries are described, never followed.
func ListDirIn(dir, name string) ([]FileInfo, error) {
	rel, err := cleanRel(name)
	if err != nil {
		return nil, err
	}
	return withDeadline("list", name, func() ([]FileInfo, error) {
		d, err := openHostDir(dir)
		if err != nil {
			return nil, err
		}
		defer unix.Close(d)
		return listDirAt(d, rel, name)
	})
}

// Owner is the host user and group WriteFileIn and RemoveIn act as: what
// they create is theirs, and permissions are checked as that user's (a
// jail whose bind of dir is idmapped to them can then change what the
// host wrote). Acting as root on a directory a jail could write is what
// the rest of the file API avoids; pass the directory's owner.
type Owner struct{ UID, GID uint32 }

// WriteFileIn writes what data gives, at most limit bytes
// (DefaultFileLimit when 0), to name beneath the host directory dir with
// the safety of a session's WriteFile: missing parent directories are
// made, no symlink or magic link is followed, and only a regular file (or
// none) is written; a FIFO, socket, directory or a file the jail holds a
// lease on is refused before anything changes. Data past limit fails it
// with ErrFileTooLarge and leaves the file empty, never a silent part of
// it. It acts as owner (the caller's ids when nil). No deadline: data is
// read at the caller's reader's pace, and the opens never wait. It
// returns the bytes written.
func WriteFileIn(dir, name string, data io.Reader, limit int64, owner *Owner) (int64, error) {
	rel, err := cleanRel(name)
	if err != nil {
		return 0, err
	}
	if rel == "." {
		return 0, fmt.Errorf("write %s: the directory itself: %w", name, ErrNotRegular)
	}
	if limit <= 0 {
		limit = DefaultFileLimit
	}
	d, err := openHostDir(dir)
	if err != nil {
		return 0, err
	}
	defer unix.Close(d)
	var n int64
	err = asIDs(owner, func() error {
		if err := mkdirs(d, filepath.Dir(rel)); err != nil {
			return err
		}
		// Not O_TRUNC: nothing changes before the file is known regular.
		f, err := openPlanted(d, rel, name, unix.O_WRONLY|unix.O_CREAT, false)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := f.Truncate(0); err != nil {
			return err
		}
		n, err = io.Copy(f, io.LimitReader(data, limit+1))
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if n > limit {
			_ = f.Truncate(0)
			return fmt.Errorf("%s: %w of %d bytes", name, ErrFileTooLarge, limit)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("write %w", err)
	}
	return n, nil
}

// StatIn describes name beneath the host directory dir ("" or "." for dir
// itself) without following or opening it: a symlink on the way or at the
// end fails (ELOOP), and anything but a regular file or a directory fails
// with ErrNotRegular.
func StatIn(dir, name string) (FileInfo, error) {
	rel, err := cleanRel(name)
	if err != nil {
		return FileInfo{}, err
	}
	return withDeadline("stat", name, func() (FileInfo, error) {
		d, err := openHostDir(dir)
		if err != nil {
			return FileInfo{}, err
		}
		defer unix.Close(d)
		// O_PATH opens nothing (a FIFO does not wait); with O_NOFOLLOW a
		// symlink at the end is the link itself, refused below.
		fd, err := openat2(d, rel, unix.O_PATH)
		if err != nil {
			return FileInfo{}, err
		}
		defer unix.Close(fd)
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return FileInfo{}, err
		}
		fi := FileInfo{Name: filepath.Base(rel), Size: st.Size, Mode: os.FileMode(st.Mode & 0o777)}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			fi.IsDir, fi.Mode, fi.Size = true, fi.Mode|os.ModeDir, 0
		case unix.S_IFREG:
		case unix.S_IFLNK:
			return FileInfo{}, &os.PathError{Op: "open", Path: rel, Err: unix.ELOOP}
		default:
			return FileInfo{}, fmt.Errorf("%s: %w", name, ErrNotRegular)
		}
		return fi, nil
	})
}

// RemoveIn removes name, a file or an empty directory, beneath the host
// directory dir, acting as owner (the caller's ids when nil). The
// directories on the way are resolved as everywhere in the file API; the
// last component is never followed: a symlink there is removed itself,
// its target untouched. dir itself cannot be removed.
func RemoveIn(dir, name string, owner *Owner) error {
	rel, err := cleanRel(name)
	if err != nil {
		return err
	}
	if rel == "." {
		return fmt.Errorf("remove %s: the directory itself cannot be removed: %w", name, unix.EPERM)
	}
	_, err = withDeadline("remove", name, func() (struct{}, error) {
		d, err := openHostDir(dir)
		if err != nil {
			return struct{}{}, err
		}
		defer unix.Close(d)
		return struct{}{}, asIDs(owner, func() error {
			parent, err := openat2(d, filepath.Dir(rel), unix.O_PATH|unix.O_DIRECTORY)
			if err != nil {
				return err
			}
			defer unix.Close(parent)
			base := filepath.Base(rel)
			err = unix.Unlinkat(parent, base, 0)
			if errors.Is(err, unix.EISDIR) {
				err = unix.Unlinkat(parent, base, unix.AT_REMOVEDIR)
			}
			if err != nil {
				return &os.PathError{Op: "remove", Path: rel, Err: err}
			}
			return nil
		})
	})
	return err
}

func openHostDir(dir string) (int, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return fd, nil
}

func readFileAt(dir int, rel, name string, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = DefaultFileLimit
	}
	f, err := openPlanted(dir, rel, name, unix.O_RDONLY, false)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > limit {
		return nil, fmt.Errorf("%s: %d bytes, larger than the %d-byte limit", name, fi.Size(), limit)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than the %d-byte limit", name, limit)
	}
	return b, nil
}

func listDirAt(dir int, rel, name string) ([]FileInfo, error) {
	f, err := openPlanted(dir, rel, name, unix.O_RDONLY|unix.O_DIRECTORY, true)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []FileInfo
	for {
		entries, err := f.ReadDir(1024)
		for _, e := range entries {
			// Stat relative to the open directory, never by a host path.
			var st unix.Stat_t
			if err := unix.Fstatat(int(f.Fd()), e.Name(), &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				continue // gone meanwhile
			}
			out = append(out, FileInfo{Name: e.Name(), Size: st.Size, Mode: e.Type() | os.FileMode(st.Mode&0o777), IsDir: e.IsDir()})
		}
		if len(out) > DefaultListLimit {
			return nil, fmt.Errorf("%s: more than %d entries (DefaultListLimit)", name, DefaultListLimit)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if out == nil {
		out = []FileInfo{}
	}
	return out, nil
}
