package jail

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/brig-sandbox/brig/internal/stage"
	"github.com/brig-sandbox/brig/internal/supervisor"
	"github.com/brig-sandbox/brig/internal/testenv"
)

// rootProbe reports, as JSON, what a jail sees at each path named on its
// stdin (one a line), and its umask: the kind, mode, size and content hash of a file, the
// target of a link, the device number of a node, or null when absent; the
// names in /, /etc and /dev; and its mount points with type and options.
const rootProbe = `
import hashlib, json, os, stat, sys
def entry(p):
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        return None
    m = st.st_mode
    e = {"mode": stat.S_IMODE(m)}
    if stat.S_ISLNK(m):
        e.update(kind="l", link=os.readlink(p))
    elif stat.S_ISDIR(m):
        e.update(kind="d")
    elif stat.S_ISREG(m):
        with open(p, "rb") as f:
            e.update(kind="f", size=st.st_size, sha=hashlib.sha256(f.read()).hexdigest())
    elif stat.S_ISCHR(m):
        e.update(kind="c", rdev=st.st_rdev)
    else:
        e.update(kind="?")
    return e
paths = [l for l in sys.stdin.read().split("\n") if l]
mounts = {}
for line in open("/proc/self/mountinfo"):
    f = line.split()
    sep = f.index("-")
    mounts[f[4]] = {"type": f[sep + 1], "opts": f[5].split(",")}
print(json.dumps({"umask": os.umask(0), "entries": {p: entry(p) for p in paths},
                  "names": {d: sorted(os.listdir(d)) for d in ("/", "/etc", "/dev")},
                  "mounts": mounts}))
`

type probedEntry struct {
	Kind string `json:"kind"`
	Mode uint32 `json:"mode"`
	Size int64  `json:"size"`
	SHA  string `json:"sha"`
	Link string `json:"link"`
	Rdev uint64 `json:"rdev"`
}

type probedMount struct {
	Type string   `json:"type"`
	Opts []string `json:"opts"`
}

type probedRoot struct {
	Umask   uint32                  `json:"umask"`
	Entries map[string]*probedEntry `json:"entries"`
	Names   map[string][]string     `json:"names"`
	Mounts  map[string]probedMount  `json:"mounts"`
}

// probeRoot runs rootProbe in a jail of cfg over every target of desc.
func probeRoot(t *testing.T, cfg Config, desc []stage.Mount) probedRoot {
	t.Helper()
	var targets strings.Builder
	for _, m := range desc {
		targets.WriteString(m.Target + "\n")
	}
	cmd := Command(context.Background(), cfg, python, "-c", rootProbe)
	cmd.Stdin = strings.NewReader(targets.String())
	out, err := cmd.Output()
	require.NoError(t, err)
	var got probedRoot
	require.NoError(t, json.Unmarshal(out, &got), "%s", out)
	return got
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// checkRootAgainst holds what a jail saw to the description it was built
// from, entry by entry, and wants nothing in /, /etc and /dev that the
// description does not name (workDir aside, whose mount point the builders
// make).
func checkRootAgainst(t *testing.T, desc []stage.Mount, workDir string, got probedRoot) {
	t.Helper()
	named := map[string]bool{}
	for _, m := range append(desc, stage.Mount{Target: workDir}) {
		for p := m.Target; p != "/"; p = path.Dir(p) {
			named[p] = true
		}
	}
	for dir, names := range got.Names {
		for _, n := range names {
			assert.True(t, named[path.Join(dir, n)], "%s is in the jail's root but in no entry of its description", path.Join(dir, n))
		}
	}
	for _, m := range desc {
		e, mount := got.Entries[m.Target], got.Mounts[m.Target]
		_, mounted := got.Mounts[m.Target]
		what := m.Target
		switch {
		case m.Dir:
			if !assert.NotNil(t, e, what) {
				continue
			}
			assert.Equal(t, "d", e.Kind, what)
			if m.Tmpfs {
				// A tmpfs of its own: its options make the mode, and it
				// is read-only once built.
				assert.Equal(t, "tmpfs", mount.Type, what)
				assert.Subset(t, mount.Opts, []string{"ro", "nosuid", "noexec"}, what)
				assert.NotContains(t, mount.Opts, "nodev", what)
				assert.Equal(t, m.Mode, e.Mode, what)
			} else if !mounted {
				assert.Equal(t, m.Mode, e.Mode, what)
			}
		case m.File:
			if assert.NotNil(t, e, what) {
				assert.Equal(t, probedEntry{Kind: "f", Mode: m.Mode, Size: int64(len(m.Content)), SHA: sha256Hex([]byte(m.Content))}, *e, what)
			}
		case m.Device:
			var st unix.Stat_t
			require.NoError(t, unix.Stat(m.Source, &st))
			if assert.NotNil(t, e, what) {
				assert.Equal(t, probedEntry{Kind: "c", Mode: st.Mode & 0o7777, Rdev: st.Rdev}, *e, what)
			}
			assert.True(t, mounted, "%s: not a bind", what)
			assert.Subset(t, mount.Opts, []string{"nosuid", "noexec"}, what)
			assert.NotContains(t, mount.Opts, "nodev", what)
		case m.Symlink != "":
			if assert.NotNil(t, e, what) {
				assert.Equal(t, probedEntry{Kind: "l", Mode: 0o777, Link: m.Symlink}, *e, what)
			}
		case m.Copy:
			content, err := os.ReadFile(m.Source)
			if m.Optional && errors.Is(err, os.ErrNotExist) {
				assert.Nil(t, e, "%s: its source is absent", what)
				continue
			}
			require.NoError(t, err)
			fi, err := os.Stat(m.Source)
			require.NoError(t, err)
			if assert.NotNil(t, e, what) {
				assert.Equal(t, probedEntry{Kind: "f", Mode: uint32(fi.Mode().Perm() & 0o755), Size: int64(len(content)), SHA: sha256Hex(content)}, *e, what)
			}
			assert.False(t, mounted, "%s: a copy, not a bind", what)
		default: // a bind of the host's
			fi, err := os.Stat(m.Source)
			if m.Optional && errors.Is(err, os.ErrNotExist) {
				assert.Nil(t, e, "%s: its source is absent", what)
				continue
			}
			require.NoError(t, err)
			if assert.NotNil(t, e, what) && assert.True(t, mounted, "%s: not a bind", what) {
				assert.Equal(t, map[bool]string{true: "d", false: "f"}[fi.IsDir()], e.Kind, what)
				assert.Equal(t, !m.Writable, slices.Contains(mount.Opts, "ro"), "%s: read-only", what)
			}
		}
	}
}

// TestRootMatchesDescription: the root a jail builds itself (mount.c) is
// the root described in Go (rootfs.go's rootOwn and systemMounts), entry by
// entry, and holds nothing the description does not name; so is a root
// cloned from a template (roottemplate.go), where this kernel can build one.
// The first half runs wherever jails run, templates or not (the 6.1 VM
// too): init holds no list of its own that could drift.
func TestRootMatchesDescription(t *testing.T) {
	testenv.RequireRoot(t)
	requirePython(t)
	cfg := Config{}
	sys, err := DefaultSupervisor.rt.SystemMounts(false)
	require.NoError(t, err)
	desc := append(supervisor.RootOwn(DefaultWorkDir, DefaultHostname), sys...)
	require.NotEmpty(t, desc)

	t.Run("own root", func(t *testing.T) {
		supervisor.SetTemplatesEnabled(false)
		defer supervisor.SetTemplatesEnabled(true)
		uses := supervisor.TemplateUses()
		got := probeRoot(t, cfg, desc)
		require.Equal(t, uses, supervisor.TemplateUses(), "the jail was started from a template")
		checkRootAgainst(t, desc, DefaultWorkDir, got)
		if os.Getenv("BRIG_ROOT_UMASK") == "1" {
			assert.Equal(t, uint32(0o027), got.Umask, "the program's umask")
		}
	})

	t.Run("own root under umask 027", func(t *testing.T) {
		if os.Getenv("BRIG_ROOT_UMASK") == "1" {
			t.Skip("in the supervisor started under it")
		}
		// A supervisor (and so its spawner) started under a umask that
		// would take the jail's user's access to /etc: the modes made are
		// still the description's, and the program gets the umask.
		old := unix.Umask(0o027)
		cmd := exec.Command(os.Args[0], "-test.run=^TestRootMatchesDescription$/^own_root$", "-test.v")
		cmd.Env = append(os.Environ(), "BRIG_ROOT_UMASK=1", "BRIG_TEST_SUPERVISOR=1")
		out, err := cmd.CombinedOutput()
		unix.Umask(old)
		require.NoError(t, err, "%s", out)
		require.Contains(t, string(out), "--- PASS: TestRootMatchesDescription/own_root", "%s", out)
	})

	t.Run("template", func(t *testing.T) {
		if err := buildTemplateNow(DefaultSupervisor, cfg); errors.Is(err, supervisor.ErrTemplateUnsupported) {
			t.Skipf("no root templates on this kernel (the own root was checked): %v", err)
		} else {
			require.NoError(t, err)
		}
		uses := supervisor.TemplateUses()
		got := probeRoot(t, cfg, desc)
		require.Equal(t, uses+1, supervisor.TemplateUses(), "the jail was not started from the template")
		checkRootAgainst(t, desc, DefaultWorkDir, got)
	})
}
