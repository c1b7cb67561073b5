package jail

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Layout while init builds the jail, inside its private mount namespace:
//
//	/            staging tmpfs (the first pivot_root put it here)
//	/oldroot     the host's whole tree, where bind sources are found
//	/newroot     the jail's root (tmpfs, read-only once built)
//	/scratch     the jail's writable tmpfs: tmp/, work/, shm/ are bound into /newroot
//
// The second pivot_root makes /newroot the root and detaches the rest, host
// tree included. Pivoting first (as bubblewrap does) lets bind sources under
// the host's /tmp stay reachable although the staging tmpfs covers /tmp.
const (
	stagingDir = "/tmp"
	oldRoot    = "/oldroot"
	newRoot    = "/newroot"
	scratchDir = "/scratch"
)

// procMasked are hidden behind /dev/null (files) or an empty read-only
// tmpfs (directories): they disclose kernel memory, keys or timing (runc's list).
var procMasked = []string{
	"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
	"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
	"/proc/kallsyms", "/proc/kmsg", "/proc/interrupts", "/proc/vmallocinfo",
}

// procReadOnly are kernel knobs the jail may read but never write.
var procReadOnly = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}

var devNodes = []string{"null", "zero", "full", "random", "urandom", "tty"}

func buildRoot(s *spec) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return &stepError{"make mounts private", err}
	}
	if err := mountTmpfs(stagingDir, "mode=0700,size=64k", 0); err != nil {
		return err
	}
	for _, d := range []string{oldRoot, newRoot, scratchDir} {
		if err := os.Mkdir(stagingDir+d, 0o700); err != nil {
			return &stepError{"mkdir " + d, err}
		}
	}
	if err := unix.PivotRoot(stagingDir, stagingDir+oldRoot); err != nil {
		return &stepError{"pivot_root to staging", err}
	}
	if err := unix.Chdir("/"); err != nil {
		return &stepError{"chdir /", err}
	}
	if err := mountTmpfs(newRoot, "mode=0755,size=1m", 0); err != nil {
		return err
	}
	if err := mountTmpfs(scratchDir, fmt.Sprintf("mode=0755,size=%d,nr_inodes=%d", s.TmpfsSize, max(s.TmpfsSize>>10, 1024)), 0); err != nil {
		return err
	}
	root, err := unix.Open(newRoot, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &stepError{"open new root", err}
	}
	defer unix.Close(root)

	if err := writeEtc(s); err != nil {
		return err
	}
	if err := buildDev(root); err != nil {
		return err
	}
	if err := bindScratch(root, s.Dir); err != nil {
		return err
	}
	for _, m := range s.Mounts {
		if err := applyMount(root, m); err != nil {
			return err
		}
	}
	if err := mountProc(root); err != nil {
		return err
	}
	if err := setAttr(newRoot, unix.MOUNT_ATTR_RDONLY, false); err != nil {
		return &stepError{"remount / read-only", err}
	}
	// pivot_root(".", ".") stacks the old root on the new one; detaching
	// "." then takes the staging tmpfs, the host tree and /scratch with it.
	if err := unix.Chdir(newRoot); err != nil {
		return &stepError{"chdir new root", err}
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return &stepError{"pivot_root", err}
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return &stepError{"detach old root", err}
	}
	if err := unix.Chdir("/"); err != nil {
		return &stepError{"chdir /", err}
	}
	return nil
}

func mountTmpfs(dir, data string, flags uintptr) error {
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|flags, data); err != nil {
		return &stepError{"mount tmpfs " + dir, err}
	}
	return nil
}

// writeEtc synthesizes the identity files: the jail's users exist by name
// and nothing of the host's passwd, group or hostnames leaks in.
func writeEtc(s *spec) error {
	files := map[string]string{
		"passwd":   fmt.Sprintf("root:x:0:0:root:/root:/usr/sbin/nologin\nbrig:x:%d:%d:brig:%s:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n", JailUID, JailGID, s.Dir),
		"group":    fmt.Sprintf("root:x:0:\nbrig:x:%d:\nnogroup:x:65534:\n", JailGID),
		"hosts":    fmt.Sprintf("127.0.0.1\tlocalhost %s\n::1\tlocalhost %s\n", s.Hostname, s.Hostname),
		"hostname": s.Hostname + "\n",
	}
	if err := os.Mkdir(newRoot+"/etc", 0o755); err != nil {
		return &stepError{"mkdir /etc", err}
	}
	for name, content := range files {
		if err := os.WriteFile(newRoot+"/etc/"+name, []byte(content), 0o644); err != nil {
			return &stepError{"write /etc/" + name, err}
		}
	}
	return nil
}

// buildDev makes a minimal /dev: the harmless character devices bound from
// the host (a user namespace cannot mknod), a private devpts and /dev/shm.
func buildDev(root int) error {
	dev := newRoot + "/dev"
	if err := os.Mkdir(dev, 0o755); err != nil {
		return &stepError{"mkdir /dev", err}
	}
	if err := unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "mode=0755,size=64k"); err != nil {
		return &stepError{"mount /dev", err}
	}
	for _, n := range devNodes {
		if err := bindFrom(root, oldRoot+"/dev/"+n, "/dev/"+n, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC); err != nil {
			return err
		}
	}
	links := map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx"}
	for name, target := range links {
		if err := os.Symlink(target, dev+"/"+name); err != nil {
			return &stepError{"symlink /dev/" + name, err}
		}
	}
	if err := os.Mkdir(dev+"/pts", 0o755); err != nil {
		return &stepError{"mkdir /dev/pts", err}
	}
	if err := unix.Mount("devpts", dev+"/pts", "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,max=64"); err != nil {
		return &stepError{"mount /dev/pts", err}
	}
	return nil
}

// bindScratch gives the jail its writable places, all on one size-limited
// tmpfs so a disk fill anywhere hits the same cap.
func bindScratch(root int, workDir string) error {
	dirs := []struct {
		name, target string
		mode         os.FileMode
		owned        bool
	}{
		{"tmp", "/tmp", 0o777 | os.ModeSticky, false},
		{"shm", "/dev/shm", 0o777 | os.ModeSticky, false},
		{"work", workDir, 0o755, true},
	}
	for _, d := range dirs {
		src := scratchDir + "/" + d.name
		if err := os.Mkdir(src, 0); err != nil {
			return &stepError{"mkdir scratch " + d.name, err}
		}
		// Mkdir's mode passes through the umask; sticky bits need Chmod.
		if err := os.Chmod(src, d.mode); err != nil {
			return &stepError{"chmod scratch " + d.name, err}
		}
		if d.owned {
			if err := os.Chown(src, JailUID, JailGID); err != nil {
				return &stepError{"chown scratch " + d.name, err}
			}
		}
		if err := bindFrom(root, src, d.target, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV); err != nil {
			return err
		}
	}
	// /dev stays read-only from here on: nothing may be created there.
	if err := setAttr(newRoot+"/dev", unix.MOUNT_ATTR_RDONLY, false); err != nil {
		return &stepError{"remount /dev read-only", err}
	}
	return nil
}

func applyMount(root int, m mountSpec) error {
	if m.Symlink != "" {
		if err := makeParents(root, m.Target); err != nil {
			return err
		}
		if err := unix.Symlinkat(m.Symlink, root, rel(m.Target)); err != nil {
			return &stepError{"symlink " + m.Target, err}
		}
		return nil
	}
	if m.TreeFD > 0 {
		defer unix.Close(m.TreeFD)
		return attachTree(root, m.TreeFD, m.Target)
	}
	src := oldRoot + m.Source
	if _, err := os.Lstat(src); err != nil && m.Optional {
		return nil
	}
	return bindFrom(root, src, m.Target, m.attr())
}

func (m mountSpec) attr() uint64 {
	attr := uint64(unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV)
	if !m.Writable {
		attr |= unix.MOUNT_ATTR_RDONLY
	}
	return attr
}

// bindFrom binds src (a path in init's current view) onto target (a path in
// the jail) with the given mount attributes, recursively.
func bindFrom(root int, src, target string, attr uint64) error {
	tree, err := cloneTree(src, attr)
	if err != nil {
		return &stepError{"bind " + target, err}
	}
	defer unix.Close(tree)
	return attachTree(root, tree, target)
}

// cloneTree makes a detached copy of the mount tree at src with attr set.
func cloneTree(src string, attr uint64) (int, error) {
	tree, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return -1, fmt.Errorf("open_tree %s: %w", src, err)
	}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &unix.MountAttr{Attr_set: attr, Propagation: unix.MS_PRIVATE}); err != nil {
		unix.Close(tree)
		return -1, fmt.Errorf("set attributes of %s: %w", src, err)
	}
	return tree, nil
}

// attachTree attaches a detached mount tree at target. The target is
// created and opened beneath the new root without following any symlink,
// and the tree is attached to that open file, so nothing can redirect it
// (CVE-2021-30465).
func attachTree(root, tree int, target string) error {
	step := "bind " + target
	var st unix.Stat_t
	if err := unix.Fstat(tree, &st); err != nil {
		return &stepError{step, err}
	}
	if err := makeTarget(root, target, st.Mode&unix.S_IFMT == unix.S_IFDIR); err != nil {
		return err
	}
	dst, err := openBeneath(root, target, unix.O_PATH)
	if err != nil {
		return &stepError{step, err}
	}
	defer unix.Close(dst)
	if err := unix.MoveMount(tree, "", dst, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return &stepError{step, fmt.Errorf("move_mount: %w", err)}
	}
	return nil
}

// makeTarget creates the mount point (a directory or an empty file) and its
// parents beneath root; an existing one is reused.
func makeTarget(root int, target string, dir bool) error {
	if err := makeParents(root, target); err != nil {
		return err
	}
	parent, err := openBeneath(root, filepath.Dir(target), unix.O_DIRECTORY)
	if err != nil {
		return &stepError{"open parent of " + target, err}
	}
	defer unix.Close(parent)
	name := filepath.Base(target)
	if dir {
		err = unix.Mkdirat(parent, name, 0o755)
	} else {
		var fd int
		fd, err = unix.Openat(parent, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		if err == nil {
			unix.Close(fd)
		}
	}
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return &stepError{"create mount point " + target, err}
	}
	return nil
}

// makeParents creates the directories above target, refusing symlinks.
func makeParents(root int, target string) error {
	parts := strings.Split(strings.Trim(filepath.Dir(target), "/"), "/")
	dir := ""
	for _, p := range parts {
		if p == "" {
			continue
		}
		parent, err := openBeneath(root, dir, unix.O_DIRECTORY)
		if err != nil {
			return &stepError{"create mount point " + target, err}
		}
		err = unix.Mkdirat(parent, p, 0o755)
		unix.Close(parent)
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return &stepError{"create mount point " + target, err}
		}
		dir += "/" + p
	}
	return nil
}

// openBeneath opens path (a jail path) relative to root, never leaving it
// and never following a symlink or a magic link.
func openBeneath(root int, path string, flags int) (int, error) {
	how := unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC | unix.O_NOFOLLOW),
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	p := rel(path)
	if p == "" {
		p = "."
	}
	fd, err := unix.Openat2(root, p, &how)
	if err != nil {
		return -1, fmt.Errorf("open %s in jail: %w", path, err)
	}
	return fd, nil
}

func rel(path string) string { return strings.TrimLeft(filepath.Clean(path), "/") }

// setAttr changes the attributes of the one mount at path (or its whole
// tree when recursive).
func setAttr(path string, attr uint64, recursive bool) error {
	flags := uint(0)
	if recursive {
		flags = unix.AT_RECURSIVE
	}
	return unix.MountSetattr(unix.AT_FDCWD, path, flags, &unix.MountAttr{Attr_set: attr})
}

// mountProc mounts a /proc of the jail's own PID namespace, then masks and
// write-protects the parts that reach the host kernel. It must happen
// before the host tree is detached: the kernel lets a user namespace mount
// proc only while an unobstructed proc is visible.
func mountProc(root int) error {
	proc := newRoot + "/proc"
	if err := os.Mkdir(proc, 0o555); err != nil {
		return &stepError{"mkdir /proc", err}
	}
	if err := unix.Mount("proc", proc, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return &stepError{"mount /proc", err}
	}
	for _, p := range procMasked {
		fi, err := os.Lstat(newRoot + p)
		if err != nil {
			continue // not on this kernel
		}
		if fi.IsDir() {
			err = unix.Mount("tmpfs", newRoot+p, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=4k,mode=0555")
		} else {
			err = bindOnto(newRoot+"/dev/null", newRoot+p, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC)
		}
		if err != nil {
			return &stepError{"mask " + p, err}
		}
	}
	for _, p := range procReadOnly {
		if _, err := os.Lstat(newRoot + p); err != nil {
			continue
		}
		if err := bindOnto(newRoot+p, newRoot+p, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC); err != nil {
			return &stepError{"make " + p + " read-only", err}
		}
	}
	return nil
}

// bindOnto binds src onto dst by path; for paths inside the freshly built
// jail that nothing untrusted has touched yet.
func bindOnto(src, dst string, attr uint64) error {
	tree, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return fmt.Errorf("open_tree %s: %w", src, err)
	}
	defer unix.Close(tree)
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &unix.MountAttr{Attr_set: attr}); err != nil {
		return fmt.Errorf("set mount attributes: %w", err)
	}
	if err := unix.MoveMount(tree, "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount %s: %w", dst, err)
	}
	return nil
}
