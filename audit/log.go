package audit

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Fsync says when the log's records are forced to the disk.
type Fsync string

const (
	// FsyncInterval syncs the file every Options.FsyncInterval when
	// records were written since (the default): a power cut loses at most
	// that interval's records; a crash of the process loses none, since
	// every record is in the kernel before Append returns.
	FsyncInterval Fsync = "interval"
	// FsyncAlways syncs before Append returns: nothing acknowledged is
	// lost even on a power cut, at the cost of a disk flush a record.
	FsyncAlways Fsync = "always"
	// FsyncNever leaves it to the kernel's writeback.
	FsyncNever Fsync = "never"
)

// ParseFsync reads an Fsync setting; "" is FsyncInterval.
func ParseFsync(s string) (Fsync, error) {
	switch f := Fsync(s); f {
	case "":
		return FsyncInterval, nil
	case FsyncInterval, FsyncAlways, FsyncNever:
		return f, nil
	}
	return "", fmt.Errorf("audit: fsync %q: want always, interval or never", s)
}

// DefaultFsyncInterval is FsyncInterval's period when Options leaves it 0.
const DefaultFsyncInterval = time.Second

// Options configure a Log. The zero Options are the safe default: sync
// every second, never rotate, keep every file.
type Options struct {
	Fsync         Fsync
	FsyncInterval time.Duration
	// MaxBytes rotates the file before a record would take it past this
	// size: the file is renamed PATH.<seq of its first record, 20 digits>
	// and a new PATH started, the chain going on. 0 never rotates.
	MaxBytes int64
	// Keep is how many rotated files are kept, the oldest removed first;
	// 0 keeps them all.
	Keep int
	// Logger receives the log's own events (a torn tail found, a write
	// failure, a rotation); nil is slog.Default().
	Logger *slog.Logger
}

// ErrFileGone is the cause of Append's error once the log's file was
// removed or replaced under it: records would go to a file no one reads.
var ErrFileGone = errors.New("the audit log's file was removed or replaced")

// ErrClosed is Append's error after Close.
var ErrClosed = errors.New("audit: log closed")

// Log is an append-only, hash-chained audit log in one file (and its
// rotated predecessors). Its methods are safe for concurrent use; records
// are in the order of the Append calls.
type Log struct {
	path string
	opts Options
	log  *slog.Logger

	mu           sync.Mutex
	lock         *os.File // flocked for the Log's life: one writer a log
	f            *os.File // nil after a failed rotation, until the next Append opens it
	dev, ino     uint64
	watch        *pathWatch // of l.f's path; nil while l.f is
	buf          []byte     // the last line's room, for the next
	size         int64
	truncateTo   int64  // >= 0: a failed write left bytes past this offset to remove
	fileFirstSeq uint64 // seq of the live file's first record; 0 while it has none
	seq          uint64 // of the last record written
	prev         string // sha256 of the last record's line
	dirty        bool
	syncErr      error // the interval syncer's failure, for the next Append
	failed       error // the last Append's failure, until one succeeds
	failedSince  time.Time
	failedCount  int
	gone         error // the file was removed or replaced: final
	closed       bool
	torn         *TornTail

	written uint64 // bytes written, all files
	// What Ready's last look at the file system saw: when, the free
	// bytes, and written then.
	spaceSeen       time.Time
	freeSeen        uint64
	writtenWhenSeen uint64

	stop, stopped chan struct{}
}

// TornTail is the end of a file a crash cut mid-record: bytes after the
// last newline. Open moves them aside and says so in a record.
type TornTail struct {
	File   string // the log's file
	Offset int64  // where the torn bytes began
	Bytes  int64
	Saved  string // where Open moved them: .NAME.torn-<time> beside the log
}

// Open opens the log at path, creating it (mode 0600) if missing, and
// continues the chain of what is on disk: of the file's last intact
// record, or when the file has none, of the newest rotated file's. A torn
// last line (a crash mid-write) is moved aside to .NAME.torn-<time>, the
// file cut back to its last whole line, and a record of kind
// audit_torn_tail says so; the chain continues from the last intact
// record. A last whole line that is not an intact record is not a crash's
// doing: Open refuses the file. A log has one writer: Open holds a lock
// (.NAME.lock beside the file) until Close, and a second Open of the same
// log, in this process or another, fails.
func Open(path string, opts Options) (*Log, error) {
	var err error
	if opts.Fsync, err = ParseFsync(string(opts.Fsync)); err != nil {
		return nil, err
	}
	if opts.FsyncInterval <= 0 {
		opts.FsyncInterval = DefaultFsyncInterval
	}
	if opts.MaxBytes < 0 || opts.Keep < 0 {
		return nil, fmt.Errorf("audit: max_bytes and keep must not be negative")
	}
	if opts.MaxBytes > 0 && opts.MaxBytes < MaxLineBytes {
		return nil, fmt.Errorf("audit: max_bytes %d is below one record's cap (%d): raise it", opts.MaxBytes, MaxLineBytes)
	}
	l := &Log{path: path, opts: opts, log: opts.Logger, truncateTo: -1}
	if l.log == nil {
		l.log = slog.Default()
	}
	if l.lock, err = lockLog(path); err != nil {
		return nil, err
	}
	torn, err := recoverTail(path)
	if err == nil {
		err = l.openFile()
	}
	if err == nil {
		if err = l.findHead(); err != nil {
			l.f.Close()
			l.watch.close()
		}
	}
	if err != nil {
		l.lock.Close()
		return nil, err
	}
	if opts.Fsync == FsyncInterval {
		l.stop, l.stopped = make(chan struct{}), make(chan struct{})
		go l.syncEvery(opts.FsyncInterval)
	}
	if torn != nil {
		l.torn = torn
		l.log.Warn("audit: torn last line moved aside (a crash mid-write, not tampering)",
			"file", path, "offset", torn.Offset, "bytes", torn.Bytes, "saved", torn.Saved)
		err := l.Append(Record{Kind: KindTornTail, Detail: fmt.Sprintf(
			"a crash cut the last record: %d bytes at offset %d, after seq %d, moved to %s", torn.Bytes, torn.Offset, l.seq, filepath.Base(torn.Saved))})
		if err != nil {
			l.Close()
			return nil, err
		}
	}
	return l, nil
}

// Torn is the torn tail Open found and moved aside, or nil.
func (l *Log) Torn() *TornTail { return l.torn }

// Head is the seq and line hash of the last record written: a copy kept
// elsewhere anchors the log's end, which the chain alone cannot (cutting
// records off the end leaves a valid chain).
func (l *Log) Head() (seq uint64, hash string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq, l.prev
}

// openFile opens (or creates) the live file for appending.
func (l *Log) openFile() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("audit: open %s: %w (the log is a regular file, not a symlink, in a directory that exists)", l.path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return fmt.Errorf("audit: stat %s: %w", l.path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		f.Close()
		return fmt.Errorf("audit: %s is not a regular file", l.path)
	}
	// The name must survive a power cut as well as the records in it.
	if err := syncDir(filepath.Dir(l.path)); err != nil {
		f.Close()
		return err
	}
	if l.watch != nil {
		l.watch.close()
	}
	// Watched after the open: the first check stats, in case the path
	// changed in between.
	l.f, l.dev, l.ino, l.size, l.watch = f, st.Dev, st.Ino, st.Size, watchPath(l.path)
	return nil
}

// findHead sets the chain's head from the live file's last record, or
// when it has none from the newest rotated file's.
func (l *Log) findHead() error {
	l.seq, l.prev, l.fileFirstSeq = 0, genesisPrev, 0
	if l.size > 0 {
		first, last, err := endRecords(l.path)
		if err != nil {
			return err
		}
		l.fileFirstSeq, l.seq, l.prev = first.seq, last.seq, last.hash
		return nil
	}
	rotated, err := rotatedFiles(l.path)
	if err != nil {
		return err
	}
	for i := len(rotated) - 1; i >= 0; i-- {
		fi, err := os.Stat(rotated[i])
		if err != nil || fi.Size() == 0 {
			continue
		}
		_, last, err := endRecords(rotated[i])
		if err != nil {
			return err
		}
		l.seq, l.prev = last.seq, last.hash
		return nil
	}
	return nil
}

// Append writes r as the log's next record, with one write(2), before it
// returns (a crash of the process after that loses nothing); under
// FsyncAlways it is on the disk too. An error means r is not in the log,
// or (a failed fsync) may not be on the disk: the caller refuses the work
// r would record (brig serve answers 503). After a write failure (the
// disk full) the next Append tries again, and the first to succeed is
// preceded by a record of kind audit_write_resumed that counts the
// failures; a file removed or replaced under the log fails every Append
// (ErrFileGone) until the log is opened anew.
func (l *Log) Append(r Record) error {
	if !validKind(r.Kind) {
		return fmt.Errorf("audit: kind %q: want lower-case letters and underscores, at most %d", r.Kind, maxKindBytes)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.ready(); err != nil {
		return err
	}
	if err := l.write(r); err != nil {
		l.fail(err)
		return err
	}
	return nil
}

// Ready reports whether a record can be written now, without writing one
// unless the log is recovering from a write failure (then it writes the
// audit_write_resumed record). brig serve calls it before it starts work
// whose record it appends at the end, so that nothing runs unaudited.
//
// Unlike Append, Ready also fails when the file system has no room for a
// record of the largest size (MaxLineBytes): the work it gates would
// otherwise run and then find its record refused. Far from full (more
// than spaceSlack free), it trusts a look at the file system of at most
// statEvery ago, less what the log wrote since; nearer, it looks before
// every record. A disk another writer fills in between is found by the
// write, as one filled while the gated work runs always was: the record
// is refused, and the caller logs and counts it.
func (l *Log) Ready() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Space first: a record of the failures would still fit in the
	// file's last page, and the log would flap between refusing and not.
	if !l.closed && l.gone == nil {
		if err := l.checkSpace(time.Now()); err != nil {
			l.fail(err)
			return err
		}
	}
	return l.ready()
}

func (l *Log) ready() error {
	if l.closed {
		return ErrClosed
	}
	if l.gone != nil {
		return l.gone
	}
	if err := l.checkFile(); err != nil {
		l.gone = err
		l.log.Error("audit: log file gone: refusing records", "file", l.path, "err", err)
		return err
	}
	if err := l.syncErr; err != nil {
		l.syncErr = nil
		l.fail(err)
		return err
	}
	if l.failed != nil {
		err := l.write(Record{Kind: KindWriteResumed, Detail: fmt.Sprintf(
			"%d appends failed since %s, the first with: %v", l.failedCount, l.failedSince.UTC().Format(time.RFC3339Nano), l.failed)})
		if err != nil {
			l.failedCount++
			return err
		}
		l.log.Info("audit: writing again", "file", l.path, "failed_appends", l.failedCount)
		l.failed, l.failedCount = nil, 0
	}
	return nil
}

func (l *Log) fail(err error) {
	if l.failed == nil {
		l.failed, l.failedSince = err, time.Now()
		l.log.Error("audit: cannot write the log: refusing records until it can", "file", l.path, "err", err)
	}
	l.failedCount++
}

// checkSpace fails when the file system has no room for a record of the
// largest size: Ready must say no before the work whose record would not
// fit runs, not after. It counts the blocks root may use (brig serve runs
// as root); a quota (EDQUOT) is found by the write itself.
func (l *Log) checkSpace(now time.Time) error {
	if l.f == nil {
		return nil
	}
	if now.Sub(l.spaceSeen) < statEvery && l.written-l.writtenWhenSeen+spaceSlack <= l.freeSeen {
		return nil
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(l.f.Fd()), &st); err != nil {
		return nil // no answer is not a full disk; the write will tell
	}
	free := st.Bfree * uint64(st.Bsize)
	l.spaceSeen, l.freeSeen, l.writtenWhenSeen = now, free, l.written
	if free < MaxLineBytes+1 {
		return fmt.Errorf("audit: %s: %w: %d bytes free, less than one record may take (%d); free space on its file system", l.path, unix.ENOSPC, free, MaxLineBytes+1)
	}
	return nil
}

// spaceSlack is the free space above which Ready may trust its last look
// (Ready's comment says how).
const spaceSlack = 64 << 20

// checkFile fails when the path no longer names the file the log writes.
func (l *Log) checkFile() error {
	if l.f == nil {
		return nil // a rotation failed half way; write reopens
	}
	now := time.Now()
	if !l.watch.needStat(now) {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Stat(l.path, &st); err != nil {
		return fmt.Errorf("audit: %s: %w: %w; restore it or restart brig serve to start a new file", l.path, ErrFileGone, err)
	}
	if st.Dev != l.dev || st.Ino != l.ino {
		return fmt.Errorf("audit: %s: %w (another file is at its name); restore it or restart brig serve", l.path, ErrFileGone)
	}
	l.watch.statted(now)
	return nil
}

// write appends one record; l.mu is held.
func (l *Log) write(r Record) error {
	r.Seq, r.Time, r.Prev = l.seq+1, time.Now().UTC(), l.prev
	line, err := appendLine(l.buf[:0], r)
	if err != nil {
		return err
	}
	if cap(line) <= keepBufBytes {
		defer func() { l.buf = line[:0] }()
	}
	if l.f == nil {
		if err := l.reopenAfterRotation(); err != nil {
			return err
		}
	}
	if l.truncateTo >= 0 {
		if err := l.f.Truncate(l.truncateTo); err != nil {
			return fmt.Errorf("audit: %s: remove a failed write's bytes: %w", l.path, err)
		}
		l.size, l.truncateTo = l.truncateTo, -1
	}
	if l.opts.MaxBytes > 0 && l.size > 0 && l.size+int64(len(line))+1 > l.opts.MaxBytes {
		if err := l.rotate(); err != nil {
			return err
		}
	}
	line = append(line, '\n')
	n, err := writeAll(int(l.f.Fd()), line)
	if err != nil {
		// A part of a line must not stay in the middle of the log: cut
		// it off now, or before the next write.
		if n > 0 {
			l.truncateTo = l.size
			if terr := l.f.Truncate(l.size); terr == nil {
				l.truncateTo = -1
			}
		}
		return fmt.Errorf("audit: write %s: %w", l.path, err)
	}
	l.size += int64(n)
	l.written += uint64(n)
	l.seq, l.prev = r.Seq, Digest(line[:len(line)-1])
	if l.fileFirstSeq == 0 {
		l.fileFirstSeq = r.Seq
	}
	l.dirty = true
	if l.opts.Fsync == FsyncAlways {
		if err := unix.Fdatasync(int(l.f.Fd())); err != nil {
			return fmt.Errorf("audit: fsync %s: %w (the record of seq %d may not be on the disk)", l.path, err, r.Seq)
		}
		l.dirty = false
	}
	return nil
}

// keepBufBytes bounds the room a Log keeps between records: a rare large
// record's is let go.
const keepBufBytes = 16 << 10

// writeAll writes b, in one write(2) unless the file system takes only a
// part (then the rest, which fails with the cause: ENOSPC, EDQUOT).

func writeAll(fd int, b []byte) (int, error) {
	done := 0
	for done < len(b) {
		n, err := unix.Write(fd, b[done:])
		if n > 0 {
			done += n
		}
		switch {
		case err == unix.EINTR:
		case err != nil:
			return done, err
		case n <= 0:
			return done, io.ErrShortWrite
		}
	}
	return done, nil
}

// syncEvery is FsyncInterval's syncer. It syncs a duplicate of the file's
// descriptor outside the lock, so that Append does not wait for the disk.
func (l *Log) syncEvery(every time.Duration) {
	defer close(l.stopped)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		l.mu.Lock()
		if !l.dirty || l.f == nil {
			l.mu.Unlock()
			continue
		}
		fd, err := unix.Dup(int(l.f.Fd()))
		l.dirty = false
		l.mu.Unlock()
		if err == nil {
			err = unix.Fdatasync(fd)
			unix.Close(fd)
		}
		if err != nil {
			l.mu.Lock()
			l.syncErr = fmt.Errorf("audit: fsync %s: %w (records of the last interval may not be on the disk)", l.path, err)
			l.mu.Unlock()
			l.log.Error("audit: fsync failed", "file", l.path, "err", err)
		}
	}
}

// Close syncs and closes the file. Appends after it fail with ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	if l.stop != nil {
		close(l.stop)
		<-l.stopped
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.lock.Close()
	if l.watch != nil {
		l.watch.close()
	}
	if l.f == nil {
		return nil
	}
	err := unix.Fdatasync(int(l.f.Fd()))
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	if err != nil {
		return fmt.Errorf("audit: close %s: %w", l.path, err)
	}
	return nil
}

// lockLog takes the log's lock file, .NAME.lock beside it (hidden, so
// that a glob of the log's files leaves it out): two processes appending
// to one log would break its chain.
func lockLog(path string) (*os.File, error) {
	dir, base := filepath.Split(path)
	name := filepath.Join(dir, "."+base+".lock")
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: open the log's lock %s: %w (the log's directory must exist and be writable)", name, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("audit: %s is open in another process (another brig serve?): a log has one writer", path)
		}
		return nil, fmt.Errorf("audit: lock %s: %w", name, err)
	}
	return f, nil
}

// syncDir makes a directory's entries (a new or renamed file) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("audit: open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("audit: sync directory %s: %w", dir, err)
	}
	return nil
}
