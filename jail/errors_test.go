package jail

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/brig-sandbox/brig/cgroup"
	"github.com/brig-sandbox/brig/internal/testenv"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A setup failure names its cause and the fix, not what the cause broke
// further down (a mask of /proc, a clone's EAGAIN, a bare ENOENT).
func TestSetupErrorsNameTheCause(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	script := filepath.Join(dir, "script")
	require.NoError(t, os.WriteFile(script, []byte("#!/usr/bin/no-such-interpreter -x\necho hi\n"), 0o755))
	out := t.TempDir()
	cases := []struct {
		name string
		cfg  Config
		argv []string
		want []string // substrings of the error
	}{
		{"workdir /dev", Config{WorkDir: "/dev"}, []string{"/bin/true"}, []string{"workdir /dev", "outside /, /proc, /dev"}},
		{"workdir /", Config{WorkDir: "/"}, []string{"/bin/true"}, []string{"workdir /:"}},
		{"workdir /usr/bin", Config{WorkDir: "/usr/bin"}, []string{"/bin/true"}, []string{"workdir /usr/bin"}},
		{"workdir /proc/x", Config{WorkDir: "/proc/x"}, []string{"/bin/true"}, []string{"workdir /proc/x"}},
		{"memory 1", Config{Limits: limitsOf(1, 0)}, []string{"/bin/true"}, []string{"memory limit 1 bytes", "at least"}},
		{"pids 1", Config{Limits: limitsOf(0, 1)}, []string{"/bin/true"}, []string{"pids limit 1", "at least 3"}},
		{"bad #! line", Config{Binds: []Bind{{Source: dir, Target: "/in"}}}, []string{"/in/script"},
			[]string{"exec /in/script", "interpreter /usr/bin/no-such-interpreter", "#! line"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Command(context.Background(), c.cfg, c.argv[0], c.argv[1:]...).Run()
			var se *SetupError
			require.True(t, errors.As(err, &se), "%v", err)
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
	// The benign side: the smallest limits and a work directory anywhere
	// else, or under a writable bind, work.
	require.NoError(t, os.Mkdir(filepath.Join(out, "sub"), 0o777))
	for _, cfg := range []Config{
		{Limits: limitsOf(MinMemory, MinPids)},
		{WorkDir: "/home/job"},
		{WorkDir: "/out/sub", Binds: []Bind{{Source: out, Target: "/out", Writable: true}}},
	} {
		err := Command(context.Background(), cfg, "/bin/true").Run()
		assert.NoError(t, err, "%+v", cfg)
	}
}

func limitsOf(memory, pids int64) (l cgroup.Limits) {
	l.Memory, l.Pids = memory, pids
	return l
}
