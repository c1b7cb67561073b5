package session

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/internal/testenv"
	"github.com/brig-sandbox/brig/jail"
)

// A cell runs in its driver's process and can reach everything the driver
// can: the reply channel, the driver's copies of stdout and stderr, the
// working directory the host reads and writes. These tests take each of
// those from the hostile side and check that the supervisor and the
// caller stay free: Run returns, memory stays small, file calls return.

// pyReplyFds finds, from a Python cell, the write ends of pipes that are
// not its stdout or stderr: the driver's reply channel.
const pyReplyFds = `
import os
def reply_fds():
    outs = {os.readlink("/proc/self/fd/%d" % f) for f in (1, 2)}
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink("/proc/self/fd/" + name)
            flags = int(open("/proc/self/fdinfo/" + name).read().split("flags:")[1].split()[0], 8)
        except OSError:
            continue
        if link.startswith("pipe:") and link not in outs and flags & 3 == os.O_WRONLY:
            found.append(int(name))
    return found
`

// shReplyFds is the same for a shell cell: bash keeps the driver's fds in
// copies above 9 while a command runs.
const shReplyFds = `reply_fds() {
	local fd out1 out2 link
	out1=$(readlink /proc/$$/fd/1) out2=$(readlink /proc/$$/fd/2)
	for fd in $(ls /proc/$$/fd); do
		link=$(readlink /proc/$$/fd/$fd) || continue
		case $link in pipe:*) ;; *) continue ;; esac
		[ "$link" = "$out1" ] || [ "$link" = "$out2" ] && continue
		grep -q '^flags:.*[0-7]1$' /proc/$$/fdinfo/$fd 2>/dev/null && echo $fd
	done
}
`

// runBounded runs a cell and fails the test if Run has not returned long
// after the cell's timeout: a hang shows as a failure, not a stuck test.
func runBounded(t *testing.T, sess interface {
	Run(context.Context, string, RunOptions) *CellResult
	Close() error
}, code string, opts RunOptions) *CellResult {
	t.Helper()
	done := make(chan *CellResult, 1)
	go func() { done <- sess.Run(context.Background(), code, opts) }()
	select {
	case r := <-done:
		return r
	case <-time.After(testenv.Scaled(opts.Timeout + DefaultInterruptGrace + StreamSettle + 30*time.Second)):
		sess.Close()
		t.Fatalf("Run did not return long after its %v cell timeout", opts.Timeout)
		return nil
	}
}

func TestSessionReplyFloodKeepsSupervisorSmall(t *testing.T) {
	before := countMounts()
	p := newPython(t, jail.Config{})
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	// Far more than MaxReplyLine, with no newline.
	r := runBounded(t, p, pyReplyFds+`
fds = reply_fds()
assert fds, "no reply channel found"
chunk = b"x" * (1 << 20)
for _ in range(512):
    for fd in fds:
        os.write(fd, chunk)
`, RunOptions{Timeout: 20 * time.Second})
	runtime.ReadMemStats(&m1)
	assert.Equal(t, CellDead, r.Status, "%+v", r)
	assert.Contains(t, r.Reason, "bad reply")
	assert.Contains(t, r.Reason, "cap")
	// Everything the supervisor allocated meanwhile, freed or not: a few
	// times the cap at most, never the flood.
	assert.Less(t, m1.TotalAlloc-m0.TotalAlloc, uint64(8*MaxReplyLine), "the supervisor buffered the flood")
	require.NoError(t, p.Close())
	assertHostClean(t, before)
}

func TestSessionReplyGarbageEndsSession(t *testing.T) {
	before := countMounts()
	p := newPython(t, jail.Config{})
	r := runBounded(t, p, pyReplyFds+`
for fd in reply_fds():
    os.write(fd, b"garbage\n")
`, RunOptions{Timeout: 5 * time.Second})
	assert.Equal(t, CellDead, r.Status, "%+v", r)
	assert.Contains(t, r.Reason, "bad reply")
	// A line that is JSON, but not this cell's reply.
	p = newPython(t, jail.Config{})
	r = runBounded(t, p, pyReplyFds+`
for fd in reply_fds():
    os.write(fd, b'{"value": "forged", "error": null, "cpu": 0}\n')
`, RunOptions{Timeout: 5 * time.Second})
	assert.Equal(t, CellDead, r.Status, "%+v", r)
	assert.Contains(t, r.Reason, "not this cell's reply")

	sh := newShell(t, jail.Config{})
	r = runBounded(t, sh, shReplyFds+`for fd in $(reply_fds); do echo x >&$fd; done`, RunOptions{Timeout: 5 * time.Second})
	assert.Equal(t, CellDead, r.Status, "%+v", r)
	assert.Contains(t, r.Reason, "bad reply")
	// Half a line, then nothing: the cell's timeout still holds.
	sh = newShell(t, jail.Config{})
	r = runBounded(t, sh, shReplyFds+`for fd in $(reply_fds); do printf 'no newline' >&$fd; done; sleep 60`, RunOptions{Timeout: 500 * time.Millisecond})
	assert.Equal(t, CellDead, r.Status, "%+v", r)
	assert.Contains(t, r.Reason, "bad reply")
	p.Close()
	sh.Close()
	assertHostClean(t, before)
}

// The benign side: a session whose cells write nothing to the reply
// channel is untouched by the checks, also with long values and errors.
func TestSessionLongRepliesStillWork(t *testing.T) {
	p := newPython(t, jail.Config{})
	ctx := context.Background()
	r := p.Run(ctx, `"é" * (1 << 20)`, RunOptions{})
	require.Equal(t, CellOK, r.Status, "%+v", r)
	assert.True(t, strings.HasSuffix(*r.Value, "...(cut)"))
	r = p.Run(ctx, `raise ValueError("\U0001F600" * (1 << 20))`, RunOptions{})
	require.Equal(t, CellError, r.Status, "%+v", r)
	assert.Equal(t, "ValueError", r.Error.Type)
	assert.True(t, strings.HasSuffix(r.Error.Message, "...(cut)"))
	r = p.Run(ctx, "1 + 1", RunOptions{})
	assert.Equal(t, "2", *r.Value)
}

func TestShellSessionRedirectedOutput(t *testing.T) {
	sh := newShell(t, jail.Config{})
	opts := RunOptions{Timeout: 5 * time.Second}
	r := runBounded(t, sh, "exec 9>&1 >/dev/null 2>/tmp/log; echo hidden; echo err >&2", opts)
	require.Equal(t, CellOK, r.Status, "%+v", r)
	assert.Empty(t, r.Stdout)
	assert.Empty(t, r.Stderr)
	r = runBounded(t, sh, "echo still hidden; exec >&9 2>&1; echo visible; cat /tmp/log", opts)
	require.Equal(t, CellOK, r.Status, "%+v", r)
	assert.Equal(t, "visible\nerr\n", r.Stdout)
	r = runBounded(t, sh, "echo three", opts)
	assert.Equal(t, "three\n", r.Stdout)
	assert.Equal(t, 0, *r.ExitCode)
}

func TestPythonSessionRedirectedOutput(t *testing.T) {
	p := newPython(t, jail.Config{})
	opts := RunOptions{Timeout: 5 * time.Second}
	r := runBounded(t, p, `
import os
saved = os.dup(1), os.dup(2)
null = os.open("/dev/null", os.O_WRONLY)
os.dup2(null, 1); os.dup2(null, 2)
print("hidden", flush=True)
`, opts)
	require.Equal(t, CellOK, r.Status, "%+v", r)
	assert.Empty(t, r.Stdout)
	r = runBounded(t, p, `os.dup2(saved[0], 1); os.dup2(saved[1], 2); print("back")`, opts)
	require.Equal(t, CellOK, r.Status, "%+v", r)
	assert.Equal(t, "back\n", r.Stdout)
}

// A cell that hides the end marker itself (moving the driver's own copies
// of stdout away) ends when its reply comes; its marker, arriving late in
// the next cell, neither ends that cell nor shows in its output.
func TestPythonSessionLateEndMarker(t *testing.T) {
	p := newPython(t, jail.Config{})
	opts := RunOptions{Timeout: 20 * time.Second}
	r := runBounded(t, p, `
import os, threading
real = os.dup(1)
target = os.readlink("/proc/self/fd/1")
ours = [int(n) for n in os.listdir("/proc/self/fd") if n != str(real) and os.path.exists("/proc/self/fd/" + n) and os.readlink("/proc/self/fd/" + n) == target]
held_r, held_w = os.pipe()
for fd in ours:
    os.dup2(held_w, fd)
go_r, go_w = os.pipe()
relayed = threading.Event()
def relay():
    os.read(go_r, 1)
    os.write(real, os.read(held_r, 1 << 16))
    relayed.set()
threading.Thread(target=relay, daemon=True).start()
print("one", flush=True)
`, opts)
	require.Equal(t, CellOK, r.Status, "%+v", r)
	assert.Empty(t, r.Stdout, "the output went into the held pipe")
	r = runBounded(t, p, `
for fd in ours:
    os.dup2(real, fd)
os.write(go_w, b"x")
relayed.wait()
print("two", flush=True)
`, opts)
	require.Equal(t, CellOK, r.Status, "%+v", r)
	assert.Equal(t, "one\ntwo\n", r.Stdout, "the earlier cell's late marker is dropped, this cell ends at its own")
	r = runBounded(t, p, `print("three")`, opts)
	assert.Equal(t, "three\n", r.Stdout)
}

func TestSessionCanceledWhileOutputRedirected(t *testing.T) {
	sh := newShell(t, jail.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *CellResult, 1)
	go func() { done <- sh.Run(ctx, "exec >/dev/null 2>&1; sleep 60", RunOptions{Timeout: time.Minute}) }()
	time.Sleep(300 * time.Millisecond)
	cancel()
	select {
	case r := <-done:
		// Interrupted as at a timeout: the session lives on.
		assert.Equal(t, CellCanceled, r.Status, "%+v", r)
		r = sh.Run(context.Background(), "true", RunOptions{Timeout: time.Minute})
		assert.Equal(t, CellOK, r.Status, "%+v", r)
	case <-time.After(testenv.Scaled(30 * time.Second)):
		sh.Close()
		t.Fatal("Run ignored its context")
	}
}

// callBounded fails the test if a file call has not returned long after
// FileOpTimeout: a blocked call shows as a failure, not a stuck test.
func callBounded(t *testing.T, what string, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(testenv.Scaled(FileOpTimeout + 20*time.Second)):
		t.Fatalf("%s did not return", what)
		return nil
	}
}

func TestSessionWriteFileOnPlantedFIFO(t *testing.T) {
	before := countMounts()
	p := newPython(t, jail.Config{})
	r := p.Run(context.Background(), `
import os, threading
os.mkfifo("fifo")
os.mkfifo("fifo-read")
def reader():
    global held
    held = open("fifo-read", "rb")  # a reader: the host's open would succeed
threading.Thread(target=reader, daemon=True).start()
os.mkdir("dir")
open("plain", "w").write("jail")
`, RunOptions{})
	require.Equal(t, CellOK, r.Status, "%+v", r)
	err := callBounded(t, "WriteFile on a FIFO", func() error { return p.WriteFile("fifo", []byte("host")) })
	assert.ErrorContains(t, err, "not a regular file")
	err = callBounded(t, "WriteFile on a FIFO with a reader", func() error { return p.WriteFile("fifo-read", []byte("host")) })
	assert.ErrorContains(t, err, "not a regular file")
	err = callBounded(t, "ReadFile on a FIFO", func() error { _, err := p.ReadFile("fifo", 0); return err })
	assert.ErrorContains(t, err, "not a regular file")
	err = callBounded(t, "WriteFile on a directory", func() error { return p.WriteFile("dir", []byte("host")) })
	assert.Error(t, err)
	_, err = p.ListDir("plain")
	assert.ErrorContains(t, err, "not a directory")
	// The benign side: a regular file is still written, replacing its content.
	require.NoError(t, p.WriteFile("plain", []byte("host")))
	b, err := p.ReadFile("plain", 0)
	require.NoError(t, err)
	assert.Equal(t, "host", string(b))
	r = p.Run(context.Background(), `open("plain").read()`, RunOptions{})
	assert.Equal(t, "'host'", *r.Value)
	require.NoError(t, callBounded(t, "Close", p.Close))
	assertHostClean(t, before)
}

func TestSessionWriteFileOnLeasedFile(t *testing.T) {
	before := countMounts()
	p := newPython(t, jail.Config{})
	r := p.Run(context.Background(), `
import fcntl, os, signal
signal.signal(signal.SIGIO, signal.SIG_IGN)  # the lease-break signal: ignored, the lease is held
open("leased", "w").write("jail")
fd = os.open("leased", os.O_RDONLY)
fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
fcntl.fcntl(fd, fcntl.F_GETLEASE)
`, RunOptions{})
	require.Equal(t, CellOK, r.Status, "%+v", r)
	require.Equal(t, fmt.Sprint(syscall.F_RDLCK), *r.Value, "the jail holds a read lease")
	err := callBounded(t, "WriteFile on a leased file", func() error { return p.WriteFile("leased", []byte("host")) })
	assert.ErrorContains(t, err, "lease")
	assert.ErrorContains(t, err, "O_NONBLOCK")
	// Reading does not break a read lease.
	b, err := p.ReadFile("leased", 0)
	require.NoError(t, err)
	assert.Equal(t, "jail", string(b))
	require.NoError(t, callBounded(t, "Close", p.Close))
	assertHostClean(t, before)
}

// ReadFileIn and ListDirIn read what a jail left in a writable bind: its
// symlinks, FIFOs and sparse files are described and refused, never
// followed, waited on or read whole.
func TestReadFileInWritableBindOutput(t *testing.T) {
	testenv.RequireRoot(t)
	requirePython(t)
	before := countMounts()
	out := t.TempDir()
	require.NoError(t, os.Chmod(out, 0o777))
	cfg := jail.Config{Binds: []jail.Bind{{Source: out, Target: "/out", Writable: true}}}
	res, err := testSup.Command(context.Background(), cfg, PythonInterpreter, "-c", `
import os
os.chdir("/out")
os.symlink("/etc/shadow", "shadow")
os.symlink("/", "hostroot")
os.mkfifo("fifo")
with open("sparse", "wb") as f:
    f.truncate((1 << 30) - 4096)  # all RLIMIT_FSIZE allows
os.mkdir("sub")
open("sub/result.txt", "w").write("42\n")
`).CombinedOutput()
	require.NoError(t, err, "%s", res)
	b, err := ReadFileIn(out, "sub/result.txt", 0)
	require.NoError(t, err)
	assert.Equal(t, "42\n", string(b))
	for name, want := range map[string]string{
		"shadow": "symlink", "hostroot/etc/shadow": "symlink", "fifo": "not a regular file",
		"sparse": "limit", "../x": "beneath", "/etc/shadow": "beneath", "sub": "not a regular file",
	} {
		err := callBounded(t, "ReadFileIn "+name, func() error { _, err := ReadFileIn(out, name, 1<<20); return err })
		assert.ErrorContains(t, err, want, name)
	}
	list, err := ListDirIn(out, ".")
	require.NoError(t, err)
	kinds := map[string]os.FileMode{}
	for _, f := range list {
		kinds[f.Name] = f.Mode.Type()
	}
	assert.Equal(t, map[string]os.FileMode{"shadow": os.ModeSymlink, "hostroot": os.ModeSymlink, "fifo": os.ModeNamedPipe,
		"sparse": 0, "sub": os.ModeDir}, kinds)
	_, err = ListDirIn(out, "hostroot")
	assert.ErrorContains(t, err, "not a directory", "a symlink is not followed")
	_, err = ListDirIn(filepath.Join(out, "hostroot"), ".")
	assert.Error(t, err, "the directory itself is not followed when it is a symlink")
	assertHostClean(t, before)
}

// A cell that leaves the driver reading from a pipe of its own, keeping
// the real request channel open and unread: the next request, larger than
// a pipe holds, cannot be written, and the cell timeout still holds.
func TestPythonSessionRequestNotRead(t *testing.T) {
	before := countMounts()
	p := newPython(t, jail.Config{})
	r := runBounded(t, p, `
import os, __main__
req = __main__._req.fileno()
kept = os.dup(req)              # the real channel stays open, unread
fake_r, fake_w = os.pipe()
os.dup2(fake_r, req)            # the driver now waits on a pipe nobody writes
`, RunOptions{Timeout: 5 * time.Second})
	require.Equal(t, CellOK, r.Status, "%+v", r)
	r = runBounded(t, p, "x = '"+strings.Repeat("y", 1<<20)+"'", RunOptions{Timeout: time.Second})
	assert.Equal(t, CellDead, r.Status, "%+v", r)
	assert.Contains(t, r.Reason, "did not stop")
	assertHostClean(t, before)
}

// The benign side of the test above: a request larger than a pipe holds,
// to a driver that reads it, arrives whole and in order (the part the pipe
// took at once, then the rest from the reply goroutine), for both drivers.
func TestSessionLargeRequestArrivesWhole(t *testing.T) {
	before := countMounts()
	payload := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB, 16 pipe buffers
	p := newPython(t, jail.Config{})
	r := runBounded(t, p, "import hashlib\nhashlib.sha256(b'"+payload+"').hexdigest()", RunOptions{Timeout: 20 * time.Second})
	require.Equal(t, CellOK, r.Status, "%+v", r)
	require.NotNil(t, r.Value)
	assert.Equal(t, fmt.Sprintf("'%x'", sha256.Sum256([]byte(payload))), *r.Value)

	sh := newShell(t, jail.Config{})
	r = runBounded(t, sh, "x='"+payload+"'; printf %s \"$x\" | sha256sum", RunOptions{Timeout: 20 * time.Second})
	require.Equal(t, CellOK, r.Status, "%+v", r)
	assert.Equal(t, fmt.Sprintf("%x  -\n", sha256.Sum256([]byte(payload))), r.Stdout)
	// The next cells still find their replies: nothing of the request was
	// left in the pipe or sent twice.
	r = runBounded(t, p, "1 + 1", RunOptions{Timeout: 5 * time.Second})
	require.NotNil(t, r.Value, "%+v", r)
	assert.Equal(t, "2", *r.Value)
	r = runBounded(t, sh, "echo ok", RunOptions{Timeout: 5 * time.Second})
	assert.Equal(t, "ok\n", r.Stdout, "%+v", r)
	p.Close()
	sh.Close()
	assertHostClean(t, before)
}

// writeNow on real pipes: it writes what the pipe takes without waiting
// and hands back the rest, and reports a pipe whose reader is gone.
func TestWriteNow(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	rest, err := writeNow(w, []byte("small"))
	require.NoError(t, err)
	assert.Empty(t, rest, "an empty pipe takes a small request at once")
	buf := make([]byte, 5)
	_, err = io.ReadFull(r, buf)
	require.NoError(t, err)
	assert.Equal(t, "small", string(buf))

	big := make([]byte, 4<<20) // more than any pipe holds by default
	rest, err = writeNow(w, big)
	require.NoError(t, err, "a full pipe is not an error")
	require.NotEmpty(t, rest, "a full pipe leaves the rest to the caller")
	require.Less(t, len(rest), len(big), "the pipe took part of it")
	rest, err = writeNow(w, rest)
	require.NoError(t, err)
	assert.NotEmpty(t, rest, "a full pipe takes nothing more and does not block")

	r2, w2, err := os.Pipe()
	require.NoError(t, err)
	defer w2.Close()
	r2.Close()
	_, err = writeNow(w2, []byte("x"))
	assert.ErrorIs(t, err, syscall.EPIPE)
}
