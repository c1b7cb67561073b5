package jail

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Files of a session's working directory, read and written from the host.
// The jailed code controls that directory and may plant symlinks in it
// (judge0 CVE-2024-28185, go-judge #176 were exactly this), so every path
// is opened with openat2 beneath the working directory, refusing symlinks
// and magic links at every step: a link never leads the host elsewhere.

// DefaultFileLimit caps ReadFile.
const DefaultFileLimit = 16 << 20

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
	root, err := unix.Open(fmt.Sprintf("/proc/%d/root", s.cmd.initPid), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open jail root: %w", err)
	}
	defer unix.Close(root)
	return openat2(root, strings.TrimPrefix(s.cmd.cfg.WorkDir, "/"), unix.O_PATH|unix.O_DIRECTORY)
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

// cleanRel checks a path relative to the working directory.
func cleanRel(name string) (string, error) {
	c := filepath.Clean(name)
	if filepath.IsAbs(c) || c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("path %q: must be relative to the working directory and stay beneath it", name)
	}
	return c, nil
}

// WriteFile writes data to name (relative to the working directory),
// creating missing parent directories, as the jail's user.
func (s *session) WriteFile(name string, data []byte) error {
	rel, err := cleanRel(name)
	if err != nil {
		return err
	}
	dir, err := s.workDir()
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	return s.asJailUser(func() error {
		if err := mkdirs(dir, filepath.Dir(rel)); err != nil {
			return err
		}
		fd, err := openat2(dir, rel, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC)
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), name)
		defer f.Close()
		if _, err := f.Write(data); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		return nil
	})
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
	ids := s.cmd.lease
	if !ids.Privileged {
		return fn() // an unprivileged supervisor is the jail's user already
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	unix.Setfsgid(int(ids.Jail))
	unix.Setfsuid(int(ids.Jail))
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
	if limit <= 0 {
		limit = DefaultFileLimit
	}
	dir, err := s.workDir()
	if err != nil {
		return nil, err
	}
	defer unix.Close(dir)
	fd, err := openat2(dir, rel, unix.O_RDONLY|unix.O_NONBLOCK)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("read %s: not a regular file (%v)", name, fi.Mode().Type())
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("read %s: larger than the %d-byte limit", name, limit)
	}
	return b, nil
}

// ListDir lists a directory relative to the working directory ("" or ".").
func (s *session) ListDir(name string) ([]FileInfo, error) {
	rel, err := cleanRel(name)
	if err != nil {
		return nil, err
	}
	dir, err := s.workDir()
	if err != nil {
		return nil, err
	}
	defer unix.Close(dir)
	fd, err := openat2(dir, rel, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	entries, err := f.ReadDir(-1)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", name, err)
	}
	out := make([]FileInfo, 0, len(entries))
	for _, e := range entries {
		// Stat relative to the open directory, never by a host path.
		var st unix.Stat_t
		if err := unix.Fstatat(fd, e.Name(), &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue // gone meanwhile
		}
		out = append(out, FileInfo{Name: e.Name(), Size: st.Size, Mode: e.Type() | os.FileMode(st.Mode&0o777), IsDir: e.IsDir()})
	}
	return out, nil
}
