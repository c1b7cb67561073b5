package jail

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/internal/stage"
	"github.com/brig-sandbox/brig/internal/supervisor"
	"github.com/brig-sandbox/brig/internal/testenv"
)

// plantLinks runs a first jail with out bound writable at /out that plants
// links there, as a hostile program would: hostroot -> / and secret -> a
// 0644 file inside a 0700 root-owned directory.
func plantLinks(t *testing.T, out, secret string) {
	t.Helper()
	cfg := Config{Binds: []Bind{{Source: out, Target: "/out", Writable: true}}}
	_, errOut, r, err := run(t, cfg, "/bin/sh", "-c", "ln -s / /out/hostroot && ln -s "+secret+" /out/secret")
	require.NoError(t, err, errOut)
	require.True(t, r.Success(), errOut)
	fi, err := os.Lstat(filepath.Join(out, "hostroot"))
	require.NoError(t, err)
	require.NotZero(t, fi.Sys().(*syscall.Stat_t).Uid, "the jail's links belong to its unprivileged host uid")
}

// The two-step attack of issue 16: a second jail binding a symlink the
// first planted must not get the host's root, nor a file it could not reach.
func TestBindPlantedSymlinkRefused(t *testing.T) {
	testenv.RequireRoot(t)
	mounts := countMounts()
	out := t.TempDir()
	require.NoError(t, os.Chmod(out, 0o777))
	private := t.TempDir() // 0700, root's
	secret := filepath.Join(private, "secret")
	require.NoError(t, os.WriteFile(secret, []byte("s3cret\n"), 0o644))
	plantLinks(t, out, secret)

	for _, c := range []struct{ link, target, to string }{
		{"hostroot", "/h", "/"},
		{"secret", "/s", secret},
	} {
		src := filepath.Join(out, c.link)
		cfg := Config{Binds: []Bind{{Source: src, Target: c.target}}}
		stdout, _, _, err := run(t, cfg, "/bin/sh", "-c", "ls "+c.target+"; cat "+c.target)
		var setup *SetupError
		require.ErrorAs(t, err, &setup, "the bind of %s must fail", src)
		assert.Equal(t, "resolve binds", setup.Step)
		assert.Contains(t, setup.Err.Error(), src+" is a symlink to "+c.to+" owned by uid ")
		assert.Contains(t, setup.Err.Error(), "not root")
		assert.Contains(t, setup.Err.Error(), "FollowSymlinks")
		assert.Empty(t, stdout, "nothing ran")
		// The CLI and the template path too.
		_, ok := supervisor.TemplateKeyOf(mustPlan(t, cfg), DefaultWorkDir)
		assert.False(t, ok, "no template is keyed on a refused source")
	}
	// The Go API names it as a type as well.
	_, err := ResolveHostPath(filepath.Join(out, "hostroot", "etc"), false)
	var se *SymlinkError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, filepath.Join(out, "hostroot"), se.Link)
	assert.Equal(t, "/", se.Target)
	assertHostClean(t, mounts)
}

// The benign side: the host's own symlinks (root's) are followed.
func TestBindThroughRootSymlink(t *testing.T) {
	testenv.RequireRoot(t)
	mounts := countMounts()
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	require.NoError(t, os.Mkdir(real, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(real, "f"), []byte("via root's link\n"), 0o644))
	require.NoError(t, os.Symlink("real", filepath.Join(dir, "link"))) // root's: the test runs as root
	binds := []Bind{{Source: filepath.Join(dir, "link"), Target: "/d"}}
	cat := "cat /d/f"
	if fi, err := os.Lstat("/lib"); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		// A merged-/usr host: /lib -> usr/lib.
		if _, err := os.Stat("/lib/os-release"); err == nil {
			binds = append(binds, Bind{Source: "/lib/os-release", Target: "/osr"})
			cat += "; head -c 0 /osr && echo osr"
		}
	}
	stdout, errOut, r, err := run(t, Config{Binds: binds}, "/bin/sh", "-c", cat)
	require.NoError(t, err, errOut)
	require.True(t, r.Success(), errOut)
	assert.True(t, strings.HasPrefix(stdout, "via root's link\n"), stdout)
	if len(binds) > 1 {
		assert.Contains(t, stdout, "osr")
	}
	assertHostClean(t, mounts)
}

// Bind.FollowSymlinks follows a symlink of anyone's; without it the same
// source is refused.
func TestBindFollowSymlinksOptIn(t *testing.T) {
	testenv.RequireRoot(t)
	mounts := countMounts()
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	require.NoError(t, os.Mkdir(real, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(real, "f"), []byte("followed\n"), 0o644))
	link := filepath.Join(dir, "users-link")
	require.NoError(t, os.Symlink(real, link))
	require.NoError(t, os.Lchown(link, 4242, 4242))

	_, _, _, err := run(t, Config{Binds: []Bind{{Source: link, Target: "/d"}}}, "/bin/cat", "/d/f")
	var setup *SetupError
	require.ErrorAs(t, err, &setup)
	assert.Contains(t, setup.Err.Error(), "owned by uid 4242")

	stdout, errOut, r, err := run(t, Config{Binds: []Bind{{Source: link, Target: "/d", FollowSymlinks: true}}}, "/bin/cat", "/d/f")
	require.NoError(t, err, errOut)
	require.True(t, r.Success(), errOut)
	assert.Equal(t, "followed\n", stdout)
	assertHostClean(t, mounts)
}

// A source swapped between the supervisor's resolution and the helper's
// open fails closed: for another directory, and for a symlink (even root's).
func TestBindSourceSwappedFailsClosed(t *testing.T) {
	testenv.RequireRoot(t)
	mounts := countMounts()
	for _, c := range []struct {
		name, want string
		swap       func(src string) error
	}{
		{"directory", "is no longer the file brig resolved", func(src string) error {
			if err := os.Rename(src, src+".old"); err != nil {
				return err
			}
			return os.Mkdir(src, 0o755)
		}},
		{"symlink", "a symlink has appeared in the path", func(src string) error {
			if err := os.Rename(src, src+".old"); err != nil {
				return err
			}
			return os.Symlink("/", src)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "src")
			require.NoError(t, os.Mkdir(src, 0o755))
			supervisor.SetAfterBindsResolved(func([]stage.Mount) { require.NoError(t, c.swap(src)) })
			defer supervisor.SetAfterBindsResolved(nil)
			stdout, _, _, err := run(t, Config{Binds: []Bind{{Source: src, Target: "/d"}}}, "/bin/ls", "/d")
			var setup *SetupError
			require.ErrorAs(t, err, &setup)
			assert.Equal(t, "bind", setup.Step)
			assert.Contains(t, setup.Err.Error(), c.want)
			assert.Empty(t, stdout)
		})
	}
	assertHostClean(t, mounts)
}

// TestResolveBindSource checks the walk itself against the kernel's.
func TestResolveBindSource(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755))
	require.NoError(t, os.Symlink("a/b", filepath.Join(dir, "rel")))
	require.NoError(t, os.Symlink(filepath.Join(dir, "a"), filepath.Join(dir, "abs")))
	require.NoError(t, os.Symlink("loop", filepath.Join(dir, "loop")))
	for _, p := range []string{
		dir + "/rel", dir + "/abs/b", dir + "/rel/../b/.", dir + "/a/b/../../abs", "/lib", "/",
	} {
		want, err := filepath.EvalSymlinks(p)
		require.NoError(t, err)
		got, st, err := supervisor.ResolveBindSource(p, false)
		require.NoError(t, err, p)
		assert.Equal(t, want, got, p)
		var kst syscall.Stat_t
		require.NoError(t, syscall.Stat(want, &kst))
		assert.Equal(t, kst.Ino, st.Ino, p)
	}
	_, _, err := supervisor.ResolveBindSource(dir+"/loop", true)
	assert.True(t, errors.Is(err, syscall.ELOOP), "%v", err)
	_, _, err = supervisor.ResolveBindSource(dir+"/none", false)
	assert.True(t, errors.Is(err, os.ErrNotExist), "%v", err)
	_, _, err = supervisor.ResolveBindSource("rel", false)
	assert.Error(t, err)
}

// ownerOf is the host owner of path.
func ownerOf(t *testing.T, path string) (uint32, uint32) {
	t.Helper()
	fi, err := os.Lstat(path)
	require.NoError(t, err)
	st := fi.Sys().(*syscall.Stat_t)
	return st.Uid, st.Gid
}

// A two-step job writing to the same output directory: without IDMap the
// second jail (another host uid) cannot change what the first wrote, nor
// write at all in a directory only its owner may write; with IDMap both
// write as the directory's owner, whose files they are on the host.
func TestBindIDMapTwoRuns(t *testing.T) {
	testenv.RequireRoot(t)
	mounts := countMounts()
	out := filepath.Join(t.TempDir(), "out")
	require.NoError(t, os.Mkdir(out, 0o755))
	require.NoError(t, os.Chown(out, 4242, 4343))
	require.NoError(t, os.Chmod(filepath.Dir(out), 0o755))

	// Without: the owner's 0755 directory is not the jail's to write.
	plain := Config{Binds: []Bind{{Source: out, Target: "/out", Writable: true}}}
	stdout, errOut, r, err := run(t, plain, "/bin/sh", "-c", "echo x > /out/a 2>/dev/null && echo wrote || echo refused")
	require.NoError(t, err, errOut)
	require.True(t, r.Success(), errOut)
	assert.Equal(t, "refused\n", stdout)

	cfg := Config{Binds: []Bind{{Source: out, Target: "/out", Writable: true, IDMap: true}}}
	stdout, errOut, r, err = run(t, cfg, "/bin/sh", "-c",
		"stat -c '%u:%g' /out && echo one > /out/a && mkdir /out/d && echo two > /out/d/b && stat -c '%u:%g' /out/a")
	if err != nil && strings.Contains(err.Error(), "cannot be idmapped on this kernel") {
		// tmpfs (the test VM's /tmp) takes idmapped mounts from Linux 6.3.
		t.Skipf("this kernel cannot idmap the filesystem of %s: %v", out, err)
	}
	require.NoError(t, err, errOut)
	require.True(t, r.Success(), errOut)
	assert.Equal(t, "1000:1000\n1000:1000\n", stdout, "the owner is the jail's user on the bind")
	for _, p := range []string{"a", "d", "d/b"} {
		uid, gid := ownerOf(t, filepath.Join(out, p))
		assert.Equal(t, [2]uint32{4242, 4343}, [2]uint32{uid, gid}, p)
	}
	// The second run, another jail with another host uid, changes and
	// removes what the first wrote.
	stdout, errOut, r, err = run(t, cfg, "/bin/sh", "-c", "cat /out/a && echo three >> /out/a && rm -r /out/d && echo done")
	require.NoError(t, err, errOut)
	require.True(t, r.Success(), errOut)
	assert.Equal(t, "one\ndone\n", stdout)
	b, err := os.ReadFile(filepath.Join(out, "a"))
	require.NoError(t, err)
	assert.Equal(t, "one\nthree\n", string(b))
	_, err = os.Lstat(filepath.Join(out, "d"))
	assert.True(t, errors.Is(err, os.ErrNotExist), "removed by the second run: %v", err)

	// Files of other owners are nobody's there: readable as the world
	// may, never writable.
	require.NoError(t, os.WriteFile(filepath.Join(out, "roots"), []byte("r\n"), 0o644))
	stdout, errOut, r, err = run(t, cfg, "/bin/sh", "-c", "stat -c '%u' /out/roots; cat /out/roots; echo x >> /out/roots 2>/dev/null || echo refused")
	require.NoError(t, err, errOut)
	require.True(t, r.Success(), errOut)
	assert.Equal(t, "65534\nr\nrefused\n", stdout)

	// A given owner instead of the directory's: a root-owned tree with a
	// directory of the owner's inside. Only inodes whose owner and group
	// are both the mapped ones may be written (the kernel refuses writes
	// to an inode with an unmapped id).
	top := filepath.Join(t.TempDir(), "top")
	require.NoError(t, os.MkdirAll(filepath.Join(top, "mine"), 0o755))
	require.NoError(t, os.Chmod(filepath.Dir(top), 0o755))
	require.NoError(t, os.Chown(filepath.Join(top, "mine"), 4242, 4343))
	given := Config{Binds: []Bind{{Source: top, Target: "/out", Writable: true, IDMap: true, OwnerUID: 4242, OwnerGID: 4343}}}
	stdout, errOut, r, err = run(t, given, "/bin/sh", "-c", "echo g > /out/mine/g && echo mine; echo t > /out/t 2>/dev/null || echo top refused")
	require.NoError(t, err, errOut)
	require.True(t, r.Success(), errOut)
	assert.Equal(t, "mine\ntop refused\n", stdout)
	uid, gid := ownerOf(t, filepath.Join(top, "mine", "g"))
	assert.Equal(t, [2]uint32{4242, 4343}, [2]uint32{uid, gid})
	assertHostClean(t, mounts)
	assert.Empty(t, idmapProcesses(4242), "the user namespace that described the idmap is gone with its process")
}

// idmapProcesses lists host processes in a user namespace that maps uid
// (as the helper's idmap namespaces do).
func idmapProcesses(uid uint32) []string {
	var left []string
	maps, _ := filepath.Glob("/proc/[0-9]*/uid_map")
	for _, f := range maps {
		b, err := os.ReadFile(f)
		if err == nil && strings.HasPrefix(strings.TrimSpace(string(b)), fmt.Sprint(uid)+" ") {
			left = append(left, f)
		}
	}
	return left
}

// Root is never an owner, and a filesystem that cannot be idmapped says so.
func TestBindIDMapRefusals(t *testing.T) {
	testenv.RequireRoot(t)
	mounts := countMounts()
	dir := t.TempDir() // root's
	_, _, _, err := run(t, Config{Binds: []Bind{{Source: dir, Target: "/out", Writable: true, IDMap: true}}}, "/bin/true")
	var setup *SetupError
	require.ErrorAs(t, err, &setup)
	assert.Contains(t, setup.Err.Error(), "the owner would be root")
	assert.Contains(t, setup.Err.Error(), "OwnerUID")

	// sysfs cannot be idmapped.
	_, _, _, err = run(t, Config{Binds: []Bind{{Source: "/sys/kernel/mm", Target: "/k", IDMap: true, OwnerUID: 4242, OwnerGID: 4242}}}, "/bin/true")
	require.ErrorAs(t, err, &setup)
	assert.Equal(t, "bind", setup.Step)
	assert.Contains(t, setup.Err.Error(), "cannot be idmapped")
	assertHostClean(t, mounts)
}

// A bind target inside a writable bind is a mount point created in the
// host directory: one the jail planted there as a symlink is refused
// (attach_tree opens it beneath the root following none), and nothing is
// mounted or created through it.
func TestNestedBindTargetPlantedSymlink(t *testing.T) {
	testenv.RequireRoot(t)
	mounts := countMounts()
	out := t.TempDir()
	require.NoError(t, os.Chmod(out, 0o777))
	victim := t.TempDir()
	cfg := Config{Binds: []Bind{{Source: out, Target: "/out", Writable: true}}}
	_, errOut, r, err := run(t, cfg, "/bin/ln", "-s", victim, "/out/sub")
	require.NoError(t, err, errOut)
	require.True(t, r.Success(), errOut)

	data := t.TempDir()
	for target, want := range map[string]string{
		"/out/sub":   "/out/sub is a symlink",
		"/out/sub/x": "open /out/sub in jail: " + syscall.ENOTDIR.Error(),
	} {
		_, _, _, err = run(t, Config{Binds: []Bind{cfg.Binds[0], {Source: data, Target: target}}}, "/bin/true")
		var setup *SetupError
		require.ErrorAs(t, err, &setup, target)
		assert.Contains(t, setup.Err.Error(), want, target)
	}
	ents, err := os.ReadDir(victim)
	require.NoError(t, err)
	assert.Empty(t, ents, "nothing created through the link")
	assertHostClean(t, mounts)
}
