package sandboxd

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/brig-sandbox/brig/internal/testenv"
	"github.com/brig-sandbox/brig/jail"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	processv1 "sigs.k8s.io/agent-sandbox/packages/sandboxd/spec/process/v1"
)

const python = "/usr/bin/python3"

func requirePython(t testing.TB) {
	if _, err := os.Stat(python); err != nil {
		t.Skip("needs " + python + " for the jailed programs")
	}
}

// startStream is a Start stream as a test reads it.
type startStream struct {
	t      testing.TB
	stream grpc.ServerStreamingClient[processv1.StartResponse]
	id     int32
	stdout bytes.Buffer
	stderr bytes.Buffer
	exit   *processv1.ExitEvent
}

// start calls Start and reads its first event, which must be Init.
func (ts *testServer) start(t testing.TB, ctx context.Context, req *processv1.StartRequest) *startStream {
	t.Helper()
	stream, err := ts.client.Start(ctx, req)
	require.NoError(t, err)
	first, err := stream.Recv()
	require.NoError(t, err)
	init := first.GetInit()
	require.NotNil(t, init, "the first event is Init, got %v", first)
	require.Positive(t, init.GetProcessId())
	return &startStream{t: t, stream: stream, id: init.GetProcessId()}
}

// next reads one event into the buffers; false at the end of the stream.
func (s *startStream) next() bool {
	s.t.Helper()
	ev, err := s.stream.Recv()
	if err == io.EOF {
		require.NotNil(s.t, s.exit, "the stream ended without an Exit event")
		return false
	}
	require.NoError(s.t, err)
	require.Nil(s.t, s.exit, "an event after Exit: %v", ev)
	switch e := ev.Event.(type) {
	case *processv1.StartResponse_Stdout:
		s.stdout.Write(e.Stdout)
	case *processv1.StartResponse_Stderr:
		s.stderr.Write(e.Stderr)
	case *processv1.StartResponse_Exit:
		s.exit = e.Exit
	default:
		s.t.Fatalf("unexpected event %v", ev)
	}
	return true
}

// until reads events until stdout holds want.
func (s *startStream) until(want string) {
	s.t.Helper()
	for !strings.Contains(s.stdout.String(), want) {
		if !s.next() {
			s.t.Fatalf("the stream ended before %q; stdout %q stderr %q", want, s.stdout.String(), s.stderr.String())
		}
	}
}

// wait reads to the end and returns the Result from the trailer.
func (s *startStream) wait() resultJSON {
	s.t.Helper()
	for s.next() {
	}
	return trailerResult(s.t, s.stream.Trailer())
}

func trailerResult(t testing.TB, md metadata.MD) resultJSON {
	t.Helper()
	v := md.Get(ResultMetadataKey)
	require.Len(t, v, 1, "one %s in the trailer %v", ResultMetadataKey, md)
	var r resultJSON
	require.NoError(t, json.Unmarshal([]byte(v[0]), &r))
	return r
}

func cfg(argv ...string) *processv1.ProcessConfig { return &processv1.ProcessConfig{Command: argv} }

func requireCode(t testing.TB, err error, code codes.Code) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, code, status.Code(err), "%v", err)
}

func TestStartStreamsInOrder(t *testing.T) {
	ts := startServer(t, Options{})
	script := `for i in $(seq 1 300); do echo out$i; echo err$i >&2; done; exit 3`
	s := ts.start(t, context.Background(), &processv1.StartRequest{Config: &processv1.ProcessConfig{
		Command: []string{"/bin/sh", "-c", script + `; `}, EnvVars: map[string]string{"A": "1"}}})
	r := s.wait()
	var wantOut, wantErr strings.Builder
	for i := 1; i <= 300; i++ {
		wantOut.WriteString("out" + strconv.Itoa(i) + "\n")
		wantErr.WriteString("err" + strconv.Itoa(i) + "\n")
	}
	assert.Equal(t, wantOut.String(), s.stdout.String())
	assert.Equal(t, wantErr.String(), s.stderr.String())
	assert.EqualValues(t, 3, s.exit.GetExitCode())
	assert.Equal(t, "exited", r.Reason)
	assert.Equal(t, 3, r.ExitCode)
	assert.NotEmpty(t, r.Limiter)

	// The environment, the workspace as the working directory, and the
	// jail's own user.
	s = ts.start(t, context.Background(), &processv1.StartRequest{Config: &processv1.ProcessConfig{
		Command: []string{"/bin/sh", "-c", `echo "$A $(pwd) $(id -u)"; touch made-here`}, EnvVars: map[string]string{"A": "x y"}}})
	s.wait()
	assert.Equal(t, "x y /workspace 1000\n", s.stdout.String())
	fi, err := os.Stat(filepath.Join(ts.workspace, "made-here"))
	require.NoError(t, err)
	assert.EqualValues(t, workspaceOwner, fileOwner(fi), "a jail's file belongs to the workspace's owner")

	// The jailed code has a network namespace of its own: the server's
	// loopback listeners are out of its reach.
	resp, err := ts.client.Execute(context.Background(), &processv1.ExecuteRequest{Config: cfg("/usr/bin/python3", "-c",
		"import socket, sys\ntry:\n    socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=2); print('reached')\nexcept OSError as e: print('refused', e.errno)", ts.grpcPort())})
	require.NoError(t, err)
	assert.Contains(t, string(resp.GetStdout()), "refused", "%s", resp.GetStderr())

	// A program that is not there: NOT_FOUND, before any Init.
	stream, err := ts.client.Start(context.Background(), &processv1.StartRequest{Config: cfg("/no/such/program")})
	require.NoError(t, err)
	_, err = stream.Recv()
	requireCode(t, err, codes.NotFound)
	_, err = ts.client.Execute(context.Background(), &processv1.ExecuteRequest{Config: cfg()})
	requireCode(t, err, codes.InvalidArgument)
}

func TestWriteStdinAndEOF(t *testing.T) {
	ts := startServer(t, Options{})
	ctx := context.Background()
	s := ts.start(t, ctx, &processv1.StartRequest{Config: cfg("/bin/sh", "-c", `cat; echo done; read x; echo "after $x"`)})
	_, err := ts.client.WriteStdin(ctx, &processv1.WriteStdinRequest{ProcessId: s.id, Payload: &processv1.WriteStdinRequest_Input{Input: []byte("hello\n")}})
	require.NoError(t, err)
	s.until("hello\n")
	_, err = ts.client.WriteStdin(ctx, &processv1.WriteStdinRequest{ProcessId: s.id, Payload: &processv1.WriteStdinRequest_Input{Input: []byte("world")}})
	require.NoError(t, err)
	_, err = ts.client.WriteStdin(ctx, &processv1.WriteStdinRequest{ProcessId: s.id, Payload: &processv1.WriteStdinRequest_Eof{Eof: &emptypb.Empty{}}})
	require.NoError(t, err)
	s.until("done\n")
	// After EOF, input is refused; the read that follows sees EOF too.
	_, err = ts.client.WriteStdin(ctx, &processv1.WriteStdinRequest{ProcessId: s.id, Payload: &processv1.WriteStdinRequest_Input{Input: []byte("more\n")}})
	if err != nil { // the program may have ended already
		assert.Contains(t, []codes.Code{codes.FailedPrecondition, codes.NotFound}, status.Code(err), "%v", err)
	}
	r := s.wait()
	assert.Equal(t, "hello\nworlddone\nafter \n", s.stdout.String())
	assert.Equal(t, "exited", r.Reason)
	// The process has ended: its id is unknown now.
	_, err = ts.client.WriteStdin(ctx, &processv1.WriteStdinRequest{ProcessId: s.id, Payload: &processv1.WriteStdinRequest_Eof{Eof: &emptypb.Empty{}}})
	requireCode(t, err, codes.NotFound)
	_, err = ts.client.WriteStdin(ctx, &processv1.WriteStdinRequest{ProcessId: 999999, Payload: &processv1.WriteStdinRequest_Input{Input: []byte("x")}})
	requireCode(t, err, codes.NotFound)
}

func TestSendSignalReachesTheProcessGroup(t *testing.T) {
	requirePython(t)
	ts := startServer(t, Options{})
	ctx := context.Background()
	// Parent and child share the program's process group; both must see
	// the one SIGINT.
	prog := `
import os, signal, sys, time
got = []
signal.signal(signal.SIGINT, lambda s, f: got.append(s))
pid = os.fork()
if pid == 0:
    print("child ready", flush=True)
    while not got: time.sleep(0.01)
    print("child got", got[0], flush=True); os._exit(0)
print("\nready", flush=True)
while not got: time.sleep(0.01)
os.waitpid(pid, 0)
print("parent got", got[0], flush=True)
sys.exit(5)
`
	s := ts.start(t, ctx, &processv1.StartRequest{Config: cfg(python, "-c", prog)})
	// Both must be past the fork: a child's own after-fork set-up in
	// Python drops a signal that arrives before it.
	s.until("child ready\n")
	s.until("\nready\n")
	_, err := ts.client.SendSignal(ctx, &processv1.SendSignalRequest{ProcessId: s.id, Signal: processv1.Signal_SIGNAL_SIGINT})
	require.NoError(t, err)
	r := s.wait()
	assert.Contains(t, s.stdout.String(), "child got 2\n")
	assert.Contains(t, s.stdout.String(), "parent got 2\n")
	assert.EqualValues(t, 5, s.exit.GetExitCode())
	assert.Equal(t, "exited", r.Reason)

	for _, c := range []struct {
		sig    processv1.Signal
		signal int
	}{{processv1.Signal_SIGNAL_SIGTERM, 15}, {processv1.Signal_SIGNAL_SIGKILL, 9}} {
		s := ts.start(t, ctx, &processv1.StartRequest{Config: cfg("/bin/sh", "-c", "echo ready; exec sleep 1000")})
		s.until("ready\n")
		_, err := ts.client.SendSignal(ctx, &processv1.SendSignalRequest{ProcessId: s.id, Signal: c.sig})
		require.NoError(t, err)
		r := s.wait()
		assert.EqualValues(t, -1, s.exit.GetExitCode(), c.sig.String())
		assert.Equal(t, "signaled", r.Reason, c.sig.String())
		assert.Equal(t, c.signal, r.Signal, c.sig.String())
	}

	_, err = ts.client.SendSignal(ctx, &processv1.SendSignalRequest{ProcessId: 424242, Signal: processv1.Signal_SIGNAL_SIGTERM})
	requireCode(t, err, codes.NotFound)
	s = ts.start(t, ctx, &processv1.StartRequest{Config: cfg("/bin/sh", "-c", "echo ready; exec sleep 1000")})
	s.until("ready\n")
	_, err = ts.client.SendSignal(ctx, &processv1.SendSignalRequest{ProcessId: s.id, Signal: processv1.Signal_SIGNAL_UNSPECIFIED})
	requireCode(t, err, codes.InvalidArgument)
	_, err = ts.client.SendSignal(ctx, &processv1.SendSignalRequest{ProcessId: s.id, Signal: processv1.Signal_SIGNAL_SIGKILL})
	require.NoError(t, err)
	s.wait()
}

func TestPTYEchoAndResize(t *testing.T) {
	ts := startServer(t, Options{})
	ctx := context.Background()
	s := ts.start(t, ctx, &processv1.StartRequest{
		Config: cfg("/bin/sh", "-c", `test -t 0 && echo "tty $(stty size)"; read line; echo "got $line"; echo "now $(stty size)"`),
		Pty:    &processv1.PTY{Rows: 24, Cols: 80},
	})
	s.until("tty 24 80")
	_, err := ts.client.ResizeTTY(ctx, &processv1.ResizeTTYRequest{ProcessId: s.id, Rows: 40, Cols: 132})
	require.NoError(t, err)
	_, err = ts.client.WriteStdin(ctx, &processv1.WriteStdinRequest{ProcessId: s.id, Payload: &processv1.WriteStdinRequest_Input{Input: []byte("typed\n")}})
	require.NoError(t, err)
	r := s.wait()
	out := s.stdout.String()
	assert.Contains(t, out, "typed\r\n", "the pty echoes what it is sent")
	assert.Contains(t, out, "got typed\r\n")
	assert.Contains(t, out, "now 40 132\r\n", "stty in the jail sees the new size")
	assert.Empty(t, s.stderr.String(), "a pty has one output stream")
	assert.Equal(t, "exited", r.Reason)

	// Without a PTY: FAILED_PRECONDITION; a bad size: INVALID_ARGUMENT;
	// an unknown id: NOT_FOUND.
	s = ts.start(t, ctx, &processv1.StartRequest{Config: cfg("/bin/sh", "-c", "echo ready; exec sleep 1000")})
	s.until("ready\n")
	_, err = ts.client.ResizeTTY(ctx, &processv1.ResizeTTYRequest{ProcessId: s.id, Rows: 40, Cols: 132})
	requireCode(t, err, codes.FailedPrecondition)
	_, err = ts.client.ResizeTTY(ctx, &processv1.ResizeTTYRequest{ProcessId: 777777, Rows: 40, Cols: 132})
	requireCode(t, err, codes.NotFound)
	_, err = ts.client.SendSignal(ctx, &processv1.SendSignalRequest{ProcessId: s.id, Signal: processv1.Signal_SIGNAL_SIGKILL})
	require.NoError(t, err)
	s.wait()

	// The end of stdin reaches a program on a pty as its end of file.
	s = ts.start(t, ctx, &processv1.StartRequest{Config: cfg("/bin/sh", "-c", `cat; echo "cat ended"`), Pty: &processv1.PTY{}})
	_, err = ts.client.WriteStdin(ctx, &processv1.WriteStdinRequest{ProcessId: s.id, Payload: &processv1.WriteStdinRequest_Eof{Eof: &emptypb.Empty{}}})
	require.NoError(t, err)
	s.wait()
	assert.Contains(t, s.stdout.String(), "cat ended")
	_, err = ts.client.Start(ctx, &processv1.StartRequest{Config: cfg("/bin/true"), Pty: &processv1.PTY{Rows: 0, Cols: 70000}})
	if err == nil {
		stream, _ := ts.client.Start(ctx, &processv1.StartRequest{Config: cfg("/bin/true"), Pty: &processv1.PTY{Rows: 0, Cols: 70000}})
		_, err = stream.Recv()
	}
	requireCode(t, err, codes.InvalidArgument)
}

func TestCwdBeneathTheWorkspace(t *testing.T) {
	ts := startServer(t, Options{})
	ctx := context.Background()
	_, err := ts.client.Execute(ctx, &processv1.ExecuteRequest{Config: cfg("/bin/sh", "-c", "mkdir -p sub/dir && ln -s /etc link && ln -s .. up")})
	require.NoError(t, err)
	for _, cwd := range []string{"sub/dir", "/workspace/sub/dir", "./sub/../sub/dir/"} {
		resp, err := ts.client.Execute(ctx, &processv1.ExecuteRequest{Config: &processv1.ProcessConfig{Command: []string{"/bin/pwd"}, Cwd: &cwd}})
		require.NoError(t, err, cwd)
		assert.Equal(t, "/workspace/sub/dir\n", string(resp.GetStdout()), cwd)
	}
	for _, cwd := range []string{"..", "../..", "/etc", "/", "/workspace/../etc", "sub/../../x", "link", "up", "sub/dir/../../link"} {
		_, err := ts.client.Execute(ctx, &processv1.ExecuteRequest{Config: &processv1.ProcessConfig{Command: []string{"/bin/pwd"}, Cwd: &cwd}})
		requireCode(t, err, codes.PermissionDenied)
		stream, err := ts.client.Start(ctx, &processv1.StartRequest{Config: &processv1.ProcessConfig{Command: []string{"/bin/pwd"}, Cwd: &cwd}})
		require.NoError(t, err)
		_, err = stream.Recv()
		requireCode(t, err, codes.PermissionDenied)
	}
	missing := "nosuch"
	_, err = ts.client.Execute(ctx, &processv1.ExecuteRequest{Config: &processv1.ProcessConfig{Command: []string{"/bin/pwd"}, Cwd: &missing}})
	requireCode(t, err, codes.NotFound)
}

func TestExecuteCollectsAndCaps(t *testing.T) {
	requirePython(t)
	ts := startServer(t, Options{})
	ctx := context.Background()
	var trailer metadata.MD
	resp, err := ts.client.Execute(ctx, &processv1.ExecuteRequest{Config: cfg("/bin/sh", "-c", "echo out; echo err >&2; exit 4")}, grpc.Trailer(&trailer))
	require.NoError(t, err)
	assert.Equal(t, "out\n", string(resp.GetStdout()))
	assert.Equal(t, "err\n", string(resp.GetStderr()))
	assert.EqualValues(t, 4, resp.GetExitCode())
	r := trailerResult(t, trailer)
	assert.Equal(t, "exited", r.Reason)
	assert.Equal(t, 4, r.ExitCode)

	// Past the cap: the output so far, the jail stopped, the reason said.
	resp, err = ts.client.Execute(ctx, &processv1.ExecuteRequest{Config: cfg(python, "-c", "import sys; sys.stdout.write('x' * (3 << 20)); sys.stdout.flush()")}, grpc.Trailer(&trailer))
	require.NoError(t, err)
	assert.Len(t, resp.GetStdout(), ExecuteOutputLimit)
	r = trailerResult(t, trailer)
	assert.Equal(t, "output_limit", r.Reason)
	assert.True(t, r.StdoutTruncated)
}

func TestResultMetadataOfALimit(t *testing.T) {
	ts := startServer(t, Options{Config: testTimeoutConfig()})
	ctx := context.Background()
	var trailer metadata.MD
	resp, err := ts.client.Execute(ctx, &processv1.ExecuteRequest{Config: cfg("/bin/sh", "-c", "echo started; exec sleep 1000")}, grpc.Trailer(&trailer))
	require.NoError(t, err, "a client that ignores the trailer sees an ordinary reply")
	assert.Equal(t, "started\n", string(resp.GetStdout()))
	assert.EqualValues(t, -1, resp.GetExitCode())
	r := trailerResult(t, trailer)
	assert.Equal(t, "timeout", r.Reason)
	assert.Equal(t, 9, r.Signal)
	assert.GreaterOrEqual(t, r.WallTimeMS, int64(0))

	s := ts.start(t, ctx, &processv1.StartRequest{Config: cfg("/bin/sh", "-c", "exec sleep 1000")})
	r = s.wait()
	assert.Equal(t, "timeout", r.Reason)
	assert.EqualValues(t, -1, s.exit.GetExitCode())
}

func TestCancelKillsTheProcess(t *testing.T) {
	ts := startServer(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	s := ts.start(t, ctx, &processv1.StartRequest{Config: cfg("/bin/sh", "-c", "echo ready; exec sleep 1000")})
	s.until("ready\n")
	require.NotEmpty(t, jailProcesses())
	cancel()
	waitGone(t, ts, s.id)

	ctx, cancel = context.WithTimeout(context.Background(), testenv.Scaled(time.Second))
	defer cancel()
	_, err := ts.client.Execute(ctx, &processv1.ExecuteRequest{Config: cfg("/bin/sleep", "1000")})
	requireCode(t, err, codes.DeadlineExceeded)
	waitGone(t, ts, 0)
}

// waitGone waits until no jailed process is left and process id is
// unknown to the server.
func waitGone(t testing.TB, ts *testServer, id int32) {
	t.Helper()
	deadline := time.Now().Add(testenv.Scaled(10 * time.Second))
	for {
		_, err := ts.client.SendSignal(context.Background(), &processv1.SendSignalRequest{ProcessId: id, Signal: processv1.Signal_SIGNAL_SIGTERM})
		if len(jailProcesses()) == 0 && status.Code(err) == codes.NotFound {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the client went away: jailed processes %v, signal answered %v", jailProcesses(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func fileOwner(fi os.FileInfo) uint32 { return fi.Sys().(*syscall.Stat_t).Uid }

// testTimeoutConfig is a template whose jails time out soon.
func testTimeoutConfig() jail.Config {
	return jail.Config{Timeout: testenv.Scaled(500 * time.Millisecond)}
}

// The server's --env comes first; a request's env_vars replace it by name.
func TestEnvOfServerAndRequest(t *testing.T) {
	ts := startServer(t, Options{Env: []string{"A=server", "B=server"}})
	resp, err := ts.client.Execute(context.Background(), &processv1.ExecuteRequest{Config: &processv1.ProcessConfig{
		Command: []string{"/bin/sh", "-c", `echo "$A $B"; env | grep -c '^A='`}, EnvVars: map[string]string{"A": "request"}}})
	require.NoError(t, err)
	assert.Equal(t, "request server\n1\n", string(resp.GetStdout()))
	_, err = ts.client.Execute(context.Background(), &processv1.ExecuteRequest{Config: &processv1.ProcessConfig{
		Command: []string{"/bin/true"}, EnvVars: map[string]string{"A=B": "x"}}})
	requireCode(t, err, codes.InvalidArgument)
}

// Execute in the workspace's top directory takes a warm jail: the same
// answers as a cold one (environment, workspace, output cap), and the
// pool's counters show it was used; a cwd elsewhere is built cold.
func TestExecuteFromWarmJails(t *testing.T) {
	requirePython(t)
	ts := startServer(t, Options{WarmJails: 1, Env: []string{"B=server"}})
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		resp, err := ts.client.Execute(ctx, &processv1.ExecuteRequest{Config: &processv1.ProcessConfig{
			Command: []string{"/bin/sh", "-c", `echo "$A $B $(pwd) $(id -u)"; echo x >> warm.txt`}, EnvVars: map[string]string{"A": strconv.Itoa(i)}}})
		require.NoError(t, err)
		assert.Equal(t, strconv.Itoa(i)+" server /workspace 1000\n", string(resp.GetStdout()), "%s", resp.GetStderr())
	}
	b, err := os.ReadFile(filepath.Join(ts.workspace, "warm.txt"))
	require.NoError(t, err)
	assert.Equal(t, "x\nx\nx\n", string(b))
	assert.Positive(t, ts.pool.Stats().Hits, "a warm jail served an Execute")

	var trailer metadata.MD
	resp, err := ts.client.Execute(ctx, &processv1.ExecuteRequest{Config: cfg(python, "-c", "import sys; sys.stdout.write('x' * (3 << 20)); sys.stdout.flush()")}, grpc.Trailer(&trailer))
	require.NoError(t, err)
	assert.Len(t, resp.GetStdout(), ExecuteOutputLimit)
	assert.Equal(t, "output_limit", trailerResult(t, trailer).Reason, "a warm jail has Execute's output cap")

	_, err = ts.client.Execute(ctx, &processv1.ExecuteRequest{Config: cfg("/bin/mkdir", "sub")})
	require.NoError(t, err)
	sub := "sub"
	resp, err = ts.client.Execute(ctx, &processv1.ExecuteRequest{Config: &processv1.ProcessConfig{Command: []string{"/bin/pwd"}, Cwd: &sub}})
	require.NoError(t, err)
	assert.Equal(t, "/workspace/sub\n", string(resp.GetStdout()))
}
