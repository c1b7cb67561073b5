package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/brig-sandbox/brig/audit"
)

const auditUsage = `brig audit reads brig serve's audit log (docs/audit.md).

Usage:
  brig audit verify FILE...       check the chain: exit 0 when intact, 1 naming the first bad line
  brig audit tail [-n N] FILE     print the last N records (default 10)
  brig audit grep [--tenant T] [--reason R] [--kind K] [--sandbox ID] FILE...
                                  print the records that match every filter given:
                                  exit 0 when some did, 1 when none

verify takes the log's files in any order (audit.log*): each is put after
its predecessor by the seq of its first record.
`

// exitAuditFound is verify's answer for a log that is not intact, and
// grep's for no match: an answer, not brig's failure.
const exitAuditFound = 1

// auditMain implements `brig audit verify|tail|grep`.
func auditMain(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, auditUsage)
		return exitBrigFailed
	}
	switch args[0] {
	case "verify":
		return auditVerify(args[1:])
	case "tail":
		return auditTail(args[1:])
	case "grep":
		return auditGrep(args[1:])
	case "help", "-h", "--help":
		fmt.Print(auditUsage)
		return 0
	}
	fmt.Fprintf(os.Stderr, "brig: audit: unknown command %q; run 'brig audit --help' for the commands\n", args[0])
	return exitBrigFailed
}

func auditVerify(args []string) int {
	fs := flag.NewFlagSet("brig audit verify", flag.ContinueOnError)
	if code, ok := parseAuditFlags(fs, args, "brig audit verify FILE..."); !ok {
		return code
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "brig: audit verify needs the log's files: brig audit verify FILE...")
		return exitBrigFailed
	}
	rep, err := audit.Verify(fs.Args()...)
	var p *audit.Problem
	if errors.As(err, &p) {
		fmt.Fprintf(os.Stderr, "brig: audit verify: %v\n", p)
		return exitAuditFound
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "brig: %v\n", err)
		return exitBrigFailed
	}
	if rep.Records == 0 {
		fmt.Printf("ok: no records in %d file(s)\n", len(fs.Args()))
	} else {
		fmt.Printf("ok: %d records, seq %d to %d, in %d file(s); last record's sha256 %s\n", rep.Records, rep.FirstSeq, rep.LastSeq, len(rep.Files), rep.Head)
	}
	if rep.FirstSeq > 1 {
		fmt.Printf("note: the chain starts at seq %d: the files before it were rotated away or not given\n", rep.FirstSeq)
	}
	if t := rep.Torn; t != nil {
		fmt.Printf("torn: %s ends with a record a crash cut (not tampering); the log's next Open moves it aside\n", t.File)
	}
	return 0
}

// maxTailLines caps tail's -n, which costs no memory but a backward scan.
const maxTailLines = 1_000_000

func auditTail(args []string) int {
	fs := flag.NewFlagSet("brig audit tail", flag.ContinueOnError)
	n := fs.Int("n", 10, "how many records (at most 1000000)")
	if code, ok := parseAuditFlags(fs, args, "brig audit tail [-n N] FILE"); !ok {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "brig: audit tail takes one file: brig audit tail [-n N] FILE")
		return exitBrigFailed
	}
	if *n < 1 || *n > maxTailLines {
		fmt.Fprintf(os.Stderr, "brig: audit tail: -n %d: want 1 to %d\n", *n, maxTailLines)
		return exitBrigFailed
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(os.Stderr, "brig: audit tail: %v\n", err)
		return exitBrigFailed
	}
	defer f.Close()
	from, err := tailOffset(f, *n)
	if err == nil {
		_, err = io.Copy(os.Stdout, io.NewSectionReader(f, from, 1<<62))
	}
	return auditOutputDone(err)
}

// tailOffset is where the last n lines of f begin, found by reading back
// from its end a block at a time.
func tailOffset(f *os.File, n int) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	end := fi.Size()
	buf := make([]byte, 64<<10)
	skipLast := true // the newline that ends the last line starts no line
	for end > 0 {
		start := max(end-int64(len(buf)), 0)
		chunk := buf[:end-start]
		if _, err := f.ReadAt(chunk, start); err != nil && err != io.EOF {
			return 0, err
		}
		for i := len(chunk) - 1; i >= 0; i-- {
			if chunk[i] != '\n' {
				skipLast = false
				continue
			}
			if skipLast {
				skipLast = false
				continue
			}
			if n--; n == 0 {
				return start + int64(i) + 1, nil
			}
		}
		end = start
	}
	return 0, nil
}

func auditGrep(args []string) int {
	fs := flag.NewFlagSet("brig audit grep", flag.ContinueOnError)
	tenant := fs.String("tenant", "", "records of this tenant")
	reason := fs.String("reason", "", "records whose verdict has this reason (oom, timeout, exited, ...)")
	kind := fs.String("kind", "", "records of this kind (run, cell, process, file_write, auth_failed, ...)")
	sandbox := fs.String("sandbox", "", "records of this sandbox")
	if code, ok := parseAuditFlags(fs, args, "brig audit grep [--tenant T] [--reason R] [--kind K] [--sandbox ID] FILE..."); !ok {
		return code
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "brig: audit grep needs the log's files: brig audit grep [filters] FILE...")
		return exitBrigFailed
	}
	match := func(r audit.Record) bool {
		return (*tenant == "" || r.Tenant == *tenant) &&
			(*kind == "" || string(r.Kind) == *kind) &&
			(*sandbox == "" || r.Sandbox == *sandbox) &&
			(*reason == "" || (r.Verdict != nil && r.Verdict.Reason == *reason))
	}
	out := bufio.NewWriterSize(os.Stdout, 64<<10)
	found := false
	for _, name := range fs.Args() {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintf(os.Stderr, "brig: audit grep: %v\n", err)
			return exitBrigFailed
		}
		rd := audit.NewReader(f)
		for {
			rec, line, err := rd.Next()
			if err == io.EOF {
				break
			}
			var le *audit.LineError
			if errors.As(err, &le) {
				fmt.Fprintf(os.Stderr, "brig: audit grep: %s:%d: skipped: %v\n", name, le.Line, le.Err)
				continue
			}
			if err != nil {
				f.Close()
				fmt.Fprintf(os.Stderr, "brig: audit grep: read %s: %v\n", name, err)
				return exitBrigFailed
			}
			if match(rec) {
				found = true
				out.Write(line)
				if err := out.WriteByte('\n'); err != nil {
					f.Close()
					return auditOutputDone(err)
				}
			}
		}
		f.Close()
	}
	if code := auditOutputDone(out.Flush()); code != 0 {
		return code
	}
	if !found {
		return exitAuditFound
	}
	return 0
}

// parseAuditFlags is parseFlags with its exits: ok false ends the command
// with code (0 after -h).
func parseAuditFlags(fs *flag.FlagSet, args []string, usage string) (code int, ok bool) {
	if err := parseFlags(fs, args, usage); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		fmt.Fprintf(os.Stderr, "brig: %v\n", err)
		return exitBrigFailed, false
	}
	return 0, true
}

// auditOutputDone is the exit code after writing the output: a reader
// that went away (| head) ends the command quietly.
func auditOutputDone(err error) int {
	switch {
	case err == nil, errors.Is(err, syscall.EPIPE):
		return 0
	}
	fmt.Fprintf(os.Stderr, "brig: audit: %v\n", err)
	return exitBrigFailed
}
