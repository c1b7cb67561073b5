package jail

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/brig-sandbox/brig/internal/supervisor"
	"github.com/brig-sandbox/brig/internal/testenv"
)

// rootListing prints what a jail sees of its root: every entry of /, /etc
// (recursively) and /dev with its type, mode, size, link target, device
// number and a hash of a regular file's content, then its mounts (mount
// point, mount options, type, source), sorted. Owners are left out: the
// template's files belong to the host's root, nobody in the jail.
const rootListing = `
import hashlib, os, stat
out = []
def entry(p):
    st = os.lstat(p)
    m = st.st_mode
    kind = "l" if stat.S_ISLNK(m) else "d" if stat.S_ISDIR(m) else "f" if stat.S_ISREG(m) else "c" if stat.S_ISCHR(m) else "?"
    extra = ""
    if kind == "l":
        extra = os.readlink(p)
    elif kind == "f":
        with open(p, "rb") as f:
            extra = hashlib.sha256(f.read()).hexdigest()[:16] + " %d" % st.st_size
    elif kind == "c":
        extra = "%d,%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
    out.append("%s %s %o %s" % (p, kind, stat.S_IMODE(m), extra))
    return kind
for top, deep in (("/", False), ("/etc", True), ("/dev", False), ("/data", True), ("/work", True)):
    if not os.path.isdir(top):
        continue
    for name in sorted(os.listdir(top)):
        p = os.path.join(top, name)
        if entry(p) == "d" and deep:
            for dirpath, dirs, files in os.walk(p):
                dirs.sort()
                for n in sorted(dirs + files):
                    entry(os.path.join(dirpath, n))
mounts = []
for line in open("/proc/self/mountinfo"):
    f = line.split()
    sep = f.index("-")
    # optional fields: shared:N / master:N (peer groups) by kind only
    prop = ",".join(sorted(o.split(":")[0] for o in f[6:sep])) or "private"
    mounts.append(" ".join([f[4], f[5], prop, f[sep + 1], f[sep + 2]]))
print("\n".join(out + sorted(mounts)))
`

func missingFrom(have, want []string) []string {
	set := map[string]bool{}
	for _, l := range have {
		set[l] = true
	}
	var out []string
	for _, l := range want {
		if !set[l] {
			out = append(out, l)
		}
	}
	return out
}

// TestRootTemplateMatchesOwnRoot: a jail started from the root template
// sees the same tree and the same mounts as one that built its root
// itself; the template cannot be changed from a jail, and the host's mount
// table never shows it.
func TestRootTemplateMatchesOwnRoot(t *testing.T) {
	testenv.RequireRoot(t)
	requirePython(t)
	hostMounts := countMounts()
	if err := buildTemplateNow(DefaultSupervisor, Config{}); errors.Is(err, supervisor.ErrTemplateUnsupported) {
		t.Skipf("no root templates here: %v", err)
	} else {
		require.NoError(t, err)
	}
	data, work := t.TempDir(), t.TempDir()
	require.NoError(t, os.WriteFile(data+"/hello", []byte("hi\n"), 0o644))
	require.NoError(t, os.WriteFile(work+"/notes", []byte("work\n"), 0o644))
	conf := data + "/hello"
	withBinds := Config{Binds: []Bind{{Source: data, Target: "/data"}, {Source: conf, Target: "/etc/brig-test.conf"},
		{Source: conf, Target: "/etc/hosts"}, {Source: work, Target: "/work", Writable: true}}}
	withTmpfs := Config{Tmpfs: []string{"/var/cache", "/work/sub"}}
	for name, cfg := range map[string]Config{"default": {}, "with binds": withBinds, "with tmpfs": withTmpfs} {
		t.Run(name, func(t *testing.T) {
			list := func(fromTemplate bool) string {
				supervisor.SetTemplatesEnabled(fromTemplate)
				defer supervisor.SetTemplatesEnabled(true)
				if fromTemplate {
					require.NoError(t, buildTemplateNow(DefaultSupervisor, cfg))
				}
				uses := supervisor.TemplateUses()
				out, err := Command(context.Background(), cfg, python, "-c", rootListing).Output()
				require.NoError(t, err)
				if fromTemplate {
					require.Equal(t, uses+1, supervisor.TemplateUses(), "the jail was not started from the template")
				} else {
					require.Equal(t, uses, supervisor.TemplateUses())
				}
				return string(out)
			}
			own, templated := list(false), list(true)
			ownLines, tplLines := strings.Split(own, "\n"), strings.Split(templated, "\n")
			assert.Equal(t, len(ownLines), len(tplLines), "lines")
			assert.Empty(t, missingFrom(ownLines, tplLines), "what a jail from the template sees and one with its own root does not")
			assert.Empty(t, missingFrom(tplLines, ownLines), "what a jail with its own root sees and one from the template does not")
			assert.Contains(t, own, "/etc/passwd f 644")
			assert.Contains(t, own, "/dev/null c 666 1,3")
			assert.Contains(t, own, "/usr ro,nosuid,nodev,relatime private")
			if cfg.Binds != nil {
				assert.Contains(t, own, "/data/hello f 644")
				assert.Contains(t, own, "/work/notes f 644")
				assert.Contains(t, own, "/etc/brig-test.conf ro,nosuid,nodev,relatime private")
				assert.Contains(t, own, "/work rw,nosuid,nodev,relatime private")
			}
			if cfg.Tmpfs != nil {
				assert.Contains(t, own, "/var/cache rw,nosuid,nodev,relatime private tmpfs tmpfs")
				assert.Contains(t, own, "/work/sub rw,nosuid,nodev,relatime private tmpfs tmpfs")
			}
		})
	}

	// The program can write neither the template's files nor beside them.
	out, err := Command(context.Background(), Config{}, "/bin/sh", "-c",
		`for f in /etc/passwd /etc/new /new /dev/new; do (echo x >> $f) 2>/dev/null && echo "wrote $f"; done; echo done`).CombinedOutput()
	require.NoError(t, err)
	assert.Equal(t, "done\n", string(out))
	tpl := DefaultSupervisor.rt.CurrentTemplate(DefaultWorkDir, DefaultHostname)
	require.NotNil(t, tpl)
	fd, err := unix.Openat(int(tpl.Fd()), "etc/passwd", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	require.NoError(t, err)
	passwd := os.NewFile(uintptr(fd), "passwd")
	defer passwd.Close()
	buf := make([]byte, 4096)
	n, _ := passwd.Read(buf)
	assert.True(t, strings.HasPrefix(string(buf[:n]), "root:x:0:0:"), "template passwd: %q", buf[:n])
	assert.NotContains(t, string(buf[:n]), "x\n")
	assert.Equal(t, hostMounts, countMounts(), "host mount table")
}

// TestRootTemplateOnSharedMounts: on a host whose mounts are shared (as
// systemd makes them), a jail from the template is in no peer group of the
// host's: its binds of /usr and /etc do not see the host's later mounts.
// The supervisor runs in a mount namespace of its own (unshare(1) with
// --propagation shared), so the host's own mounts stay as they are.
func TestRootTemplateOnSharedMounts(t *testing.T) {
	if os.Getenv("BRIG_TEMPLATE_SHARED") == "1" {
		if err := buildTemplateNow(DefaultSupervisor, Config{}); err != nil {
			t.Fatalf("build template: %v", err)
		}
		uses := supervisor.TemplateUses()
		out, err := Command(context.Background(), Config{}, "/bin/cat", "/proc/self/mountinfo").Output()
		require.NoError(t, err)
		require.Equal(t, uses+1, supervisor.TemplateUses(), "the jail was not started from the template")
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			assert.NotRegexp(t, ` (shared|master):\d+ `, line, "a jail mount in a peer group")
		}
		return
	}
	testenv.RequireRoot(t)
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("needs unshare(1) from util-linux")
	}
	if err := buildTemplateNow(DefaultSupervisor, Config{}); errors.Is(err, supervisor.ErrTemplateUnsupported) {
		t.Skipf("no root templates here: %v", err)
	}
	cmd := exec.Command(unshare, "--mount", "--propagation", "shared", os.Args[0], "-test.run=^TestRootTemplateOnSharedMounts$", "-test.v")
	cmd.Env = append(os.Environ(), "BRIG_TEMPLATE_SHARED=1", "BRIG_TEST_SUPERVISOR=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "--- PASS: TestRootTemplateOnSharedMounts", "%s", out)
	// The supervisor's own mounts were shared there, or the test proves nothing.
	check := exec.Command(unshare, "--mount", "--propagation", "shared", "grep", "-c", "shared:", "/proc/self/mountinfo")
	n, err := check.Output()
	require.NoError(t, err)
	assert.NotEqual(t, "0\n", string(n))
}

// A fork of the supervisor's process while the template builder has a
// file open for writing gives the child a share of that file until the
// child execs, and the template cannot be made read-only meanwhile
// (EBUSY: TestTwoSupervisors failed so, once in a while, when the other
// supervisor started its spawner). Templates built while this process
// forks and execs as fast as it can must all succeed.
func TestRootTemplateWhileForking(t *testing.T) {
	testenv.RequireRoot(t)
	if err := buildTemplateNow(DefaultSupervisor, Config{}); errors.Is(err, supervisor.ErrTemplateUnsupported) {
		t.Skipf("no root templates here: %v", err)
	} else {
		require.NoError(t, err)
	}
	stop := make(chan struct{})
	forked := make(chan int)
	for range 2 {
		go func() {
			n := 0
			defer func() { forked <- n }()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := exec.Command("/bin/true").Run(); err == nil {
					n++
				}
			}
		}()
	}
	var failures []error
	for range 200 {
		if err := buildTemplateNow(DefaultSupervisor, Config{}); err != nil {
			failures = append(failures, err)
		}
	}
	close(stop)
	n := <-forked + <-forked
	require.Positive(t, n, "the process forked meanwhile")
	require.Empty(t, failures, "builds failed while the process forked (%d forks)", n)
}
