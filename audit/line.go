package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// encodeLine is r's line, without its newline: r as JSON with its hash
// field last, the sha256 of the line as it is without that field.
func encodeLine(r Record) ([]byte, error) {
	return appendLine(nil, r)
}

// appendLine appends r's line (without its newline) to dst, reusing
// dst's room.
func appendLine(dst []byte, r Record) ([]byte, error) {
	r = r.bounded()
	r.Hash = ""
	start := len(dst)
	line := appendRecord(dst, &r)
	if len(line)-start+hashSuffixLen > MaxLineBytes && r.Input != nil {
		// Text JSON escapes many times over: keep the hash, drop the text.
		in := *r.Input
		in.Code, in.Command, in.Truncated = "", nil, true
		r.Input = &in
		line = appendRecord(line[:start], &r)
	}
	if n := len(line) - start + hashSuffixLen; n > MaxLineBytes {
		return dst, fmt.Errorf("audit: record of %d bytes passes the %d-byte cap of a line", n, MaxLineBytes)
	}
	// The hash is of the record without it: the line up to here.
	sum := sha256.Sum256(line[start:])
	line = append(line[:len(line)-1], hashSuffixPrefix...)
	line = hex.AppendEncode(line, sum[:])
	return append(line, `"}`...), nil
}

// lineFacts is what the chain needs of one line.
type lineFacts struct {
	seq  uint64
	prev string
	hash string // the sha256 of the whole line: the next record's prev
}

// errNotRecord is a line that is not an intact record of an audit log.
var errNotRecord = errors.New("not a record")

// checkLine reads the chain's facts from a line and checks the line's own
// hash: an error means the line is not a record as Append wrote it.
func checkLine(line []byte) (lineFacts, error) {
	n := len(line)
	if n < hashSuffixLen+2 || !bytes.HasPrefix(line[n-hashSuffixLen:], []byte(hashSuffixPrefix)) || !bytes.HasSuffix(line, []byte(`"}`)) {
		return lineFacts{}, fmt.Errorf("%w: no hash field at its end", errNotRecord)
	}
	claimed := line[n-hashSuffixLen+len(hashSuffixPrefix) : n-2]
	body := make([]byte, 0, n-hashSuffixLen+1)
	body = append(append(body, line[:n-hashSuffixLen]...), '}')
	sum := sha256.Sum256(body)
	if hex.EncodeToString(sum[:]) != string(claimed) {
		return lineFacts{}, fmt.Errorf("%w: its hash does not match its content", errNotRecord)
	}
	var r struct {
		Seq  uint64 `json:"seq"`
		Prev string `json:"prev"`
		Kind Kind   `json:"kind"`
	}
	if err := json.Unmarshal(line, &r); err != nil {
		return lineFacts{}, fmt.Errorf("%w: %v", errNotRecord, err)
	}
	if r.Seq == 0 || len(r.Prev) != hashHexLen || !validKind(r.Kind) {
		return lineFacts{}, fmt.Errorf("%w: no seq, prev or kind", errNotRecord)
	}
	whole := sha256.Sum256(line)
	return lineFacts{seq: r.Seq, prev: r.Prev, hash: hex.EncodeToString(whole[:])}, nil
}

// lineReader reads the lines of a log, holding no more than max bytes of
// one whatever the input.
type lineReader struct {
	r   *bufio.Reader
	max int
}

func newLineReader(in io.Reader, max int) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(in, 64<<10), max: max}
}

// next returns the next line without its newline. ended says whether a
// newline ended it (the last line of a file cut by a crash has none).
// When the line is longer than max, tooLong is set and line is nil: its
// bytes were read and dropped. err is io.EOF (or a read error) only when
// there is no line.
func (l *lineReader) next() (line []byte, tooLong, ended bool, err error) {
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
			ended = err == nil
			if tooLong {
				return nil, true, ended, nil
			}
			return bytes.TrimSuffix(line, []byte("\n")), false, ended, nil
		default:
			return nil, false, false, err
		}
	}
}
