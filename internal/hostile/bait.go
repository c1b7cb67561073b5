package hostile

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// secretEnv is the variable of the supervisor's environment that must
// never reach a jail.
const secretEnv = "BRIG_BAIT_SECRET"

// Bait is what the host sets out before the runs: things a jail must not
// reach, each told to the payload (by port, key, pid or path, never its
// secret) so that it can try; afterwards RunOne checks that none of it was touched.
type Bait struct {
	Secret   string // in the env var, the secret file, the /dev/shm file and the shm segment
	Proc     *os.Process
	tcp      net.Listener
	unix     net.Listener
	abstract string
	tcpHits  atomic.Int64 // connections the listeners accepted
	ownHits  atomic.Int64 // of which the host's own probes
	unixHits atomic.Int64
	shmKey   int
	shmID    int
	devShm   string
	file     string
	fileInfo os.FileInfo
	hostIPs  []string
	// Outbox is a small host tmpfs a payload may get bound writable at /out.
	Outbox    string
	outboxTop string
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// SetBait sets out every bait. Close takes it all back.
func SetBait() (*Bait, error) {
	b := &Bait{Secret: "s3cr3t-" + randHex(12)}
	ok := false
	defer func() {
		if !ok {
			b.Close()
		}
	}()
	if err := os.Setenv(secretEnv, b.Secret); err != nil {
		return nil, err
	}
	// A host process the jail would like to signal or ptrace.
	p, err := os.StartProcess("/bin/sleep", []string{"sleep", "86400"}, &os.ProcAttr{})
	if err != nil {
		return nil, fmt.Errorf("bait process: %w", err)
	}
	b.Proc = p
	// A TCP listener on every host address, loopback included.
	if b.tcp, err = net.Listen("tcp4", "0.0.0.0:0"); err != nil {
		return nil, fmt.Errorf("bait listener: %w", err)
	}
	go accept(b.tcp, &b.tcpHits)
	// An abstract unix socket: the namespace of these names is per netns.
	b.abstract = "brig-bait-" + randHex(6)
	if b.unix, err = net.Listen("unix", "@"+b.abstract); err != nil {
		return nil, fmt.Errorf("bait abstract socket: %w", err)
	}
	go accept(b.unix, &b.unixHits)
	// A SysV shared memory segment holding the secret.
	b.shmKey = int(0x42520000 | (time.Now().UnixNano() & 0xffff))
	if b.shmID, err = unix.SysvShmGet(b.shmKey, 4096, unix.IPC_CREAT|unix.IPC_EXCL|0o666); err != nil {
		return nil, fmt.Errorf("bait shm: %w", err)
	}
	if err := b.shmWrite(); err != nil {
		return nil, err
	}
	// A world-readable file in the host's /dev/shm and a secret under /root.
	b.devShm = "/dev/shm/brig-bait-" + randHex(6)
	if err := os.WriteFile(b.devShm, []byte(b.Secret), 0o644); err != nil {
		return nil, fmt.Errorf("bait /dev/shm: %w", err)
	}
	home := "/root"
	if os.Geteuid() != 0 {
		home = os.TempDir()
	}
	b.file = filepath.Join(home, "brig-bait-secret-"+randHex(6))
	if err := os.WriteFile(b.file, []byte(b.Secret+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("bait secret file: %w", err)
	}
	if b.fileInfo, err = os.Stat(b.file); err != nil {
		return nil, err
	}
	b.hostIPs = hostIPv4s()
	// The outbox: a writable bind that cannot fill the host's disk.
	if b.outboxTop, err = os.MkdirTemp("", "brig-outbox-"); err != nil {
		return nil, err
	}
	b.Outbox = filepath.Join(b.outboxTop, "out")
	if err := os.Mkdir(b.Outbox, 0o777); err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		if err := unix.Mount("tmpfs", b.Outbox, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=4m,nr_inodes=4096,mode=0777"); err != nil {
			return nil, fmt.Errorf("bait outbox: %w", err)
		}
	}
	_ = os.Chmod(b.outboxTop, 0o755)
	ok = true
	return b, nil
}

func accept(l net.Listener, hits *atomic.Int64) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		hits.Add(1)
		_, _ = c.Write([]byte("bait\n"))
		c.Close()
	}
}

func (b *Bait) shmWrite() error {
	mem, err := unix.SysvShmAttach(b.shmID, 0, 0)
	if err != nil {
		return fmt.Errorf("bait shm attach: %w", err)
	}
	copy(mem, b.Secret)
	return unix.SysvShmDetach(mem)
}

func hostIPv4s() []string {
	var ips []string
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			ips = append(ips, n.IP.String())
		}
	}
	return ips
}

// port is the bait listener's TCP port.
func (b *Bait) port() int { return b.tcp.Addr().(*net.TCPAddr).Port }

// env is what a payload is told about the bait.
func (b *Bait) env() []string {
	return []string{
		"BAIT_PID=" + strconv.Itoa(b.Proc.Pid),
		"BAIT_PORT=" + strconv.Itoa(b.port()),
		"BAIT_HOST_IPS=" + strings.Join(b.hostIPs, ","),
		"BAIT_ABSTRACT=" + b.abstract,
		"BAIT_SHM_KEY=" + strconv.Itoa(b.shmKey),
		"BAIT_SHM_ID=" + strconv.Itoa(b.shmID),
		"BAIT_DEVSHM=" + b.devShm,
		"BAIT_SECRET_FILE=" + b.file,
		"BAIT_SECRET_ENV=" + secretEnv,
	}
}

// probe is the host's own use of its services during a run: a fresh
// process, a loopback connection and an inotify instance (what every
// file-watching daemon of the host's root needs). It returns how long they
// took.
func (b *Bait) probe() (time.Duration, error) {
	start := time.Now()
	if err := exec.Command("/bin/true").Run(); err != nil {
		return 0, fmt.Errorf("host cannot start /bin/true: %w", err)
	}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		return 0, fmt.Errorf("host cannot create an inotify instance: %w", err)
	}
	unix.Close(fd)
	for _, uid := range []int{0, nobody} {
		if err := timerAs(uid); err != nil {
			return 0, fmt.Errorf("host cannot create a POSIX timer as uid %d: %w", uid, err)
		}
	}
	b.ownHits.Add(1)
	c, err := net.DialTimeout("tcp4", b.tcp.Addr().String(), 5*time.Second)
	if err != nil {
		return 0, fmt.Errorf("host cannot reach its own listener: %w", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 5)
	_, err = c.Read(buf)
	c.Close()
	if err != nil {
		return 0, fmt.Errorf("host listener did not answer: %w", err)
	}
	return time.Since(start), nil
}

// nobody is the uid unprivileged runs use (setpriv --reuid=nobody): the
// owner of their jails' user namespaces.
const nobody = 65534

// timerAs creates and deletes a POSIX timer as uid, as the owners of jails'
// user namespaces (root, or the unprivileged caller) need to: its pending
// signal is counted for them on the host, jails' included. The ids of one
// locked thread change, and that thread ends with the probe.
func timerAs(uid int) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with its changed ids
		if uid != 0 {
			// The saved uid stays 0: only this thread changes, and only its
			// real uid (what pending signals are counted for) matters.
			if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(uid), uintptr(uid), 0); e != 0 {
				errc <- fmt.Errorf("setresuid: %w", e)
				return
			}
		}
		// struct sigevent: SIGEV_SIGNAL (0) with SIGURG; never armed, so it never fires.
		var sev [64]byte
		binary.NativeEndian.PutUint32(sev[8:], uint32(unix.SIGURG))
		var id int32
		if _, _, e := unix.RawSyscall(unix.SYS_TIMER_CREATE, uintptr(unix.CLOCK_MONOTONIC), uintptr(unsafe.Pointer(&sev)), uintptr(unsafe.Pointer(&id))); e != 0 {
			errc <- e
			return
		}
		unix.RawSyscall(unix.SYS_TIMER_DELETE, uintptr(id), 0, 0)
		errc <- nil
	}()
	return <-errc
}

// touched says what of the bait was touched; nil means nothing.
func (b *Bait) touched() []string {
	var bad []string
	if err := b.Proc.Signal(unix.Signal(0)); err != nil {
		bad = append(bad, "bait process is gone: "+err.Error())
	} else if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", b.Proc.Pid)); err == nil {
		if strings.Contains(string(st), "TracerPid:\t") && !strings.Contains(string(st), "TracerPid:\t0\n") {
			bad = append(bad, "bait process is being traced")
		}
	}
	if n := b.tcpHits.Load() - b.ownHits.Load(); n != 0 {
		bad = append(bad, fmt.Sprintf("bait TCP listener got %d foreign connections", n))
	}
	if n := b.unixHits.Load(); n != 0 {
		bad = append(bad, fmt.Sprintf("bait abstract socket got %d connections", n))
	}
	var ds unix.SysvShmDesc
	if _, err := unix.SysvShmCtl(b.shmID, unix.IPC_STAT, &ds); err != nil {
		bad = append(bad, "bait shm segment is gone: "+err.Error())
	} else if mem, err := unix.SysvShmAttach(b.shmID, 0, unix.SHM_RDONLY); err == nil {
		if !bytes.HasPrefix(mem, []byte(b.Secret)) || bytes.Count(mem[len(b.Secret):], []byte{0}) != len(mem)-len(b.Secret) {
			bad = append(bad, "bait shm segment was changed")
		}
		_ = unix.SysvShmDetach(mem)
	}
	if got, err := os.ReadFile(b.devShm); err != nil || string(got) != b.Secret {
		bad = append(bad, fmt.Sprintf("bait /dev/shm file changed: %v", err))
	}
	if fi, err := os.Stat(b.file); err != nil || !fi.ModTime().Equal(b.fileInfo.ModTime()) || fi.Mode() != b.fileInfo.Mode() || fi.Size() != b.fileInfo.Size() {
		bad = append(bad, fmt.Sprintf("bait secret file changed: %v", err))
	}
	return bad
}

// leaked reports the secrets found in a run's output.
func (b *Bait) leaked(outs ...string) []string {
	var bad []string
	for _, o := range outs {
		if strings.Contains(o, b.Secret) {
			bad = append(bad, "a host secret reached the jail's output")
			break
		}
	}
	return bad
}

// emptyOutbox removes what a run left in the outbox, without following
// anything the jail planted there.
func (b *Bait) emptyOutbox() error {
	ents, err := os.ReadDir(b.Outbox)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		errs = append(errs, os.RemoveAll(filepath.Join(b.Outbox, e.Name())))
	}
	return errors.Join(errs...)
}

// Close takes the bait back.
func (b *Bait) Close() {
	os.Unsetenv(secretEnv)
	if b.Proc != nil {
		_ = b.Proc.Kill()
		_, _ = b.Proc.Wait()
	}
	if b.tcp != nil {
		b.tcp.Close()
	}
	if b.unix != nil {
		b.unix.Close()
	}
	if b.shmID > 0 {
		_, _ = unix.SysvShmCtl(b.shmID, unix.IPC_RMID, nil)
	}
	if b.devShm != "" {
		os.Remove(b.devShm)
	}
	if b.file != "" {
		os.Remove(b.file)
	}
	if b.Outbox != "" && os.Geteuid() == 0 {
		_ = unix.Unmount(b.Outbox, unix.MNT_DETACH)
	}
	if b.outboxTop != "" {
		os.RemoveAll(b.outboxTop)
	}
}
