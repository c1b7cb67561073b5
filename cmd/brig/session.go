package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/brig-sandbox/brig/jail"
)

// cellRunner is what a Python and a shell session have in common for the CLI.
type cellRunner interface {
	Run(ctx context.Context, code string, opts jail.RunOptions) *jail.CellResult
	Close() error
}

// sessionMain implements `brig session python|shell [flags]`.
func sessionMain(args []string) int {
	defer jail.CloseSpawner() // after the session, or when none starts: leave no process behind
	if len(args) == 0 || (args[0] != "python" && args[0] != "shell") {
		fmt.Fprintln(os.Stderr, "Usage: brig session python|shell [--jsonl] [flags]\n\nRun 'brig session python -h' for the flags.")
		return 2
	}
	kind := args[0]
	fs := flag.NewFlagSet("brig session "+kind, flag.ContinueOnError)
	var cfg jail.Config
	var env []string
	var jsonl bool
	var cellTimeout time.Duration
	jf := registerJailFlags(fs, &cfg, &env)
	fs.Var(durationFlag{&cfg.Timeout}, "timeout", "wall-clock limit of the whole session (default none)")
	fs.Var(durationFlag{&cellTimeout}, "cell-timeout", "default timeout of one cell (default 30s)")
	fs.Var(sizeFlag{&cfg.OutputLimit}, "output-limit", "cap on each cell's stdout and stderr (default 16M)")
	fs.BoolVar(&jsonl, "jsonl", false, "speak JSON lines on stdin/stdout instead of a prompt")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
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
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer cancel()
	var sess cellRunner
	var err error
	if kind == "python" {
		var p *jail.PythonSession
		p, err = jail.NewPythonSession(ctx, cfg)
		sess = p
	} else {
		var sh *jail.ShellSession
		sh, err = jail.NewShellSession(ctx, cfg)
		sess = sh
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "brig: %v\n", err)
		return exitBrigFailed
	}
	defer sess.Close()
	if len(env) > 0 {
		fmt.Fprintln(os.Stderr, "brig: note: --env applies to one-shot runs; set variables in the session instead")
	}
	if jsonl {
		serveJSONL(ctx, sess, os.Stdin, os.Stdout, cellTimeout)
		return 0
	}
	interact(ctx, sess, kind, os.Stdin, os.Stdout, cellTimeout)
	return 0
}

// request is one line of the JSONL protocol.
type request struct {
	ID      *string `json:"id"`
	Code    *string `json:"code"`
	Timeout string  `json:"timeout"`
}

// response is one result line: the CellResult with the request's id.
type response struct {
	ID *string `json:"id"`
	*jail.CellResult
}

// serveJSONL answers one result line per request line, in order. A
// malformed line gets a result with status "error" and the session goes on.
func serveJSONL(ctx context.Context, sess cellRunner, in io.Reader, out io.Writer, cellTimeout time.Duration) {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	enc := json.NewEncoder(out)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		id, code, opts, err := parseRequest([]byte(line), cellTimeout)
		var res *jail.CellResult
		if err != nil {
			res = &jail.CellResult{Status: jail.CellError, Error: &jail.CellException{Type: "ProtocolError", Message: err.Error()}}
		} else {
			res = sess.Run(ctx, code, opts)
		}
		_ = enc.Encode(response{ID: id, CellResult: res})
	}
	if err := sc.Err(); err != nil {
		_ = enc.Encode(response{CellResult: &jail.CellResult{Status: jail.CellError, Error: &jail.CellException{Type: "ProtocolError", Message: "read request: " + err.Error()}}})
	}
}

// parseRequest reads one JSONL request: {"id": "c1", "code": "x = 1", "timeout": "5s"}.
func parseRequest(line []byte, cellTimeout time.Duration) (id *string, code string, opts jail.RunOptions, err error) {
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
		return id, "", opts, fmt.Errorf("malformed request: %v", err)
	}
	id = req.ID
	if req.Code == nil {
		return id, "", opts, errors.New(`malformed request: no "code"`)
	}
	opts.Timeout = cellTimeout
	if req.Timeout != "" {
		if opts.Timeout, err = parseDuration(req.Timeout); err != nil {
			return id, "", opts, fmt.Errorf("malformed request: timeout: %v", err)
		}
	}
	return id, *req.Code, opts, nil
}

// interact is the prompt for a person: a cell is a line, or, for Python, a
// block that starts with a line ending in ':' and ends at an empty line.
func interact(ctx context.Context, sess cellRunner, kind string, in io.Reader, out io.Writer, cellTimeout time.Duration) {
	prompt, more := "$ ", "> "
	if kind == "python" {
		prompt, more = ">>> ", "... "
	}
	rd := bufio.NewReader(in)
	for {
		fmt.Fprint(out, prompt)
		line, err := rd.ReadString('\n')
		if err != nil && line == "" {
			fmt.Fprintln(out)
			return
		}
		cell := line
		if kind == "python" && strings.HasSuffix(strings.TrimRight(line, " \t\r\n"), ":") {
			for {
				fmt.Fprint(out, more)
				next, err := rd.ReadString('\n')
				if strings.TrimSpace(next) == "" || err != nil {
					break
				}
				cell += next
			}
		}
		if strings.TrimSpace(cell) == "" {
			continue
		}
		res := sess.Run(ctx, cell, jail.RunOptions{Timeout: cellTimeout})
		fmt.Fprint(out, res.Stdout)
		fmt.Fprint(out, res.Stderr)
		if res.Value != nil {
			fmt.Fprintln(out, *res.Value)
		}
		if res.Error != nil {
			fmt.Fprint(out, res.Error.Traceback)
		}
		switch res.Status {
		case jail.CellTimeout:
			fmt.Fprintln(out, "brig: cell timed out and was interrupted")
		case jail.CellDead:
			fmt.Fprintf(out, "brig: session ended: %s\n", res.Reason)
			return
		}
	}
}
