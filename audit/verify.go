package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
)

// What Verify found wrong, in Problem.Kind.
const (
	ProblemEdited    = "edited"    // the line's hash does not match its content, or it is not a record
	ProblemDeleted   = "deleted"   // records are missing before the line
	ProblemReordered = "reordered" // the line's record comes later in the chain
	ProblemInserted  = "inserted"  // the line is a record that does not belong in the chain here
	ProblemRewritten = "rewritten" // the line is intact but does not follow its predecessor: a record before it was rewritten with its hashes recomputed
	ProblemTorn      = "torn"      // a line without its newline before the log's end
)

// Problem is the first bad line Verify found.
type Problem struct {
	File   string
	Line   int // 1-based
	Kind   string
	Detail string
}

func (p *Problem) Error() string {
	return fmt.Sprintf("%s:%d: %s: %s", p.File, p.Line, p.Kind, p.Detail)
}

// Report is what Verify read of an intact chain.
type Report struct {
	Files    []string // in the chain's order
	Records  int
	FirstSeq uint64 // 1 when the log's first file is among those read
	LastSeq  uint64
	Head     string    // the sha256 of the last record's line (what the next record's prev holds)
	Torn     *TornTail // a crash's cut record at the log's end, not counted; nil when none
}

// Verify checks that the files hold one unbroken chain of records: each
// line intact (its hash), each record's seq one more than the one before
// and its prev the sha256 of the line before. The files may be given in
// any order: they are put in order by the seq of their first record (so
// `brig audit verify audit.log*` finds each file's predecessor). A line
// without its newline at the very end (a crash mid-write) is reported in
// Report.Torn, not as a problem. The first bad line is returned as a
// *Problem; a file that cannot be read as a plain error. A chain whose
// first record is not seq 1 is intact from there on: the files before it
// were rotated away or not given (Report.FirstSeq says where it starts).
func Verify(paths ...string) (*Report, error) {
	srcs := make([]source, len(paths))
	for i, p := range paths {
		srcs[i] = source{name: p, open: func() (io.ReadCloser, error) { return os.Open(p) }}
	}
	return verifySources(srcs)
}

// source is a file to verify, opened as often as needed.
type source struct {
	name     string
	open     func() (io.ReadCloser, error)
	firstSeq uint64
}

func verifySources(srcs []source) (*Report, error) {
	if len(srcs) == 0 {
		return nil, errors.New("audit: verify: no files given")
	}
	var live []source
	for _, s := range srcs {
		line, ended, empty, err := firstLine(s)
		if err != nil {
			return nil, err
		}
		if empty {
			continue // a new live file after a rotation
		}
		facts, ferr := checkLine(line)
		switch {
		case ferr == nil:
			s.firstSeq = facts.seq
		case !ended:
			// A lone torn line in a file of its own: ordered last.
			s.firstSeq = ^uint64(0)
		default:
			return nil, &Problem{File: s.name, Line: 1, Kind: ProblemEdited, Detail: ferr.Error()}
		}
		live = append(live, s)
	}
	slices.SortStableFunc(live, func(a, b source) int {
		switch {
		case a.firstSeq < b.firstSeq:
			return -1
		case a.firstSeq > b.firstSeq:
			return 1
		}
		return 0
	})
	for i := 1; i < len(live); i++ {
		if live[i].firstSeq == live[i-1].firstSeq && live[i].firstSeq != ^uint64(0) {
			return nil, &Problem{File: live[i].name, Line: 1, Kind: ProblemInserted,
				Detail: fmt.Sprintf("it starts at seq %d as %s does: the same records twice (give each file once)", live[i].firstSeq, live[i-1].name)}
		}
	}
	v := verifier{srcs: live, report: &Report{}}
	for i := range live {
		v.report.Files = append(v.report.Files, live[i].name)
		if err := v.file(i); err != nil {
			return nil, err
		}
	}
	return v.report, nil
}

// firstLine reads the first line of a source, up to the cap.
func firstLine(s source) (line []byte, ended, empty bool, err error) {
	rc, err := s.open()
	if err != nil {
		return nil, false, false, fmt.Errorf("audit: verify: %w", err)
	}
	defer rc.Close()
	line, tooLong, ended, err := newLineReader(rc, MaxLineBytes).next()
	if err == io.EOF {
		return nil, false, true, nil
	}
	if err != nil {
		return nil, false, false, fmt.Errorf("audit: verify: read %s: %w", s.name, err)
	}
	if tooLong && ended {
		return nil, false, false, &Problem{File: s.name, Line: 1, Kind: ProblemEdited, Detail: fmt.Sprintf("the line passes the %d-byte cap of a record", MaxLineBytes)}
	}
	return line, ended, false, nil
}

// verifier walks the chain across the files in order.
type verifier struct {
	srcs   []source
	report *Report
	// the last two records, for telling an insertion from a rewrite
	last, before       lineFacts
	lastAt, beforeLine int
	lastFile           string
	n                  int // records so far
}

func (v *verifier) file(idx int) error {
	s := v.srcs[idx]
	rc, err := s.open()
	if err != nil {
		return fmt.Errorf("audit: verify: %w", err)
	}
	defer rc.Close()
	lr := newLineReader(rc, MaxLineBytes)
	var offset int64
	for lineNo := 1; ; lineNo++ {
		line, tooLong, ended, err := lr.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("audit: verify: read %s: %w", s.name, err)
		}
		bad := func(kind, format string, args ...any) error {
			return &Problem{File: s.name, Line: lineNo, Kind: kind, Detail: fmt.Sprintf(format, args...)}
		}
		if !ended {
			if idx == len(v.srcs)-1 {
				n := int64(len(line))
				if tooLong {
					n = -1 // longer than a record: Open will say how long
				}
				v.report.Torn = &TornTail{File: s.name, Offset: offset, Bytes: n}
				return nil
			}
			return bad(ProblemTorn, "a line without its newline at the end of a file that is not the log's last")
		}
		if tooLong {
			return bad(ProblemEdited, "the line passes the %d-byte cap of a record", MaxLineBytes)
		}
		facts, err := checkLine(line)
		if err != nil {
			return bad(ProblemEdited, "%v", err)
		}
		if err := v.link(idx, lineNo, facts, bad); err != nil {
			return err
		}
		offset += int64(len(line)) + 1
		v.before, v.beforeLine = v.last, v.lastAt
		v.last, v.lastAt, v.lastFile = facts, lineNo, s.name
		v.n++
		v.report.Records, v.report.LastSeq, v.report.Head = v.n, facts.seq, facts.hash
	}
}

// link checks that a record follows the one before it.
func (v *verifier) link(idx, lineNo int, r lineFacts, bad func(kind, format string, args ...any) error) error {
	if v.n == 0 {
		v.report.FirstSeq = r.seq
		if r.seq == 1 && r.prev != genesisPrev {
			return bad(ProblemRewritten, "the log's first record (seq 1) has a prev that is not 64 zeros")
		}
		return nil
	}
	want := v.last.seq + 1
	switch {
	case r.seq == want && r.prev == v.last.hash:
		return nil
	case r.hash == v.last.hash:
		return bad(ProblemInserted, "a copy of the line before it")
	case r.seq == want:
		return bad(ProblemRewritten, "its prev is not the sha256 of the record before it (%s:%d, seq %d): that one, or this one, was rewritten with its hash recomputed",
			v.lastFile, v.lastAt, v.last.seq)
	case r.seq == v.last.seq && v.n >= 2 && r.prev == v.before.hash:
		return &Problem{File: v.lastFile, Line: v.lastAt, Kind: ProblemInserted,
			Detail: fmt.Sprintf("the record after it (seq %d) follows the one before it: this line was put in", r.seq)}
	case r.seq > want:
		if file, at, ok := v.find(idx, lineNo, want); ok {
			return bad(ProblemReordered, "it holds seq %d where seq %d belongs; seq %d is at %s:%d", r.seq, want, want, file, at)
		}
		return bad(ProblemDeleted, "seq %d follows seq %d: %d record(s) before this line are missing", r.seq, v.last.seq, r.seq-want)
	default:
		return bad(ProblemInserted, "seq %d after seq %d: a record that belongs earlier, or a copy of one", r.seq, v.last.seq)
	}
}

// find looks for the record of seq from a line on, in this file and the
// ones after it: whether a missing record was moved rather than deleted.
func (v *verifier) find(idx, fromLine int, seq uint64) (string, int, bool) {
	for i := idx; i < len(v.srcs); i++ {
		rc, err := v.srcs[i].open()
		if err != nil {
			return "", 0, false
		}
		lr := newLineReader(rc, MaxLineBytes)
		for n := 1; ; n++ {
			line, tooLong, _, err := lr.next()
			if err != nil {
				break
			}
			if tooLong || (i == idx && n <= fromLine) || !bytes.Contains(line, []byte(fmt.Sprintf(`"seq":%d,`, seq))) {
				continue
			}
			if facts, err := checkLine(line); err == nil && facts.seq == seq {
				rc.Close()
				return v.srcs[i].name, n, true
			}
		}
		rc.Close()
	}
	return "", 0, false
}
