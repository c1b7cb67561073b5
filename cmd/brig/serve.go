package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/brig-sandbox/brig/jail"
	"github.com/brig-sandbox/brig/serve"
)

const serveUsage = "brig serve --config FILE [--listen unix:PATH|tcp:HOST:PORT]... [--tls-cert FILE --tls-key FILE] [--log-format text|json]"

// serveMain is brig serve: the HTTP service of docs/api.md until SIGTERM
// or SIGINT, which drain it.
func serveMain(args []string) int {
	// --sandboxd is a mode of its own with flags of its own (sandboxd.go):
	// one pod, one tenant, loopback only, no config file.
	for i, a := range args {
		if a == "--" {
			break
		}
		if a == "--sandboxd" || a == "-sandboxd" {
			return sandboxdMain(append(slices.Clone(args[:i]), args[i+1:]...))
		}
	}
	fs := flag.NewFlagSet("brig serve", flag.ContinueOnError)
	var configFile, tlsCert, tlsKey, logFormat string
	var listen []string
	fs.StringVar(&configFile, "config", "", "the server's YAML config (tenants, templates, quotas; docs/api.md)")
	fs.Var(listFlag{&listen}, "listen", "unix:PATH (mode 0660) or tcp:HOST:PORT (repeatable; adds to the config's listen; default unix:"+serve.DefaultSocketPath+")")
	fs.StringVar(&tlsCert, "tls-cert", "", "PEM certificate for the tcp listeners")
	fs.StringVar(&tlsKey, "tls-key", "", "PEM key for the tcp listeners")
	fs.StringVar(&logFormat, "log-format", "text", "the server's log lines on stderr: text (key=value) or json (one object a line)")
	if err := parseFlags(fs, args, serveUsage); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "brig serve:", err)
		return exitBrigFailed
	}
	if configFile == "" || fs.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "brig serve: usage:", serveUsage)
		return exitBrigFailed
	}
	logger, err := serveLogger(os.Stderr, logFormat)
	if err != nil {
		fmt.Fprintln(os.Stderr, "brig serve:", err)
		return exitBrigFailed
	}
	slog.SetDefault(logger)
	cfg, err := serve.LoadConfig(configFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "brig serve:", err)
		return exitBrigFailed
	}
	if tlsCert != "" || tlsKey != "" {
		if tlsCert == "" || tlsKey == "" {
			fmt.Fprintln(os.Stderr, "brig serve: --tls-cert and --tls-key go together")
			return exitBrigFailed
		}
		cfg.TLSCert, cfg.TLSKey = tlsCert, tlsKey
	}
	listen = append(cfg.Listen, listen...)
	if len(listen) == 0 {
		listen = []string{"unix:" + serve.DefaultSocketPath}
	}
	defer jail.DefaultSupervisor.Close()
	if err := runServer(cfg, listen); err != nil {
		fmt.Fprintln(os.Stderr, "brig serve:", err)
		return exitBrigFailed
	}
	return 0
}

func runServer(cfg *serve.Config, listen []string) error {
	var tlsConfig *tls.Config
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	var listeners []net.Listener
	closeAll := func() {
		for _, l := range listeners {
			l.Close()
		}
	}
	for _, addr := range listen {
		l, err := serveListener(addr, tlsConfig)
		if err != nil {
			closeAll()
			return err
		}
		listeners = append(listeners, l)
	}
	if cfg.Metrics.Listen != "" {
		l, err := serveListener(cfg.Metrics.Listen, nil)
		if err != nil {
			closeAll()
			return fmt.Errorf("metrics: %w", err)
		}
		listeners = append(listeners, l)
	}
	srv, err := serve.New(cfg, serve.Options{Logger: slog.Default()})
	if err != nil {
		closeAll()
		return err
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
	var wg sync.WaitGroup
	var ms *http.Server
	if cfg.Metrics.Listen != "" {
		// The metrics listener is the last: it serves the metrics alone,
		// never the API.
		ml := listeners[len(listeners)-1]
		listeners = listeners[:len(listeners)-1]
		ms = &http.Server{Handler: srv.MetricsHandler(), ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 16 << 10}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := ms.Serve(ml); err != nil && !errors.Is(err, http.ErrServerClosed) {
				slog.Error("serving metrics", "listener", ml.Addr().String(), "err", err)
			}
		}()
		slog.Info("brig serve metrics listening", "address", "tcp:"+ml.Addr().String())
	}
	for _, l := range listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				slog.Error("serving", "listener", l.Addr().String(), "err", err)
			}
		}()
		slog.Info("brig serve listening", "address", l.Addr().Network()+":"+l.Addr().String())
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	sig := <-sigs
	slog.Info("draining", "signal", sig.String(), "grace", cfg.Lifecycle.DrainGrace)
	srv.Drain(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(ctx)
	if ms != nil {
		_ = ms.Shutdown(ctx)
	}
	wg.Wait()
	return nil
}

// serveListener opens unix:PATH (mode 0660, a stale socket replaced) or
// tcp:HOST:PORT (TLS when configured).
func serveListener(addr string, tlsConfig *tls.Config) (net.Listener, error) {
	kind, rest, _ := strings.Cut(addr, ":")
	switch kind {
	case "unix":
		if fi, err := os.Lstat(rest); err == nil {
			if fi.Mode().Type() != os.ModeSocket {
				return nil, fmt.Errorf("--listen %s: %s exists and is not a socket; remove it or pick another path", addr, rest)
			}
			os.Remove(rest) // a socket a killed server left
		}
		l, err := net.Listen("unix", rest)
		if err != nil {
			return nil, fmt.Errorf("--listen %s: %w", addr, err)
		}
		if err := os.Chmod(rest, 0o660); err != nil {
			l.Close()
			return nil, fmt.Errorf("--listen %s: %w", addr, err)
		}
		return l, nil
	case "tcp":
		l, err := net.Listen("tcp", rest)
		if err != nil {
			return nil, fmt.Errorf("--listen %s: %w", addr, err)
		}
		if tlsConfig != nil {
			return tls.NewListener(l, tlsConfig), nil
		}
		return l, nil
	}
	return nil, fmt.Errorf("--listen %q: want unix:PATH or tcp:HOST:PORT", addr)
}

// serveLogger is the server's slog logger on w: key=value text, or JSON
// for a log collector. Unlike the CLI's other commands it logs from Info
// up: a service's log is read by its operator, not mixed into a program's
// output.
func serveLogger(w io.Writer, format string) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
