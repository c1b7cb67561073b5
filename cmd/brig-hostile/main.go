// Command brig-hostile runs brig's hostile corpus (testdata/hostile)
// through the Go API and the CLI with the host's bait out, and the soak.
//
//	brig-hostile [-limiter auto|rlimit|...] [-via api,cli,unpriv] [-brig ./brig]   one line per payload, then "N passed, M failed"
//	brig-hostile soak [-runs 2000] [-parallel 8] [-limiter auto]                  one summary line
//	brig-hostile soak-serve [-clients 16] [-requests 20000] [-brig ./brig]        one summary line
//
// soak-serve starts a real brig serve (a static build of this checkout
// unless -brig names one) with a config of its own and soaks it over its
// unix socket: soakserve.go.
//
// It must run as root (the bait and the unprivileged runs need it). Being
// built on the jail package, this binary is also brig's helper and init.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/brig-sandbox/brig/internal/hostile"
	"github.com/brig-sandbox/brig/internal/hostile/apirun"
	"github.com/brig-sandbox/brig/jail"
)

func main() {
	var code int
	switch {
	case len(os.Args) > 1 && os.Args[1] == "soak":
		code = soakMain(os.Args[2:])
	case len(os.Args) > 1 && os.Args[1] == "soak-serve":
		code = soakServeMain(os.Args[2:])
	default:
		code = corpusMain(os.Args[1:])
	}
	_ = jail.DefaultSupervisor.Close() // no spawner, template or kept cgroup outlives this process
	os.Exit(code)
}

func corpusMain(args []string) int {
	fs := flag.NewFlagSet("brig-hostile", flag.ExitOnError)
	limiter := fs.String("limiter", "auto", "limiter for every run: auto, cgroup1, cgroup2, rlimit")
	via := fs.String("via", "api,cli,unpriv", "ways to run: api (Go API), cli (brig run as root), unpriv (brig run as nobody)")
	brig := fs.String("brig", "./brig", "the brig binary")
	dir := fs.String("dir", "", "corpus directory (default testdata/hostile)")
	only := fs.String("run", "", "only payloads whose name contains this")
	_ = fs.Parse(args)
	payloads, bait, ok := prepare(*dir, *only)
	if !ok {
		return 2
	}
	defer bait.Close()
	tmp, err := os.MkdirTemp("", "brig-hostile-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "brig-hostile:", err)
		return 2
	}
	defer os.RemoveAll(tmp)
	_ = os.Chmod(tmp, 0o777)

	ids := hostile.JailIDs{First: jail.DefaultSupervisor.HostIDs().First, Count: jail.DefaultSupervisor.HostIDs().Count}
	ctx := context.Background()
	total := &hostile.Report{}
	add := func(r *hostile.Report) {
		total.Passed += r.Passed
		total.Failed += r.Failed
		total.KnownBugs += r.KnownBugs
		total.Failures = append(total.Failures, r.Failures...)
	}
	for _, way := range strings.Split(*via, ",") {
		opt := hostile.Options{Limiter: *limiter, IDs: ids, Out: os.Stdout}
		var rn hostile.Runner
		switch way {
		case "api":
			rn = apirun.Runner{}
		case "cli":
			abs, err := filepath.Abs(*brig)
			if err != nil {
				fmt.Fprintln(os.Stderr, "brig-hostile:", err)
				return 2
			}
			rn = &hostile.CLIRunner{Brig: abs, Tmp: tmp}
		case "unpriv":
			rn, err = unprivRunner(*brig, tmp)
			if err != nil {
				fmt.Fprintln(os.Stderr, "brig-hostile:", err)
				return 2
			}
			opt.Unpriv = true
			opt.IDs.Extra = []uint32{65534}
		default:
			fmt.Fprintf(os.Stderr, "brig-hostile: -via %q: want api, cli or unpriv\n", way)
			return 2
		}
		add(hostile.RunCorpus(ctx, payloads, []hostile.Runner{rn}, bait, opt))
	}
	if total.KnownBugs > 0 {
		fmt.Printf("%d known bugs and limits (XFAIL lines above, not counted)\n", total.KnownBugs)
	}
	fmt.Printf("%d passed, %d failed\n", total.Passed, total.Failed)
	if total.Failed > 0 {
		return 1
	}
	return 0
}

// prepare checks for root, loads the payloads and sets out the bait, saying
// why on stderr when it cannot.
func prepare(dir, only string) ([]*hostile.Payload, *hostile.Bait, bool) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "brig-hostile: run as root (the bait and the unprivileged runs need it)")
		return nil, nil, false
	}
	payloads, err := load(dir, only)
	if err != nil {
		fmt.Fprintln(os.Stderr, "brig-hostile:", err)
		return nil, nil, false
	}
	bait, err := hostile.SetBait()
	if err != nil {
		fmt.Fprintln(os.Stderr, "brig-hostile: bait:", err)
		return nil, nil, false
	}
	return payloads, bait, true
}

func load(dir, only string) ([]*hostile.Payload, error) {
	if dir == "" {
		d, err := hostile.Corpus()
		if err != nil {
			return nil, err
		}
		dir = d
	}
	ps, err := hostile.Load(dir)
	if err != nil {
		return nil, err
	}
	var out []*hostile.Payload
	for _, p := range ps {
		if strings.Contains(p.Name, only) {
			out = append(out, p)
		}
	}
	return out, nil
}

// unprivRunner runs brig as nobody: a copy of the binary in a directory
// nobody may traverse but not read (0711), through setpriv.
func unprivRunner(brig, tmp string) (hostile.Runner, error) {
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		return nil, fmt.Errorf("unpriv needs setpriv: %w", err)
	}
	bin := filepath.Join(tmp, "bin")
	if err := os.Mkdir(bin, 0o711); err != nil {
		return nil, err
	}
	if err := os.Chmod(bin, 0o711); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(brig)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(bin, "brig"), b, 0o755); err != nil {
		return nil, err
	}
	return &hostile.CLIRunner{Brig: filepath.Join(bin, "brig"), Tmp: tmp, Tag: "cli-nobody",
		Wrap: []string{setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"}}, nil
}

func soakMain(args []string) int {
	fs := flag.NewFlagSet("brig-hostile soak", flag.ExitOnError)
	runs := fs.Int("runs", 2000, "number of runs")
	parallel := fs.Int("parallel", 8, "runs at once")
	limiter := fs.String("limiter", "auto", "limiter for every run")
	dir := fs.String("dir", "", "corpus directory (default testdata/hostile)")
	verbose := fs.Bool("v", false, "print every wrong verdict and leak")
	_ = fs.Parse(args)
	payloads, bait, ok := prepare(*dir, "")
	if !ok {
		return 2
	}
	defer bait.Close()
	ids := hostile.JailIDs{First: jail.DefaultSupervisor.HostIDs().First, Count: jail.DefaultSupervisor.HostIDs().Count}
	rep := hostile.Soak(context.Background(), apirun.Runner{}, hostile.SoakMix(payloads), bait,
		hostile.SoakOptions{Runs: *runs, Parallel: *parallel, Limiter: *limiter, IDs: ids, Seed: uint64(time.Now().UnixNano())})
	bad := append(append(rep.Failures, rep.Leaks...), rep.Flat()...)
	if *verbose || len(bad) > 0 {
		for _, b := range bad {
			fmt.Println("  " + b)
		}
	}
	fmt.Println(rep.Summary(*parallel))
	if len(bad) > 0 {
		return 1
	}
	return 0
}
