package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/brig-sandbox/brig/jail"
	"github.com/brig-sandbox/brig/session"
)

// cellRunner is what a Python and a shell session have in common for the CLI.
type cellRunner interface {
	Run(ctx context.Context, code string, opts session.RunOptions) *session.CellResult
	Close() error
	Result() *jail.Result
}

// sessionMain implements `brig session python|shell [flags]`.
func sessionMain(args []string) int {
	defer jail.DefaultSupervisor.Close() // after the session, or when none starts: leave no process behind
	if len(args) == 0 || (args[0] != "python" && args[0] != "shell") {
		fmt.Fprintln(os.Stderr, "brig: session needs python or shell: brig session python|shell [--jsonl] [flags]; run 'brig session python --help' for the flags")
		return exitBrigFailed
	}
	kind := args[0]
	fs := flag.NewFlagSet("brig session "+kind, flag.ContinueOnError)
	var cfg jail.Config
	var env []string
	var jsonl, quiet bool
	var cellTimeout time.Duration
	jf := registerJailFlags(fs, &cfg, &env)
	fs.Var(durationFlag{&cfg.Timeout}, "timeout", "wall-clock limit of the whole session (default none)")
	fs.Var(durationFlag{&cellTimeout}, "cell-timeout", "default timeout of one cell (default 30s)")
	fs.Var(sizeFlag{&cfg.OutputLimit}, "output-limit", "cap on each cell's stdout and stderr (default 16M)")
	fs.BoolVar(&jsonl, "jsonl", false, "speak JSON lines on stdin/stdout instead of a prompt")
	fs.BoolVar(&quiet, "quiet", false, "print nothing of brig's own unless brig itself fails")
	if err := parseFlags(fs, args[1:], "brig session "+kind+" [--jsonl] [flags]"); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "brig: %v\n", err)
		return exitBrigFailed
	}
	if err := jf.finish(); err != nil {
		fmt.Fprintf(os.Stderr, "brig: %v\n", err)
		return exitBrigFailed
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "brig: session takes no command: %q\n", fs.Args())
		return exitBrigFailed
	}
	setLogging(os.Stderr, quiet)
	if !quiet {
		if note := unenforcedLimits(cfg); note != "" {
			fmt.Fprintf(os.Stderr, "brig: %s\n", note)
		}
		if len(env) > 0 {
			fmt.Fprintln(os.Stderr, "brig: --env applies to one-shot runs; set variables in the session instead")
		}
	}
	// SIGINT interrupts the running cell, as in Python's REPL and Jupyter;
	// every other signal that would end brig kills the session, so that
	// brig tears the jail down (processes, cgroups) before it exits.
	interrupts := make(chan os.Signal, 1)
	signal.Notify(interrupts, syscall.SIGINT)
	defer signal.Stop(interrupts)
	ended := make(chan os.Signal, 1)
	signal.Notify(ended, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(ended)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var endedBy syscall.Signal
	go func() {
		select {
		case sig := <-ended:
			endedBy = sig.(syscall.Signal)
			cancel()
		case <-ctx.Done():
		}
	}()
	var sess cellRunner
	var err error
	if kind == "python" {
		var p *session.Python
		p, err = session.NewPython(ctx, cfg)
		sess = p
	} else {
		var sh *session.Shell
		sh, err = session.NewShell(ctx, cfg)
		sess = sh
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "brig: %v\n", err)
		return exitBrigFailed
	}
	defer sess.Close()
	run := interruptible{sess: sess, interrupts: interrupts}
	if jsonl {
		serveJSONL(ctx, run, os.Stdin, os.Stdout, cellTimeout)
	} else {
		interact(ctx, run, kind, os.Stdin, os.Stdout, cellTimeout, interrupts)
	}
	// The session's jail ends here, so that its Result holds every refusal
	// of its egress proxy; they are said once, as brig run says them.
	_ = sess.Close()
	if r := sess.Result(); r != nil && !quiet {
		printEgressRefused(r)
	}
	if ctx.Err() != nil && endedBy != 0 {
		// The session is killed (by the deferred Close), whatever its cell
		// was doing and whether or not stdin is still open.
		if !quiet {
			fmt.Fprintf(os.Stderr, "brig: session ended by %v\n", endedBy)
		}
		return 128 + int(endedBy)
	}
	return 0
}

// interruptible runs cells whose context a SIGINT ends: the session
// interrupts the cell and lives on. A SIGINT between cells is dropped.
type interruptible struct {
	sess       cellRunner
	interrupts <-chan os.Signal
}

func (r interruptible) Run(ctx context.Context, code string, opts session.RunOptions) *session.CellResult {
	for len(r.interrupts) > 0 {
		<-r.interrupts // one that came between cells
	}
	cellCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-r.interrupts:
			cancel()
		case <-done:
		}
	}()
	return r.sess.Run(cellCtx, code, opts)
}

func (r interruptible) Close() error { return r.sess.Close() }

func (r interruptible) Result() *jail.Result { return r.sess.Result() }

// MaxRequestLine caps one line of input, a JSONL request or a line at the
// prompt. A longer line is skipped as it is read, never held whole, and
// answered as malformed; the session goes on.
const MaxRequestLine = 16 << 20

// lineReader reads lines of at most max bytes from untrusted input.
type lineReader struct {
	r   *bufio.Reader
	max int
}

func newLineReader(in io.Reader, max int) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(in, 64<<10), max: max}
}

// next returns the next line without its newline. When the line was longer
// than max, tooLong is set and line is nil: its bytes were read and
// dropped. err is io.EOF (or a read error) only when there is no line.
func (l *lineReader) next() (line []byte, tooLong bool, err error) {
	var got bool
	for {
		chunk, err := l.r.ReadSlice('\n')
		got = got || len(chunk) > 0
		if !tooLong {
			line = append(line, chunk...)
			if len(bytes.TrimSuffix(line, []byte("\n"))) > l.max {
				tooLong, line = true, nil
			}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == nil || got:
			// A line, ended by a newline or by the end of the input (the
			// error then comes with the next call).
			if tooLong {
				return nil, true, nil
			}
			return bytes.TrimSuffix(line, []byte("\n")), false, nil
		default:
			return nil, false, err
		}
	}
}

// inputLine is one line read from stdin, or the error that ended it.
type inputLine struct {
	text    string
	tooLong bool
	err     error
}

// readLines reads lines into a channel, so that the caller can wait for
// the next one and for its context at once: a SIGTERM ends brig session
// even while stdin stays open. One line is held at a time.
func readLines(in io.Reader) <-chan inputLine {
	ch := make(chan inputLine)
	go func() {
		defer close(ch)
		lr := newLineReader(in, MaxRequestLine)
		for {
			line, tooLong, err := lr.next()
			ch <- inputLine{text: string(line), tooLong: tooLong, err: err}
			if err != nil {
				return
			}
		}
	}()
	return ch
}

// nextLine waits for the next line or the end of ctx.
func nextLine(ctx context.Context, lines <-chan inputLine) (inputLine, bool) {
	select {
	case <-ctx.Done():
		return inputLine{}, false
	case l, ok := <-lines:
		if !ok {
			return inputLine{err: io.EOF}, true
		}
		return l, true
	}
}

// request is one line of the JSONL protocol.
type request struct {
	ID      *string `json:"id"`
	Code    *string `json:"code"`
	Timeout string  `json:"timeout"`
	// Stream asks for the cell's output as it comes, as event lines
	// {"id", "type": "stdout"|"stderr", "data"} before the result line.
	Stream bool `json:"stream"`
}

// outputEvent is one piece of a streamed cell's output.
type outputEvent struct {
	ID   *string `json:"id"`
	Type string  `json:"type"`
	Data string  `json:"data"`
}

// eventWriter turns a cell's output into event lines on a shared encoder.
type eventWriter struct {
	mu   *sync.Mutex
	enc  *json.Encoder
	id   *string
	kind string
}

func (w eventWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(p), w.enc.Encode(outputEvent{ID: w.id, Type: w.kind, Data: string(p)})
}

// serveJSONL answers one result line per request line, in order. A
// malformed line (one over MaxRequestLine too) gets a result with status
// "error" and the session goes on. It returns at the end of the input or
// of ctx.
func serveJSONL(ctx context.Context, sess cellRunner, in io.Reader, out io.Writer, cellTimeout time.Duration) {
	lines := readLines(in)
	enc := json.NewEncoder(out)
	var encMu sync.Mutex
	protocolError := func(id *string, msg string) {
		encMu.Lock()
		defer encMu.Unlock()
		_ = enc.Encode(newCellJSON(id, &session.CellResult{Status: session.CellError,
			Error: &session.CellException{Type: "ProtocolError", Message: msg}}))
	}
	for {
		l, ok := nextLine(ctx, lines)
		if !ok {
			return
		}
		if l.err != nil {
			if !errors.Is(l.err, io.EOF) {
				protocolError(nil, "read request: "+l.err.Error())
			}
			return
		}
		if l.tooLong {
			protocolError(nil, fmt.Sprintf("malformed request: a line longer than the %d-byte cap (MaxRequestLine), skipped", MaxRequestLine))
			continue
		}
		line := strings.TrimSpace(l.text)
		if line == "" {
			continue
		}
		id, code, opts, stream, err := parseRequest([]byte(line), cellTimeout)
		if err != nil {
			protocolError(id, err.Error())
			continue
		}
		if stream {
			opts.Stdout = eventWriter{mu: &encMu, enc: enc, id: id, kind: "stdout"}
			opts.Stderr = eventWriter{mu: &encMu, enc: enc, id: id, kind: "stderr"}
		}
		res := sess.Run(ctx, code, opts)
		encMu.Lock()
		_ = enc.Encode(newCellJSON(id, res))
		encMu.Unlock()
	}
}

// parseRequest reads one JSONL request: {"id": "c1", "code": "x = 1", "timeout": "5s"}.
func parseRequest(line []byte, cellTimeout time.Duration) (id *string, code string, opts session.RunOptions, stream bool, err error) {
	var req request
	dec := json.NewDecoder(strings.NewReader(string(line)))
	dec.DisallowUnknownFields()
	if err = dec.Decode(&req); err != nil {
		// Still answer with the id when the line has one.
		var loose struct {
			ID *string `json:"id"`
		}
		if json.Unmarshal(line, &loose) == nil {
			id = loose.ID
		}
		return id, "", opts, false, fmt.Errorf("malformed request: %v", err)
	}
	id = req.ID
	if req.Code == nil {
		return id, "", opts, false, errors.New(`malformed request: no "code"`)
	}
	opts.Timeout = cellTimeout
	if req.Timeout != "" {
		if opts.Timeout, err = parseDuration(req.Timeout); err != nil {
			return id, "", opts, false, fmt.Errorf("malformed request: timeout: %v", err)
		}
	}
	return id, *req.Code, opts, req.Stream, nil
}

// interact is the prompt for a person: a cell is a line; for Python, a
// block that starts with a line ending in ':' and ends at an empty line;
// for the shell, as many lines as bash needs to parse a whole command
// (for ... do ... done). Ctrl-C at the prompt drops what was typed, as
// Python's REPL does; during a cell it interrupts the cell (interruptible).
// Python's exit() and the shell's exit leave.
func interact(ctx context.Context, sess cellRunner, kind string, in io.Reader, out io.Writer, cellTimeout time.Duration, interrupts <-chan os.Signal) {
	prompt, more := "$ ", "> "
	if kind == "python" {
		prompt, more = ">>> ", "... "
	}
	lines := readLines(in)
	errInterrupted := errors.New("interrupted")
	read := func() (string, error) {
		for {
			var l inputLine
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-interrupts:
				return "", errInterrupted
			case got, ok := <-lines:
				if !ok {
					return "", io.EOF
				}
				l = got
			}
			if l.err != nil {
				return "", l.err
			}
			if l.tooLong {
				fmt.Fprintf(out, "brig: a line longer than %d bytes, skipped\n", MaxRequestLine)
				continue
			}
			return l.text + "\n", nil
		}
	}
	for {
		fmt.Fprint(out, prompt)
		cell, err := read()
		for err == nil && needsMore(kind, cell) {
			fmt.Fprint(out, more)
			var next string
			next, err = read()
			if kind == "python" && strings.TrimSpace(next) == "" {
				break
			}
			cell += next
		}
		if errors.Is(err, errInterrupted) {
			fmt.Fprintln(out, "\nKeyboardInterrupt")
			continue
		}
		if err != nil {
			fmt.Fprintln(out)
			return
		}
		if strings.TrimSpace(cell) == "" {
			continue
		}
		res := sess.Run(ctx, cell, session.RunOptions{Timeout: cellTimeout})
		fmt.Fprint(out, res.Stdout)
		fmt.Fprint(out, res.Stderr)
		if res.Value != nil {
			fmt.Fprintln(out, *res.Value)
		}
		if res.Error != nil && res.Error.Type == "SystemExit" {
			return // exit(), quit(), sys.exit(): leave, as Python's REPL does
		}
		if res.Error != nil {
			fmt.Fprint(out, res.Error.Traceback)
		}
		switch res.Status {
		case session.CellTimeout:
			fmt.Fprintln(out, "brig: cell timed out and was interrupted")
		case session.CellDead:
			fmt.Fprintf(out, "brig: session ended: %s\n", res.Reason)
			return
		}
	}
}

// needsMore says whether the prompt should read another line before the
// cell is whole: a Python block (a line ending in ':') goes on to an empty
// line; a shell command goes on while bash cannot parse it to its end.
// bash -n only parses: nothing typed runs on the host.
func needsMore(kind, cell string) bool {
	if kind == "python" {
		first := strings.SplitN(cell, "\n", 2)[0]
		return strings.HasSuffix(strings.TrimRight(first, " \t\r"), ":")
	}
	if strings.TrimSpace(cell) == "" {
		return false
	}
	check := exec.Command("/bin/bash", "--norc", "--noprofile", "-n")
	check.Stdin = strings.NewReader(cell)
	check.Env = []string{}
	msg, err := check.CombinedOutput()
	return err != nil && strings.Contains(string(msg), "unexpected end of file")
}
