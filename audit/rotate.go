package audit

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// rotatedDigits is the width of the seq in a rotated file's name, so that
// the names sort in the chain's order.
const rotatedDigits = 20

// rotatedName is the name the live file takes when it rotates: PATH and
// the seq of its first record.
func rotatedName(path string, firstSeq uint64) string {
	return fmt.Sprintf("%s.%0*d", path, rotatedDigits, firstSeq)
}

// rotatedFiles lists path's rotated files, oldest first.
func rotatedFiles(path string) ([]string, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("audit: list %s: %w", dir, err)
	}
	var out []string
	for _, e := range entries {
		suffix, ok := strings.CutPrefix(e.Name(), base+".")
		if !ok || len(suffix) != rotatedDigits || strings.Trim(suffix, "0123456789") != "" {
			continue
		}
		out = append(out, filepath.Join(dir, e.Name()))
	}
	slices.Sort(out)
	return out, nil
}

// rotate syncs and renames the live file after its first record's seq,
// starts a new one and removes the rotated files past Keep; l.mu is held.
// The new file's first record holds the hash of the old one's last, as
// every record holds its predecessor's: the chain goes on across files,
// and Verify puts files in order by the seq of their first record.
func (l *Log) rotate() error {
	if err := unix.Fdatasync(int(l.f.Fd())); err != nil {
		return fmt.Errorf("audit: rotate %s: fsync: %w", l.path, err)
	}
	to := rotatedName(l.path, l.fileFirstSeq)
	if err := os.Rename(l.path, to); err != nil {
		return fmt.Errorf("audit: rotate %s: %w", l.path, err)
	}
	l.f.Close()
	l.f = nil
	if err := l.reopenAfterRotation(); err != nil {
		return err
	}
	l.log.Info("audit: rotated", "file", l.path, "to", to, "next_seq", l.seq+1)
	if l.opts.Keep == 0 {
		return nil
	}
	rotated, err := rotatedFiles(l.path)
	if err != nil {
		return nil // the new file is open; old ones wait for the next rotation
	}
	for len(rotated) > l.opts.Keep {
		if err := os.Remove(rotated[0]); err != nil {
			l.log.Warn("audit: remove an old rotated file", "file", rotated[0], "err", err)
		}
		rotated = rotated[1:]
	}
	return nil
}

// reopenAfterRotation starts the new live file. It is called again by the
// next write when it failed (no inode left, say).
func (l *Log) reopenAfterRotation() error {
	if err := l.openFile(); err != nil {
		return err
	}
	l.fileFirstSeq, l.truncateTo = 0, -1
	if l.size != 0 {
		// Someone made a file at the name between our rename and open.
		l.f.Close()
		l.f = nil
		return fmt.Errorf("audit: %s: %w: a file of %d bytes appeared at its name during rotation", l.path, ErrFileGone, l.size)
	}
	return nil
}
