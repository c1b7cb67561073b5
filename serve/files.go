package serve

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Files of a workspace, from the host. Jailed code controls the
// workspace and may plant symlinks, FIFOs and directories in it, so every
// path is resolved with openat2 beneath the workspace with
// RESOLVE_BENEATH, RESOLVE_NO_SYMLINKS and RESOLVE_NO_MAGICLINKS, opened
// with O_NONBLOCK, and checked to be a regular file (or a directory, to
// list or remove) on the descriptor, never by path again. Reading and
// listing are the library's (session.ReadFileIn, session.ListDirIn); writing,
// describing and removing are here because the library has them only for
// a session's working directory (the lead's note: a WriteFileIn, StatIn
// and RemoveIn beside ReadFileIn would make this file go). Writes are made
// as the workspace's owner, so the jails (idmapped to that owner) can
// change what a client put.

// MaxPathBytes caps a file path of the API.
const MaxPathBytes = 4096

// cleanPath checks a workspace path of a request: relative, no "..", no
// NUL, shorter than MaxPathBytes. "" is the workspace itself.
func cleanPath(p string) (string, *apiError) {
	if len(p) > MaxPathBytes {
		return "", errorf(400, "bad_path", "path longer than %d bytes", MaxPathBytes)
	}
	if strings.ContainsRune(p, 0) {
		return "", errorf(400, "bad_path", "path contains a NUL byte")
	}
	if strings.HasPrefix(p, "/") {
		return "", errorf(400, "bad_path", "path %q: absolute; paths are relative to the workspace (/workspace in the jail)", p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return "", errorf(400, "bad_path", "path %q: contains \"..\"; paths stay beneath the workspace", p)
		}
	}
	c := path.Clean(p)
	if c == "." {
		c = ""
	}
	return c, nil
}

func openBeneath(dir int, rel string, flags int, mode uint64) (int, error) {
	if rel == "" {
		rel = "."
	}
	how := unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC | unix.O_NOFOLLOW),
		Mode:    mode,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	fd, err := unix.Openat2(dir, rel, &how)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: rel, Err: err}
	}
	return fd, nil
}

func openWorkspace(dir string) (int, error) {
	return unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

// fileKind describes rel beneath the workspace without following it.
type fileKind struct {
	dir  bool
	size int64
}

func statBeneath(ws, rel string) (fileKind, error) {
	d, err := openWorkspace(ws)
	if err != nil {
		return fileKind{}, err
	}
	defer unix.Close(d)
	fd, err := openBeneath(d, rel, unix.O_PATH, 0)
	if err != nil {
		return fileKind{}, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fileKind{}, err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return fileKind{dir: true}, nil
	case unix.S_IFREG:
		return fileKind{size: st.Size}, nil
	case unix.S_IFLNK:
		return fileKind{}, &os.PathError{Op: "open", Path: rel, Err: unix.ELOOP}
	}
	return fileKind{}, errNotRegular
}

var errNotRegular = errors.New("not a regular file or directory (a FIFO, socket or device the jail made)")

// writeBeneath writes body to rel beneath the workspace as its owner,
// making missing parent directories; at most max bytes.
func writeBeneath(ws, rel string, owner uint32, body io.Reader, max int64) (int64, error) {
	if rel == "" {
		return 0, errNotRegular
	}
	var n int64
	// The workspace is opened as the server: its parents are root's alone.
	d, err := openWorkspace(ws)
	if err != nil {
		return 0, err
	}
	defer unix.Close(d)
	err = asOwner(owner, func() error {
		if err := mkdirsBeneath(d, path.Dir(rel)); err != nil {
			return err
		}
		// Not O_TRUNC: nothing changes before the file is known regular.
		fd, err := openBeneath(d, rel, unix.O_WRONLY|unix.O_CREAT|unix.O_NONBLOCK, 0o644)
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), rel)
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return errNotRegular
		}
		if err := f.Truncate(0); err != nil {
			return err
		}
		n, err = io.Copy(f, io.LimitReader(body, max+1))
		if err != nil {
			return err
		}
		if n > max {
			_ = f.Truncate(0) // no half of a file the client did not mean to send
			return errFileTooLarge
		}
		return nil
	})
	return n, err
}

var errFileTooLarge = errors.New("file larger than max_file_bytes")

func mkdirsBeneath(d int, rel string) error {
	if rel == "." || rel == "" {
		return nil
	}
	parts := strings.Split(rel, "/")
	for i := range parts {
		parent, err := openBeneath(d, strings.Join(parts[:i], "/"), unix.O_PATH|unix.O_DIRECTORY, 0)
		if err != nil {
			return err
		}
		err = unix.Mkdirat(parent, parts[i], 0o755)
		unix.Close(parent)
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return &os.PathError{Op: "mkdir", Path: strings.Join(parts[:i+1], "/"), Err: err}
		}
	}
	return nil
}

// removeBeneath removes a file, or an empty directory, beneath the
// workspace. unlinkat never follows the last component: a symlink there is
// removed itself, its target untouched.
func removeBeneath(ws, rel string, owner uint32) error {
	if rel == "" {
		return fmt.Errorf("the workspace itself cannot be removed: %w", unix.EPERM)
	}
	d, err := openWorkspace(ws)
	if err != nil {
		return err
	}
	defer unix.Close(d)
	return asOwner(owner, func() error {
		parent, err := openBeneath(d, path.Dir(rel), unix.O_PATH|unix.O_DIRECTORY, 0)
		if err != nil {
			return err
		}
		defer unix.Close(parent)
		base := path.Base(rel)
		err = unix.Unlinkat(parent, base, 0)
		if errors.Is(err, unix.EISDIR) {
			err = unix.Unlinkat(parent, base, unix.AT_REMOVEDIR)
		}
		if err != nil {
			return &os.PathError{Op: "remove", Path: rel, Err: err}
		}
		return nil
	})
}

// asOwner runs fn with this thread's filesystem ids set to the workspace's
// owner: what it creates is the owner's, and permissions are checked as
// the jails see them. The thread is locked, and Go starts new threads from
// a clean template, so the ids never spread.
func asOwner(owner uint32, fn func() error) error {
	if os.Geteuid() != 0 {
		return fn()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	unix.Setfsgid(int(owner))
	unix.Setfsuid(int(owner))
	defer func() {
		unix.Setfsuid(os.Geteuid())
		unix.Setfsgid(os.Getegid())
	}()
	return fn()
}

// fileError turns a file operation's failure into the API's answer.
func fileError(p string, err error) *apiError {
	switch {
	case errors.Is(err, unix.ENOENT):
		return errorf(404, "not_found", "%s: no such file in the workspace", p)
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.EXDEV):
		return errorf(400, "symlink_refused", "%s: a symlink on the way; the server follows none in a workspace", p)
	case errors.Is(err, errNotRegular), errors.Is(err, unix.ENXIO):
		return errorf(400, "not_a_file", "%s: %v", p, errNotRegular)
	case errors.Is(err, unix.EISDIR):
		return errorf(409, "is_a_directory", "%s: a directory", p)
	case errors.Is(err, unix.ENOTDIR):
		return errorf(409, "not_a_directory", "%s: a part of the path is not a directory", p)
	case errors.Is(err, unix.ENOTEMPTY):
		return errorf(409, "directory_not_empty", "%s: a directory that is not empty; remove what is in it first", p)
	case errors.Is(err, unix.ENOSPC):
		return &apiError{status: 507, code: "workspace_full", quota: "workspace_bytes", message: fmt.Sprintf("%s: the workspace is full (its byte or inode quota)", p)}
	case errors.Is(err, errFileTooLarge):
		return errorf(400, "body_too_large", "%s: larger than max_file_bytes", p)
	case errors.Is(err, unix.EWOULDBLOCK):
		return errorf(409, "locked", "%s: the jail holds a lease on it", p)
	}
	if strings.Contains(err.Error(), "larger than the") {
		return errorf(400, "file_too_large", "%v", err)
	}
	if strings.Contains(err.Error(), "not a regular file") || strings.Contains(err.Error(), "not a directory") {
		return errorf(400, "not_a_file", "%v", err)
	}
	return errorf(500, "internal", "%s: %v", p, err)
}
