package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Small readers for cgroup interface files, shared by v1, v2 and stale.

// closeTimeout bounds how long Close waits for a killed cgroup to empty. A
// process stuck in uninterruptible sleep (D state) can outlive SIGKILL; we
// report that instead of hanging the supervisor. Tests in slow VMs raise it.
var closeTimeout = 10 * time.Second

// readSmall reads a small interface file in one read: three system calls,
// where os.ReadFile takes six.
func readSmall(file string) ([]byte, error) {
	fd, err := unix.Open(file, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: file, Err: err}
	}
	defer unix.Close(fd)
	return readWhole(fd, file)
}

// readWhole reads an open interface file from its start with one pread
// (the kernel makes its content anew at offset 0), or, should it not fit
// in a page after all, with os.ReadFile.
func readWhole(fd int, file string) ([]byte, error) {
	var buf [4096]byte
	for {
		n, err := unix.Pread(fd, buf[:], 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: file, Err: err}
		}
		if n == len(buf) {
			return os.ReadFile(file)
		}
		return buf[:n], nil
	}
}

// readInt reads a file holding one integer ("max" reads as -1).
func readInt(file string) (int64, error) {
	b, err := readSmall(file)
	if err != nil {
		return 0, err
	}
	return parseInt(file, b)
}

func parseInt(file string, b []byte) (int64, error) {
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return -1, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", file, err)
	}
	return v, nil
}

// readKey reads the value of key from a flat-keyed file such as cpu.stat,
// memory.events or memory.oom_control ("key value" lines). found is false
// when the file has no such key (older kernels lack some counters).
func readKey(file, key string) (v int64, found bool, err error) {
	b, err := readSmall(file)
	if err != nil {
		return 0, false, err
	}
	return parseKey(file, b, key)
}

func parseKey(file string, b []byte, key string) (v int64, found bool, err error) {
	for line := range strings.Lines(string(b)) {
		k, val, ok := strings.Cut(strings.TrimRight(line, "\n"), " ")
		if !ok || k != key {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("parse %s in %s: %w", key, file, err)
		}
		return v, true, nil
	}
	return 0, false, nil
}

// A counter is an interface file that Stats reads after every run. Stats
// opens it on first use and re-reads it with pread until Close: the first
// lookup of a fresh cgroup's file makes its inode, and four such opens took
// 0.17 ms of the path from a pooled program's exit to Wait here, where a
// pread of an open file takes about a microsecond. A pool calls Stats once
// while it builds the jail, so its requests only pread; a cold jail opens
// them at its first Stats, so an idle one holds no more fds than before.
type counter struct {
	file string
	fd   int   // -1 when the open failed
	err  error // why it failed: a file this kernel lacks is ErrNotExist
}

func openCounter(file string) *counter {
	if file == "" {
		return &counter{fd: -1, err: errors.New("not measured")} // read by no one
	}
	fd, err := unix.Open(file, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &counter{file: file, fd: -1, err: &fs.PathError{Op: "open", Path: file, Err: err}}
	}
	return &counter{file: file, fd: fd}
}

// read returns the file's whole content as the kernel makes it now.
func (c *counter) read() ([]byte, error) {
	if c.fd < 0 {
		return nil, c.err
	}
	return readWhole(c.fd, c.file)
}

func (c *counter) int() (int64, error) {
	b, err := c.read()
	if err != nil {
		return 0, err
	}
	return parseInt(c.file, b)
}

func (c *counter) key(key string) (v int64, found bool, err error) {
	b, err := c.read()
	if err != nil {
		return 0, false, err
	}
	return parseKey(c.file, b, key)
}

var errClosed = errors.New("the limiter is closed")

// counters are the files a limiter's Stats reads; nil until the first.
type counters struct {
	peak, cpu, oom, pidsEvents *counter
}

func openCounters(peak, cpu, oom, pidsEvents string) counters {
	return counters{openCounter(peak), openCounter(cpu), openCounter(oom), openCounter(pidsEvents)}
}

func (cs counters) close() {
	for _, c := range []*counter{cs.peak, cs.cpu, cs.oom, cs.pidsEvents} {
		c.close()
	}
}

func (c *counter) close() {
	if c != nil && c.fd >= 0 {
		unix.Close(c.fd)
		c.fd = -1
	}
}

// readPids lists the pids in a cgroup.procs file.
func readPids(file string) ([]int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", file, err)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

func exists(file string) bool {
	_, err := os.Stat(file)
	return err == nil
}

// rmdirCgroup removes an empty cgroup directory. rmdir can fail with EBUSY
// for a moment after the last process left (the kernel frees the css
// asynchronously), so it retries until the deadline. A missing directory is
// not an error: Close and RemoveStale may race.
func rmdirCgroup(dir string, deadline time.Time) error {
	delay := time.Millisecond
	for {
		err := unix.Rmdir(dir)
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("remove cgroup %s: %w", dir, err)
		}
		time.Sleep(delay)
		delay = min(2*delay, 50*time.Millisecond)
	}
}

// killPids sends SIGKILL to each pid; a pid that is already gone is fine.
func killPids(pids []int) error {
	var errs []error
	for _, pid := range pids {
		if err := unix.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("kill %d: %w", pid, err))
		}
	}
	return errors.Join(errs...)
}

// relTo returns dir relative to mount with a leading slash, the "group" form
// containerd's cgroup2 package wants.
func relTo(mount, dir string) string {
	rel, _ := filepath.Rel(mount, dir)
	return "/" + rel
}
