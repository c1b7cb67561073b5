package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/brig-sandbox/brig/internal/hostile"
	"github.com/brig-sandbox/brig/jail"
	"github.com/brig-sandbox/brig/serve"
	"github.com/brig-sandbox/brig/serve/client"
)

// The soak of brig serve (issue 19): a real server, started here from a
// statically built brig with a config written here, and many clients of
// two tenants sending mixed requests whose every answer is checked. A 429
// is counted apart (the tight tenant is there to get them); anything else
// unexpected is a wrong answer. At the end every sandbox is deleted, the
// server is stopped with SIGTERM and the host must hold nothing of it.

// soakServeConfig is the server's config: tenant "wide" with room for the
// clients, tenant "tight" with quotas its clients run into, a default
// template with small limits and a bomb template with smaller ones.
const soakServeConfig = `
state_dir: %s
listen: [unix:%s]
max_file_bytes: 64K
admission: {concurrent: 32, queue_wait: 30s}
lifecycle: {drain_grace: 2s}
tenants:
  - name: wide
    token_sha256: %s
    quotas: {requests_per_second: 100000, burst: 100000, concurrent: 32, sandboxes: 64, contexts: 64, workspace_bytes: 1G}
  - name: tight
    token_sha256: %s
    quotas: {requests_per_second: 20, burst: 10, concurrent: 2, sandboxes: 4, contexts: 4, workspace_bytes: 32M}
templates:
  default: {memory: 128M, pids: 32, timeout: 60s, output-limit: 1M, workspace-size: 4M, pool: 4}
  bomb: {memory: 64M, pids: 16, timeout: 10s, output-limit: 64K, workspace-size: 1M, pool: 2}
`

// rssFlatBound is how far the median RSS of the soak's last quarter may be
// above that of its second quarter (the first is the warm-up: pools, caches).
const rssFlatBound = 16 << 20

func soakServeMain(args []string) int {
	fs := flag.NewFlagSet("brig-hostile soak-serve", flag.ExitOnError)
	clients := fs.Int("clients", 16, "clients at once (the last quarter use the tight tenant)")
	requests := fs.Int("requests", 20000, "requests in all (each a checked operation: a run, a cell, a file round trip of 6 HTTP requests, a sandbox's life...)")
	brig := fs.String("brig", "", "a statically built brig (default: build one from this checkout)")
	verbose := fs.Bool("v", false, "print every wrong answer and leak")
	seed := fs.Uint64("seed", uint64(time.Now().UnixNano()), "seed of the request mix")
	_ = fs.Parse(args)
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "brig-hostile soak-serve: run as root (brig serve needs it)")
		return 2
	}
	corpus, err := hostile.Corpus()
	if err != nil {
		fmt.Fprintln(os.Stderr, "brig-hostile soak-serve:", err)
		return 2
	}
	pyPrelude, err1 := os.ReadFile(filepath.Join(corpus, "prelude.py"))
	shPrelude, err2 := os.ReadFile(filepath.Join(corpus, "prelude.sh"))
	if err := errors.Join(err1, err2); err != nil {
		fmt.Fprintln(os.Stderr, "brig-hostile soak-serve:", err)
		return 2
	}
	dir, err := os.MkdirTemp("", "brig-soak-serve-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "brig-hostile soak-serve:", err)
		return 2
	}
	defer os.RemoveAll(dir)
	if *brig == "" {
		*brig = filepath.Join(dir, "brig")
		if err := hostile.BuildCLI(filepath.Dir(filepath.Dir(corpus)), *brig); err != nil {
			fmt.Fprintln(os.Stderr, "brig-hostile soak-serve:", err)
			return 2
		}
	}
	ids := hostile.JailIDs{First: jail.DefaultSupervisor.HostIDs().First, Count: jail.DefaultSupervisor.HostIDs().Count,
		More: []hostile.JailIDs{{First: serve.WorkspaceIDs.First, Count: serve.WorkspaceIDs.Count}}}
	before := hostile.Snapshot(ids)

	srv, err := startSoakServer(*brig, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "brig-hostile soak-serve:", err)
		return 2
	}
	defer srv.cmd.Process.Kill()
	sampler := sampleRSS(srv.cmd.Process.Pid, 250*time.Millisecond)

	s := &soak{srv: srv, pyPrelude: string(pyPrelude), shPrelude: string(shPrelude), kinds: map[string]int{}}
	start := time.Now()
	var wg sync.WaitGroup
	var next sync.Mutex
	left := *requests
	for i := range *clients {
		tenant, token := "wide", srv.wide
		if i >= *clients-*clients/4 {
			tenant, token = "tight", srv.tight
		}
		c, err := client.New("unix://"+srv.sock, token)
		if err != nil {
			fmt.Fprintln(os.Stderr, "brig-hostile soak-serve:", err)
			return 2
		}
		cl := &soakClient{soak: s, c: c, id: i, tenant: tenant, rng: rand.New(rand.NewPCG(*seed, uint64(i)))}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl.loop(func() bool {
				next.Lock()
				defer next.Unlock()
				left--
				return left >= 0
			})
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	rss := sampler.stop()

	// Nothing of the clients' is left on the live server.
	for _, token := range []string{srv.wide, srv.tight} {
		c, _ := client.New("unix://"+srv.sock, token)
		if sbs, err := c.Sandboxes(context.Background()); err != nil || len(sbs) > 0 {
			s.leak(fmt.Sprintf("sandboxes listed after every client deleted its own: %d, %v", len(sbs), err))
		}
	}
	// SIGTERM drains the server; then the host must hold nothing of it.
	pid := srv.cmd.Process.Pid
	_ = srv.cmd.Process.Signal(syscall.SIGTERM)
	exited := make(chan error, 1)
	go func() { exited <- srv.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			s.leak(fmt.Sprintf("brig serve ended with %v after SIGTERM", err))
		}
	case <-time.After(30 * time.Second):
		s.leak("brig serve still running 30s after SIGTERM")
		_ = srv.cmd.Process.Kill()
		<-exited
	}
	for _, l := range hostile.SettleLeaks(before, ids, 10*time.Second, pid) {
		s.leak(l)
	}
	if ents, err := os.ReadDir(filepath.Join(srv.stateDir, "workspaces")); err != nil || len(ents) > 0 {
		s.leak(fmt.Sprintf("workspaces left in the state dir: %d, %v", len(ents), err))
	}

	flat := rss.flat()
	bad := append(slices.Clone(s.wrong), s.leaks...)
	if flat != "" {
		bad = append(bad, flat)
	}
	if *verbose || len(bad) > 0 {
		for _, b := range bad {
			fmt.Println("  " + b)
		}
		fmt.Println("  mix:", s.mix())
	}
	status := "PASS"
	if len(bad) > 0 {
		status = "FAIL"
	}
	fmt.Printf("soak-serve %s: %d requests, %d clients, %d right, %d wrong, %d throttled (429), %d leaks; server rss %s; %v\n",
		status, s.right+len(s.wrong)+s.throttled, *clients, s.right, len(s.wrong), s.throttled, len(s.leaks), rss.summary(), wall.Round(time.Second))
	if len(bad) > 0 {
		return 1
	}
	return 0
}

type soakServer struct {
	cmd         *exec.Cmd
	sock        string
	stateDir    string
	wide, tight string // tokens
}

// startSoakServer writes the config and starts brig serve on a unix
// socket, waiting for its health.
func startSoakServer(brig, dir string) (*soakServer, error) {
	s := &soakServer{sock: filepath.Join(dir, "brig.sock"), stateDir: filepath.Join(dir, "state")}
	var wideSum, tightSum string
	s.wide, wideSum = serve.NewToken()
	s.tight, tightSum = serve.NewToken()
	config := filepath.Join(dir, "brig.yaml")
	text := fmt.Sprintf(soakServeConfig, s.stateDir, s.sock, wideSum, tightSum)
	if err := os.WriteFile(config, []byte(text), 0o600); err != nil {
		return nil, err
	}
	s.cmd = exec.Command(brig, "serve", "--config", config)
	logf, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		return nil, err
	}
	s.cmd.Stderr = logf
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s serve: %w", brig, err)
	}
	c, _ := client.New("unix://"+s.sock, s.wide)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := c.Health(context.Background()); err == nil {
			return s, nil
		} else if time.Now().After(deadline) {
			_ = s.cmd.Process.Kill()
			_ = s.cmd.Wait()
			log, _ := os.ReadFile(logf.Name())
			return nil, fmt.Errorf("brig serve did not answer its health in 30s: %v\n%s", err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type soak struct {
	srv                  *soakServer
	pyPrelude, shPrelude string

	mu        sync.Mutex
	right     int
	throttled int
	wrong     []string
	leaks     []string
	kinds     map[string]int
}

func (s *soak) leak(what string) {
	s.mu.Lock()
	s.leaks = append(s.leaks, what)
	s.mu.Unlock()
}

func (s *soak) mix() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var parts []string
	for k, n := range s.kinds {
		parts = append(parts, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// count books one request's answer: err nil is right, a 429 naming its
// quota with a Retry-After is throttled, anything else is wrong.
func (s *soak) count(kind string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kinds[kind]++
	var e *client.Error
	switch {
	case err == nil:
		s.right++
	case errors.As(err, &e) && e.Status == 429 && e.Quota != "" && e.RetryAfter > 0:
		s.throttled++
	default:
		s.wrong = append(s.wrong, kind+": "+err.Error())
	}
}

// soakClient is one client: a sandbox with a Python context of its own
// (made again when a 429 refused it), and its expectations of them.
type soakClient struct {
	*soak
	c      *client.Client
	id     int
	tenant string
	rng    *rand.Rand

	sandbox, context string
	ready            bool // the context holds n
	counter          int  // the context's n
	seq              int
}

func (cl *soakClient) loop(take func() bool) {
	ctx := context.Background()
	for take() {
		if !cl.ready {
			cl.count("setup", cl.setup(ctx))
			continue
		}
		kinds := []struct {
			name   string
			weight int
			do     func(context.Context) error
		}{
			{"run-python", 8, cl.runPython},
			{"run-command", 6, cl.runCommand},
			{"run-stdin", 4, cl.runStdin},
			{"context-state", 10, cl.contextState},
			{"context-error", 3, cl.contextError},
			{"file", 8, cl.fileRoundTrip},
			{"sandbox-lifecycle", 2, cl.sandboxLifecycle},
			{"bomb-oom", 2, cl.bombOOM},
			{"bomb-pids", 2, cl.bombPids},
			{"bomb-timeout", 1, cl.bombTimeout},
			{"disconnect-run", 1, cl.disconnectRun},
			{"disconnect-process", 1, cl.disconnectProcess},
			{"disconnect-cell", 1, cl.disconnectCell},
		}
		total := 0
		for _, k := range kinds {
			total += k.weight
		}
		pick := cl.rng.IntN(total)
		for _, k := range kinds {
			if pick -= k.weight; pick < 0 {
				cl.count(k.name, k.do(ctx))
				break
			}
		}
	}
	if cl.sandbox != "" {
		cl.count("delete", cl.c.DeleteSandbox(ctx, cl.sandbox))
	}
}

func (cl *soakClient) setup(ctx context.Context) error {
	if cl.sandbox == "" {
		sb, err := cl.c.CreateSandbox(ctx, "", 0)
		if err != nil {
			return cl.backOff(err)
		}
		cl.sandbox = sb.ID
	}
	if cl.context == "" {
		cx, err := cl.c.CreateContext(ctx, cl.sandbox, "python")
		if err != nil {
			return cl.backOff(err)
		}
		cl.context = cx
	}
	r, err := cl.c.Execute(ctx, cl.sandbox, cl.context, "n = 0", 0, nil)
	if err := cellWant(r, err, "ok", ""); err != nil {
		return cl.backOff(err)
	}
	cl.ready, cl.counter = true, 0
	return nil
}

func throttled(err error) bool {
	var e *client.Error
	return errors.As(err, &e) && e.Status == 429
}

// backOff waits out a 429 before the next request of this client.
func (cl *soakClient) backOff(err error) error {
	var e *client.Error
	if errors.As(err, &e) && e.Status == 429 {
		time.Sleep(time.Duration(max(e.RetryAfter, 1)) * time.Second)
	}
	return err
}

func (cl *soakClient) token() string {
	cl.seq++
	return fmt.Sprintf("c%d-%d-%x", cl.id, cl.seq, cl.rng.Uint32())
}

func runWant(r *client.Result, err error, reason string, exit int, stdout string) error {
	if err != nil {
		return err
	}
	if r.Reason != reason || (exit >= 0 && r.ExitCode != exit) || (stdout != "\x00" && r.Stdout != stdout) {
		return fmt.Errorf("want reason %s exit %d stdout %q, got reason %s exit %d signal %d stdout %.200q stderr %.300q",
			reason, exit, stdout, r.Reason, r.ExitCode, r.Signal, r.Stdout, r.Stderr)
	}
	return nil
}

func cellWant(r *client.CellResult, err error, status, stdout string) error {
	if err != nil {
		return err
	}
	if r.Status != status || r.Stdout != stdout {
		return fmt.Errorf("want status %s stdout %q, got status %s stdout %.200q stderr %.300q error %+v", status, stdout, r.Status, r.Stdout, r.Stderr, r.Error)
	}
	return nil
}

func (cl *soakClient) runPython(ctx context.Context) error {
	a, b := cl.rng.IntN(1000), cl.rng.IntN(1000)
	r, err := cl.c.Run(ctx, client.RunRequest{Language: "python", Code: client.Code(fmt.Sprintf("print(%d*%d)", a, b))}, nil)
	return cl.backOff(runWant(r, err, "exited", 0, fmt.Sprintf("%d\n", a*b)))
}

func (cl *soakClient) runCommand(ctx context.Context) error {
	tok := cl.token()
	r, err := cl.c.Run(ctx, client.RunRequest{Command: []string{"/bin/echo", tok}}, nil)
	return cl.backOff(runWant(r, err, "exited", 0, tok+"\n"))
}

func (cl *soakClient) runStdin(ctx context.Context) error {
	in := strings.Repeat(cl.token()+"\n", 1+cl.rng.IntN(200))
	r, err := cl.c.Run(ctx, client.RunRequest{Language: "shell", Code: client.Code("cat; exit 3"), Stdin: &in}, nil)
	return cl.backOff(runWant(r, err, "exited", 3, in))
}

// contextState: the context keeps its variables between cells.
func (cl *soakClient) contextState(ctx context.Context) error {
	r, err := cl.c.Execute(ctx, cl.sandbox, cl.context, "n += 1\nprint(n)", 0, nil)
	if err := cellWant(r, err, "ok", fmt.Sprintf("%d\n", cl.counter+1)); err != nil {
		return cl.backOff(err)
	}
	cl.counter++
	return nil
}

func (cl *soakClient) contextError(ctx context.Context) error {
	r, err := cl.c.Execute(ctx, cl.sandbox, cl.context, "print('before')\n1/0", 0, nil)
	if err := cellWant(r, err, "error", "before\n"); err != nil {
		return cl.backOff(err)
	}
	if r.Error == nil || r.Error.Type != "ZeroDivisionError" {
		return fmt.Errorf("want a ZeroDivisionError, got %+v", r.Error)
	}
	return nil
}

// fileRoundTrip: PUT, listing, the context reads it, GET, DELETE, 404.
func (cl *soakClient) fileRoundTrip(ctx context.Context) error {
	name := "f-" + cl.token()
	data := make([]byte, 1+cl.rng.IntN(32<<10))
	for i := range data {
		data[i] = byte(cl.rng.Uint32())
	}
	if err := cl.c.WriteFile(ctx, cl.sandbox, "dir/"+name, data); err != nil {
		return cl.backOff(err)
	}
	list, err := cl.c.ListDir(ctx, cl.sandbox, "dir")
	if err != nil {
		return cl.backOff(err)
	}
	if !slices.ContainsFunc(list, func(f client.FileInfo) bool { return f.Name == name && f.Size == int64(len(data)) }) {
		return fmt.Errorf("listing of dir lacks %s of %d bytes: %+v", name, len(data), list)
	}
	r, err := cl.c.Execute(ctx, cl.sandbox, cl.context,
		fmt.Sprintf("import hashlib\nprint(hashlib.sha256(open('/workspace/dir/%s','rb').read()).hexdigest())", name), 0, nil)
	if err := cellWant(r, err, "ok", fmt.Sprintf("%x\n", sha256.Sum256(data))); err != nil {
		return cl.backOff(err)
	}
	got, err := cl.c.ReadFile(ctx, cl.sandbox, "dir/"+name)
	if err != nil {
		return cl.backOff(err)
	}
	if !bytes.Equal(got, data) {
		return fmt.Errorf("file %s read back %d bytes, wrote %d (or they differ)", name, len(got), len(data))
	}
	if err := cl.c.RemoveFile(ctx, cl.sandbox, "dir/"+name); err != nil {
		return cl.backOff(err)
	}
	var e *client.Error
	if _, err := cl.c.ReadFile(ctx, cl.sandbox, "dir/"+name); throttled(err) {
		return cl.backOff(err)
	} else if !errors.As(err, &e) || e.Status != 404 {
		return fmt.Errorf("a deleted file: want 404, got %v", err)
	}
	return nil
}

// sandboxLifecycle: a second sandbox with its own context, which does not
// see this client's variables, then deleted.
func (cl *soakClient) sandboxLifecycle(ctx context.Context) error {
	sb, err := cl.c.CreateSandbox(ctx, "", 0)
	if err != nil {
		return cl.backOff(err)
	}
	defer cl.c.DeleteSandbox(ctx, sb.ID)
	cx, err := cl.c.CreateContext(ctx, sb.ID, "python")
	if err != nil {
		return cl.backOff(err)
	}
	r, err := cl.c.Execute(ctx, sb.ID, cx, "print('n' in globals())", 0, nil)
	if err := cellWant(r, err, "ok", "False\n"); err != nil {
		return cl.backOff(err)
	}
	if err := cl.c.DeleteSandbox(ctx, sb.ID); err != nil {
		return cl.backOff(err)
	}
	var e *client.Error
	if _, err := cl.c.Sandbox(ctx, sb.ID); throttled(err) {
		return cl.backOff(err)
	} else if !errors.As(err, &e) || e.Status != 404 {
		return fmt.Errorf("a deleted sandbox: want 404, got %v", err)
	}
	return nil
}

// The bombs: each proves it is jailed first (the corpus prelude, then
// brig_jailed() as its first statement), in the bomb template.
func (cl *soakClient) bomb(ctx context.Context, code string, timeout float64) (*client.Result, error) {
	return cl.c.Run(ctx, client.RunRequest{Language: "python", Code: client.Code(cl.pyPrelude + "brig_jailed()\n" + code),
		Template: "bomb", Timeout: timeout}, nil)
}

func (cl *soakClient) bombOOM(ctx context.Context) error {
	r, err := cl.bomb(ctx, "a = []\nwhile True: a.append(bytearray(8 << 20))", 0)
	return cl.backOff(runWant(r, err, "oom", -1, ""))
}

// bombPids forks until the pids limit refuses, says so and exits: the
// limit held (the cgroup counted the refusals) and the jail lived on.
func (cl *soakClient) bombPids(ctx context.Context) error {
	r, err := cl.bomb(ctx, `import time
n = 0
while True:
    try:
        if os.fork() == 0:
            time.sleep(60); os._exit(0)
        n += 1
    except OSError as e:
        print("held", errno.errorcode[e.errno], n < 16, flush=True)
        os._exit(0)`, 0)
	if err := runWant(r, err, "exited", 0, "held EAGAIN True\n"); err != nil {
		return cl.backOff(err)
	}
	if r.Limiter != "rlimit" && r.PidsLimitHits == 0 {
		return fmt.Errorf("the %s limiter counted no pids limit hit", r.Limiter)
	}
	return nil
}

func (cl *soakClient) bombTimeout(ctx context.Context) error {
	r, err := cl.bomb(ctx, "while True: pass", 0.5)
	return cl.backOff(runWant(r, err, "timeout", -1, ""))
}

// abandonedGrace is how long an abandoned execution may take to end: far
// less than the default template's timeout, so that only the server's
// reaction to the disconnect ends it in time.
const abandonedGrace = 20 * time.Second

// disconnectRun: a streamed run that prints once and then sleeps in
// silence (no failed write can end it), abandoned at its first output. Its
// process, found on the host by a marker in its command line, must be gone
// within abandonedGrace: the server killed it when the client left.
func (cl *soakClient) disconnectRun(ctx context.Context) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	marker := "soak-marker-" + cl.token()
	code := cl.pyPrelude + "brig_jailed()\n# " + marker + "\nimport time\nprint('up', flush=True)\ntime.sleep(600)"
	_, err := cl.c.Run(sctx, client.RunRequest{Language: "python", Code: client.Code(code)}, func(string, string) { cancel() })
	if !errors.Is(err, context.Canceled) {
		return cl.backOff(fmt.Errorf("want the stream cut by the client, got %w", err))
	}
	for deadline := time.Now().Add(abandonedGrace); ; time.Sleep(100 * time.Millisecond) {
		pids := processesWith(marker)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("an abandoned run still runs %v after the client left: pids %v", abandonedGrace, pids)
		}
	}
}

// processesWith lists the host's processes whose command line holds s.
func processesWith(s string) []int {
	var out []int
	dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, d := range dirs {
		if b, err := os.ReadFile(d); err == nil && bytes.Contains(b, []byte(s)) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(d)))
			out = append(out, pid)
		}
	}
	return out
}

// disconnectProcess: a streamed sandbox process that appends to a
// workspace file forever, abandoned at its first output. The file must
// stop growing: the server killed it.
func (cl *soakClient) disconnectProcess(ctx context.Context) error {
	name := "hb-" + cl.token()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	code := cl.shPrelude + "brig_jailed\nwhile :; do echo x >> /workspace/" + name + "; echo tick; sleep 0.05; done"
	_, err := cl.c.Process(sctx, cl.sandbox, client.RunRequest{Command: []string{"/bin/sh", "-c", code}}, func(string, string) { cancel() })
	if !errors.Is(err, context.Canceled) {
		return cl.backOff(fmt.Errorf("want the stream cut by the client, got %w", err))
	}
	last, stable := -1, 0
	for deadline := time.Now().Add(abandonedGrace); stable < 3; time.Sleep(300 * time.Millisecond) {
		data, err := cl.c.ReadFile(ctx, cl.sandbox, name)
		if err != nil {
			return fmt.Errorf("the heartbeat file: %w", err)
		}
		if len(data) == last {
			stable++
		} else {
			last, stable = len(data), 0
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("an abandoned process still writes its heartbeat %v after the client left (%d bytes)", abandonedGrace, len(data))
		}
	}
	return cl.c.RemoveFile(ctx, cl.sandbox, name)
}

// disconnectCell: a streamed cell that would print forever, abandoned at
// its first output. The cell is interrupted; the context lives on with its
// state.
func (cl *soakClient) disconnectCell(ctx context.Context) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	_, err := cl.c.Execute(sctx, cl.sandbox, cl.context, "import time\nwhile True:\n    print('tick', flush=True); time.sleep(0.05)", 0, func(string, string) { cancel() })
	if !errors.Is(err, context.Canceled) {
		return cl.backOff(fmt.Errorf("want the stream cut by the client, got %w", err))
	}
	// The next cell may find the interrupted one still ending: a 409
	// (busy) then is right; it must be over within seconds.
	for deadline := time.Now().Add(abandonedGrace); ; time.Sleep(100 * time.Millisecond) {
		r, err := cl.c.Execute(ctx, cl.sandbox, cl.context, "print(n)", 0, nil)
		var e *client.Error
		if errors.As(err, &e) && e.Status == 409 && time.Now().Before(deadline) {
			continue
		}
		return cl.backOff(cellWant(r, err, "ok", fmt.Sprintf("%d\n", cl.counter)))
	}
}

// rssSampler reads a process's resident set size at intervals.
type rssSampler struct {
	done    chan struct{}
	stopped chan []rssSample
}

type rssSample struct {
	at  time.Duration
	rss int64
}

func sampleRSS(pid int, every time.Duration) *rssSampler {
	s := &rssSampler{done: make(chan struct{}), stopped: make(chan []rssSample, 1)}
	start := time.Now()
	go func() {
		var out []rssSample
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if rss := processRSS(pid); rss > 0 {
				out = append(out, rssSample{time.Since(start), rss})
			}
			select {
			case <-s.done:
				s.stopped <- out
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *rssSampler) stop() rssSeries {
	close(s.done)
	return <-s.stopped
}

func processRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

type rssSeries []rssSample

func (r rssSeries) quarterMedian(q int) int64 {
	n := len(r)
	part := slices.Clone(r[q*n/4 : (q+1)*n/4])
	if len(part) == 0 {
		return 0
	}
	sort.Slice(part, func(i, j int) bool { return part[i].rss < part[j].rss })
	return part[len(part)/2].rss
}

// slope is the least-squares growth of the RSS in bytes per minute.
func (r rssSeries) slope() float64 {
	if len(r) < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for _, s := range r {
		x, y := s.at.Minutes(), float64(s.rss)
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	n := float64(len(r))
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

// flat says what is wrong when the RSS grew: the last quarter's median
// more than rssFlatBound above the second quarter's.
func (r rssSeries) flat() string {
	if len(r) < 8 {
		return fmt.Sprintf("too few RSS samples (%d) to judge its growth: run more requests", len(r))
	}
	if q2, q4 := r.quarterMedian(1), r.quarterMedian(3); q4 > q2+rssFlatBound {
		return fmt.Sprintf("server RSS not flat: last quarter's median %.1f MiB, second quarter's %.1f MiB (bound +%d MiB)",
			mib(q4), mib(q2), rssFlatBound>>20)
	}
	return ""
}

func (r rssSeries) summary() string {
	if len(r) == 0 {
		return "not sampled"
	}
	peak := slices.MaxFunc(r, func(a, b rssSample) int { return int(a.rss - b.rss) })
	return fmt.Sprintf("%.1f->%.1f MiB (medians of the 2nd and 4th quarters, flat within +%d MiB), peak %.1f MiB, slope %+.2f MiB/min, %d samples",
		mib(r.quarterMedian(1)), mib(r.quarterMedian(3)), rssFlatBound>>20, mib(peak.rss), r.slope()/(1<<20), len(r))
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
