package supervisor

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// systemDirs hold the programs and libraries; on merged-/usr hosts all but
// /usr are symlinks, which the jail gets as the same symlinks.
var systemDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"}

// etcFiles are the host /etc entries programs need to start and behave.
// Never /etc/shadow, gshadow, sudoers, ssh keys or /etc/ssl/private.
var etcFiles = []string{
	"/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives",
	"/etc/ssl/certs", "/etc/ssl/openssl.cnf", "/etc/ca-certificates", "/etc/localtime", "/etc/timezone",
	"/etc/resolv.conf", "/etc/nsswitch.conf", "/etc/host.conf", "/etc/protocols", "/etc/services",
	"/etc/mime.types", "/etc/os-release", "/etc/debian_version", "/etc/bash.bashrc", "/etc/profile",
	"/etc/inputrc", "/etc/terminfo", "/etc/magic", "/etc/mailcap",
}

// A jail's root is described once, here, as a list of entries
// (mountSpec): rootOwn (what brig makes itself: /etc's identity files,
// /dev, the mount points of /tmp and /proc), then the system mounts
// (systemMounts: /usr and friends, the host's /etc files), then the
// caller's binds and tmpfs directories (bindMounts). Two builders apply the
// list and decide nothing of their own: init's (mount.c's apply_mount), for
// a jail that builds its root itself, and the supervisor's
// (roottemplate.go's apply), for a root template. What is left to each
// builder is the mount tree around the list: the root tmpfs, the scratch
// binds, devpts, /proc and the read-only remounts.

// identityFiles are the contents of the jail's /etc/passwd, group, hosts and
// hostname: its users by name, and nothing of the host's.
func identityFiles(home, hostname string) []mountSpec {
	file := func(name, content string) mountSpec {
		return mountSpec{Target: "/etc/" + name, File: true, Content: content, Mode: 0o644}
	}
	return []mountSpec{
		file("passwd", fmt.Sprintf("root:x:0:0:root:/root:/usr/sbin/nologin\nbrig:x:%d:%d:brig:%s:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n", JailUID, JailGID, home)),
		file("group", fmt.Sprintf("root:x:0:\nbrig:x:%d:\nnogroup:x:65534:\n", JailGID)),
		file("hosts", fmt.Sprintf("127.0.0.1\tlocalhost %s\n::1\tlocalhost %s\n", hostname, hostname)),
		file("hostname", hostname+"\n"),
	}
}

// devEntries is the jail's /dev, the same for every jail: a small tmpfs of
// its own (read-only once built) holding the harmless character devices
// bound from the host (a user namespace cannot mknod), the links programs
// expect, and the mount points of devpts and /dev/shm.
var devEntries = []mountSpec{
	{Target: "/dev", Dir: true, Mode: 0o755, Tmpfs: true, Source: "mode=0755,size=64k"},
	{Target: "/dev/null", Source: "/dev/null", Device: true},
	{Target: "/dev/zero", Source: "/dev/zero", Device: true},
	{Target: "/dev/full", Source: "/dev/full", Device: true},
	{Target: "/dev/random", Source: "/dev/random", Device: true},
	{Target: "/dev/urandom", Source: "/dev/urandom", Device: true},
	{Target: "/dev/tty", Source: "/dev/tty", Device: true},
	{Target: "/dev/fd", Symlink: "/proc/self/fd"},
	{Target: "/dev/stdin", Symlink: "/proc/self/fd/0"},
	{Target: "/dev/stdout", Symlink: "/proc/self/fd/1"},
	{Target: "/dev/stderr", Symlink: "/proc/self/fd/2"},
	{Target: "/dev/ptmx", Symlink: "pts/ptmx"},
	{Target: "/dev/pts", Dir: true, Mode: 0o755},
	{Target: "/dev/shm", Dir: true, Mode: 0o755},
}

// mountPointEntries are the mount points of /tmp and /proc, which every
// jail mounts itself (the work directory's is the builders': a Cmd.Dir
// may be relative).
var mountPointEntries = []mountSpec{
	{Target: "/tmp", Dir: true, Mode: 0o755},
	{Target: "/proc", Dir: true, Mode: 0o555},
}

// rootOwn is brig's own part of a jail's root, in the order the builders
// apply it: /etc and its identity files, /dev, the mount points.
func rootOwn(home, hostname string) []mountSpec {
	own := make([]mountSpec, 0, 1+4+len(devEntries)+len(mountPointEntries))
	own = append(own, mountSpec{Target: "/etc", Dir: true, Mode: 0o755})
	own = append(own, identityFiles(home, hostname)...)
	own = append(own, devEntries...)
	return append(own, mountPointEntries...)
}

// rootMounts lists the jail's system mounts followed by the caller's binds
// and tmpfs directories, with every host source resolved now, on the host:
// inside the jail an absolute symlink would resolve against the wrong root.
func (s *Supervisor) rootMounts(binds []Bind, tmpfs []string) ([]mountSpec, error) {
	sys, err := s.systemMounts()
	if err != nil {
		return nil, err
	}
	ms, err := bindMounts(binds, tmpfs)
	if err != nil {
		return nil, err
	}
	return append(slices.Clip(sys), ms...), nil
}

// bindMounts are the caller's binds alone (a jail from a root template
// gets the system mounts with it). Each source is resolved here, on the
// host, without trusting a symlink that someone other than root could have
// made (resolveBindSource), and the helper opens the result again without
// following any symlink and checks it is the same file (Source, Dev, Ino).
// The Config.Tmpfs directories go in among them (tmpfsFirst).
func bindMounts(binds []Bind, tmpfs []string) ([]mountSpec, error) {
	var ms []mountSpec
	pending := slices.Sorted(slices.Values(tmpfs))
	for _, b := range binds {
		ms, pending = tmpfsFirst(ms, pending, b.Target)
		src, st, err := resolveBindSource(b.Source, b.FollowSymlinks)
		if err != nil {
			return nil, fmt.Errorf("bind %s: %w", b.Source, err)
		}
		m := mountSpec{Source: src, Target: b.Target, Writable: b.Writable, CheckID: true, Dev: st.Dev, Ino: st.Ino}
		if b.IDMap {
			if m.IDMap, m.OwnerUID, m.OwnerGID, err = bindOwner(b, &st); err != nil {
				return nil, fmt.Errorf("bind %s: %w", b.Source, err)
			}
		}
		ms = append(ms, m)
	}
	for _, t := range pending {
		ms = append(ms, mountSpec{Target: t, Writable: true, Tmpfs: true})
	}
	if hook := testAfterBindsResolved; hook != nil {
		hook(ms)
	}
	return ms, nil
}

// tmpfsFirst appends to ms the pending tmpfs directories (sorted, so a
// parent comes before what is inside it) that target lies inside: a bind
// into a tmpfs must find it mounted. The rest stay pending; they are
// mounted after the binds, so that a tmpfs inside a bind's target is
// mounted on the bind.
func tmpfsFirst(ms []mountSpec, pending []string, target string) ([]mountSpec, []string) {
	rest := pending[:0:0]
	for _, t := range pending {
		if strings.HasPrefix(target, t+"/") {
			ms = append(ms, mountSpec{Target: t, Writable: true, Tmpfs: true})
		} else {
			rest = append(rest, t)
		}
	}
	return ms, rest
}

// testAfterBindsResolved, when set (tests only), runs between resolving the
// binds and handing them to the helper: where a swap would happen.
var testAfterBindsResolved func([]mountSpec)

// maxBindLinks is how many symlinks a bind source may pass through, as the
// kernel's own limit (ELOOP).
const maxBindLinks = 40

// resolveBindSource resolves path on the host component by component, each
// opened relative to its parent without following it, so that nothing can
// redirect the walk while it runs. A symlink is followed only when root
// owns it (the host's own, such as /lib -> usr/lib on a merged-/usr host),
// or any symlink when followAny: a symlink anyone else owns may have been
// planted by a jail that had the directory as a writable bind, and the
// helper opens the source as root. It returns the path without symlinks and
// what lstat says of it there.
func resolveBindSource(path string, followAny bool) (string, unix.Stat_t, error) {
	var st unix.Stat_t
	if !filepath.IsAbs(path) {
		return "", st, fmt.Errorf("source must be an absolute path")
	}
	root, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", st, fmt.Errorf("open /: %w", err)
	}
	// dirs[i] is the directory names[:i] lead to; dirs[0] is /.
	dirs, names := []int{root}, []string{}
	defer func() {
		for _, fd := range dirs {
			unix.Close(fd)
		}
	}()
	here := func() string { return "/" + strings.Join(names, "/") }
	rest := strings.Split(path, "/")
	links := 0
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			// Lexically, as the kernel does: dirs holds no symlink.
			if len(names) > 0 {
				unix.Close(dirs[len(dirs)-1])
				dirs, names = dirs[:len(dirs)-1], names[:len(names)-1]
			}
			continue
		}
		fd, err := unix.Openat(dirs[len(dirs)-1], name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", st, fmt.Errorf("open %s: %w", filepath.Join(here(), name), err)
		}
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return "", st, fmt.Errorf("stat %s: %w", filepath.Join(here(), name), err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			dirs, names = append(dirs, fd), append(names, name)
			continue
		}
		// The owner and the target are read from the same open link.
		link := filepath.Join(here(), name)
		target, err := readlinkFD(fd)
		unix.Close(fd)
		if err == nil && target == "" {
			err = unix.ENOENT // as the kernel resolves an empty symlink
		}
		if err != nil {
			return "", st, fmt.Errorf("read symlink %s: %w", link, err)
		}
		if st.Uid != 0 && !followAny {
			return "", st, &SymlinkError{Path: path, Link: link, Target: target, UID: st.Uid}
		}
		if links++; links > maxBindLinks {
			return "", st, fmt.Errorf("%s: %w", link, unix.ELOOP)
		}
		if filepath.IsAbs(target) {
			for _, d := range dirs[1:] {
				unix.Close(d)
			}
			dirs, names = dirs[:1], names[:0]
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	if err := unix.Fstat(dirs[len(dirs)-1], &st); err != nil {
		return "", st, fmt.Errorf("stat %s: %w", here(), err)
	}
	return here(), st, nil
}

// ResolveHostPath resolves an absolute host path as a bind source is
// resolved (see Bind): one component at a time, following only symlinks
// that root owns, or any when followSymlinks; a symlink of anyone else's is
// a *SymlinkError. It is for callers that open paths as root in places a
// jail may have written (a writable bind), as brig run's --result file. The
// path returned holds no symlink: open it with RESOLVE_NO_SYMLINKS.
func ResolveHostPath(path string, followSymlinks bool) (string, error) {
	p, _, err := resolveBindSource(path, followSymlinks)
	return p, err
}

// readlinkFD reads the target of a symlink opened with O_PATH|O_NOFOLLOW.
func readlinkFD(fd int) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(fd, "", buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// SymlinkError is a bind source that passes through a symlink brig will not
// follow on its own: one that someone other than root owns.
type SymlinkError struct {
	Path   string // the source as the caller gave it
	Link   string // the symlink, resolved up to it
	Target string // what it points to
	UID    uint32 // its owner on the host
}

func (e *SymlinkError) Error() string {
	return fmt.Sprintf("%s is a symlink to %s owned by uid %d, not root: brig follows only root's symlinks in a bind source, "+
		"since one of anyone else's may have been planted by a jail that had its directory as a writable bind; "+
		"bind the real path, or opt in to following it (Bind.FollowSymlinks, CLI: SRC:DST:follow)", e.Link, e.Target, e.UID)
}

// bindOwner is the host owner an idmapped bind (Bind.IDMap) maps the jail's
// user to: the one given, or the source's owner. It reports false when no
// idmapped mount is needed: an unprivileged supervisor's jail user already
// is the supervisor on the host.
func bindOwner(b Bind, st *unix.Stat_t) (bool, uint32, uint32, error) {
	uid, gid := b.OwnerUID, b.OwnerGID
	if uid == 0 {
		uid = st.Uid
	}
	if gid == 0 {
		gid = st.Gid
	}
	if os.Geteuid() != 0 {
		// The jail's user is this process's uid on the host already; its
		// group is this process's gid (ids.go).
		if uid != uint32(os.Geteuid()) || (b.OwnerGID != 0 && b.OwnerGID != uint32(os.Getegid())) {
			return false, 0, 0, fmt.Errorf("an idmapped bind with owner %d:%d needs a supervisor running as root; "+
				"unprivileged, the jail's user is you (uid %d, gid %d) on the host, on every bind", uid, gid, os.Geteuid(), os.Getegid())
		}
		return false, 0, 0, nil
	}
	// Never root: the jail could then change root's files there, make its
	// own setuid-root, and plant symlinks owned by root, which a later
	// bind source would follow (resolveBindSource).
	if uid == 0 || gid == 0 {
		return false, 0, 0, fmt.Errorf("idmapped bind: the owner would be root (uid %d, gid %d): brig never maps a jail's user to host root, "+
			"whose files it could then change and make setuid; give Bind.OwnerUID and OwnerGID (CLI: SRC:DST:uid=N,gid=N), "+
			"or chown the directory to the user its output is for", uid, gid)
	}
	return true, uid, gid, nil
}

// The system part of the mounts is resolved at most once a second: ~25
// symlink resolutions and stats that every jail would repeat (0.25 ms).
// The caller's binds are resolved for each jail.
func (s *Supervisor) systemMounts() ([]mountSpec, error) {
	systemCache := &s.system
	systemCache.Lock()
	defer systemCache.Unlock()
	if systemCache.mounts != nil && time.Since(systemCache.at) < time.Second {
		return systemCache.mounts, nil
	}
	var ms []mountSpec
	for _, d := range systemDirs {
		fi, err := os.Lstat(d)
		if err != nil {
			continue
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(d)
			if err != nil {
				return nil, fmt.Errorf("read symlink %s: %w", d, err)
			}
			ms = append(ms, mountSpec{Target: d, Symlink: target})
			continue
		}
		ms = append(ms, mountSpec{Source: d, Target: d})
	}
	etc := etcFiles
	if py, err := filepath.Glob("/etc/python3*"); err == nil {
		etc = append(etc[:len(etc):len(etc)], py...)
	}
	// Each source fully resolved, as EvalSymlinks(f) would give it (init
	// opens a copy's source in its own view of the host, where an absolute
	// symlink would point elsewhere), but with EvalSymlinks run once per
	// directory (/etc, /etc/ssl) and an lstat per file: a one-shot `brig
	// run` builds this on its critical path.
	dirs := map[string]string{}
	for _, f := range etc {
		dir, ok := dirs[filepath.Dir(f)]
		if !ok {
			dir, _ = filepath.EvalSymlinks(filepath.Dir(f))
			dirs[filepath.Dir(f)] = dir
		}
		if dir == "" {
			continue
		}
		src := filepath.Join(dir, filepath.Base(f))
		fi, err := os.Lstat(src)
		if err != nil {
			continue // optional: absent on this host
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			if src, err = filepath.EvalSymlinks(src); err != nil {
				continue
			}
			fi, err = os.Stat(src)
		}
		// A small world-readable file is copied into the jail's /etc: a
		// copy costs a read and a write, a bind four system calls more and
		// a mount the jail's teardown must undo.
		small := err == nil && fi.Mode().IsRegular() && fi.Size() <= maxEtcCopy && fi.Mode().Perm()&0o004 != 0
		ms = append(ms, mountSpec{Source: src, Target: f, Optional: true, Copy: small})
	}
	systemCache.at, systemCache.mounts = time.Now(), ms
	return ms, nil
}
