package jail

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/brig-sandbox/brig/cgroup"
	"github.com/brig-sandbox/brig/internal/testenv"
	"github.com/brig-sandbox/brig/seccomp"

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

// A SetupError keeps its cause: errors.Is sees the errno the jail's set-up
// failed with, in a cold jail and in a pooled one (its program process
// started ahead under the default policy, or forked by init after the
// request under another), and its text reads as it always did.
func TestSetupErrorsKeepTheirErrno(t *testing.T) {
	testenv.RequireRoot(t)
	mounts := countMounts()
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "plain"), []byte("echo hi\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "script"), []byte("#!/usr/bin/no-such-interpreter\n"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ok"), []byte("#!/bin/sh\necho ok\n"), 0o755))
	cfg := Config{Binds: []Bind{{Source: dir, Target: "/in"}}}
	cases := []struct {
		path string
		want error
		msg  string // the whole error, "" to skip
	}{
		{"/no/such/program", syscall.ENOENT, "jail setup: exec /no/such/program: stat /no/such/program: no such file or directory"},
		{"no-such-program", syscall.ENOENT, `jail setup: exec no-such-program: not found in PATH "` + DefaultPath + `"`},
		{"/in/plain", syscall.EACCES, "jail setup: exec /in/plain: /in/plain: permission denied"},
		{"/in/script", syscall.ENOENT, ""},
	}
	policy := seccomp.Default()
	runners := map[string]func(t *testing.T) func(string) *Cmd{
		"cold": func(t *testing.T) func(string) *Cmd {
			return func(path string) *Cmd { return Command(context.Background(), cfg, path) }
		},
		"pooled prefork": func(t *testing.T) func(string) *Cmd { return pooled(t, cfg) },
		"pooled": func(t *testing.T) func(string) *Cmd {
			c := cfg
			c.Seccomp = policy
			return pooled(t, c)
		},
	}
	for name, runner := range runners {
		t.Run(name, func(t *testing.T) {
			command := runner(t)
			for _, c := range cases {
				err := command(c.path).Run()
				var se *SetupError
				require.ErrorAs(t, err, &se, c.path)
				assert.Equal(t, "exec "+c.path, se.Step)
				assert.ErrorIs(t, err, c.want, "%s: %v", c.path, err)
				if c.msg != "" {
					assert.Equal(t, c.msg, err.Error())
				}
			}
			// The benign side: a program that is there and executable runs.
			var out strings.Builder
			cmd := command("/in/ok")
			cmd.Stdout = &out
			require.NoError(t, cmd.Run())
			assert.Equal(t, "ok\n", out.String())
		})
	}
	assertHostClean(t, mounts)
}

func pooled(t *testing.T, cfg Config) func(string) *Cmd {
	p, err := NewPool(context.Background(), cfg, 1)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return func(path string) *Cmd { return p.Command(context.Background(), path) }
}

// A failure the jail's C reports without an errno of its own still reads
// as before and wraps none; one that names another step keeps the errno
// of the step below it (a tmpfs inside a read-only bind: EROFS).
func TestSetupErrorsKeepTheErrnoOfTheStepBelow(t *testing.T) {
	testenv.RequireRoot(t)
	mounts := countMounts()
	data := t.TempDir()
	require.NoError(t, os.Chmod(data, 0o755))
	err := Command(context.Background(), Config{Tmpfs: []string{"/data/nope"}, Binds: []Bind{{Source: data, Target: "/data"}}}, "/bin/true").Run()
	var se *SetupError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "jail setup: tmpfs /data/nope: create mount point /data/nope: read-only file system", err.Error())
	assert.ErrorIs(t, err, syscall.EROFS)
	assert.False(t, errors.Is(err, syscall.ENOENT))

	err = Command(context.Background(), Config{}, "/bin/true").Run()
	assert.NoError(t, err)
	assertHostClean(t, mounts)
}

// RequireCgroups with a limiter this host cannot give fails Start, cold
// and pooled, with an error that is cgroup.ErrUnavailable, as the cgroup
// package documents; the same Config without RequireCgroups's kind runs.
func TestSetupErrorIsCgroupUnavailable(t *testing.T) {
	testenv.RequireRoot(t)
	r := cgroup.Detect(cgroup.Options{})
	var kind cgroup.Kind
	switch {
	case !r.Cgroup2.Usable:
		kind = cgroup.Cgroup2
	case !r.Cgroup1.Usable:
		kind = cgroup.Cgroup1
	default:
		t.Skip("both cgroup kinds are usable here: no kind to be refused")
	}
	cfg := Config{Limiter: kind, RequireCgroups: true}
	cmd := Command(context.Background(), cfg, "/bin/true")
	err := cmd.Start()
	require.Error(t, err)
	var se *SetupError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "create cgroup", se.Step)
	assert.ErrorIs(t, err, cgroup.ErrUnavailable)
	assert.True(t, strings.HasPrefix(err.Error(), "jail setup: create cgroup: cgroup limiter unavailable: "+string(kind)+": "), err.Error())

	_, err = NewPool(context.Background(), cfg, 1)
	require.ErrorAs(t, err, &se)
	assert.ErrorIs(t, err, cgroup.ErrUnavailable)

	// The benign side: cgroups required of whatever kind works.
	assert.NoError(t, Command(context.Background(), Config{RequireCgroups: true}, "/bin/true").Run())
}

// The texts of SetupErrors the Go side makes read as they always did.
func TestSetupErrorTextUnchanged(t *testing.T) {
	cmd := Command(context.Background(), Config{}, "/bin/true")
	for range MaxExtraFiles + 1 {
		cmd.ExtraFiles = append(cmd.ExtraFiles, os.Stdin)
	}
	err := cmd.Start()
	var se *SetupError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, fmt.Sprintf("jail setup: config: %d extra files: at most %d", MaxExtraFiles+1, MaxExtraFiles), err.Error())

	_, err = NewPool(context.Background(), Config{WorkDir: "relative"}, 1)
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "config", se.Step)
	assert.True(t, strings.HasPrefix(err.Error(), "jail setup: config: "), err.Error())
}
