package sandboxd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/brig-sandbox/brig/jail"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	processv1 "sigs.k8s.io/agent-sandbox/packages/sandboxd/spec/process/v1"
)

// DefaultShutdownGrace is how long Shutdown lets running processes end
// after SIGTERM before it kills their jails.
const DefaultShutdownGrace = 5 * time.Second

// DefaultMetadataPrefix selects the environment variables /v1/metadata
// serves, as the reference daemon's default does.
const DefaultMetadataPrefix = "SANDBOX_"

// Options configure a Server.
type Options struct {
	// Workspace is the host directory bound read-write at /workspace in
	// every jail and served by /v1/files. It must exist and be owned by a
	// user other than root: the jails write it through an idmapped bind as
	// that owner, and the REST side writes as that owner too.
	Workspace string
	// Config is the template of every process's jail (limits, binds,
	// seccomp). The workspace bind is added to its Binds and its WorkDir
	// is /workspace; a bind of its own at /workspace is refused.
	Config jail.Config
	// Env is KEY=VALUE pairs every process gets, before (and overridden
	// by) the request's env_vars.
	Env []string
	// WarmJails is how many jails of the template Execute keeps built
	// ahead (a jail.Pool; its output cap is ExecuteOutputLimit): an
	// Execute in the workspace's top directory takes one instead of
	// building its own. 0 means none. Start always builds its own (a pty,
	// stdin of its own).
	WarmJails int
	// ShutdownGrace is how long Shutdown waits for processes after
	// SIGTERM; 0 means DefaultShutdownGrace.
	ShutdownGrace time.Duration
	// MetadataPrefix selects the environment variables /v1/metadata
	// serves; "" means DefaultMetadataPrefix.
	MetadataPrefix string
	// Environ is the environment /v1/metadata reads; nil means os.Environ.
	Environ func() []string
}

// Server is a sandboxd runtime: the gRPC ProcessService and the REST
// file API over one workspace. Make it with New, run it with Serve, stop
// it with Shutdown.
type Server struct {
	ws             *workspace
	jailConfig     jail.Config
	env            []string
	grace          time.Duration
	metadataPrefix string
	environ        func() []string
	started        time.Time

	pool     *jail.Pool // Execute's warm jails, or nil
	procs    processTable
	draining atomic.Bool
	// running counts the Start and Execute calls that hold a jail;
	// admit and release keep it under admitMu so Shutdown's wait never
	// races a late admission.
	admitMu sync.Mutex
	running sync.WaitGroup
	// killCtx is cancelled when the grace has passed: every jail's
	// context hangs on it.
	killCtx  context.Context
	killAll  context.CancelFunc
	grpc     *grpc.Server
	http     *http.Server
	serveErr chan error
	once     sync.Once
}

// New checks the options and opens the workspace.
func New(opts Options) (*Server, error) {
	if opts.Workspace == "" {
		return nil, errors.New("sandboxd: no workspace: give the host directory to bind at /workspace (--workspace DIR)")
	}
	dir, err := filepath.Abs(opts.Workspace)
	if err != nil {
		return nil, fmt.Errorf("sandboxd: workspace %s: %w", opts.Workspace, err)
	}
	cfg := opts.Config
	for _, b := range cfg.Binds {
		t := b.Target
		if t == "" {
			t = b.Source
		}
		if filepath.Clean(t) == WorkspaceMount {
			return nil, fmt.Errorf("sandboxd: the template binds %s at %s, where the workspace goes; drop that bind", b.Source, WorkspaceMount)
		}
	}
	if err := checkHostIDs(cfg.HostIDs); err != nil {
		return nil, err
	}
	ws, err := openWorkspace(dir)
	if err != nil {
		return nil, err
	}
	cfg.Binds = append(append([]jail.Bind(nil), cfg.Binds...), jail.Bind{Source: dir, Target: WorkspaceMount, Writable: true, IDMap: true})
	cfg.WorkDir = WorkspaceMount
	s := &Server{ws: ws, jailConfig: cfg, env: append([]string(nil), opts.Env...), grace: opts.ShutdownGrace, metadataPrefix: opts.MetadataPrefix,
		environ: opts.Environ, started: time.Now(), serveErr: make(chan error, 2)}
	if s.grace <= 0 {
		s.grace = DefaultShutdownGrace
	}
	if s.metadataPrefix == "" {
		s.metadataPrefix = DefaultMetadataPrefix
	}
	if s.environ == nil {
		s.environ = os.Environ
	}
	s.killCtx, s.killAll = context.WithCancel(context.Background())
	if opts.WarmJails > 0 {
		pcfg := cfg
		if pcfg.OutputLimit <= 0 || pcfg.OutputLimit > ExecuteOutputLimit {
			pcfg.OutputLimit = ExecuteOutputLimit
		}
		if s.pool, err = jail.NewPool(s.killCtx, pcfg, opts.WarmJails); err != nil {
			s.killAll()
			ws.close()
			return nil, fmt.Errorf("sandboxd: warm jails: %w", err)
		}
	}
	// Fixed HTTP/2 windows and a larger write buffer: with gRPC's
	// defaults a Start stream of bulk output spends its time waiting for
	// window updates (BenchmarkStartStream100MB). The windows bound what a
	// connection may have in flight towards the server, so memory stays
	// bounded.
	s.grpc = grpc.NewServer(grpc.MaxRecvMsgSize(MaxStdinMessage), grpc.WriteBufferSize(256<<10),
		grpc.InitialWindowSize(1<<20), grpc.InitialConnWindowSize(1<<20))
	processv1.RegisterProcessServiceServer(s.grpc, &processService{s: s})
	s.http = &http.Server{Handler: s.restHandler(), ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(slog.Default().Handler(), slog.LevelWarn)}
	return s, nil
}

// Serve serves gRPC on grpcLn and REST on restLn until Shutdown, and
// returns nil after Shutdown or the first listener's error. Listen makes
// loopback listeners; Serve refuses others.
func (s *Server) Serve(grpcLn, restLn net.Listener) error {
	for _, ln := range []net.Listener{grpcLn, restLn} {
		if err := CheckLoopback(ln.Addr().String()); err != nil {
			return err
		}
	}
	go func() { s.serveErr <- s.grpc.Serve(grpcLn) }()
	go func() {
		err := s.http.Serve(restLn)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.serveErr <- err
	}()
	err := <-s.serveErr
	if s.draining.Load() {
		return nil
	}
	if err == nil {
		err = errors.New("sandboxd: a listener closed")
	}
	return fmt.Errorf("sandboxd: serve: %w", err)
}

// admit lets a Start or Execute in, unless the server is shutting down.
func (s *Server) admit() (release func(), err error) {
	s.admitMu.Lock()
	defer s.admitMu.Unlock()
	if s.draining.Load() {
		return nil, status.Error(codes.Unavailable, "sandboxd is shutting down")
	}
	s.running.Add(1)
	return s.running.Done, nil
}

// Shutdown stops the server: /v1/health answers 503 and new processes
// UNAVAILABLE at once; Start'ed processes get SIGTERM, and every running
// process (Execute's too) the grace (ShutdownGrace, or until ctx ends) to
// finish; then their jails are killed, the warm jails destroyed, and both
// listeners close. It returns once no jail is left.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.once.Do(func() {
		s.admitMu.Lock()
		s.draining.Store(true)
		s.admitMu.Unlock()
		for _, p := range s.procs.all() {
			_ = p.cmd.Signal(syscall.SIGTERM)
		}
		allDone := make(chan struct{})
		go func() {
			s.running.Wait()
			close(allDone)
		}()
		t := time.NewTimer(s.grace)
		defer t.Stop()
		select {
		case <-allDone:
		case <-t.C:
		case <-ctx.Done():
		}
		s.killAll()
		<-allDone
		if s.pool != nil {
			s.pool.Close()
		}
		// Every stream has ended, so GracefulStop returns promptly.
		s.grpc.GracefulStop()
		err = s.http.Shutdown(ctx)
		s.ws.close()
	})
	return err
}
