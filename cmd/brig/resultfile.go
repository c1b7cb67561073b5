package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/brig-sandbox/brig/jail"
)

// replaceFile writes data to path for brig's caller, who may be root, in a
// directory the jail may just have written in (a writable bind): a symlink
// or hard link planted at path would otherwise have root write through it
// into any host file. The directory is resolved as a bind source is,
// following only root's symlinks (jail.ResolveHostPath), and opened
// following none; the data goes into a new file there, renamed over path.
func replaceFile(path string, data []byte, perm uint32) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	dir, name := filepath.Split(abs)
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("%s: not a file name", path)
	}
	resolved, err := jail.ResolveHostPath(dir, false)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	dirFD, err := unix.Openat2(unix.AT_FDCWD, resolved, &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS})
	if err != nil {
		return fmt.Errorf("open %s: %w", resolved, err)
	}
	defer unix.Close(dirFD)
	tmp := fmt.Sprintf(".brig-%016x", rand.Uint64())
	fd, err := unix.Openat(dirFD, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
	if err != nil {
		return fmt.Errorf("create %s: %w", filepath.Join(resolved, tmp), err)
	}
	for rest := data; len(rest) > 0; {
		n, werr := unix.Write(fd, rest)
		if werr != nil {
			err = werr
			break
		}
		rest = rest[n:]
	}
	err = errors.Join(err, unix.Close(fd))
	if err == nil {
		err = unix.Renameat(dirFD, tmp, dirFD, name)
	}
	if err != nil {
		_ = unix.Unlinkat(dirFD, tmp, 0)
		return fmt.Errorf("write %s: %w", filepath.Join(resolved, name), err)
	}
	return nil
}
