package seccomp

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// auditSeccomp is AUDIT_SECCOMP, the audit record type the kernel writes
// when a filter kills a process or returns SECCOMP_RET_LOG.
const auditSeccomp = 1326

// Record is one seccomp audit record: which process made which system call
// and what the filter did about it.
type Record struct {
	PID     int    // host pid of the process
	UID     uint32 // host uid
	Comm    string // executable name, as the kernel truncates it (15 bytes)
	Syscall string // name, from Nr and Arch
	Nr      int    // system call number
	Arch    string // libseccomp architecture name: "amd64", "x86", "x32"...
	Action  string // "kill", "kill_thread", "trap", "errno", "log", "trace", "notify", "allow"
	Errno   int    // for Action "errno"
}

// LogCursor reads seccomp audit records from /dev/kmsg, the kernel log.
//
// With no audit daemon running, the kernel prints audit records to its log
// ("audit: type=1326 ..."), where any root process can read them. This is
// the only place that says which system call a filter refused: the killed
// process itself only gets SIGSYS. Caveats, all the kernel's:
//
//   - Only some actions are logged: SECCOMP_RET_KILL_PROCESS/KILL_THREAD and
//     SECCOMP_RET_LOG always (when listed in
//     /proc/sys/kernel/seccomp/actions_logged, as they are by default), errno
//     and trap only for filters loaded with SECCOMP_FILTER_FLAG_LOG. So the
//     ENOSYS/EPERM of the default policy leave no trace; KillOnRefusal and
//     LogOnly do.
//   - The kernel's audit thread prints the record shortly after the call,
//     not during it: use Wait, not Records, right after a process died.
//   - Printing is rate-limited (printk_ratelimit, 10 per 5 s by default) and
//     the ring buffer is finite, so records can be lost under a burst.
//   - If an audit daemon (auditd) is running, records go to it instead.
type LogCursor struct {
	mu   sync.Mutex
	f    *os.File
	buf  []byte
	lost int // records the kernel overwrote before we read them
}

// OpenLogCursor opens /dev/kmsg positioned at its end, so that Records
// returns only what the kernel logs from now on. Reading /dev/kmsg needs
// root (or CAP_SYSLOG) when kernel.dmesg_restrict is set.
func OpenLogCursor() (*LogCursor, error) {
	f, err := os.OpenFile("/dev/kmsg", os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open seccomp log cursor: %w", err)
	}
	// On /dev/kmsg, SEEK_END means "after the last record", not a byte
	// offset.
	if _, err := unix.Seek(int(f.Fd()), 0, unix.SEEK_END); err != nil {
		f.Close()
		return nil, fmt.Errorf("open seccomp log cursor: seek /dev/kmsg: %w", err)
	}
	return &LogCursor{f: f, buf: make([]byte, 8192)}, nil
}

// Records returns the seccomp records for uid logged since the cursor was
// opened or last read, without blocking. Each record is returned once.
func (c *LogCursor) Records(uid uint32) ([]Record, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f == nil {
		return nil, errors.New("read seccomp records: cursor closed")
	}
	var out []Record
	fd := int(c.f.Fd())
	for {
		// One read returns exactly one log record.
		n, err := unix.Read(fd, c.buf)
		switch {
		case errors.Is(err, unix.EAGAIN):
			return out, nil
		case errors.Is(err, unix.EPIPE):
			// The ring buffer wrapped past us; the next read resumes at
			// the oldest record still there.
			c.lost++
			continue
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return out, fmt.Errorf("read seccomp records: %w", err)
		case n == 0:
			return out, nil
		}
		r, ok := parseKmsgRecord(string(c.buf[:n]))
		if ok && r.UID == uid {
			out = append(out, r)
		}
	}
}

// Wait returns the records for uid as Records does, but when there are
// none yet it keeps polling until one arrives or timeout passes; audit
// records reach the log a little after the process that caused them died.
func (c *LogCursor) Wait(uid uint32, timeout time.Duration) ([]Record, error) {
	deadline := time.Now().Add(timeout)
	for {
		recs, err := c.Records(uid)
		if len(recs) > 0 || err != nil || time.Now().After(deadline) {
			return recs, err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Close releases /dev/kmsg.
func (c *LogCursor) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f == nil {
		return nil
	}
	err := c.f.Close()
	c.f = nil
	return err
}

// parseKmsgRecord parses one /dev/kmsg record if it is a seccomp audit
// record. A record looks like:
//
//	5,1234,5678901,-;audit: type=1326 audit(1700000000.123:45): auid=4294967295
//	uid=61000 gid=61000 ses=4294967295 pid=123 comm="python3" exe="/usr/bin/python3"
//	sig=31 arch=c000003e syscall=250 compat=0 ip=0x7f... code=0x80000000
//
// (one line; continuation lines after the first newline are key=value
// dictionary entries, which we ignore).
func parseKmsgRecord(rec string) (Record, bool) {
	_, msg, ok := strings.Cut(rec, ";")
	if !ok {
		return Record{}, false
	}
	msg, _, _ = strings.Cut(msg, "\n")
	msg = strings.TrimPrefix(msg, "audit: ")
	if !strings.HasPrefix(msg, "type="+strconv.Itoa(auditSeccomp)+" ") {
		return Record{}, false
	}
	fields := auditFields(msg)

	var r Record
	pid, err := strconv.Atoi(fields["pid"])
	if err != nil {
		return Record{}, false
	}
	uid, err := strconv.ParseUint(fields["uid"], 10, 32)
	if err != nil {
		return Record{}, false
	}
	nr, err := strconv.Atoi(fields["syscall"])
	if err != nil {
		return Record{}, false
	}
	r.PID, r.UID, r.Nr = pid, uint32(uid), nr
	r.Comm = auditString(fields["comm"])

	arch := nativeArch()
	if a, err := strconv.ParseUint(fields["arch"], 16, 32); err == nil {
		if sa, ok := auditArches[uint32(a)]; ok {
			arch = sa
		}
	}
	// x32 calls come in with the x86_64 audit arch and __X32_SYSCALL_BIT set.
	if arch == libseccomp.ArchAMD64 && nr&x32SyscallBit != 0 {
		arch = libseccomp.ArchX32
	}
	r.Arch = arch.String()
	r.Syscall = syscallNameArch(nr, arch)

	if code, err := strconv.ParseUint(strings.TrimPrefix(fields["code"], "0x"), 16, 32); err == nil {
		r.Action, r.Errno = retAction(uint32(code))
	}
	return r, true
}

// auditFields splits "k=v k2="quoted v" ..." into a map. Audit quotes
// strings it trusts and hex-encodes the others, so values never contain a
// quote inside quotes.
func auditFields(msg string) map[string]string {
	fields := map[string]string{}
	for len(msg) > 0 {
		msg = strings.TrimLeft(msg, " ")
		key, rest, ok := strings.Cut(msg, "=")
		if !ok {
			break
		}
		var val string
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				val, rest = rest, ""
			} else {
				val, rest = rest[:end+2], rest[end+2:]
			}
		} else {
			val, rest, _ = strings.Cut(rest, " ")
		}
		fields[key] = val
		msg = rest
	}
	return fields
}

// auditString decodes an audit string value: "quoted", hex-encoded when it
// holds spaces, quotes or control characters, or (null).
func auditString(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	if b, err := hex.DecodeString(v); err == nil {
		return string(b)
	}
	return v
}

// retAction names the SECCOMP_RET_* action in an audit code= field.
func retAction(code uint32) (string, int) {
	switch code & unix.SECCOMP_RET_ACTION_FULL {
	case unix.SECCOMP_RET_KILL_PROCESS:
		return "kill", 0
	case unix.SECCOMP_RET_KILL_THREAD:
		return "kill_thread", 0
	case unix.SECCOMP_RET_TRAP:
		return "trap", 0
	case unix.SECCOMP_RET_ERRNO:
		return "errno", int(code & unix.SECCOMP_RET_DATA)
	case unix.SECCOMP_RET_USER_NOTIF:
		return "notify", 0
	case unix.SECCOMP_RET_TRACE:
		return "trace", 0
	case unix.SECCOMP_RET_LOG:
		return "log", 0
	case unix.SECCOMP_RET_ALLOW:
		return "allow", 0
	}
	return fmt.Sprintf("0x%08x", code), 0
}

const x32SyscallBit = 0x40000000

// auditArches maps AUDIT_ARCH_* values to libseccomp architectures, for the
// architectures whose processes can run on a machine brig supports.
var auditArches = map[uint32]libseccomp.ScmpArch{
	unix.AUDIT_ARCH_X86_64:  libseccomp.ArchAMD64,
	unix.AUDIT_ARCH_I386:    libseccomp.ArchX86,
	unix.AUDIT_ARCH_AARCH64: libseccomp.ArchARM64,
	unix.AUDIT_ARCH_ARM:     libseccomp.ArchARM,
	unix.AUDIT_ARCH_RISCV64: libseccomp.ArchRISCV64,
	unix.AUDIT_ARCH_PPC64LE: libseccomp.ArchPPC64LE,
	unix.AUDIT_ARCH_S390X:   libseccomp.ArchS390X,
}

var nativeArch = sync.OnceValue(func() libseccomp.ScmpArch {
	a, err := libseccomp.GetNativeArch()
	if err != nil {
		return libseccomp.ArchNative
	}
	return a
})

// SyscallName returns the name of native system call nr, or "syscall_<nr>"
// when libseccomp does not know it (a call newer than the library).
func SyscallName(nr int) string {
	return syscallNameArch(nr, nativeArch())
}

func syscallNameArch(nr int, arch libseccomp.ScmpArch) string {
	if name, err := libseccomp.ScmpSyscall(nr).GetNameByArch(arch); err == nil {
		return name
	}
	return "syscall_" + strconv.Itoa(nr)
}
