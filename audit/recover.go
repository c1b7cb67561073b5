package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// maxTornBytes is how far back from a file's end Open looks for the last
// newline. A crash cuts at most one record, so a longer stretch without
// one is not a torn record but a file that is not an audit log.
const maxTornBytes = 2 * MaxLineBytes

// recoverTail finds bytes after the last newline of the file at path (a
// record a crash cut), copies them to .NAME.torn-<time> beside it and
// cuts the file back to its last whole line. It returns nil when the file ends whole.
func recoverTail(path string) (*TornTail, error) {
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("audit: stat %s: %w", path, err)
	}
	size := fi.Size()
	if size == 0 || !fi.Mode().IsRegular() {
		return nil, nil // openFile names a file that is not regular
	}
	end, err := lastNewline(f, size)
	if err != nil {
		return nil, err
	}
	if end == size {
		return nil, nil
	}
	torn := make([]byte, size-end)
	if _, err := f.ReadAt(torn, end); err != nil {
		return nil, fmt.Errorf("audit: read the torn end of %s: %w", path, err)
	}
	// Hidden, as the lock is: `brig audit verify audit.log*` leaves it out.
	dir, base := filepath.Split(path)
	saved := filepath.Join(dir, fmt.Sprintf(".%s.torn-%s", base, time.Now().UTC().Format("20060102T150405.000000000Z")))
	if err := writeNew(saved, torn); err != nil {
		return nil, err
	}
	if err := f.Truncate(end); err != nil {
		return nil, fmt.Errorf("audit: cut the torn end off %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("audit: sync %s: %w", path, err)
	}
	return &TornTail{File: path, Offset: end, Bytes: int64(len(torn)), Saved: saved}, nil
}

// lastNewline is the offset just past the last newline of f (0 when it
// has none), looking back no further than maxTornBytes.
func lastNewline(f *os.File, size int64) (int64, error) {
	buf := make([]byte, 64<<10)
	for end := size; end > 0 && size-end < maxTornBytes; {
		start := max(end-int64(len(buf)), 0)
		chunk := buf[:end-start]
		if _, err := f.ReadAt(chunk, start); err != nil && err != io.EOF {
			return 0, fmt.Errorf("audit: read %s: %w", f.Name(), err)
		}
		if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	if size <= maxTornBytes {
		return 0, nil // one torn record and nothing before it
	}
	return 0, fmt.Errorf("audit: %s: its last %d bytes hold no line end: not an audit log, or damaged; move it aside to start a new log", f.Name(), maxTornBytes)
}

// writeNew writes b to a new file (0600) and syncs it.
func writeNew(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("audit: save the torn record: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("audit: save the torn record to %s: %w", path, err)
	}
	return nil
}

// endRecords reads the first and the last record of a file that ends
// with a newline, checking each is intact.
func endRecords(path string) (first, last lineFacts, err error) {
	f, err := os.Open(path)
	if err != nil {
		return first, last, fmt.Errorf("audit: open %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return first, last, fmt.Errorf("audit: stat %s: %w", path, err)
	}
	refuse := func(what string, err error) error {
		return fmt.Errorf("audit: %s: its %s record is not intact (%w); a crash leaves only a line without its newline, which Open moves aside. Run 'brig audit verify %s', and move the file aside to start a new log", path, what, err, path)
	}
	line, tooLong, _, err := newLineReader(f, MaxLineBytes).next()
	if err != nil {
		return first, last, fmt.Errorf("audit: read %s: %w", path, err)
	}
	if tooLong {
		return first, last, refuse("first", errors.New("line too long"))
	}
	if first, err = checkLine(line); err != nil {
		return first, last, refuse("first", err)
	}
	// The last line: the bytes between the newline before the final one
	// and the final one.
	size := fi.Size()
	n := min(size, int64(MaxLineBytes)+2)
	tail := make([]byte, n)
	if _, err := f.ReadAt(tail, size-n); err != nil && err != io.EOF {
		return first, last, fmt.Errorf("audit: read %s: %w", path, err)
	}
	if tail[len(tail)-1] != '\n' {
		return first, last, refuse("last", errors.New("no newline at the end"))
	}
	tail = tail[:len(tail)-1]
	i := bytes.LastIndexByte(tail, '\n')
	if i < 0 && size > n {
		return first, last, refuse("last", errors.New("line too long"))
	}
	if last, err = checkLine(tail[i+1:]); err != nil {
		return first, last, refuse("last", err)
	}
	return first, last, nil
}
