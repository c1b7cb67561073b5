package jail

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
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

// identityNames are the jail's own /etc files, in identityFiles' order.
var identityNames = [4]string{"passwd", "group", "hosts", "hostname"}

// identityFiles are the contents of the jail's /etc/passwd, group, hosts and
// hostname: its users by name, and nothing of the host's. mounts.c writes
// them into a root it builds, roottemplate.go into a template.
func identityFiles(home, hostname string) []string {
	return []string{
		fmt.Sprintf("root:x:0:0:root:/root:/usr/sbin/nologin\nbrig:x:%d:%d:brig:%s:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n", JailUID, JailGID, home),
		fmt.Sprintf("root:x:0:\nbrig:x:%d:\nnogroup:x:65534:\n", JailGID),
		fmt.Sprintf("127.0.0.1\tlocalhost %s\n::1\tlocalhost %s\n", hostname, hostname),
		hostname + "\n",
	}
}

// maxEtcCopy is the largest /etc file copied rather than bound.
const maxEtcCopy = 128 << 10

// rootMounts lists the jail's system mounts followed by the caller's binds,
// with every host source resolved now, on the host: inside the jail an
// absolute symlink would resolve against the wrong root.
func rootMounts(binds []Bind) ([]mountSpec, error) {
	sys, err := systemMounts()
	if err != nil {
		return nil, err
	}
	ms, err := bindMounts(binds)
	if err != nil {
		return nil, err
	}
	return append(slices.Clip(sys), ms...), nil
}

// bindMounts are the caller's binds alone (a jail from a root template
// gets the system mounts with it).
func bindMounts(binds []Bind) ([]mountSpec, error) {
	var ms []mountSpec
	for _, b := range binds {
		src, err := filepath.EvalSymlinks(b.Source)
		if err != nil {
			return nil, fmt.Errorf("bind %s: %w", b.Source, err)
		}
		ms = append(ms, mountSpec{Source: src, Target: b.Target, Writable: b.Writable})
	}
	return ms, nil
}

// The system part of the mounts is resolved at most once a second: ~25
// symlink resolutions and stats that every jail would repeat (0.25 ms).
// The caller's binds are resolved for each jail.
var systemCache struct {
	sync.Mutex
	at     time.Time
	mounts []mountSpec
}

func systemMounts() ([]mountSpec, error) {
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
