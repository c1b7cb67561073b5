package jail

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/internal/testenv"
)

// procMaskedFiles are the files of /proc that mount.c's proc_masked hides
// behind /dev/null, procMaskedDirs the directories it hides behind an empty
// read-only tmpfs.
var (
	procMaskedFiles = []string{
		"/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
		"/proc/sched_debug", "/proc/kallsyms", "/proc/kmsg", "/proc/interrupts", "/proc/vmallocinfo",
		"/proc/cmdline", "/proc/config.gz", "/proc/sys/kernel/random/boot_id",
	}
	procMaskedDirs = []string{"/proc/acpi", "/proc/asound", "/proc/scsi", "/proc/pressure"}
)

// procMaskProbe prints, for each path on stdin's list that the jail has,
// its mount's options, and what a read (a directory's listing) gives before
// and after a write (creating a file in a directory).
const procMaskProbe = `
import errno, json, os, sys
mounts = {}
for line in open("/proc/self/mountinfo"):
    f = line.split()
    mounts[f[4]] = f[5].split(",")
out = {}
for p in json.loads(sys.argv[1]):
    if not os.path.lexists(p):
        continue
    if os.path.isdir(p):
        try:
            open(p + "/x", "wb")
            made = "ok"
        except OSError as e:
            made = errno.errorcode[e.errno]
        out[p] = {"opts": mounts.get(p, []), "read": len(os.listdir(p)), "after_write": len(os.listdir(p)), "create": made}
        continue
    data = len(open(p, "rb").read())
    try:
        with open(p, "wb") as f:
            f.write(b"x")
    except OSError:
        pass
    out[p] = {"opts": mounts.get(p, []), "read": data, "after_write": len(open(p, "rb").read())}
print(json.dumps(out))
`

// Every masked file of /proc, on every kernel that has it, is its own
// read-only, nosuid, noexec mount of /dev/null: it reads empty, and keeps
// nothing written to it (the kernel lets a device node on a read-only mount
// be written; /dev/null discards it). Every masked directory is an empty
// read-only, nosuid, nodev, noexec mount in which no file can be made.
// (mount.c clones the first mask of each kind for the others; the clones
// must carry its attributes.)
func TestProcMasks(t *testing.T) {
	testenv.RequireRoot(t)
	requirePython(t)
	list, err := json.Marshal(append(procMaskedFiles[:len(procMaskedFiles):len(procMaskedFiles)], procMaskedDirs...))
	require.NoError(t, err)
	onHost, dirsOnHost := 0, 0
	for _, p := range procMaskedFiles {
		if _, err := os.Lstat(p); err == nil {
			onHost++
		}
	}
	for _, p := range procMaskedDirs {
		if _, err := os.Lstat(p); err == nil {
			onHost++
			dirsOnHost++
		}
	}
	require.Greater(t, onHost-dirsOnHost, 1, "the host's /proc has at least two of the masked files")
	if dirsOnHost < 2 {
		t.Logf("the host's /proc has %d of the masked directories: a cloned directory mask is not tested", dirsOnHost)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
	}{{"default", Config{}}, {"with a bind", Config{Binds: []Bind{{Source: "/etc/hostname", Target: "/srv/h"}}}}} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, r, err := run(t, tc.cfg, python, "-c", procMaskProbe, string(list))
			require.NoError(t, err)
			require.True(t, r.Success(), errOut)
			var got map[string]struct {
				Opts   []string `json:"opts"`
				Read   int      `json:"read"`
				After  int      `json:"after_write"`
				Create string   `json:"create"`
			}
			require.NoError(t, json.Unmarshal([]byte(out), &got), out)
			assert.Len(t, got, onHost, "every masked file the host has is in the jail's /proc")
			for p, m := range got {
				want := []string{"ro", "nosuid", "noexec"}
				if m.Create != "" {
					want = append(want, "nodev")
					assert.Equal(t, "EROFS", m.Create, "%s refuses a new file", p)
				}
				assert.Subset(t, m.Opts, want, "%s's mount", p)
				assert.Equal(t, 0, m.Read, "%s reads empty", p)
				assert.Equal(t, 0, m.After, "%s keeps nothing written to it", p)
			}
		})
	}
}
