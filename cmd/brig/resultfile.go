package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/brig-sandbox/brig/jail"
)

// resultFile is where `brig run --result` writes the Result. It is opened
// before the program runs, so that a path brig cannot write fails at once
// rather than after the program's status would be lost, and written when
// the program has ended.
//
// brig's caller may be root and the file's directory one a jail may just
// have written in (a writable bind): a symlink or hard link planted at the
// name would have root write through it into any host file. So the
// directory is resolved as a bind source is, following only root's
// symlinks (jail.ResolveHostPath), and opened following none; the Result
// goes into a new file there, created at open, renamed over the name at
// commit. "-", and a name that is brig's own stdout or stderr
// (/dev/stdout), write to that stream after the program's output.
type resultFile struct {
	stream *os.File // "-" or brig's stdout/stderr; nil for a file
	dirFD  int
	tmp    string
	name   string
	path   string // as resolved, for messages
}

func openResultFile(path string) (*resultFile, error) {
	if path == "-" {
		return &resultFile{stream: os.Stdout, dirFD: -1}, nil
	}
	if fi, err := os.Stat(path); err == nil {
		for _, std := range []*os.File{os.Stdout, os.Stderr} {
			if sfi, err := std.Stat(); err == nil && os.SameFile(fi, sfi) {
				return &resultFile{stream: std, dirFD: -1}, nil
			}
		}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	dir, name := filepath.Split(abs)
	if name == "" || name == "." || name == ".." {
		return nil, fmt.Errorf("%s: not a file name", path)
	}
	resolved, err := jail.ResolveHostPath(dir, false)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	dirFD, err := unix.Openat2(unix.AT_FDCWD, resolved, &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", resolved, err)
	}
	f := &resultFile{dirFD: dirFD, tmp: fmt.Sprintf(".brig-%016x", rand.Uint64()), name: name, path: filepath.Join(resolved, name)}
	fd, err := unix.Openat(dirFD, f.tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		unix.Close(dirFD)
		return nil, fmt.Errorf("create %s: %w", filepath.Join(resolved, f.tmp), err)
	}
	unix.Close(fd)
	return f, nil
}

// commit writes r as a resultJSON and, for a file, renames it over the
// name.
func (f *resultFile) commit(r *jail.Result) error {
	b, err := json.MarshalIndent(newResultJSON(r), "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if f.stream != nil {
		if _, err := f.stream.Write(b); err != nil {
			return fmt.Errorf("write result: %w", err)
		}
		return nil
	}
	fd, err := unix.Openat(f.dirFD, f.tmp, unix.O_WRONLY|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == nil {
		for rest := b; len(rest) > 0 && err == nil; {
			var n int
			n, err = unix.Write(fd, rest)
			rest = rest[n:]
		}
		err = errors.Join(err, unix.Close(fd))
	}
	if err == nil {
		err = unix.Renameat(f.dirFD, f.tmp, f.dirFD, f.name)
	}
	if err != nil {
		return fmt.Errorf("write result %s: %w", f.path, err)
	}
	f.tmp = ""
	return nil
}

// close removes the new file if it was never committed.
func (f *resultFile) close() {
	if f.dirFD < 0 {
		return
	}
	if f.tmp != "" {
		_ = unix.Unlinkat(f.dirFD, f.tmp, 0)
	}
	unix.Close(f.dirFD)
	f.dirFD = -1
}
