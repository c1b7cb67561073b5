package supervisor

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A root template is the part of a jail's root that is the same for every
// jail of one work directory, hostname and set of bind targets: the root
// tmpfs with the /etc copies and identity files, the system binds (/usr,
// /etc directories), /dev with its device nodes, and the empty mount points
// of what each jail gets of its own (/proc, /tmp, /dev/pts, /dev/shm, the
// work directory, the caller's binds and tmpfs directories). The caller's binds themselves are
// cloned for each jail, as before: a source replaced on the host is what
// the next jail gets. The
// supervisor builds it once as a detached, read-only mount tree (fsmount,
// never in the host's mount table), and each jail's init clones it with one
// open_tree and attaches the clone as its root, instead of ~25 copies, ~12
// binds and ~30 mkdirs and symlinks of its own (mount.c's mount_build_root does
// both).
//
// A jail cannot change the template, although every jail's root shares its
// tmpfs: the tmpfs belongs to the host's user namespace (no jail may
// remount it) and its files to the host's root, who is unmapped in every
// jail (so no jail may write them, whatever the mount's flags), and the
// program's process has no capabilities and no mount system calls anyway.
// The files show as owned by nobody in the jail, where the classic root's
// show as owned by the jail's root; both are read-only to the program.
//
// Building and cloning a detached mount tree takes a recent kernel (6.18
// can, 6.1 cannot: the first build probes it); on older kernels
// every jail builds its root itself, as before (as do the jails of a work
// directory whose template failed to build: a bind target below /usr, say,
// where the classic root cannot create a mount point either, and the jail
// then fails there as before, naming the step).
//
// A template lives a second (systemMounts' cache): a changed host /etc
// reaches new jails within a second, as a new /etc file or directory did
// before. It is built in the background when a second jail asks for the
// same key, so a one-jail process (`brig run`) never pays for it; jails
// started meanwhile build their own root. One that no jail asked for in ten
// seconds is closed.

// templatesEnabled turns templates off for tests that compare both ways.
var templatesEnabled atomic.Bool

func init() { templatesEnabled.Store(true) }

// templateUses counts jails started from a template, templatesOpen the
// templates whose fd is open, in the process (for tests: they hold an fd
// each, as a cache); Supervisor.templatesOpen counts its own.
var templateUses, templatesOpen atomic.Int64

type rootTemplate struct {
	sup   *Supervisor
	fd    *os.File // the detached tree (an O_PATH-like mount fd)
	built time.Time
	users int  // jails between acquire and release
	stale bool // replaced: closed when the last user releases it
}

// templateKey: mountPoints lists the caller's bind targets, "d /path" or
// "f /path" (a directory or a file), one per line in the binds' order, then
// the Config.Tmpfs paths as "d /path": a jail's root is read-only, so the
// template must hold every mount point.
type templateKey struct{ dir, hostname, mountPoints string }

// templateKeyOf is the key of a jail with this configuration and working
// directory, or false when no template may serve it: a Cmd.Dir as given
// (not cleaned, maybe relative) is left to init, which creates what it
// names beneath the root, and a bind source that cannot be looked at to
// the jail's own set-up, which reports it.
func templateKeyOf(cfg *Plan, dir string) (templateKey, bool) {
	if !path.IsAbs(dir) || path.Clean(dir) != dir {
		return templateKey{}, false
	}
	var b strings.Builder
	for _, bind := range cfg.Binds {
		// Resolved as the jail's own bind will be (rootfs.go): a symlink
		// brig would refuse is left to that, which reports it.
		_, st, err := resolveBindSource(bind.Source, bind.FollowSymlinks)
		if err != nil {
			return templateKey{}, false
		}
		kind := "f"
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			kind = "d"
		}
		fmt.Fprintf(&b, "%s %s\n", kind, bind.Target)
	}
	for _, t := range cfg.Tmpfs {
		fmt.Fprintf(&b, "d %s\n", t)
	}
	return templateKey{dir, cfg.Hostname, b.String()}, true
}

// templateState is what the supervisor knows of one key.
type templateState struct {
	current  *rootTemplate
	asked    int // jails that asked
	lastAsk  time.Time
	building bool
	failed   bool  // a build failed: never tried again
	err      error // why it failed
}

const templateIdle = 10 * time.Second

// templateCache is a Supervisor's root templates.
type templateCache struct {
	sync.Mutex
	byKey       map[templateKey]*templateState
	unsupported bool // the kernel cannot clone a detached tree
}

// acquireTemplate returns the template for a jail with this work
// directory, hostname and bind targets, or nil: the jail then builds its
// root itself. A non-nil template must be released once the helper
// has its fd.
func (s *Supervisor) acquireTemplate(cfg *Plan, dir string) *rootTemplate {
	if !templatesEnabled.Load() || os.Geteuid() != 0 {
		return nil
	}
	key, ok := templateKeyOf(cfg, dir)
	if !ok {
		return nil
	}
	now := time.Now()
	templates := &s.templates
	templates.Lock()
	defer templates.Unlock()
	if templates.unsupported {
		return nil
	}
	if templates.byKey == nil {
		templates.byKey = map[templateKey]*templateState{}
	}
	for k, st := range templates.byKey {
		if k != key && !st.building && now.Sub(st.lastAsk) > templateIdle {
			st.current.retire()
			delete(templates.byKey, k)
		}
	}
	st := templates.byKey[key]
	if st == nil {
		st = &templateState{}
		templates.byKey[key] = st
	}
	st.asked++
	st.lastAsk = now
	if t := st.current; t != nil && now.Sub(t.built) < time.Second {
		t.users++
		templateUses.Add(1)
		return t
	}
	if st.asked >= 2 && !st.building && !st.failed {
		st.building = true
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			_ = s.refreshTemplate(key)
		}()
	}
	return nil
}

// retire closes t once no jail is handing it to a helper.
func (t *rootTemplate) retire() {
	if t == nil {
		return
	}
	t.stale = true
	if t.users == 0 {
		t.close()
	}
}

func (t *rootTemplate) close() {
	t.fd.Close()
	templatesOpen.Add(-1)
	t.sup.templatesOpen.Add(-1)
}

func (t *rootTemplate) release() {
	templates := &t.sup.templates
	templates.Lock()
	defer templates.Unlock()
	t.users--
	if t.stale && t.users == 0 {
		t.close()
	}
}

// refreshTemplate builds the template for key and puts it in place of the
// one it replaces.
func (s *Supervisor) refreshTemplate(key templateKey) error {
	fd, err := s.buildTemplate(key)
	templates := &s.templates
	templates.Lock()
	defer templates.Unlock()
	if templates.byKey == nil { // closed meanwhile
		templates.byKey = map[templateKey]*templateState{}
	}
	st := templates.byKey[key]
	if st == nil { // dropped meanwhile
		st = &templateState{lastAsk: time.Now()}
		templates.byKey[key] = st
	}
	st.building = false
	if err != nil {
		// Not tried again in this process: an older kernel (for every
		// key), or a work directory the template cannot take (this key);
		// those jails build their own root.
		if errors.Is(err, errTemplateUnsupported) {
			templates.unsupported = true
		}
		st.failed, st.err = true, err
		slog.Debug("brig: jails build their own root", "dir", key.dir, "reason", err)
		return err
	}
	st.current.retire()
	st.current = &rootTemplate{sup: s, fd: fd, built: time.Now()}
	templatesOpen.Add(1)
	s.templatesOpen.Add(1)
	return nil
}

// closeTemplates forgets every template, closing each fd once no jail is
// handing it to a helper; the supervisor's next jails build anew. No
// build runs: Close waited for them.
func (s *Supervisor) closeTemplates() {
	s.templates.Lock()
	defer s.templates.Unlock()
	for _, st := range s.templates.byKey {
		st.current.retire()
	}
	s.templates.byKey = nil
}

// buildTemplateNow builds the template of cfg's jails in the caller's
// goroutine (for tests, and for TestMain to build it before fds are counted).
func (s *Supervisor) buildTemplateNow(full Plan) error {
	key, ok := templateKeyOf(&full, full.WorkDir)
	if !ok {
		return errors.New("no template for this configuration (a bind source cannot be looked at)")
	}
	templates := &s.templates
	templates.Lock()
	if templates.byKey == nil {
		templates.byKey = map[templateKey]*templateState{}
	}
	if templates.byKey[key] == nil {
		templates.byKey[key] = &templateState{}
	}
	templates.byKey[key].building = true
	templates.byKey[key].lastAsk = time.Now()
	templates.Unlock()
	return s.refreshTemplate(key)
}

var errTemplateUnsupported = errors.New("this kernel cannot build a detached mount tree and clone it (Linux 6.18 can, 6.1 cannot)")

func (s *Supervisor) buildTemplate(key templateKey) (*os.File, error) {
	dir, hostname := key.dir, key.hostname
	mounts, err := s.systemMounts()
	if err != nil {
		return nil, err
	}
	// A file open for writing on the template keeps it from turning
	// read-only (EBUSY), and so does a fork of this process while one is
	// open: the child shares the open file until it execs. Go's forks
	// (os/exec, a spawner's start) take ForkLock for writing, so none
	// happens while the builder holds it for reading, from its first file
	// to the read-only flag.
	syscall.ForkLock.RLock()
	unlockFork := sync.OnceFunc(syscall.ForkLock.RUnlock)
	defer unlockFork()
	root, err := newTmpfs("mode=0755,size=4m", unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(root)
		}
	}()
	// The same entries a jail's init applies to a root of its own
	// (rootfs.go), then the work directory's mount point, as bind_scratch's
	// attach_tree would make it.
	b := templateBuilder{root: root}
	for _, m := range rootOwn(dir, hostname) {
		b.apply(m)
	}
	b.mkdirs(dir)
	for _, m := range mounts {
		b.apply(m)
	}
	b.attachOwnTmpfs()
	// The caller's binds' and tmpfs directories' mount points, as
	// attach_tree would make them.
	for _, line := range strings.Split(strings.TrimSuffix(key.mountPoints, "\n"), "\n") {
		kind, target, ok := strings.Cut(line, " ")
		switch {
		case !ok:
		case kind == "d":
			b.mkdirs(target)
		case b.err == nil && b.exists(target):
			// a file of the template's own (an /etc copy): bound over, as in a jail's root
		default:
			if f := b.create(target, 0o644); f != nil {
				f.Close()
			}
		}
	}
	if b.err == nil {
		// Private, as init makes its whole mount namespace before it
		// builds a root: a bind of a shared host mount would otherwise
		// stay in the host mount's peer group, in every jail's clone too.
		b.fail("make private", unix.MountSetattr(root, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &unix.MountAttr{Propagation: unix.MS_PRIVATE}))
		b.fail("make read-only", unix.MountSetattr(root, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}))
	}
	unlockFork()
	if b.err != nil {
		return nil, fmt.Errorf("root template: %w", b.err)
	}
	// The jails clone it from other mount namespaces: try it here.
	probe, err := unix.OpenTree(root, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH|unix.AT_RECURSIVE)
	if err != nil {
		return nil, fmt.Errorf("%w: clone: %v", errTemplateUnsupported, err)
	}
	unix.Close(probe)
	ok = true
	return os.NewFile(uintptr(root), "root template"), nil
}

func newTmpfs(options string, attr int) (int, error) {
	fs, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("root template: fsopen: %w", err)
	}
	defer unix.Close(fs)
	// "tmpfs" is what mount(2) names it: the jails' mountinfo reads the same.
	if err := unix.FsconfigSetString(fs, "source", "tmpfs"); err != nil {
		return -1, fmt.Errorf("root template: tmpfs source: %w", err)
	}
	for _, o := range strings.Split(options, ",") {
		k, v, _ := strings.Cut(o, "=")
		if err := unix.FsconfigSetString(fs, k, v); err != nil {
			return -1, fmt.Errorf("root template: tmpfs %s: %w", o, err)
		}
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return -1, fmt.Errorf("root template: tmpfs: %w", err)
	}
	fd, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, attr)
	if err != nil {
		return -1, fmt.Errorf("root template: fsmount: %w", err)
	}
	return fd, nil
}

// templateBuilder fills the template; the first error sticks. Modes are set
// with fchmod, not through the process's umask.
type templateBuilder struct {
	root int
	err  error
	// A tmpfs of its own (an entry with Dir and Tmpfs: /dev) is filled
	// while detached, by own, with the entries below ownAt, then made
	// read-only and attached: a mount attached to a detached tree can no
	// longer be changed (mount_setattr refuses it).
	own   *templateBuilder
	ownAt string
}

func templatePath(p string) string {
	p = strings.TrimLeft(path.Clean(p), "/")
	if p == "" {
		return "."
	}
	return p
}

func (b *templateBuilder) fail(step string, err error) {
	if b.err != nil || err == nil {
		return
	}
	// Older kernels refuse changes to a detached mount (Linux 6.1:
	// EOPNOTSUPP from mkdirat, EINVAL from move_mount).
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) {
		err = fmt.Errorf("%w: %w", errTemplateUnsupported, err)
	}
	b.err = fmt.Errorf("%s: %w", step, err)
}

func (b *templateBuilder) mkdir(p string, mode uint32) {
	if b.err != nil {
		return
	}
	err := unix.Mkdirat(b.root, templatePath(p), mode)
	if errors.Is(err, unix.EEXIST) {
		return
	}
	if err == nil {
		err = unix.Fchmodat(b.root, templatePath(p), mode, unix.AT_SYMLINK_NOFOLLOW)
	}
	b.fail("mkdir "+p, err)
}

func (b *templateBuilder) exists(p string) bool {
	var st unix.Stat_t
	return unix.Fstatat(b.root, templatePath(p), &st, unix.AT_SYMLINK_NOFOLLOW) == nil
}

// mkdirs makes p and what is missing above it, 0755 each (make_parents).
func (b *templateBuilder) mkdirs(p string) {
	var sofar string
	for _, part := range strings.Split(strings.Trim(path.Clean(p), "/"), "/") {
		if part == "" {
			continue
		}
		sofar += "/" + part
		b.mkdir(sofar, 0o755)
	}
}

// create makes an empty regular file, the mount point or start of a copy.
func (b *templateBuilder) create(p string, mode uint32) *os.File {
	if b.err != nil {
		return nil
	}
	b.mkdirs(path.Dir(p))
	fd, err := unix.Openat(b.root, templatePath(p), unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
	if err != nil {
		b.fail("create "+p, err)
		return nil
	}
	f := os.NewFile(uintptr(fd), p)
	b.fail("chmod "+p, f.Chmod(os.FileMode(mode)))
	return f
}

func (b *templateBuilder) write(p, content string, mode uint32) {
	if f := b.create(p, mode); f != nil {
		_, err := f.WriteString(content)
		b.fail("write "+p, errors.Join(err, f.Close()))
	}
}

func (b *templateBuilder) symlink(target, p string) {
	if b.err != nil {
		return
	}
	b.mkdirs(path.Dir(p))
	b.fail("symlink "+p, unix.Symlinkat(target, b.root, templatePath(p)))
}

// bind clones the host's tree at source onto p (a directory or file made
// here) with attr set.
func (b *templateBuilder) bind(source, p string, attr uint64) {
	if b.err != nil {
		return
	}
	// The system sources are resolved already (systemMounts): opened
	// following no symlink, as the helper opens every source.
	src, err := unix.Openat2(unix.AT_FDCWD, source, &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS})
	if err != nil {
		b.fail("bind "+p, err)
		return
	}
	tree, err := unix.OpenTree(src, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE|unix.AT_EMPTY_PATH)
	unix.Close(src)
	if err != nil {
		b.fail("bind "+p, err)
		return
	}
	defer unix.Close(tree)
	err = unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &unix.MountAttr{Attr_set: attr})
	if err == nil {
		err = unix.MoveMount(tree, "", b.root, templatePath(p), unix.MOVE_MOUNT_F_EMPTY_PATH)
	}
	b.fail("bind "+p, err)
}

// apply puts one entry of the root's description into the template as
// mount.c's apply_mount puts it into a jail's own root.
func (b *templateBuilder) apply(m mountSpec) {
	if b.own != nil {
		if rest, ok := strings.CutPrefix(m.Target, b.ownAt+"/"); ok {
			m.Target = "/" + rest
			b.own.apply(m)
			return
		}
		b.attachOwnTmpfs()
	}
	switch {
	case m.Dir && m.Tmpfs:
		b.mkdir(m.Target, m.Mode)
		if b.err != nil {
			return
		}
		fd, err := newTmpfs(m.Source, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC)
		if err != nil {
			b.fail(m.Target, err)
			return
		}
		b.own, b.ownAt = &templateBuilder{root: fd}, m.Target
	case m.Dir:
		b.mkdir(m.Target, m.Mode)
	case m.File:
		b.write(m.Target, m.Content, m.Mode)
	case m.Device:
		if f := b.create(m.Target, 0o644); f != nil {
			f.Close()
		}
		b.bind(m.Source, m.Target, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC)
	case m.Symlink != "":
		b.symlink(m.Symlink, m.Target)
	case m.Copy:
		b.copyFile(m)
	default:
		fi, err := os.Stat(m.Source)
		if err != nil {
			if !m.Optional {
				b.fail("bind "+m.Target, err)
			}
			return
		}
		if fi.IsDir() {
			b.mkdirs(m.Target)
		} else if f := b.create(m.Target, 0o644); f != nil {
			f.Close()
		}
		attr := uint64(unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV)
		if !m.Writable {
			attr |= unix.MOUNT_ATTR_RDONLY
		}
		b.bind(m.Source, m.Target, attr)
	}
}

// attachOwnTmpfs makes the tmpfs being filled read-only, as apply_root
// does, and attaches it at its place.
func (b *templateBuilder) attachOwnTmpfs() {
	own, at := b.own, b.ownAt
	if own == nil {
		return
	}
	b.own, b.ownAt = nil, ""
	defer unix.Close(own.root)
	if own.err == nil {
		own.err = unix.MountSetattr(own.root, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY})
	}
	if own.err == nil {
		own.fail("attach "+at, unix.MoveMount(own.root, "", b.root, templatePath(at), unix.MOVE_MOUNT_F_EMPTY_PATH))
	}
	b.fail(at, own.err)
}

func (b *templateBuilder) copyFile(m mountSpec) {
	in, err := os.OpenFile(m.Source, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		if !m.Optional || !(errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOTDIR)) {
			b.fail("copy "+m.Target, err)
		}
		return
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		b.fail("copy "+m.Target, fmt.Errorf("%s is not a regular file (%v)", m.Source, err))
		return
	}
	out := b.create(m.Target, uint32(fi.Mode().Perm()&0o755))
	if out == nil {
		return
	}
	_, err = io.Copy(out, io.LimitReader(in, maxEtcCopy))
	b.fail("copy "+m.Target, errors.Join(err, out.Close()))
}
