package sandboxd

import (
	"context"
	"io"
	"testing"

	"github.com/brig-sandbox/brig/jail"
	processv1 "sigs.k8s.io/agent-sandbox/packages/sandboxd/spec/process/v1"
)

// Issue 22's measures, as benchmarks (never timed tests): Execute of
// /bin/true over gRPC on loopback against the in-process warm pool's
// request-to-exit, and Start streaming 100 MB against the same program's
// output through a cold jail to a pipe.

func BenchmarkExecuteTrueGRPC(b *testing.B) {
	ts := startServer(b, Options{WarmJails: 2})
	req := &processv1.ExecuteRequest{Config: cfg("/bin/true")}
	for b.Loop() {
		if _, err := ts.client.Execute(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExecuteTrueGRPCCold builds a jail per Execute.
func BenchmarkExecuteTrueGRPCCold(b *testing.B) {
	ts := startServer(b, Options{})
	req := &processv1.ExecuteRequest{Config: cfg("/bin/true")}
	for b.Loop() {
		if _, err := ts.client.Execute(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWarmPoolTrue is the in-process baseline: a jail.Pool of the
// server's own template (the workspace bound).
func BenchmarkWarmPoolTrue(b *testing.B) {
	ts := startServer(b, Options{})
	pool, err := jail.NewPool(context.Background(), ts.jailConfig, 2)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	for b.Loop() {
		if err := pool.Command(context.Background(), "/bin/true").Run(); err != nil {
			b.Fatal(err)
		}
	}
}

const streamBytes = 100 << 20

func BenchmarkStartStream100MB(b *testing.B) {
	ts := startServer(b, Options{Config: jail.Config{OutputLimit: -1}})
	b.SetBytes(streamBytes)
	for b.Loop() {
		stream, err := ts.client.Start(context.Background(), &processv1.StartRequest{Config: cfg("/usr/bin/head", "-c", "104857600", "/dev/zero")})
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			ev, err := stream.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n += len(ev.GetStdout())
		}
		if n != streamBytes {
			b.Fatalf("%d bytes streamed, want %d", n, streamBytes)
		}
	}
}

// BenchmarkRunStream100MBToPipe is the baseline: the same program's
// output through a jail to a pipe the caller drains.
func BenchmarkRunStream100MBToPipe(b *testing.B) {
	ts := startServer(b, Options{})
	cfg := ts.jailConfig
	cfg.OutputLimit = -1
	b.SetBytes(streamBytes)
	for b.Loop() {
		cmd := jail.Command(context.Background(), cfg, "/usr/bin/head", "-c", "104857600", "/dev/zero")
		cmd.Stdout = io.Discard
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
	}
}
