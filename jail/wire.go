package jail

import (
	"bytes"
	"encoding/binary"
	"syscall"
)

// What the jail's stages (see the package documentation) exchange. The
// supervisor writes a spec (below) to the helper's fd 3; init is the
// helper's clone and has it already. Helper and init report events as JSON
// lines on a shared status pipe (fd 4); each line is one write shorter than
// PIPE_BUF, so lines never interleave.
const (
	helperArg0 = "brig:helper"

	specFD    = 3 // spec in, read to EOF
	statusFD  = 4 // events out
	controlFD = 5 // commands from the supervisor (below)
	// The caller's extra files follow from fd 6; the program gets them
	// from fd 3. A pooled jail (spec.Pooled) has no extra files when it is
	// built; its request socket takes the first extra slot instead (pool.go).
	helperExtraFD   = 6
	helperRequestFD = helperExtraFD

	specMagic = "BRIGSPEC3"
)

// Control commands, one or two bytes each. EOF means the supervisor died,
// and kills the jail like controlKill.
const (
	controlKill   = 'k' // kill the whole jail
	controlSignal = 's' // followed by a signal number: send it to the program's process group
	// controlJoin is followed by a u32 length and that many bytes: the
	// cgroup v1 "tasks" files of a JoinLater jail (strs). Sent once, before
	// any other command but controlKill.
	controlJoin = 'j'
)

// spec is everything the jail's stages need, resolved on the host.
type spec struct {
	Path     string   // program as given (looked up in the jail's PATH)
	Args     []string // argv, Args[0] is the program name
	Env      []string
	Dir      string
	Hostname string
	Etc      []string // the jail's identity files, identityFiles' order
	IDs      hostIDLease
	// Mounts in order; sources are absolute host paths with symlinks resolved.
	Mounts []mountSpec
	// Template: the root template's fd follows the extra files (and a
	// pooled jail's request socket); init clones it as the jail's root and
	// Mounts holds none of the system mounts (roottemplate.go).
	Template  bool
	TmpfsSize int64
	NewNet    bool
	// Pooled: Path, Args and Env are empty; init builds the whole jail,
	// reports "ready" and waits for a request (pool.go) before it starts
	// the exec stage.
	Pooled bool
	// TTY: the program gets a pty of the jail's own devpts (tty.go).
	TTY bool
	// Prefork (pooled only): the program's process is started ahead, drops
	// its privileges, loads seccomp, reports "ready" itself and then reads
	// the request. Only with the default policy, which allows what reading
	// it takes.
	Prefork bool

	// Cgroup placement of init: Dir for clone3 into a v2 cgroup; for v1
	// the helper moves itself into JoinTasks, clones init and goes back to
	// HomeTasks (cgroup.Limiter's SelfMove), or, when it may not, writes
	// init's pid into ProcsFiles.
	//
	// JoinLater (a cold jail on cgroup v1): none of those; the cgroups are
	// made while the jail is built. The supervisor sends their "tasks"
	// files later on the control pipe (controlJoin), the helper opens them
	// and passes them to init, and init writes "0" into each, moving itself
	// (cgroup v1 checks the opener's credentials, and a thread moving
	// itself takes no global lock) before it starts anything of the caller's.
	JoinLater  bool
	CgroupDir  string
	ProcsFiles []string
	JoinTasks  []string
	HomeTasks  []string

	// IPCSysctls: the jail's SysV IPC limits (ipclimits.go), written by
	// init into its IPC namespace before it builds the jail.
	IPCSysctls []string

	Exec execSettings
}

type mountSpec struct {
	Source   string // host path
	Target   string // jail path
	Writable bool
	Optional bool // skip silently when Source does not exist
	Symlink  string
	Copy     bool // a small file: copied into the jail's root, not bound
	// CheckID: Source (which has no symlink) must open, without following
	// one, to the file Dev and Ino name (a caller's bind, rootfs.go).
	CheckID  bool
	Dev, Ino uint64
	// IDMap: an idmapped mount on which OwnerUID:OwnerGID on the host is
	// the jail's user (Bind.IDMap).
	IDMap              bool
	OwnerUID, OwnerGID uint32
	// Tmpfs: no Source; Target gets a fresh directory of the jail's
	// scratch tmpfs (Config.Tmpfs).
	Tmpfs bool
}

const (
	specNewNet     = 1
	specPooled     = 2
	specPrivileged = 4
	specPrefork    = 8
	specJoinLater  = 16
	specTemplate   = 32
	specTTY        = 128 // a tty socket follows the template's fd (tty.go)

	mountWritable = 1
	mountOptional = 2
	mountCopy     = 4
	mountCheckID  = 8
	mountIDMap    = 16
	mountTmpfs    = 32
)

// encoder lays values out as stage.c's reader takes them: native-endian
// integers, strings as a 32-bit length and the bytes.
type encoder struct{ bytes.Buffer }

func (e *encoder) u32(v uint32) { _ = binary.Write(&e.Buffer, binary.NativeEndian, v) }
func (e *encoder) u64(v uint64) { _ = binary.Write(&e.Buffer, binary.NativeEndian, v) }
func (e *encoder) str(s string) { e.u32(uint32(len(s))); e.WriteString(s) }
func (e *encoder) strs(v []string) {
	e.u32(uint32(len(v)))
	for _, s := range v {
		e.str(s)
	}
}

func boolFlag(b bool, flag uint32) uint32 {
	if b {
		return flag
	}
	return 0
}

// encode lays the spec out as stage.c's parse_spec reads it.
func (s *spec) encode() []byte {
	var e encoder
	e.WriteString(specMagic)
	e.u32(boolFlag(s.NewNet, specNewNet) | boolFlag(s.Pooled, specPooled) | boolFlag(s.IDs.Privileged, specPrivileged) | boolFlag(s.Prefork, specPrefork) | boolFlag(s.JoinLater, specJoinLater) | boolFlag(s.Template, specTemplate) |
		boolFlag(s.TTY, specTTY))
	e.u32(s.IDs.Init)
	e.u32(s.IDs.Jail)
	e.u32(s.IDs.GID)
	e.str(s.Path)
	e.strs(s.Args)
	e.strs(s.Env)
	e.str(s.Dir)
	e.str(s.Hostname)
	e.strs(s.Etc)
	e.u64(uint64(s.TmpfsSize))
	e.u32(uint32(len(s.Mounts)))
	for _, m := range s.Mounts {
		e.str(m.Source)
		e.str(m.Target)
		e.str(m.Symlink)
		e.u32(boolFlag(m.Writable, mountWritable) | boolFlag(m.Optional, mountOptional) | boolFlag(m.Copy, mountCopy) |
			boolFlag(m.CheckID, mountCheckID) | boolFlag(m.IDMap, mountIDMap) | boolFlag(m.Tmpfs, mountTmpfs))
		e.u64(m.Dev)
		e.u64(m.Ino)
		e.u32(m.OwnerUID)
		e.u32(m.OwnerGID)
	}
	e.str(s.CgroupDir)
	e.strs(s.ProcsFiles)
	e.strs(s.JoinTasks)
	e.strs(s.HomeTasks)
	e.strs(s.IPCSysctls)
	exec := s.Exec.encode()
	e.u32(uint32(len(exec)))
	e.Write(exec)
	return e.Bytes()
}

// event is one status line.
type event struct {
	Kind string `json:"k"` // "init", "error", "warning", "ready", "started", "exit", "done"
	// init: init's pid on the host
	Pid int `json:"pid,omitempty"`
	// error, warning: the step, the cause's text and its errno (0: none)
	Step  string `json:"step,omitempty"`
	Err   string `json:"err,omitempty"`
	Errno int    `json:"errno,omitempty"`
	// exit: the program's status as init saw it
	Code     int   `json:"code,omitempty"`
	Signal   int   `json:"sig,omitempty"`
	MaxRSSKB int64 `json:"rss,omitempty"` // largest program process seen by init
	// done: init's usage as the helper reaped it (every process of the jail)
	UserUS int64 `json:"ut,omitempty"`
	SysUS  int64 `json:"st,omitempty"`
}

// setupError is the SetupError an "error" event reports.
func (ev *event) setupError() *SetupError {
	return &SetupError{Step: ev.Step, Err: &stageError{msg: ev.Err, errno: syscall.Errno(ev.Errno)}}
}

// stageError is a failure the helper or init reported: its text, which
// already spells the errno where it matters, and the errno itself, so
// that errors.Is(err, syscall.ENOENT) holds through a SetupError.
type stageError struct {
	msg   string
	errno syscall.Errno
}

func (e *stageError) Error() string { return e.msg }

func (e *stageError) Unwrap() error {
	if e.errno == 0 {
		return nil
	}
	return e.errno
}
