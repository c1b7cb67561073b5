package main

import (
	"context"
	"flag"
	"io"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The sandboxd mode refuses a listener outside loopback, by the flag's
// name, and serves on loopback: its benign run starts both listeners and
// shuts down when its context ends.
func TestSandboxdListenAddresses(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the workspace's idmapped bind")
	}
	ws := t.TempDir()
	require.NoError(t, os.Chown(ws, 1000, 1000))
	for _, c := range []struct{ flag, want string }{
		{"--grpc-listen=0.0.0.0:9090", "--grpc-listen"},
		{"--rest-listen=[::]:8080", "--rest-listen"},
		{"--rest-listen=localhost:8080", "--rest-listen"},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		f := registerSandboxdFlags(fs)
		require.NoError(t, fs.Parse([]string{"--workspace", ws, "--grpc-listen=127.0.0.1:0", "--rest-listen=127.0.0.1:0", c.flag}))
		require.NoError(t, f.jail.finish())
		err := serveSandboxd(context.Background(), f)
		require.Error(t, err, c.flag)
		assert.Contains(t, err.Error(), c.want)
		assert.Contains(t, err.Error(), "loopback")
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	f := registerSandboxdFlags(fs)
	require.NoError(t, fs.Parse([]string{"--workspace", ws, "--grpc-listen=127.0.0.1:0", "--rest-listen=127.0.0.1:0", "--memory", "256M", "--timeout", "1h", "--host-ids", "1500000000:65536"}))
	assert.EqualValues(t, 1500000000, f.opts.Config.HostIDs.First)
	require.NoError(t, f.jail.finish())
	assert.EqualValues(t, 256<<20, f.opts.Config.Limits.Memory)
	assert.Equal(t, 2, f.opts.WarmJails)
	for _, bad := range []string{"--warm=-1", "--warm=65", "--warm=x"} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		registerSandboxdFlags(fs)
		require.Error(t, fs.Parse([]string{bad}), bad)
	}
	for _, bad := range []string{"0:100", "5", "2000:1", "x:y", "4294967295:2"} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		registerSandboxdFlags(fs)
		require.Error(t, fs.Parse([]string{"--host-ids", bad}), bad)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, serveSandboxd(ctx, f))

	assert.Equal(t, exitBrigFailed, sandboxdMain([]string{"--workspace", ws, "extra"}))
	assert.Equal(t, exitBrigFailed, sandboxdMain([]string{"--workspace", t.TempDir(), "--grpc-listen=127.0.0.1:0", "--rest-listen=127.0.0.1:0"}), "a root-owned workspace is refused")
}
