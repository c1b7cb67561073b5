// Package hostile runs brig's hostile corpus (testdata/hostile) and checks
// the host around every run. It knows nothing of the jail package, so that
// the jail package's own tests can use it: a Runner turns a Run into an
// Outcome through the Go API (package apirun, used by the jail tests and
// cmd/brig-hostile) or through the CLI (CLIRunner here).
//
// A payload is one file, Python (.py) or shell (.sh, or bash with
// "# interp: bash"), whose header comments carry its verdict:
//
//	# expect: reason=exited exit=0
//	# expect: stdout-contains=write /usr EROFS
//	# expect[rlimit]: reason=exited exit=1      (only under the rlimit limiter)
//	# expect[cgroup]: reason=oom                 (only under a cgroup limiter)
//	# config: timeout=3s pids=64 memory=128M tmpfs=8M output-limit=1M cpus=0.5 cpu-time=1s outbox seccomp-kill core-logger
//	# config: then-bind=hostroot:/h              (a two-step payload, below)
//	# config: result-in-outbox                   (brig run's --result file in the outbox, below)
//	# config: tmpfs-path=/var/a tmpfs-path=/var/b  (Config.Tmpfs, brig's --tmpfs; repeatable)
//	# config: tty                                (the program's stdio is a pty of the jail: jail.Cmd.TTY, brig run -t)
//	# config: allow=HOST[:PORT] allow=CIDR       (Network "proxy" allowing these: brig's --net proxy --allow; repeatable)
//	# soak: no                                   (too slow for the soak mix)
//
// core-logger points kernel.core_pattern at a harmless logger (a piped
// helper, like apport or systemd-coredump) for the run and restores it
// after (CoreLogger): a crash of a process with a jail's uid that ran the
// logger fails the run, and so does a control crash on the host that did
// not (the logger must be shown to work).
//
// Keys of an expect line: reason (alternatives with |), exit, signal,
// stdout-truncated; and, taking the rest of the line as their value,
// stdout-contains, stdout-not-contains, stderr-contains,
// stderr-not-contains, stdout-matches (a regexp), setup-error-contains.
// When an expect[KIND] line sets reason, exit or signal, it replaces the
// unqualified one. With setup-error-contains the jail must fail to be
// built, with that text in the error; nothing else is judged.
//
// With config result-in-outbox (which implies outbox) the CLI runs write
// brig's --result file into the outbox as brig-result.json (resultName);
// the Go API runs have no such file.
//
// A two-step payload (config then-bind=SRC:DST, which implies outbox) runs
// twice: first with the outbox writable at /out and BRIG_STEP=1 in its
// environment, where it must exit 0; then with BRIG_STEP=2 and, instead of
// the outbox, the outbox's SRC bound read-only at DST. The second run is
// judged. It is how an attack that takes two jails (the first plants, the
// second is given what was planted) is written.
//
// A payload with "# session: python" (a .py file) or "# session: shell"
// (a .sh file, run by bash) is sent as one cell of a session instead of
// run as a program: through the Go API (session.NewPython, ...) and
// through `brig session --jsonl`. Its expect lines judge the cell's result
// with the keys cell (ok, error, timeout, dead; alternatives with |) and
// cell-reason-contains (the rest of the line), besides stdout-* and
// stderr-*; "# config: cell-timeout=2s" sets the cell's timeout (default
// 30s). The runner holds the cell to a bound: a cell that has not returned
// within its timeout and sessionGrace fails, and the session is closed;
// through the CLI, brig session must then end within sessionGrace of a
// SIGTERM while its stdin stays open, with status 143.
//
// Every payload is run behind a prelude (prelude.py, prelude.sh) that
// proves it is jailed (a pid of at most 64 and a uid map that is not the
// host's identity map) and exits 99 otherwise; the payload's first
// statement calls the prelude's guard (brig_jailed()), so a payload run
// by mistake without the prelude stops at a NameError before doing
// anything. Load refuses payloads that do not start that way.
package hostile

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Payload is one file of the corpus.
type Payload struct {
	Name    string // file name without extension
	Path    string
	Interp  string // "python", "sh" or "bash"
	Source  string // prelude + payload, ready for -c
	Prelude string // the part of Source before the payload
	Config  Config
	Soak    bool
	Session string // "python" or "shell": the payload is one cell of a session
	// Bugs are the known bugs ("# bug[unpriv]: what") and known limits of
	// a layer ("# limit[rlimit]: what") this payload exposes, by selector
	// ("" for all runs, or rlimit, cgroup, priv, unpriv). The text starts
	// with "bug: " or "limit: ".
	Bugs   map[string]string
	expect map[string][]check // "" for every limiter, "rlimit", "cgroup", "priv", "unpriv"
}

// Config is the part of a jail's configuration a payload may choose.
type Config struct {
	Timeout     time.Duration
	Memory      int64
	Pids        int64
	CPUs        float64
	CPUTime     time.Duration
	TmpfsSize   int64
	TmpfsPaths  []string // jail.Config.Tmpfs, brig's --tmpfs
	OutputLimit int64
	Outbox      bool // a writable host directory (a small host tmpfs) bound at /out
	SeccompKill bool
	CoreLogger  bool          // a piped core_pattern logger for the run; the jail's crashes must not reach it
	Stdin       string        // fed to the program
	CellTimeout time.Duration // a session payload's cell timeout
	// ThenBind makes a two-step payload: the second run gets the outbox's
	// ThenBind[0] (a relative path) read-only at ThenBind[1].
	ThenBind [2]string
	// ResultInOutbox: `brig run` writes its --result file into the outbox,
	// as resultName, where the jail could plant something in its place.
	ResultInOutbox bool
	// TTY: the program's stdin, stdout and stderr are a pty of the jail's
	// own devpts (jail.Cmd.TTY, brig run --tty); its output, stderr
	// included, is judged as stdout. Not for session payloads.
	TTY bool
	// Allow: the jail's network is "proxy" (brig run --net proxy), its
	// egress policy allowing these destinations (--allow, each as
	// egress.ParseRule reads it); none means Network "none".
	Allow []string
}

// resultName is the name of the --result file in the outbox of a payload
// with ResultInOutbox.
const resultName = "brig-result.json"

type check struct {
	key, val string
	re       *regexp.Regexp
}

// Interpreter paths in the jail.
var Interpreters = map[string]string{"python": "/usr/bin/python3", "sh": "/bin/sh", "bash": "/bin/bash"}

// guard is the first statement every payload must make.
const guard = "brig_jailed()"

// Load reads every payload of dir (files *.py and *.sh, not prelude.*).
func Load(dir string) ([]*Payload, error) {
	preludes := map[string]string{}
	for _, ext := range []string{"py", "sh"} {
		b, err := os.ReadFile(filepath.Join(dir, "prelude."+ext))
		if err != nil {
			return nil, err
		}
		preludes[ext] = string(b)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.py"))
	sh, _ := filepath.Glob(filepath.Join(dir, "*.sh"))
	files = append(files, sh...)
	sort.Strings(files)
	var ps []*Payload
	for _, f := range files {
		base := filepath.Base(f)
		if strings.HasPrefix(base, "prelude.") {
			continue
		}
		p, err := parse(f, preludes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", base, err)
		}
		ps = append(ps, p)
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("no payloads in %s", dir)
	}
	return ps, nil
}

func parse(path string, preludes map[string]string) (*Payload, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	ext := strings.TrimPrefix(filepath.Ext(path), ".")
	p := &Payload{Name: strings.TrimSuffix(filepath.Base(path), "."+ext), Path: path, Soak: true,
		expect: map[string][]check{}, Bugs: map[string]string{}}
	p.Interp = map[string]string{"py": "python", "sh": "sh"}[ext]
	sawGuard := false
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#!") {
			continue
		}
		if !strings.HasPrefix(line, "#") {
			// The first statement must be the guard.
			if !strings.HasPrefix(line, "brig_jailed") {
				return nil, fmt.Errorf("first statement must be %s (prove jailed first), not %q", guard, line)
			}
			sawGuard = true
			break
		}
		h := strings.TrimSpace(strings.TrimPrefix(line, "#"))
		key, rest, ok := strings.Cut(h, ":")
		if !ok {
			continue
		}
		rest = strings.TrimSpace(rest)
		switch {
		case key == "interp":
			if _, ok := Interpreters[rest]; !ok {
				return nil, fmt.Errorf("interp %q", rest)
			}
			p.Interp = rest
		case key == "config":
			if err := p.Config.parse(rest); err != nil {
				return nil, err
			}
		case key == "bug" || strings.HasPrefix(key, "bug[") || key == "limit" || strings.HasPrefix(key, "limit["):
			kind, sel, _ := strings.Cut(strings.TrimSuffix(key, "]"), "[")
			p.Bugs[sel] = kind + ": " + rest
		case key == "soak":
			p.Soak = rest != "no"
		case key == "session":
			if want := map[string]string{"python": "python", "shell": "sh"}[rest]; want == "" || want != map[string]string{"py": "python", "sh": "sh"}[ext] {
				return nil, fmt.Errorf("session %q: python for a .py file, shell for a .sh file", rest)
			}
			p.Session = rest
		case key == "expect" || strings.HasPrefix(key, "expect["):
			sel := strings.TrimSuffix(strings.TrimPrefix(key, "expect["), "]")
			if key == "expect" {
				sel = ""
			}
			switch sel {
			case "", "rlimit", "cgroup", "priv", "unpriv":
			default:
				return nil, fmt.Errorf("unknown selector %q", sel)
			}
			cs, err := parseExpect(rest)
			if err != nil {
				return nil, err
			}
			p.expect[sel] = append(p.expect[sel], cs...)
		}
	}
	if !sawGuard {
		return nil, fmt.Errorf("no statement %s", guard)
	}
	if len(p.expect[""]) == 0 {
		return nil, fmt.Errorf("no '# expect:' line")
	}
	if p.Session == "shell" {
		p.Interp = "bash" // what a shell session runs
	}
	if p.Session != "" && p.Config.TTY {
		return nil, fmt.Errorf("config tty: a session has no pty")
	}
	p.Prelude = preludes["sh"] + "\n"
	if p.Interp == "python" {
		p.Prelude = preludes["py"] + "\n"
	}
	p.Source = p.Prelude + string(b)
	return p, nil
}

var textKeys = map[string]bool{"stdout-contains": true, "stdout-not-contains": true, "stderr-contains": true,
	"stderr-not-contains": true, "stdout-matches": true, "setup-error-contains": true, "cell-reason-contains": true}

func parseExpect(s string) ([]check, error) {
	if k, v, ok := strings.Cut(s, "="); ok && textKeys[k] {
		c := check{key: k, val: v}
		if k == "stdout-matches" {
			re, err := regexp.Compile("(?m)" + v)
			if err != nil {
				return nil, err
			}
			c.re = re
		}
		return []check{c}, nil
	}
	var cs []check
	for _, f := range strings.Fields(s) {
		k, v, ok := strings.Cut(f, "=")
		switch {
		case !ok:
			return nil, fmt.Errorf("expect %q: want key=value", f)
		case k == "reason" || k == "exit" || k == "signal" || k == "stdout-truncated" || k == "cell":
			cs = append(cs, check{key: k, val: v})
		default:
			return nil, fmt.Errorf("expect: unknown key %q", k)
		}
	}
	return cs, nil
}

func (c *Config) parse(s string) error {
	var err error
	for _, f := range strings.Fields(s) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "timeout":
			c.Timeout, err = time.ParseDuration(v)
		case "cpu-time":
			c.CPUTime, err = time.ParseDuration(v)
		case "memory":
			c.Memory, err = parseSize(v)
		case "tmpfs":
			c.TmpfsSize, err = parseSize(v)
		case "tmpfs-path":
			if !filepath.IsAbs(v) {
				return fmt.Errorf("config %s: want tmpfs-path=/ABSOLUTE/PATH", f)
			}
			c.TmpfsPaths = append(c.TmpfsPaths, v)
		case "output-limit":
			c.OutputLimit, err = parseSize(v)
		case "pids":
			c.Pids, err = strconv.ParseInt(v, 10, 64)
		case "cpus":
			c.CPUs, err = strconv.ParseFloat(v, 64)
		case "outbox":
			c.Outbox = true
		case "seccomp-kill":
			c.SeccompKill = true
		case "core-logger":
			c.CoreLogger = true
		case "tty":
			c.TTY = true
		case "allow":
			if v == "" {
				return fmt.Errorf("config %s: want allow=HOST[:PORT], an IP or a CIDR range", f)
			}
			c.Allow = append(c.Allow, v)
		case "stdin":
			c.Stdin = strings.ReplaceAll(v, `\n`, "\n")
		case "then-bind":
			src, dst, ok := strings.Cut(v, ":")
			if !ok || src == "" || filepath.IsAbs(src) || strings.Contains(src, "..") || !filepath.IsAbs(dst) {
				return fmt.Errorf("config %s: want then-bind=SRC:DST, SRC relative to the outbox, DST absolute", f)
			}
			c.ThenBind = [2]string{src, dst}
			c.Outbox = true
		case "result-in-outbox":
			c.ResultInOutbox, c.Outbox = true, true
		case "cell-timeout":
			c.CellTimeout, err = time.ParseDuration(v)
		default:
			return fmt.Errorf("config: unknown key %q", k)
		}
		if err != nil {
			return fmt.Errorf("config %s: %w", f, err)
		}
	}
	return nil
}

// parseSize reads 64K, 8M, 1G (powers of 1024) or a plain byte count.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v * mult, err
}

// Outcome is what a run ended with, whichever way it was run.
type Outcome struct {
	Reason          string
	ExitCode        int
	Signal          int
	StdoutTruncated bool
	Limiter         string
	Stdout, Stderr  string
	SetupError      string // brig failed to build the jail
	Supervisor      int    // pid whose jail cgroups are brig-<pid>-...; 0 when unknown
	// A session payload's cell: its status and reason (CellResult), and
	// the time bounds the runner saw broken.
	Cell, CellReason string
	Overrun          []string
}

// sessionGrace is how long after its cell timeout a session payload's cell
// must have returned: the interrupt grace (2 s) and the streams' settle
// time (2 s) of jail sessions, and room for a loaded host. It is a bound
// (a hung cell never returns), not a measure of speed.
const sessionGrace = 10 * time.Second

// CellTimeout is the cell timeout of a session payload.
func (p *Payload) CellTimeout() time.Duration {
	if p.Config.CellTimeout > 0 {
		return p.Config.CellTimeout
	}
	return 30 * time.Second // session.DefaultCellTimeout
}

// RunCellBounded runs a session payload's cell through run and holds it to
// its bound: when run has not returned within the cell timeout and
// sessionGrace, stop is called (it should close the session) and the
// outcome says the bound was broken.
func (p *Payload) RunCellBounded(run func() *Outcome, stop func()) *Outcome {
	done := make(chan *Outcome, 1)
	go func() { done <- run() }()
	bound := p.CellTimeout() + sessionGrace
	t := time.NewTimer(bound)
	defer t.Stop()
	select {
	case o := <-done:
		return o
	case <-t.C:
	}
	stop()
	over := fmt.Sprintf("the cell did not return within %v (its %v timeout and %v)", bound, p.CellTimeout(), sessionGrace)
	select {
	case o := <-done:
		o.Overrun = append(o.Overrun, over)
		return o
	case <-time.After(sessionGrace):
		return &Outcome{Overrun: []string{over, "nor after the session was closed"}}
	}
}

// selectors are the expectation selectors that apply to a run.
func selectors(limiter string, unpriv bool) []string {
	sels := []string{""}
	if limiter == "rlimit" {
		sels = append(sels, "rlimit")
	} else {
		sels = append(sels, "cgroup")
	}
	if unpriv {
		return append(sels, "unpriv")
	}
	return append(sels, "priv")
}

// KnownBug returns the known bug or limit a payload is marked with for
// this kind of run ("" when none), as "bug: ..." or "limit: ...": the run
// is still made and judged, but make hostile reports its failure as XFAIL
// rather than counting it. The go tests fail on bugs and skip limits.
func (p *Payload) KnownBug(limiter string, unpriv bool) string {
	for _, s := range selectors(limiter, unpriv) {
		if b, ok := p.Bugs[s]; ok {
			return b
		}
	}
	return ""
}

// verdict checks an outcome against the payload's expectations for the
// limiter kind it ran under; it returns the failures.
func (p *Payload) verdict(o *Outcome, unpriv bool) []string {
	var wantSetup []string
	for _, s := range selectors(o.Limiter, unpriv) {
		for _, c := range p.expect[s] {
			if c.key == "setup-error-contains" {
				wantSetup = append(wantSetup, c.val)
			}
		}
	}
	if o.SetupError != "" && len(wantSetup) == 0 {
		return append(append([]string{}, o.Overrun...), "setup failed: "+o.SetupError)
	}
	if len(wantSetup) > 0 {
		if o.SetupError == "" {
			first, _, _ := strings.Cut(o.Stdout, "\n")
			return []string{fmt.Sprintf("the jail ran (reason=%s exit=%d, stdout %q...), want a setup error containing %q",
				o.Reason, o.ExitCode, first, wantSetup[0])}
		}
		var fails []string
		for _, w := range wantSetup {
			if !strings.Contains(o.SetupError, w) {
				fails = append(fails, fmt.Sprintf("setup-error-contains %q: got %q", w, o.SetupError))
			}
		}
		return fails
	}
	if o.ExitCode == 99 || strings.Contains(o.Stderr, "NOT JAILED") {
		return []string{"payload was not jailed (refused to run)"}
	}
	sels := selectors(o.Limiter, unpriv)
	// Later selectors replace the scalar keys of earlier ones.
	scalar := map[string]string{}
	var text []check
	for _, s := range sels {
		over := map[string]bool{}
		for _, c := range p.expect[s] {
			if textKeys[c.key] {
				text = append(text, c)
				continue
			}
			if !over[c.key] {
				over[c.key] = true
				if s != "" {
					// A qualified reason drops the unqualified exit/signal too.
					if c.key == "reason" {
						delete(scalar, "exit")
						delete(scalar, "signal")
					}
				}
			}
			scalar[c.key] = c.val
		}
	}
	fails := append([]string{}, o.Overrun...)
	for _, k := range []string{"reason", "exit", "signal", "stdout-truncated", "cell"} {
		want, ok := scalar[k]
		if !ok {
			continue
		}
		var got string
		switch k {
		case "reason":
			got = o.Reason
		case "exit":
			got = strconv.Itoa(o.ExitCode)
		case "signal":
			got = strconv.Itoa(o.Signal)
		case "stdout-truncated":
			got = strconv.FormatBool(o.StdoutTruncated)
		case "cell":
			got = o.Cell
		}
		if !matchAlt(want, got) {
			fails = append(fails, fmt.Sprintf("%s=%s, want %s", k, got, want))
		}
	}
	for _, c := range text {
		var ok bool
		switch c.key {
		case "stdout-contains":
			ok = strings.Contains(o.Stdout, c.val)
		case "stdout-not-contains":
			ok = !strings.Contains(o.Stdout, c.val)
		case "stderr-contains":
			ok = strings.Contains(o.Stderr, c.val)
		case "stderr-not-contains":
			ok = !strings.Contains(o.Stderr, c.val)
		case "stdout-matches":
			ok = c.re.MatchString(o.Stdout)
		case "cell-reason-contains":
			ok = strings.Contains(o.CellReason, c.val)
		}
		if !ok {
			fails = append(fails, fmt.Sprintf("%s %q", c.key, c.val))
		}
	}
	return fails
}

func matchAlt(want, got string) bool {
	for _, w := range strings.Split(want, "|") {
		if w == got {
			return true
		}
	}
	return false
}
