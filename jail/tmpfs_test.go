package jail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/internal/supervisor"
	"github.com/brig-sandbox/brig/internal/testenv"
)

var tmpfsPaths = []string{"/var/brig-tmpfs-test", "/home/brig/.cache", "/tmp/x", "/work/sub"}

// tmpfsProbe reports, for each path, whether it is empty, who owns it with
// what mode, its mount's options and filesystem type, then writes a file
// there and runs a copy of /bin/true from it (exec is allowed, as in /tmp).
func tmpfsProbe(paths []string) string {
	return jailedPrelude + fmt.Sprintf(`
import shutil, subprocess
mounts = {}
for line in open("/proc/self/mountinfo"):
    f = line.split()
    sep = f.index("-")
    mounts[f[4]] = (f[5], f[sep + 1])
for p in %s:
    st = os.stat(p)
    was = sorted(os.listdir(p))
    opts, fstype = mounts.get(p, ("-", "-"))
    with open(os.path.join(p, "f"), "w") as f:
        f.write("written\n")
    shutil.copy("/bin/true", os.path.join(p, "t"))
    rc = subprocess.call([os.path.join(p, "t")])
    print(p, "empty" if was == [] else was, st.st_uid, oct(st.st_mode & 0o7777), fstype,
          ",".join(sorted(o for o in opts.split(",") if o in ("rw", "ro", "nosuid", "nodev", "noexec"))), "exec", rc)
`, pyList(paths))
}

// pyList is paths as a Python list literal.
func pyList(paths []string) string {
	b, _ := json.Marshal(paths)
	return string(b)
}

func checkTmpfsProbe(t *testing.T, out string, paths []string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, len(paths), out)
	for i, p := range paths {
		assert.Equal(t, fmt.Sprintf("%s empty %d 0o755 tmpfs nodev,nosuid,rw exec 0", p, JailUID), lines[i])
	}
}

// hostMountAt reports whether the host's mount table has a mount at point.
func hostMountAt(t *testing.T, point string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == point {
			return true
		}
	}
	return false
}

func assertNoTmpfsOnHost(t *testing.T, paths []string) {
	t.Helper()
	for _, p := range paths {
		assert.False(t, hostMountAt(t, p), "a mount left at %s on the host", p)
	}
	_, err := os.Stat(paths[0])
	assert.ErrorIs(t, err, os.ErrNotExist, "the mount point of %s was made on the host", paths[0])
}

// TestTmpfs: each Config.Tmpfs path is a fresh, empty directory the
// program owns and may write and run programs from, nosuid and nodev, in
// a new directory of the read-only root, below /tmp or in the work
// directory alike; the next jail of the same config finds it empty again
// (the first run leaves files in each); nothing of it is on the host
// afterwards.
func TestTmpfs(t *testing.T) {
	testenv.RequireRoot(t)
	requirePython(t)
	mounts := countMounts()
	_, err := os.Stat(tmpfsPaths[0])
	require.ErrorIs(t, err, os.ErrNotExist, "the test's path must not exist on the host")
	for range 2 {
		out, errOut, _ := runPython(t, Config{Tmpfs: tmpfsPaths}, tmpfsProbe(tmpfsPaths))
		require.Empty(t, errOut)
		checkTmpfsProbe(t, out, tmpfsPaths)
	}
	// A root without a Tmpfs path has none of them.
	out, _, _ := runPython(t, Config{}, `print([os.path.exists(p) for p in `+pyList(tmpfsPaths)+`])`)
	assert.Equal(t, "[False, False, False, False]\n", out)
	assertNoTmpfsOnHost(t, tmpfsPaths)
	assertHostClean(t, mounts)
}

// TestTmpfsSharesTheSizeCap: however many Tmpfs paths a jail has, they
// share TmpfsSize and its inode cap with /tmp and the work directory: a
// jail never gets more writable memory by asking for more of them.
func TestTmpfsSharesTheSizeCap(t *testing.T) {
	testenv.RequireRoot(t)
	requirePython(t)
	mounts := countMounts()
	paths := []string{"/var/a", "/var/b", "/var/c", "/var/d"}
	cfg := Config{Tmpfs: paths, TmpfsSize: 4 << 20}
	// 256 KiB at a time into each in turn, /tmp and the work directory
	// too, until the space runs out.
	out, errOut, _ := runPython(t, cfg, fmt.Sprintf(`
import errno
dirs = %s + ["/tmp", "/work"]
total, err = 0, None
chunk = b"x" * (256 << 10)
files = [open(os.path.join(d, "fill"), "wb", buffering=0) for d in dirs]
while err is None and total < (64 << 20):
    for f in files:
        try:
            total += f.write(chunk)
        except OSError as e:
            err = errno.errorcode[e.errno]
            break
print(err, total)
# and files: the inode cap is shared too
for f in files:
    f.close()
    os.unlink(f.name)
n, err = 0, None
while err is None and n < 100000:
    try:
        open(os.path.join(dirs[n %% len(dirs)], "i%%d" %% n), "w").close()
        n += 1
    except OSError as e:
        err = errno.errorcode[e.errno]
print(err, n)
`, pyList(paths)))
	require.Empty(t, errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2, out)
	var errName string
	var total, files int
	_, err := fmt.Sscan(lines[0], &errName, &total)
	require.NoError(t, err, out)
	assert.Equal(t, "ENOSPC", errName, out)
	assert.LessOrEqual(t, total, 4<<20, "written in all of them together")
	assert.Greater(t, total, 3<<20, "the cap is the shared size, not less")
	_, err = fmt.Sscan(lines[1], &errName, &files)
	require.NoError(t, err, out)
	assert.Equal(t, "ENOSPC", errName, out)
	assert.LessOrEqual(t, files, (4<<20)>>10, "files in all of them together: one inode per KiB")
	assertHostClean(t, mounts)
}

// TestTmpfsRefused: a path the jail cannot make, or that would cover what
// programs need, is refused in the config step, naming it and what is
// allowed; nothing runs. /tmp is taken, changing nothing; the work
// directory gets a fresh one as any path does.
func TestTmpfsRefused(t *testing.T) {
	testenv.RequireRoot(t)
	mounts := countMounts()
	many := make([]string, MaxTmpfs+1)
	for i := range many {
		many[i] = fmt.Sprintf("/var/t%d", i)
	}
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Tmpfs: []string{"var/cache"}}, `tmpfs "var/cache": must be an absolute path`},
		{Config{Tmpfs: []string{"/"}}, "tmpfs /: must be a directory outside /, /proc, /dev, /sys, /etc, /usr"},
		{Config{Tmpfs: []string{"/proc/x"}}, "tmpfs /proc/x: must be a directory outside"},
		{Config{Tmpfs: []string{"/dev"}}, "tmpfs /dev: must be a directory outside"},
		{Config{Tmpfs: []string{"/dev/shm/x"}}, "tmpfs /dev/shm/x: must be a directory outside"},
		{Config{Tmpfs: []string{"/sys/fs"}}, "tmpfs /sys/fs: must be a directory outside"},
		{Config{Tmpfs: []string{"/usr/local/cache"}}, "tmpfs /usr/local/cache: must be a directory outside"},
		{Config{Tmpfs: []string{"/etc/x"}}, "tmpfs /etc/x: must be a directory outside"},
		{Config{Tmpfs: []string{"/var/../proc"}}, "tmpfs /var/../proc: must be a directory outside"},
		{Config{Tmpfs: []string{"/a", "/a/"}}, "tmpfs /a/: given twice"},
		{Config{Tmpfs: []string{"/data"}, Binds: []Bind{{Source: "/usr/share", Target: "/data"}}}, "tmpfs /data: is also a bind's target"},
		{Config{Tmpfs: many}, fmt.Sprintf("tmpfs: %d paths, at most %d", MaxTmpfs+1, MaxTmpfs)},
		{Config{Tmpfs: []string{"/a\x00b"}}, "without NUL"},
	} {
		stdout, _, _, err := run(t, c.cfg, "/bin/echo", "ran")
		var setup *SetupError
		require.ErrorAs(t, err, &setup, "%q", c.cfg.Tmpfs)
		assert.Equal(t, "config", setup.Step)
		assert.Contains(t, setup.Err.Error(), c.want)
		assert.Empty(t, stdout)
	}
	// The benign side: the most there may be, with /tmp (scratch already:
	// its mode stays) and the work directory.
	ok := append([]string{"/tmp", "/work/"}, many[:MaxTmpfs-2]...)
	out, errOut, r, err := run(t, Config{Tmpfs: ok}, "/bin/sh", "-c", `stat -c '%n %a %u' /tmp /work /var/t0 /var/t13; ls -A /var/t13`)
	require.NoError(t, err, errOut)
	require.True(t, r.Success())
	assert.Equal(t, fmt.Sprintf("/tmp 1777 0\n/work 755 %d\n/var/t0 755 %[1]d\n/var/t13 755 %[1]d\n", JailUID), out)
	full, err := Config{Tmpfs: ok}.withDefaults()
	require.NoError(t, err)
	assert.Equal(t, append([]string{"/work"}, many[:MaxTmpfs-2]...), full.Tmpfs, "/tmp is dropped, the rest cleaned")
	assertHostClean(t, mounts)
}

// TestTmpfsAndBinds: a bind whose target is inside a tmpfs shows through
// it (the tmpfs is mounted first), and a tmpfs inside a bind's target
// covers that part of the bind, whatever order they were given in.
func TestTmpfsAndBinds(t *testing.T) {
	testenv.RequireRoot(t)
	mounts := countMounts()
	data := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(data, "file"), []byte("from host\n"), 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(data, "cache"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(data, "cache", "old"), []byte("old\n"), 0o644))
	cfg := Config{
		Tmpfs: []string{"/data/cache", "/opt/t"},
		Binds: []Bind{{Source: data, Target: "/data"}, {Source: filepath.Join(data, "file"), Target: "/opt/t/conf"}},
	}
	out, errOut, r, err := run(t, cfg, "/bin/sh", "-c",
		`cat /data/file /opt/t/conf; ls -A /data/cache; echo new > /data/cache/new && echo wrote; ls -A /opt/t; echo x > /opt/t/w && echo wrote`)
	require.NoError(t, err, errOut)
	require.True(t, r.Success(), errOut)
	assert.Equal(t, "from host\nfrom host\nwrote\nconf\nwrote\n", out)
	_, err = os.Stat(filepath.Join(data, "cache", "new"))
	assert.ErrorIs(t, err, os.ErrNotExist, "written into the bind, not the tmpfs")
	// Inside a read-only bind, the mount point must be there already.
	_, _, _, err = run(t, Config{Tmpfs: []string{"/data/nope"}, Binds: []Bind{{Source: data, Target: "/data"}}}, "/bin/true")
	var setup *SetupError
	require.ErrorAs(t, err, &setup)
	assert.Equal(t, "tmpfs /data/nope", setup.Step)
	assert.Equal(t, "create mount point /data/nope: read-only file system", setup.Err.Error())
	assertHostClean(t, mounts)
}

// TestTmpfsPool: a pooled jail of a Config with Tmpfs paths has them, empty
// in each jail.
func TestTmpfsPool(t *testing.T) {
	requirePython(t)
	mounts := countMounts()
	p := newTestPool(t, Config{Tmpfs: tmpfsPaths}, 1)
	for range 2 {
		out, err := p.Command(context.Background(), python, "-c", tmpfsProbe(tmpfsPaths)).CombinedOutput()
		require.NoError(t, err, "%s", out)
		checkTmpfsProbe(t, string(out), tmpfsPaths)
	}
	assert.NotZero(t, p.Stats().Hits)
	p.Close()
	assertNoTmpfsOnHost(t, tmpfsPaths)
	assertHostClean(t, mounts)
}

// TestTmpfsRootTemplate: a jail started from the root template (whose root
// is read-only from the start) finds its Tmpfs paths' mount points there,
// and a jail of other Tmpfs paths gets a template of its own.
func TestTmpfsRootTemplate(t *testing.T) {
	testenv.RequireRoot(t)
	requirePython(t)
	mounts := countMounts()
	cfg := Config{Tmpfs: tmpfsPaths}
	if err := buildTemplateNow(DefaultSupervisor, cfg); errors.Is(err, supervisor.ErrTemplateUnsupported) {
		t.Skipf("no root templates here: %v", err)
	} else {
		require.NoError(t, err)
	}
	full := mustPlan(t, cfg)
	key, ok := supervisor.TemplateKeyOf(full, full.WorkDir)
	require.True(t, ok)
	plain, _ := supervisor.TemplateKeyOf(mustPlan(t, Config{}), DefaultWorkDir)
	assert.NotEqual(t, plain, key, "the Tmpfs paths are part of the template's key")
	for range 2 {
		uses := supervisor.TemplateUses()
		out, err := Command(context.Background(), cfg, python, "-c", tmpfsProbe(tmpfsPaths)).CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.Equal(t, uses+1, supervisor.TemplateUses(), "the jail was not started from the template")
		checkTmpfsProbe(t, string(out), tmpfsPaths)
		require.NoError(t, buildTemplateNow(DefaultSupervisor, cfg)) // fresh for the next: a template lives a second
	}
	assertNoTmpfsOnHost(t, tmpfsPaths)
	assertHostClean(t, mounts)
}

// A tmpfs inside a writable bind, where an earlier jail planted a symlink
// at its path or on the way (hostroot -> /), is refused at set-up: the
// mount point is never looked up through the link, so nothing is created
// or covered on the host's /. The path without the link works.
func TestTmpfsThroughPlantedSymlinkRefused(t *testing.T) {
	testenv.RequireRoot(t)
	mounts := countMounts()
	out := t.TempDir()
	require.NoError(t, os.Chmod(out, 0o777))
	secret := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secret, []byte("s\n"), 0o644))
	plantLinks(t, out, secret)
	bind := []Bind{{Source: out, Target: "/out", Writable: true}}
	for p, want := range map[string]string{
		"/out/hostroot":                 "/out/hostroot is a symlink (in a writable bind, a jail may have put it there): nothing is mounted over it",
		"/out/hostroot/brig-tmpfs-test": "open /out/hostroot in jail: not a directory",
	} {
		stdout, _, _, err := run(t, Config{Binds: bind, Tmpfs: []string{p}}, "/bin/echo", "ran")
		var setup *SetupError
		require.ErrorAs(t, err, &setup, p)
		assert.Equal(t, "tmpfs "+p, setup.Step)
		assert.Contains(t, setup.Err.Error(), want)
		assert.Empty(t, stdout)
	}
	_, err := os.Stat("/brig-tmpfs-test")
	assert.ErrorIs(t, err, os.ErrNotExist, "created through the link on the host")
	stdout, errOut, r, err := run(t, Config{Binds: bind, Tmpfs: []string{"/out/cache"}}, "/bin/sh", "-c", "echo x > /out/cache/f && ls /out/cache")
	require.NoError(t, err, errOut)
	require.True(t, r.Success(), errOut)
	assert.Equal(t, "f\n", stdout)
	assertHostClean(t, mounts)
}
