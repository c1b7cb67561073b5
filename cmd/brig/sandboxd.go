package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/brig-sandbox/brig/jail"
	"github.com/brig-sandbox/brig/sandboxd"
)

// `brig serve --sandboxd`: brig as agent-sandbox's in-pod runtime
// (KEP-539.2's sandboxd protocol), every process in a jail of its own.

// sandboxdFlags are the flags of the sandboxd mode.
type sandboxdFlags struct {
	grpcListen, restListen string
	opts                   sandboxd.Options
	jail                   *jailFlags
}

// registerSandboxdFlags adds the sandboxd mode's flags to fs: the two
// listeners, the workspace, the shutdown grace and the jail template's
// flags (as brig run's).
func registerSandboxdFlags(fs *flag.FlagSet) *sandboxdFlags {
	f := &sandboxdFlags{}
	fs.StringVar(&f.grpcListen, "grpc-listen", sandboxd.DefaultGRPCAddr, "ProcessService (gRPC) address; loopback only")
	fs.StringVar(&f.restListen, "rest-listen", sandboxd.DefaultRESTAddr, "file and health REST address; loopback only")
	fs.StringVar(&f.opts.Workspace, "workspace", "/workspace", "host directory bound read-write at /workspace in every jail; owned by the user the files belong to (not root)")
	fs.Var(durationFlag{&f.opts.ShutdownGrace}, "shutdown-grace", "on SIGTERM, how long running processes get before they are killed (default 5s)")
	fs.StringVar(&f.opts.MetadataPrefix, "metadata-env-prefix", sandboxd.DefaultMetadataPrefix, "environment variables /v1/metadata serves (names that look like credentials never)")
	fs.Var(durationFlag{&f.opts.Config.Timeout}, "timeout", "wall-clock limit of each process (Go duration; default 30s)")
	fs.Var(sizeFlag{&f.opts.Config.OutputLimit}, "output-limit", "cap on each process's stdout and stderr each (default 16M; Execute: 1M)")
	f.opts.WarmJails = 2
	fs.Func("warm", "jails built ahead for Execute (0 to 64; default 2)", func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 64 {
			return fmt.Errorf("%q: want a whole number from 0 to 64", s)
		}
		f.opts.WarmJails = n
		return nil
	})
	fs.Func("host-ids", "FIRST:COUNT, the host uids and gids the jails take two at a time (default 1500000000:65536; in a pod with hostUsers: false, a range inside its 0-65535, e.g. 2000:63000)", func(s string) error {
		first, count, ok := strings.Cut(s, ":")
		a, err1 := strconv.ParseUint(first, 10, 32)
		b, err2 := strconv.ParseUint(count, 10, 32)
		if !ok || err1 != nil || err2 != nil || a == 0 || b < 2 || a+b > 1<<32-1 {
			return fmt.Errorf("%q: want FIRST:COUNT, FIRST above 0 (never root), COUNT at least 2, e.g. 2000:63000", s)
		}
		f.opts.Config.HostIDs = jail.IDRange{First: uint32(a), Count: uint32(b)}
		return nil
	})
	f.jail = registerJailFlags(fs, &f.opts.Config, &f.opts.Env)
	return f
}

func sandboxdMain(args []string) int {
	fs := flag.NewFlagSet("brig serve --sandboxd", flag.ContinueOnError)
	f := registerSandboxdFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return exitBrigFailed
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "brig serve --sandboxd: unexpected argument %q; the mode takes flags only\n", fs.Arg(0))
		return exitBrigFailed
	}
	if err := f.jail.finish(); err != nil {
		fmt.Fprintln(os.Stderr, "brig serve --sandboxd:", err)
		return exitBrigFailed
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := serveSandboxd(ctx, f); err != nil {
		fmt.Fprintln(os.Stderr, "brig serve --sandboxd:", err)
		return exitBrigFailed
	}
	return 0
}

// serveSandboxd serves until ctx ends (SIGTERM, as a pod's stop sends),
// then shuts down gracefully: health 503, the grace, nothing left.
func serveSandboxd(ctx context.Context, f *sandboxdFlags) error {
	s, err := sandboxd.New(f.opts)
	if err != nil {
		return err
	}
	grpcLn, err := sandboxd.Listen(f.grpcListen)
	if err != nil {
		_ = s.Shutdown(context.Background())
		return fmt.Errorf("--grpc-listen: %w", err)
	}
	restLn, err := sandboxd.Listen(f.restListen)
	if err != nil {
		grpcLn.Close()
		_ = s.Shutdown(context.Background())
		return fmt.Errorf("--rest-listen: %w", err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(grpcLn, restLn) }()
	slog.Info("sandboxd: serving", "grpc", grpcLn.Addr().String(), "rest", restLn.Addr().String(), "workspace", f.opts.Workspace)
	select {
	case err := <-served:
		_ = s.Shutdown(context.Background())
		return err
	case <-ctx.Done():
	}
	grace := f.opts.ShutdownGrace
	if grace <= 0 {
		grace = sandboxd.DefaultShutdownGrace
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace+10*time.Second)
	defer cancel()
	err = s.Shutdown(sctx)
	<-served
	_ = jail.DefaultSupervisor.Close() // its jails are over: no spawner or idle cgroup outlives brig
	return err
}
