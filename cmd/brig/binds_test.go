package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/internal/testenv"
	"github.com/brig-sandbox/brig/jail"
)

// The two-step attack through the CLI: a first run plants links in its
// writable bind; a second run's --ro-bind of one of them is refused, with
// the way out named. A root-owned link and :follow still work.
func TestRunBindPlantedSymlink(t *testing.T) {
	out := t.TempDir()
	require.NoError(t, os.Chmod(out, 0o777))
	code, _, stderr := runCLI(t, "--bind", out+":/out", "--", "/bin/sh", "-c", "ln -s / /out/hostroot && mkdir /out/real && echo in > /out/real/f")
	require.Equal(t, 0, code, stderr)

	code, stdout, stderr := runCLI(t, "--ro-bind", filepath.Join(out, "hostroot")+":/h", "--", "/bin/ls", "/h/proc")
	assert.Equal(t, exitBrigFailed, code)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, filepath.Join(out, "hostroot")+" is a symlink to / owned by uid ")
	assert.Contains(t, stderr, "SRC:DST:follow")

	// A link of root's to the same place is the host's own: followed.
	require.NoError(t, os.Symlink("real", filepath.Join(out, "roots")))
	code, stdout, stderr = runCLI(t, "--ro-bind", filepath.Join(out, "roots")+":/d", "--", "/bin/cat", "/d/f")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "in\n", stdout)

	// The jail's own link, followed on request.
	code, _, stderr = runCLI(t, "--bind", out+":/out", "--", "/bin/ln", "-s", "real", "/out/jails")
	require.Equal(t, 0, code, stderr)
	code, stdout, stderr = runCLI(t, "--ro-bind", filepath.Join(out, "jails")+":/d:follow", "--", "/bin/cat", "/d/f")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "in\n", stdout)
}

// Two runs writing the same output directory as its owner (:idmap).
func TestRunBindIDMap(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	require.NoError(t, os.Mkdir(out, 0o755))
	require.NoError(t, os.Chmod(filepath.Dir(out), 0o755))
	require.NoError(t, os.Chown(out, 4242, 4343))
	code, _, stderr := runCLI(t, "--bind", out+":/out:idmap", "--", "/bin/sh", "-c", "echo one > /out/a")
	require.Equal(t, 0, code, stderr)
	code, stdout, stderr := runCLI(t, "--bind", out+"::idmap", "--", "/bin/sh", "-c", "cat "+out+"/a; echo two > "+out+"/a")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "one\n", stdout)
	b, err := os.ReadFile(filepath.Join(out, "a"))
	require.NoError(t, err)
	assert.Equal(t, "two\n", string(b))
	fi, err := os.Stat(filepath.Join(out, "a"))
	require.NoError(t, err)
	assert.Equal(t, uint32(4242), fi.Sys().(*syscall.Stat_t).Uid)
	assert.Equal(t, uint32(4343), fi.Sys().(*syscall.Stat_t).Gid)

	code, _, stderr = runCLI(t, "--bind", t.TempDir()+":/out:idmap", "--", "/bin/true")
	assert.Equal(t, exitBrigFailed, code)
	assert.Contains(t, stderr, "the owner would be root")
}

func TestParseBind(t *testing.T) {
	for in, want := range map[string]jail.Bind{
		"/a":                    {Source: "/a"},
		"/a:/b":                 {Source: "/a", Target: "/b"},
		"/a:/b:follow":          {Source: "/a", Target: "/b", FollowSymlinks: true},
		"/a::idmap":             {Source: "/a", IDMap: true},
		"/a:/b:uid=7,gid=8":     {Source: "/a", Target: "/b", IDMap: true, OwnerUID: 7, OwnerGID: 8},
		"/a:/b:follow,idmap":    {Source: "/a", Target: "/b", FollowSymlinks: true, IDMap: true},
		"/a:/b:idmap,uid=42000": {Source: "/a", Target: "/b", IDMap: true, OwnerUID: 42000},
		"/a:/b:ro":              {Source: "/a", Target: "/b"},
	} {
		got, err := parseBind(in, false)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", ":/b", "/a:/b:", "/a:/b:nofollow", "/a:/b:uid=0", "/a:/b:gid=-1", "/a:/b:uid=x",
		"/a:/b:uid=4294967296", "/a:/b:follow:x", strings.Repeat("/a", maxBindSpec)} {
		_, err := parseBind(bad, true)
		assert.Error(t, err, bad)
	}
	// Docker's suffixes: ro makes any bind read-only; rw only on --bind.
	b, err := parseBind("/a:/b:ro", true)
	require.NoError(t, err)
	assert.False(t, b.Writable)
	b, err = parseBind("/a:/b:rw", true)
	require.NoError(t, err)
	assert.True(t, b.Writable)
	_, err = parseBind("/a:/b:rw", false)
	assert.ErrorContains(t, err, "use --bind")
}

func FuzzParseBind(f *testing.F) {
	for _, s := range []string{"/a:/b", "/a:/b:follow,idmap", "/a::uid=1,gid=2", "/a:/b:uid=0", ":::", "/a:/b:c:d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := parseBind(s, true)
		if err != nil {
			return
		}
		_, rest, _ := strings.Cut(s, ":")
		_, opts, _ := strings.Cut(rest, ":")
		readOnly := slices.Contains(strings.Split(opts, ","), "ro")
		if b.Source == "" || b.Writable == readOnly || len(s) > maxBindSpec {
			t.Fatalf("parseBind(%q) = %+v", s, b)
		}
		if ro, err := parseBind(s, false); err == nil && ro.Writable {
			t.Fatalf("parseBind(%q, read-only) = %+v: writable", s, ro)
		}
		if (b.OwnerUID != 0 || b.OwnerGID != 0) && !b.IDMap {
			t.Fatalf("parseBind(%q): an owner without idmap", s)
		}
	})
}

// Unprivileged, the same refusal holds, and idmap is accepted only where it
// changes nothing: the jail's user already is the caller on the host.
func TestRunBindUnprivileged(t *testing.T) {
	asNobody := testenv.AsNobody(t)
	bin := buildBrig(t)
	require.NoError(t, os.Chmod(filepath.Dir(bin), 0o711))
	dir, err := os.MkdirTemp("", "brig-binds-")
	require.NoError(t, err)
	defer os.RemoveAll(dir)
	require.NoError(t, os.Chmod(dir, 0o755))
	nobody := func(args ...string) (int, string, string) {
		cmd := exec.Command(asNobody[0], append(append(asNobody[1:], bin, "run", "--quiet"), args...)...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		_ = cmd.Run()
		return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
	}
	real := filepath.Join(dir, "real")
	require.NoError(t, os.Mkdir(real, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(real, "f"), []byte("in\n"), 0o644))
	link := filepath.Join(dir, "link")
	require.NoError(t, os.Symlink("real", link))
	require.NoError(t, os.Lchown(link, 65534, 65534))

	code, _, stderr := nobody("--ro-bind", link+":/d", "--", "/bin/cat", "/d/f")
	assert.Equal(t, exitBrigFailed, code)
	assert.Contains(t, stderr, "is a symlink to real owned by uid 65534")
	code, stdout, stderr := nobody("--ro-bind", link+":/d:follow", "--", "/bin/cat", "/d/f")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "in\n", stdout)

	// idmap to the caller itself: nothing to map, the files are nobody's.
	out := filepath.Join(dir, "out")
	require.NoError(t, os.Mkdir(out, 0o755))
	require.NoError(t, os.Chown(out, 65534, 65534))
	code, _, stderr = nobody("--bind", out+":/out:idmap", "--", "/bin/sh", "-c", "echo x > /out/x")
	require.Equal(t, 0, code, stderr)
	fi, err := os.Stat(filepath.Join(out, "x"))
	require.NoError(t, err)
	assert.Equal(t, uint32(65534), fi.Sys().(*syscall.Stat_t).Uid)
	// To anyone else: it cannot be done without root.
	code, _, stderr = nobody("--bind", out+":/out:uid=4242", "--", "/bin/true")
	assert.Equal(t, exitBrigFailed, code)
	assert.Contains(t, stderr, "needs a supervisor running as root")
}

// --result is written by brig's caller, maybe root, after the jail ran:
// a symlink the jail planted at its name in a writable bind must not be
// written through (it would clobber any host file), nor a symlinked
// directory on the way; root's symlinks are followed as before.
func TestRunResultFileNotThroughPlantedLink(t *testing.T) {
	out := t.TempDir()
	require.NoError(t, os.Chmod(out, 0o777))
	victim := filepath.Join(t.TempDir(), "victim")
	require.NoError(t, os.WriteFile(victim, []byte("keep\n"), 0o600))
	res := filepath.Join(out, "result.json")
	code, _, stderr := runCLI(t, "--bind", out+":/out", "--result", res, "--", "/bin/ln", "-s", victim, "/out/result.json")
	require.Equal(t, 0, code, stderr)
	b, err := os.ReadFile(victim)
	require.NoError(t, err)
	assert.Equal(t, "keep\n", string(b), "the host file is untouched")
	fi, err := os.Lstat(res)
	require.NoError(t, err)
	assert.True(t, fi.Mode().IsRegular(), "the planted link was replaced by the result: %v", fi.Mode())
	b, err = os.ReadFile(res)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"exit_code": 0`)

	// A directory link an earlier jail planted on the way is refused (the
	// result file is opened before the program runs).
	code, _, stderr = runCLI(t, "--bind", out+":/out", "--", "/bin/ln", "-s", filepath.Dir(victim), "/out/d")
	require.Equal(t, 0, code, stderr)
	code, _, stderr = runCLI(t, "--result", filepath.Join(out, "d", "r.json"), "--", "/bin/true")
	assert.Equal(t, exitBrigFailed, code)
	assert.Contains(t, stderr, "is a symlink to "+filepath.Dir(victim))
	_, err = os.Stat(filepath.Join(filepath.Dir(victim), "r.json"))
	assert.True(t, os.IsNotExist(err), "nothing written through it: %v", err)

	// A root-owned link to a directory, and a relative name, still work.
	require.NoError(t, os.Symlink(filepath.Dir(victim), filepath.Join(out, "roots")))
	t.Chdir(out)
	code, _, stderr = runCLI(t, "--result", "roots/r.json", "--", "/bin/true")
	require.Equal(t, 0, code, stderr)
	_, err = os.Stat(filepath.Join(filepath.Dir(victim), "r.json"))
	assert.NoError(t, err)
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(victim), ".brig-*"))
	assert.Empty(t, left, "no temporary file left")
}
