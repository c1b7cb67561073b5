package sandboxd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// The workspace from the host side. The jailed code writes there and may
// plant symlinks, FIFOs and leases in it, so every path is resolved with
// openat2 beneath the workspace's directory fd, refusing symlinks and
// magic links at every step (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), and
// every file is opened with O_NONBLOCK and checked to be what the request
// expects. jail's session file API does the same for a jail's working
// directory (jail/session_files.go); its exported ReadFileIn and ListDirIn
// read a whole file into memory and list without modification times, so
// the REST side needs the primitives below instead.
//
// What the server creates in the workspace (PUT's files and directories)
// belongs to the workspace's owner: the server acts as that owner on the
// thread that does it, so the jails, whose bind of the workspace is
// idmapped to the same owner, can change it, and permissions are checked
// as the jails' would be.

// WorkspaceMount is where every jail sees the workspace.
const WorkspaceMount = "/workspace"

// errEscape is the cause of every refusal of a path that would leave the
// workspace, by .. or an absolute path or a symlink or a mount on the way.
var errEscape = errors.New("the path leaves the workspace (through .., an absolute path, or a symlink or mount on the way); it is refused")

// workspace is the host directory bound at WorkspaceMount in every jail.
type workspace struct {
	dir      string
	fd       int // O_PATH directory fd, held for the server's life
	uid, gid int // its owner, who the server acts as in it
}

func openWorkspace(dir string) (*workspace, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("sandboxd: workspace %s: %w (create it, owned by the user the jails write as, e.g. mkdir %s && chown 1000:1000 %s)", dir, err, dir, dir)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("sandboxd: workspace %s: %w", dir, err)
	}
	if euid := os.Geteuid(); euid != 0 && int(st.Uid) != euid {
		unix.Close(fd)
		return nil, fmt.Errorf("sandboxd: workspace %s belongs to uid %d, not to this server's uid %d: an unprivileged server's jails write as its own uid, so the workspace must be that uid's (chown %d %s)", dir, st.Uid, euid, euid, dir)
	}
	if st.Uid == 0 || st.Gid == 0 {
		unix.Close(fd)
		return nil, fmt.Errorf("sandboxd: workspace %s is owned by root (uid %d, gid %d): the jails write it through an idmapped bind as its owner, and root is never one; chown it to the user the files should belong to, e.g. chown 1000:1000 %s", dir, st.Uid, st.Gid, dir)
	}
	return &workspace{dir: dir, fd: fd, uid: int(st.Uid), gid: int(st.Gid)}, nil
}

func (w *workspace) close() { unix.Close(w.fd) }

// workspaceRel checks a path given by a client and returns it relative to
// the workspace ("." for the workspace itself). A relative path is taken
// beneath the workspace; an absolute one must lie in WorkspaceMount, the
// workspace as the jails (and, in a pod, the agent) see it. No path may
// climb out with "..". It is lexical only, which is sound because no
// symlink is followed when the path is opened.
func workspaceRel(p string) (string, error) {
	if strings.IndexByte(p, 0) >= 0 {
		return "", fmt.Errorf("a NUL byte in the path: %w", errEscape)
	}
	if len(p) > MaxPathBytes {
		return "", fmt.Errorf("a path of %d bytes, at most %d: %w", len(p), MaxPathBytes, errEscape)
	}
	if strings.HasPrefix(p, "/") {
		c := path.Clean(p)
		if c != WorkspaceMount && !strings.HasPrefix(c, WorkspaceMount+"/") {
			return "", fmt.Errorf("%q is outside %s: %w", p, WorkspaceMount, errEscape)
		}
		p = strings.TrimPrefix(strings.TrimPrefix(c, WorkspaceMount), "/")
	}
	c := path.Clean(p)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("%q: %w", p, errEscape)
	}
	return c, nil
}

// openat2 opens rel beneath dirfd without following any symlink.
func openat2(dirfd int, rel string, flags int, mode uint32) (*os.File, error) {
	how := unix.OpenHow{
		// No O_NOFOLLOW: with O_PATH it would open a final symlink itself
		// where RESOLVE_NO_SYMLINKS refuses it (ELOOP), as every other.
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Mode:    uint64(mode),
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	for {
		fd, err := unix.Openat2(dirfd, rel, &how)
		if err == unix.EINTR || err == unix.EAGAIN && flags&unix.O_NONBLOCK == 0 {
			continue // EAGAIN: a rename raced the lookup; it is retried
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: rel, Err: classify(err)}
		}
		return os.NewFile(uintptr(fd), rel), nil
	}
}

// classify turns the kernel's refusals of a path that would leave the
// workspace into errEscape, keeping the errno.
func classify(err error) error {
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EXDEV) {
		return fmt.Errorf("%w (%v)", errEscape, err)
	}
	return err
}

// openDir opens a directory beneath the workspace as an O_PATH fd.
func (w *workspace) openDir(rel string) (*os.File, error) {
	return openat2(w.fd, rel, unix.O_PATH|unix.O_DIRECTORY, 0)
}

// asOwner runs fn with this thread's filesystem ids set to the
// workspace's owner. Go starts new threads from a clean template thread
// while one is locked, so the changed ids never spread. An unprivileged
// server is the owner already.
func (w *workspace) asOwner(fn func() error) error {
	if os.Geteuid() != 0 {
		return fn()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	unix.Setfsgid(w.gid)
	unix.Setfsuid(w.uid)
	defer func() {
		unix.Setfsuid(0)
		unix.Setfsgid(0)
	}()
	return fn()
}

// mkdirs makes the directories of rel beneath the workspace that are
// missing, as the owner, one component at a time without following a
// symlink.
func (w *workspace) mkdirs(rel string) error {
	if rel == "." {
		return nil
	}
	parts := strings.Split(rel, "/")
	for i := range parts {
		parent, err := w.openDir(path.Join(append([]string{"."}, parts[:i]...)...))
		if err != nil {
			return err
		}
		err = unix.Mkdirat(int(parent.Fd()), parts[i], 0o755)
		parent.Close()
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return &os.PathError{Op: "mkdir", Path: path.Join(parts[:i+1]...), Err: err}
		}
	}
	return nil
}

// errIsDir is the refusal to write a file where a directory is.
var errIsDir = errors.New("a directory is there; a file cannot replace it")

// errTooLarge is the refusal of a PUT body over MaxPutBytes.
var errTooLarge = fmt.Errorf("the body is larger than %d bytes (MaxPutBytes)", MaxPutBytes)

// writeAtomic writes what r holds (at most MaxPutBytes) to rel with mode:
// a temporary file in the same directory, synced, then renamed over rel,
// so a reader sees the old file or the new one, never a part. A symlink at
// rel is replaced, never followed. The temporary file is removed on any
// failure, a client that goes away mid-body included.
func (w *workspace) writeAtomic(rel string, r io.Reader, mode uint32) error {
	if rel == "." {
		return errIsDir
	}
	dirRel, base := path.Split(rel)
	dirRel = strings.TrimSuffix(dirRel, "/")
	if dirRel == "" {
		dirRel = "."
	}
	return w.asOwner(func() error {
		if err := w.mkdirs(dirRel); err != nil {
			return err
		}
		dir, err := w.openDir(dirRel)
		if err != nil {
			return err
		}
		defer dir.Close()
		dfd := int(dir.Fd())
		var st unix.Stat_t
		if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return errIsDir
		}
		var tmp *os.File
		var tmpName string
		for i := 0; ; i++ {
			tmpName = fmt.Sprintf(".%s.brig-put-%d-%d", base, os.Getpid(), randomSuffix())
			if len(tmpName) > 255 {
				tmpName = fmt.Sprintf(".brig-put-%d-%d", os.Getpid(), randomSuffix())
			}
			tmp, err = openat2(dfd, tmpName, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o600)
			if err == nil || !errors.Is(err, unix.EEXIST) || i == 10 {
				break
			}
		}
		if err != nil {
			return err
		}
		done := false
		defer func() {
			tmp.Close()
			if !done {
				_ = unix.Unlinkat(dfd, tmpName, 0)
			}
		}()
		n, err := io.Copy(tmp, io.LimitReader(r, MaxPutBytes+1))
		if err != nil {
			return fmt.Errorf("read the body: %w", err)
		}
		if n > MaxPutBytes {
			return errTooLarge
		}
		if err := tmp.Chmod(os.FileMode(mode)); err != nil {
			return err
		}
		if err := tmp.Sync(); err != nil {
			return err
		}
		if err := unix.Renameat(dfd, tmpName, dfd, base); err != nil {
			if errors.Is(err, unix.EISDIR) {
				return errIsDir
			}
			return &os.PathError{Op: "rename", Path: rel, Err: err}
		}
		done = true
		return nil
	})
}

// errNotEmpty is DELETE's refusal of a non-empty directory without
// recursive=true.
var errNotEmpty = errors.New("the directory is not empty; pass recursive=true to remove it with its contents")

// maxRemoveDepth bounds how deep remove descends: each level holds a
// directory fd.
const maxRemoveDepth = 256

// remove removes rel beneath the workspace: a file or symlink itself
// (never what it points to), an empty directory, or with recursive a
// directory and all it holds. The workspace itself is emptied, never
// removed, and only with recursive.
func (w *workspace) remove(rel string, recursive bool) error {
	return w.asOwner(func() error {
		if rel == "." {
			if !recursive {
				return errNotEmpty
			}
			root, err := openat2(w.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY, 0)
			if err != nil {
				return err
			}
			defer root.Close()
			return removeContents(root, 0)
		}
		dirRel, base := path.Split(rel)
		dirRel = strings.TrimSuffix(dirRel, "/")
		if dirRel == "" {
			dirRel = "."
		}
		dir, err := openat2(w.fd, dirRel, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			return err
		}
		defer dir.Close()
		return removeAt(dir, base, recursive, 0)
	})
}

// removeAt removes name in dir without following it.
func removeAt(dir *os.File, name string, recursive bool, depth int) error {
	dfd := int(dir.Fd())
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "remove", Path: name, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if err := unix.Unlinkat(dfd, name, 0); err != nil {
			return &os.PathError{Op: "remove", Path: name, Err: err}
		}
		return nil
	}
	err := unix.Unlinkat(dfd, name, unix.AT_REMOVEDIR)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, unix.EEXIST) {
		return &os.PathError{Op: "remove", Path: name, Err: err}
	}
	if !recursive {
		return errNotEmpty
	}
	if depth >= maxRemoveDepth {
		return fmt.Errorf("remove %s: deeper than %d directories; remove its inner directories first", name, maxRemoveDepth)
	}
	sub, err := openat2(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	err = removeContents(sub, depth+1)
	sub.Close()
	if err != nil {
		return err
	}
	if err := unix.Unlinkat(dfd, name, unix.AT_REMOVEDIR); err != nil {
		return &os.PathError{Op: "remove", Path: name, Err: err}
	}
	return nil
}

// removeContents removes everything in dir. A jail may keep adding
// entries; each round removes what it read, and the rounds are bounded.
func removeContents(dir *os.File, depth int) error {
	for round := 0; round < 100; round++ {
		if _, err := dir.Seek(0, io.SeekStart); err != nil {
			return err
		}
		names, err := dir.Readdirnames(MaxListEntries)
		if err != nil && err != io.EOF {
			return err
		}
		if len(names) == 0 {
			return nil
		}
		for _, n := range names {
			if err := removeAt(dir, n, true, depth); err != nil && !errors.Is(err, syscall.ENOENT) {
				return err
			}
		}
	}
	return errors.New("remove: the directory keeps filling up (a running process writes into it); stop it first")
}
