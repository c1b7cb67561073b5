package jail

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/cgroup"
	"github.com/brig-sandbox/brig/hostile"
)

// The hostile corpus (testdata/hostile, see package hostile for the
// format) runs here through the Go API, and, unless -short, through the
// CLI as root and as nobody. `make hostile` runs the same corpus with
// both limiters and prints one line per payload.
//
// BRIG_HOSTILE_LIMITER picks the limiter (default auto);
// BRIG_HOSTILE_RUN, a regular expression, keeps the payloads whose name
// it matches (a plain name matches itself and every name containing it).

// apiRunner runs a payload through the Go API.
type apiRunner struct{}

func (apiRunner) Name() string { return "api" }

func (apiRunner) Run(ctx context.Context, r hostile.Run) (*hostile.Outcome, error) {
	p := r.Payload
	cfg := Config{Timeout: p.Config.Timeout, OutputLimit: p.Config.OutputLimit, TmpfsSize: p.Config.TmpfsSize,
		Tmpfs: p.Config.TmpfsPaths}
	if p.Config.SeccompKill {
		cfg.SeccompMode = SeccompKill
	}
	cfg.Limits = cgroup.Limits{Memory: p.Config.Memory, Pids: p.Config.Pids, CPUs: p.Config.CPUs, CPUTime: p.Config.CPUTime}
	if r.Limiter != "" && r.Limiter != "auto" {
		cfg.Limiter = cgroup.Kind(r.Limiter)
	}
	for _, b := range r.Binds() {
		cfg.Binds = append(cfg.Binds, Bind{Source: b.Source, Target: b.Target, Writable: b.Writable})
	}
	if p.Session != "" {
		return runSessionPayload(ctx, cfg, p), nil // hostile_session_test.go
	}
	var stdout, stderr strings.Builder
	cmd := Command(ctx, cfg, hostile.Interpreters[p.Interp], "-c", p.Source)
	cmd.Env = r.Env
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if p.Config.Stdin != "" {
		cmd.Stdin = strings.NewReader(p.Config.Stdin)
	}
	if p.Config.TTY {
		cmd.TTY = &TTY{}
	}
	err := cmd.Run()
	o := &hostile.Outcome{Stdout: stdout.String(), Stderr: stderr.String(), Supervisor: os.Getpid()}
	if cmd.Result == nil {
		o.SetupError = fmt.Sprint(err)
		return o, nil
	}
	res := cmd.Result
	o.Reason, o.ExitCode, o.Signal, o.StdoutTruncated, o.Limiter = string(res.Reason), res.ExitCode, res.Signal, res.StdoutTruncated, string(res.Limiter)
	return o, nil
}

// hostileIDs are the host ids of jails: this test process's range (see
// TestMain) and the CLI's, which is brig's real default.
func hostileIDs() hostile.JailIDs {
	return hostile.JailIDs{First: DefaultHostIDs.First, Count: DefaultHostIDs.Count,
		More: []hostile.JailIDs{{First: 1_500_000_000, Count: 65536}}}
}

func loadCorpus(t *testing.T) []*hostile.Payload {
	t.Helper()
	dir, err := hostile.Corpus()
	require.NoError(t, err)
	ps, err := hostile.Load(dir)
	require.NoError(t, err)
	keep, err := regexp.Compile(os.Getenv("BRIG_HOSTILE_RUN"))
	require.NoError(t, err, "BRIG_HOSTILE_RUN")
	var out []*hostile.Payload
	for _, p := range ps {
		if keep.MatchString(p.Name) {
			out = append(out, p)
		}
	}
	return out
}

var (
	brigOnce sync.Once
	brigBin  string
	brigErr  error
)

// buildBrig builds the CLI once per test binary into a directory nobody
// may list (0711), so the unprivileged runs can execute it.
func buildBrig(t *testing.T) string {
	t.Helper()
	brigOnce.Do(func() {
		dir, err := hostile.Corpus()
		if err != nil {
			brigErr = err
			return
		}
		root := filepath.Dir(filepath.Dir(dir))
		bin, err := os.MkdirTemp("", "brig-cli-")
		if err != nil {
			brigErr = err
			return
		}
		_ = os.Chmod(bin, 0o711)
		brigBin = filepath.Join(bin, "brig")
		brigErr = hostile.BuildCLI(root, brigBin)
	})
	if brigErr != nil {
		t.Fatalf("build the CLI: %v", brigErr)
	}
	return brigBin
}

func TestHostileCorpus(t *testing.T) {
	requireRoot(t)
	requirePython(t)
	payloads := loadCorpus(t)
	bait, err := hostile.SetBait()
	require.NoError(t, err)
	defer bait.Close()
	// Result files of the runs as nobody: t.TempDir's parent is 0700.
	tmp, err := os.MkdirTemp("", "brig-hostile-")
	require.NoError(t, err)
	defer os.RemoveAll(tmp)
	require.NoError(t, os.Chmod(tmp, 0o777))

	limiter := os.Getenv("BRIG_HOSTILE_LIMITER")
	if limiter == "" {
		limiter = "auto"
	}
	type way struct {
		rn     hostile.Runner
		unpriv bool
	}
	ways := []way{{rn: apiRunner{}}}
	if !testing.Short() {
		brig := buildBrig(t)
		ways = append(ways, way{rn: &hostile.CLIRunner{Brig: brig, Tmp: tmp}})
		if setpriv, err := exec.LookPath("setpriv"); err == nil {
			ways = append(ways, way{unpriv: true, rn: &hostile.CLIRunner{Brig: brig, Tmp: tmp, Tag: "cli-nobody",
				Wrap: []string{setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"}}})
		}
	}
	for _, w := range ways {
		opt := hostile.Options{Limiter: limiter, IDs: hostileIDs(), Unpriv: w.unpriv}
		if w.unpriv {
			opt.IDs.Extra = []uint32{65534}
		}
		for _, p := range payloads {
			t.Run(w.rn.Name()+"/"+p.Name, func(t *testing.T) {
				fails, o := hostile.RunOne(context.Background(), w.rn, p, bait, opt)
				if len(fails) > 0 {
					if o != nil {
						t.Logf("stdout:\n%s\nstderr:\n%s", clipOut(o.Stdout), clipOut(o.Stderr))
					}
					if o != nil {
						if bug := p.KnownBug(o.Limiter, w.unpriv); strings.HasPrefix(bug, "limit: ") {
							t.Skipf("known %s (%s)", bug, strings.Join(fails, "; "))
						} else if bug != "" {
							t.Errorf("known %s", bug)
						}
					}
					t.Errorf("%s: %s", p.Name, strings.Join(fails, "\n  "))
				}
			})
		}
	}
}

func clipOut(s string) string {
	if len(s) > 4000 {
		return s[:4000] + "..."
	}
	return s
}

// TestHostileCorpusFormat keeps the corpus honest: every payload proves
// it is jailed first and carries a verdict; the preludes refuse to run
// outside a jail (they are run here, on the host, and must exit 99
// without reaching the payload).
func TestHostileCorpusFormat(t *testing.T) {
	requirePython(t)
	payloads := loadCorpus(t)
	require.NotEmpty(t, payloads)
	for _, p := range payloads {
		probe := p.Prelude + "print('REACHED')\n"
		if p.Interp != "python" {
			probe = p.Prelude + "echo REACHED\n"
		}
		out, err := exec.Command(hostile.Interpreters[p.Interp], "-c", probe).CombinedOutput()
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee, "%s: the prelude must refuse on the host: %s", p.Name, out)
		require.Equal(t, 99, ee.ExitCode(), "%s: %s", p.Name, out)
		require.NotContains(t, string(out), "REACHED")
		require.Contains(t, string(out), "NOT JAILED")
	}
}
