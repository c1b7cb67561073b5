package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Reader reads a log's records in file order, for tools that search it
// (brig audit grep). It checks no hashes: Verify does. It holds no more
// than MaxLineBytes of a line whatever the input.
type Reader struct {
	lr   *lineReader
	line int
}

// NewReader reads records from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{lr: newLineReader(r, MaxLineBytes)}
}

// LineError is a line Reader could not read as a record. Reading can go
// on after it.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// Next returns the next record and its line as it is in the file (without
// the newline), a *LineError for a line that is not a record (too long,
// not JSON, cut by a crash), or io.EOF at the end.
func (r *Reader) Next() (Record, []byte, error) {
	line, tooLong, ended, err := r.lr.next()
	if err != nil {
		return Record{}, nil, err
	}
	r.line++
	switch {
	case tooLong:
		return Record{}, nil, &LineError{Line: r.line, Err: fmt.Errorf("longer than the %d-byte cap of a record", MaxLineBytes)}
	case !ended:
		return Record{}, nil, &LineError{Line: r.line, Err: errors.New("no newline at the end: a record a crash cut")}
	}
	var rec Record
	if err := json.Unmarshal(line, &rec); err != nil {
		return Record{}, nil, &LineError{Line: r.line, Err: fmt.Errorf("not a record: %w", err)}
	}
	if rec.Seq == 0 || !validKind(rec.Kind) {
		return Record{}, nil, &LineError{Line: r.line, Err: errors.New("not a record: no seq or kind")}
	}
	return rec, line, nil
}
