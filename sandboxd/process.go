package sandboxd

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/brig-sandbox/brig/jail"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	processv1 "sigs.k8s.io/agent-sandbox/packages/sandboxd/spec/process/v1"
)

// ExecuteOutputLimit caps each of Execute's stdout and stderr, in bytes:
// the reply is one gRPC message and a client's default limit on one is
// 4 MiB. A template with a smaller Config.OutputLimit keeps its own.
const ExecuteOutputLimit = 1 << 20

// MaxStdinMessage is the largest WriteStdin (and any other request) the
// server accepts, gRPC's default receive limit, stated here so it is
// documented: a client sends more in several calls.
const MaxStdinMessage = 4 << 20

// Limits on a ProcessConfig, checked before any jail starts.
const (
	maxArgs     = 4096
	maxArgBytes = 1 << 20 // all of argv and the environment together
)

// process is one running Start: what WriteStdin, SendSignal and ResizeTTY
// reach by its id.
type process struct {
	cmd *jail.Cmd
	tty bool

	stdinMu  sync.Mutex
	stdin    *os.File // the write end of the program's stdin; nil after EOF
	sawEOF   bool
	finished chan struct{} // closed once Wait has returned
}

// processService implements the generated ProcessServiceServer.
type processService struct {
	processv1.UnimplementedProcessServiceServer
	s *Server
}

// jailCommand checks a ProcessConfig and makes the jail command for it
// (not started). The jail's context is the server's, so Shutdown ends it,
// and the caller's, so a client that goes away kills its process.
// With warm, a command for the workspace's top directory comes from the
// warm jails, when there are any.
func (s *Server) jailCommand(ctx context.Context, pc *processv1.ProcessConfig, warm bool) (*jail.Cmd, error) {
	argv := pc.GetCommand()
	if len(argv) == 0 || argv[0] == "" {
		return nil, status.Error(codes.InvalidArgument, "config.command: empty; give the program and its arguments, e.g. [\"python3\", \"-c\", \"print(1)\"]")
	}
	if len(argv) > maxArgs {
		return nil, status.Errorf(codes.InvalidArgument, "config.command: %d arguments, at most %d", len(argv), maxArgs)
	}
	size := 0
	for _, a := range argv {
		if strings.IndexByte(a, 0) >= 0 {
			return nil, status.Error(codes.InvalidArgument, "config.command: an argument holds a NUL byte")
		}
		size += len(a) + 1
	}
	env := make([]string, 0, len(pc.GetEnvVars()))
	for k, v := range pc.GetEnvVars() {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.IndexByte(v, 0) >= 0 {
			return nil, status.Errorf(codes.InvalidArgument, "config.env_vars: %q: a name must be non-empty without '=' or NUL, a value without NUL", k)
		}
		size += len(k) + len(v) + 2
		env = append(env, k+"="+v)
	}
	if size > maxArgBytes {
		return nil, status.Errorf(codes.InvalidArgument, "config: command and env_vars take %d bytes, at most %d", size, maxArgBytes)
	}
	slices.Sort(env) // the map's order is random; the jail's environment is not
	// The server's own (--env) first, without the names the request sets:
	// getenv takes the first of two, so the request's must be the only one.
	var base []string
	for _, kv := range s.env {
		k, _, _ := strings.Cut(kv, "=")
		if _, set := pc.GetEnvVars()[k]; !set {
			base = append(base, kv)
		}
	}
	env = append(base, env...)
	dir, err := s.workDir(pc.GetCwd())
	if err != nil {
		return nil, err
	}
	var cmd *jail.Cmd
	if warm && s.pool != nil && dir == WorkspaceMount {
		cmd = s.pool.Command(ctx, argv[0], argv[1:]...)
	} else {
		cmd = jail.Command(ctx, s.jailConfig, argv[0], argv[1:]...)
		cmd.Dir = dir
	}
	cmd.Env = env
	return cmd, nil
}

// workDir maps a request's cwd to the directory in the jail: relative
// paths are beneath the workspace, absolute ones must lie in it (as the
// jail sees it, /workspace). The directory is checked on the host, beneath
// the workspace with no symlink followed: one that leads out, or is not
// there, is refused before a jail is built. (Jailed code may swap it for a
// symlink after the check; the jail's chdir then follows it within the
// jail's own root, which is no escape.)
func (s *Server) workDir(cwd string) (string, error) {
	rel, err := workspaceRel(cwd)
	if err != nil {
		return "", status.Errorf(codes.PermissionDenied, "cwd %q: %v", cwd, err)
	}
	if rel == "." {
		return WorkspaceMount, nil
	}
	f, err := s.ws.openDir(rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", status.Errorf(codes.NotFound, "cwd %q: no such directory in the workspace", cwd)
	case errors.Is(err, errEscape):
		return "", status.Errorf(codes.PermissionDenied, "cwd %q: %v", cwd, err)
	case errors.Is(err, syscall.ENOTDIR):
		return "", status.Errorf(codes.InvalidArgument, "cwd %q: not a directory", cwd)
	case err != nil:
		return "", status.Errorf(codes.Internal, "cwd %q: %v", cwd, err)
	}
	f.Close()
	return path.Join(WorkspaceMount, rel), nil
}

// startError maps a jail that failed to start to a gRPC status: a missing
// program is NOT_FOUND and one that may not be run PERMISSION_DENIED, as
// the reference daemon answers; the rest is the server's (INTERNAL).
func startError(err error) error {
	var se *jail.SetupError
	switch {
	case errors.Is(err, syscall.ENOENT):
		return status.Errorf(codes.NotFound, "start: the program was not found in the jail: %v", err)
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return status.Errorf(codes.PermissionDenied, "start: %v", err)
	case errors.As(err, &se) && se.Step == "config":
		return status.Errorf(codes.InvalidArgument, "start: %v", err)
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "start: the client went away")
	}
	return status.Errorf(codes.Internal, "start: %v", err)
}

// Start runs a command in a fresh jail and streams Init, its output and
// Exit. The output goes through a bounded queue (outputQueue), so a slow
// client back-pressures the program (see the package doc). The jail's
// Result goes in the trailer (ResultMetadataKey).
func (p *processService) Start(req *processv1.StartRequest, stream processv1.ProcessService_StartServer) error {
	s := p.s
	release, err := s.admit()
	if err != nil {
		return err
	}
	defer release()
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	stopOnShutdown := context.AfterFunc(s.killCtx, cancel)
	defer stopOnShutdown()

	cmd, err := s.jailCommand(ctx, req.GetConfig(), false)
	if err != nil {
		return err
	}
	// stdin is a pipe of the server's: a *os.File pipe goes into the jail
	// as it is (no copy), and closing its write end is the program's EOF.
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		return status.Errorf(codes.Internal, "stdin pipe: %v", err)
	}
	defer stdinR.Close()
	proc := &process{cmd: cmd, stdin: stdinW, finished: make(chan struct{})}
	defer proc.closeStdin()
	out := newOutputQueue()
	cmd.Stdin = stdinR
	cmd.Stdout = &queueWriter{q: out, stderr: false}
	cmd.Stderr = &queueWriter{q: out, stderr: true}
	if pty := req.GetPty(); req.Pty != nil {
		rows, cols, err := ttySize(pty.GetRows(), pty.GetCols(), true)
		if err != nil {
			return err
		}
		cmd.TTY = &jail.TTY{Rows: rows, Cols: cols}
		proc.tty = true
	}

	if err := cmd.Start(); err != nil {
		return startError(err)
	}
	id := s.procs.add(proc)
	defer s.procs.remove(id)
	// Init goes out first; the output waits in the queue (bounded) until
	// the sender starts.
	err = stream.Send(&processv1.StartResponse{Event: &processv1.StartResponse_Init{Init: &processv1.InitEvent{ProcessId: id}}})
	sent := make(chan error, 1)
	if err != nil {
		cancel() // the client is gone: the jail goes with it
		out.mu.Lock()
		out.err = err // the copiers' Writes fail and stop
		out.cond.Broadcast()
		out.mu.Unlock()
		sent <- err
	} else {
		go func() {
			err := out.send(stream.Send)
			if err != nil {
				cancel() // the client is gone or the stream broke: end the jail
			}
			sent <- err
		}()
	}
	_ = cmd.Wait()
	close(proc.finished)
	out.close() // the copiers are done: Wait waited for them
	sendErr := <-sent
	r := cmd.Result
	stream.SetTrailer(resultMetadata(r))
	if err != nil {
		return status.Errorf(codes.Canceled, "send init event: %v", err)
	}
	if stream.Context().Err() != nil || sendErr != nil {
		return status.Error(codes.Canceled, "the client went away; its process was killed")
	}
	return stream.Send(&processv1.StartResponse{Event: &processv1.StartResponse_Exit{Exit: &processv1.ExitEvent{ExitCode: int32(r.ExitCode)}}})
}

// Execute runs a command in a fresh jail to its end and returns its
// output, at most ExecuteOutputLimit bytes of each stream; the Result is in
// the trailer.
func (p *processService) Execute(ctx context.Context, req *processv1.ExecuteRequest) (*processv1.ExecuteResponse, error) {
	s := p.s
	release, err := s.admit()
	if err != nil {
		return nil, err
	}
	defer release()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopOnShutdown := context.AfterFunc(s.killCtx, cancel)
	defer stopOnShutdown()
	cmd, err := s.jailCommand(ctx, req.GetConfig(), true)
	if err != nil {
		return nil, err
	}
	if cmd.Config.OutputLimit <= 0 || cmd.Config.OutputLimit > ExecuteOutputLimit {
		cmd.Config.OutputLimit = ExecuteOutputLimit
	}
	var stdout, stderr cappedBuffer
	stdout.limit, stderr.limit = ExecuteOutputLimit, ExecuteOutputLimit
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		return nil, startError(err)
	}
	_ = cmd.Wait()
	_ = grpc.SetTrailer(ctx, resultMetadata(cmd.Result))
	if ctx.Err() != nil && s.killCtx.Err() == nil {
		return nil, status.Error(codes.Canceled, "the client went away; its process was killed")
	}
	return &processv1.ExecuteResponse{ExitCode: int32(cmd.Result.ExitCode), Stdout: stdout.b, Stderr: stderr.b}, nil
}

// cappedBuffer keeps at most limit bytes; the jail's own output cap (set
// to the same) stops the program when it writes more.
type cappedBuffer struct {
	b     []byte
	limit int
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	n := min(len(p), c.limit-len(c.b))
	c.b = append(c.b, p[:n]...)
	return len(p), nil
}

// WriteStdin writes to a Start'ed process's stdin, or closes it (EOF).
// A write waits while the program does not read (its pipe is full), until
// the program ends or the caller's deadline passes.
func (p *processService) WriteStdin(ctx context.Context, req *processv1.WriteStdinRequest) (*processv1.WriteStdinResponse, error) {
	proc, err := p.s.procs.get(req.GetProcessId())
	if err != nil {
		return nil, err
	}
	proc.stdinMu.Lock()
	defer proc.stdinMu.Unlock()
	if req.GetEof() != nil {
		if proc.stdin != nil {
			proc.stdin.Close()
			proc.stdin = nil
		}
		proc.sawEOF = true
		return &processv1.WriteStdinResponse{}, nil
	}
	if req.Payload == nil {
		return nil, status.Error(codes.InvalidArgument, "write stdin: give input or eof")
	}
	if proc.stdin == nil {
		if proc.sawEOF {
			return nil, status.Errorf(codes.FailedPrecondition, "process %d: stdin was closed (eof) already", req.GetProcessId())
		}
		return nil, status.Errorf(codes.NotFound, "process %d has ended", req.GetProcessId())
	}
	deadline, _ := ctx.Deadline() // zero: none
	_ = proc.stdin.SetWriteDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = proc.stdin.SetWriteDeadline(time.Now()) })
	_, werr := proc.stdin.Write(req.GetInput())
	stop()
	switch {
	case werr == nil:
		return &processv1.WriteStdinResponse{}, nil
	case ctx.Err() != nil:
		return nil, status.FromContextError(ctx.Err()).Err()
	case errors.Is(werr, os.ErrDeadlineExceeded):
		return nil, status.Error(codes.DeadlineExceeded, "write stdin: the program did not read it in time")
	case errors.Is(werr, syscall.EPIPE):
		return nil, status.Errorf(codes.FailedPrecondition, "process %d closed its stdin", req.GetProcessId())
	}
	return nil, status.Errorf(codes.Internal, "write stdin: %v", werr)
}

// closeStdin closes the write end of stdin once the program has ended.
func (proc *process) closeStdin() {
	proc.stdinMu.Lock()
	defer proc.stdinMu.Unlock()
	if proc.stdin != nil {
		proc.stdin.Close()
		proc.stdin = nil
	}
}

// SendSignal signals the jailed program's process group; SIGKILL ends the
// whole jail.
func (p *processService) SendSignal(_ context.Context, req *processv1.SendSignalRequest) (*processv1.SendSignalResponse, error) {
	proc, err := p.s.procs.get(req.GetProcessId())
	if err != nil {
		return nil, err
	}
	switch req.GetSignal() {
	case processv1.Signal_SIGNAL_SIGKILL:
		proc.cmd.Kill()
		return &processv1.SendSignalResponse{}, nil
	case processv1.Signal_SIGNAL_SIGINT, processv1.Signal_SIGNAL_SIGTERM:
	default:
		return nil, status.Errorf(codes.InvalidArgument, "signal %v: want SIGNAL_SIGINT, SIGNAL_SIGTERM or SIGNAL_SIGKILL", req.GetSignal())
	}
	if err := proc.cmd.Signal(syscall.Signal(req.GetSignal())); err != nil {
		select {
		case <-proc.finished:
			return nil, status.Errorf(codes.NotFound, "process %d has ended", req.GetProcessId())
		default:
		}
		return nil, status.Errorf(codes.Internal, "signal: %v", err)
	}
	return &processv1.SendSignalResponse{}, nil
}

// ResizeTTY sets the window size of a process started with a PTY.
func (p *processService) ResizeTTY(_ context.Context, req *processv1.ResizeTTYRequest) (*processv1.ResizeTTYResponse, error) {
	proc, err := p.s.procs.get(req.GetProcessId())
	if err != nil {
		return nil, err
	}
	if !proc.tty {
		return nil, status.Errorf(codes.FailedPrecondition, "process %d has no PTY; start it with a pty to resize one", req.GetProcessId())
	}
	rows, cols, err := ttySize(req.GetRows(), req.GetCols(), false)
	if err != nil {
		return nil, err
	}
	if err := proc.cmd.ResizeTTY(rows, cols); err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "process %d: %v", req.GetProcessId(), err)
	}
	return &processv1.ResizeTTYResponse{}, nil
}

// ttySize checks a window size; at start, 0 for both means the default.
func ttySize(rows, cols uint32, atStart bool) (uint16, uint16, error) {
	if atStart && rows == 0 && cols == 0 {
		return 0, 0, nil
	}
	if rows == 0 || cols == 0 || rows > 0xffff || cols > 0xffff {
		return 0, 0, status.Errorf(codes.InvalidArgument, "pty size %dx%d: rows and cols must be 1 to 65535", rows, cols)
	}
	return uint16(rows), uint16(cols), nil
}

// processTable holds the running Start processes by id. Ids count up from
// 1 and are never reused while the server runs.
type processTable struct {
	mu    sync.Mutex
	next  int32
	procs map[int32]*process
}

func (t *processTable) add(p *process) int32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.procs == nil {
		t.procs = map[int32]*process{}
	}
	t.next++
	t.procs[t.next] = p
	return t.next
}

func (t *processTable) remove(id int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.procs, id)
}

func (t *processTable) get(id int32) (*process, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.procs[id]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "process %d: no such running process", id)
	}
	return p, nil
}

// all returns the running processes.
func (t *processTable) all() []*process {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*process, 0, len(t.procs))
	for _, p := range t.procs {
		out = append(out, p)
	}
	return out
}

// resultMetadata is the jail's Result as trailing metadata.
func resultMetadata(r *jail.Result) metadata.MD {
	if r == nil {
		return metadata.MD{}
	}
	return metadata.Pairs(ResultMetadataKey, string(encodeResult(r)))
}
