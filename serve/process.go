package serve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/brig-sandbox/brig/jail"
)

// Background processes: POST .../processes with "background": true starts
// a command in a fresh jail of the sandbox and answers at once with its id;
// stdin, signal, wait and delete follow. The process holds one of the
// tenant's concurrent executions until it ends. Its output is kept (the
// jail kills it past the template's output limit per stream, so the log is
// bounded) until the process is deleted or its sandbox goes.

// MaxProcesses caps a sandbox's background processes, running or ended
// and not yet deleted.
const MaxProcesses = 64

// StdinWriteTimeout bounds one stdin request: a program that does not read
// its stdin leaves the pipe full, and the request answers with what went
// in.
const StdinWriteTimeout = 5 * time.Second

type process struct {
	id      string
	command []string
	cmd     *jail.Cmd
	stdin   *os.File // the pipe's write end, nil once closed
	stdinMu sync.Mutex
	log     *outputLog
	done    chan struct{} // closed when the jail ended and the log is complete
	result  *jail.Result
}

// outputLog is a process's output, in order, for any number of readers
// that follow it as it grows.
type outputLog struct {
	mu      sync.Mutex
	events  []outputEvent
	changed chan struct{} // closed and replaced at each change
	ended   bool
}

func newOutputLog() *outputLog { return &outputLog{changed: make(chan struct{})} }

type logWriter struct {
	l   *outputLog
	typ string
}

func (w logWriter) Write(p []byte) (int, error) {
	w.l.mu.Lock()
	w.l.events = append(w.l.events, outputEvent{Type: w.typ, Data: string(p)})
	close(w.l.changed)
	w.l.changed = make(chan struct{})
	w.l.mu.Unlock()
	return len(p), nil
}

func (l *outputLog) end() {
	l.mu.Lock()
	l.ended = true
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

// follow calls fn for every event from the first, waiting for more until
// the log ends or ctx does.
func (l *outputLog) follow(ctx context.Context, fn func(outputEvent)) error {
	for i := 0; ; {
		l.mu.Lock()
		evs, ended, changed := l.events[i:], l.ended, l.changed
		l.mu.Unlock()
		for _, e := range evs {
			fn(e)
		}
		i += len(evs)
		if ended && len(evs) == 0 {
			return nil
		}
		if len(evs) > 0 {
			continue
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (l *outputLog) text() (stdout, stderr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var o, e strings.Builder
	for _, ev := range l.events {
		if ev.Type == "stdout" {
			o.WriteString(ev.Data)
		} else {
			e.WriteString(ev.Data)
		}
	}
	return o.String(), e.String()
}

// startProcess starts cmd in the background for the sandbox; done gives
// back the execution slot once the jail has ended.
func (s *Server) startProcess(req *http.Request, sb *sandbox, cfg jail.Config, argv []string, stdin *string, done func()) (*process, *apiError) {
	sb.mu.Lock()
	n := len(sb.processes)
	sb.mu.Unlock()
	if n >= MaxProcesses {
		done()
		return nil, errorf(http.StatusConflict, "too_many_processes", "the sandbox keeps %d background processes; delete ended ones (DELETE .../processes/{pid})", MaxProcesses)
	}
	r, w, err := os.Pipe()
	if err != nil {
		done()
		return nil, errorf(500, "internal", "stdin pipe: %v", err)
	}
	p := &process{id: newID("proc_"), command: argv, stdin: w, log: newOutputLog(), done: make(chan struct{})}
	p.cmd = jail.Command(sb.ctx, cfg, argv[0], argv[1:]...)
	p.cmd.Env = sb.template.Env
	s.hookEgress(p.cmd, cfg, Event{RequestID: requestID(req), Remote: req.RemoteAddr, Tenant: sb.tenant.Name, Sandbox: sb.id, Process: p.id, Template: sb.template.Name})
	p.cmd.Stdin = r
	stdoutSum, stderrSum := newDigestWriter(logWriter{p.log, "stdout"}), newDigestWriter(logWriter{p.log, "stderr"})
	p.cmd.Stdout, p.cmd.Stderr = stdoutSum, stderrSum
	err = s.startJail(p.cmd, sb.template.Name)
	r.Close()
	if err != nil {
		w.Close()
		done()
		return nil, startError(err)
	}
	if stdin != nil {
		_ = w.SetWriteDeadline(time.Now().Add(StdinWriteTimeout))
		_, _ = w.WriteString(*stdin)
	}
	sb.mu.Lock()
	if sb.deleted {
		sb.mu.Unlock()
		p.cmd.Kill()
	} else {
		sb.processes[p.id] = p
		sb.mu.Unlock()
	}
	// The sandbox's use lasts while the process runs: it is not idle.
	release, _ := sb.use()
	reqID, remote := requestID(req), req.RemoteAddr
	go func() {
		_ = p.cmd.Wait()
		p.result = p.cmd.Result
		p.closeStdin()
		p.log.end()
		// The record before the execution's slot is given back: a Close
		// waits for the slots, and closes the audit log after.
		ev := runEvent("process", sb.tenant, sb.id, sb.template.Name, argv, p.result, stdoutSum, stderrSum)
		ev.Process, ev.RequestID, ev.Remote = p.id, reqID, remote
		s.observe(nil, ev)
		close(p.done)
		done()
		if release != nil {
			release()
		}
	}()
	return p, nil
}

func (p *process) closeStdin() {
	p.stdinMu.Lock()
	defer p.stdinMu.Unlock()
	if p.stdin != nil {
		p.stdin.Close()
		p.stdin = nil
	}
}

func (sb *sandbox) process(id string) (*process, *apiError) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	p := sb.processes[id]
	if p == nil {
		return nil, errorf(http.StatusNotFound, "not_found", "no such process in this sandbox")
	}
	return p, nil
}

func (p *process) describe() map[string]any {
	m := map[string]any{"id": p.id, "command": p.command, "status": "running"}
	select {
	case <-p.done:
		m["status"] = "ended"
		if p.result != nil {
			m["result"] = NewResultJSON(p.result)
		}
	default:
	}
	return m
}

type stdinRequest struct {
	Data *string `json:"data"`
	EOF  bool    `json:"eof"`
}

func (s *Server) postStdin(w http.ResponseWriter, r *http.Request, t *tenant) *apiError {
	var req stdinRequest
	if aerr := decodeBody(w, r, s.cfg.MaxBodyBytes, &req); aerr != nil {
		return aerr
	}
	return s.inSandbox(r, t, func(sb *sandbox) *apiError {
		p, aerr := sb.process(r.PathValue("pid"))
		if aerr != nil {
			return aerr
		}
		p.stdinMu.Lock()
		defer p.stdinMu.Unlock()
		if p.stdin == nil {
			return errorf(http.StatusConflict, "stdin_closed", "the process's stdin is closed (eof was sent, or it ended)")
		}
		n := 0
		if req.Data != nil {
			_ = p.stdin.SetWriteDeadline(time.Now().Add(StdinWriteTimeout))
			var err error
			n, err = p.stdin.WriteString(*req.Data)
			if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				return errorf(http.StatusConflict, "stdin_closed", "the process no longer reads its stdin: %v", err)
			}
			if err != nil {
				writeJSON(w, http.StatusConflict, map[string]any{"written": n, "error": map[string]string{"code": "stdin_full", "message": fmt.Sprintf("the process did not read its stdin within %v; %d bytes went in", StdinWriteTimeout, n)}})
				return nil
			}
		}
		if req.EOF {
			p.stdin.Close()
			p.stdin = nil
		}
		writeJSON(w, http.StatusOK, map[string]any{"written": n, "eof": req.EOF})
		return nil
	})
}

type signalRequest struct {
	Signal string `json:"signal"`
}

var signalNames = map[string]syscall.Signal{"INT": syscall.SIGINT, "TERM": syscall.SIGTERM, "HUP": syscall.SIGHUP, "QUIT": syscall.SIGQUIT,
	"USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2, "KILL": syscall.SIGKILL}

func (s *Server) postSignal(w http.ResponseWriter, r *http.Request, t *tenant) *apiError {
	var req signalRequest
	if aerr := decodeBody(w, r, s.cfg.MaxBodyBytes, &req); aerr != nil {
		return aerr
	}
	sig, ok := signalNames[strings.TrimPrefix(strings.ToUpper(req.Signal), "SIG")]
	if !ok {
		return errorf(400, "bad_request", "signal %.20q: want INT, TERM, HUP, QUIT, USR1, USR2 or KILL", req.Signal)
	}
	return s.inSandbox(r, t, func(sb *sandbox) *apiError {
		p, aerr := sb.process(r.PathValue("pid"))
		if aerr != nil {
			return aerr
		}
		select {
		case <-p.done:
			return errorf(http.StatusConflict, "ended", "the process has ended")
		default:
		}
		if sig == syscall.SIGKILL {
			p.cmd.Kill() // the whole jail
		} else if err := p.cmd.Signal(sig); err != nil {
			return errorf(http.StatusConflict, "ended", "%v", err)
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": p.id, "signal": req.Signal})
		return nil
	})
}

func (s *Server) getProcess(w http.ResponseWriter, r *http.Request, t *tenant) *apiError {
	return s.inSandbox(r, t, func(sb *sandbox) *apiError {
		p, aerr := sb.process(r.PathValue("pid"))
		if aerr != nil {
			return aerr
		}
		writeJSON(w, http.StatusOK, p.describe())
		return nil
	})
}

// postWait answers when the process has ended, with all its output and
// its result; streamed, it sends the output from the start as it comes.
// A client that goes away from a wait leaves the process running.
func (s *Server) postWait(w http.ResponseWriter, r *http.Request, t *tenant) *apiError {
	sb, aerr := s.lookup(t, r.PathValue("id"))
	if aerr != nil {
		return aerr
	}
	p, aerr := sb.process(r.PathValue("pid"))
	if aerr != nil {
		return aerr
	}
	if wantsStream(r) {
		stream := newNDJSON(w, nil) // the process is the sandbox's, not the waiter's
		if p.log.follow(r.Context(), func(e outputEvent) { stream.event(e) }) != nil {
			return nil
		}
		<-p.done
		if p.result != nil {
			stream.event(runResultEvent{Type: "result", ResultJSON: NewResultJSON(p.result)})
		}
		return nil
	}
	select {
	case <-p.done:
	case <-r.Context().Done():
		return nil
	case <-sb.gone:
		return errorf(http.StatusNotFound, "not_found", "no such sandbox")
	}
	if p.result == nil {
		return errorf(500, "internal", "the jail reported no result")
	}
	stdout, stderr := p.log.text()
	writeJSON(w, http.StatusOK, runAnswer{Stdout: stdout, Stderr: stderr, ResultJSON: NewResultJSON(p.result)})
	return nil
}

func (s *Server) deleteProcess(w http.ResponseWriter, r *http.Request, t *tenant) *apiError {
	return s.inSandbox(r, t, func(sb *sandbox) *apiError {
		sb.mu.Lock()
		p := sb.processes[r.PathValue("pid")]
		delete(sb.processes, r.PathValue("pid"))
		sb.mu.Unlock()
		if p == nil {
			return errorf(http.StatusNotFound, "not_found", "no such process in this sandbox")
		}
		p.cmd.Kill()
		<-p.done
		writeJSON(w, http.StatusOK, map[string]any{"id": p.id, "deleted": true})
		return nil
	})
}
