package stage

// #include "stage.h"
import "C"

import (
	"bytes"
	"encoding/binary"
	"syscall"
)

// What the jail's stages (see the package documentation) exchange; every
// message is laid out in wire_doc.go (Go files named without a package are
// internal/supervisor's). The supervisor writes a spec (below)
// to the helper's fd 3; init is the helper's clone and has it already.
// Helper and init report events as JSON lines on a shared status pipe
// (fd 4); each line is one write shorter than PIPE_BUF, so lines never
// interleave.
//
// Every value both sides must agree on is stage.h's, read here through
// cgo: there is no second spelling to drift. Integers are in native byte
// order on every channel (encoder), as the C reads them.
const (
	HelperArg0 = C.HELPER_ARG0
	// SpawnerArg0 is the argv[0] under which the binary becomes the
	// spawner (spawner.c): one small process per supervisor that forks a
	// helper for each jail.
	SpawnerArg0 = C.SPAWNER_ARG0
	SpawnerFD   = C.SPAWNER_FD

	SpecFD    = C.SPEC_FD    // spec in, read to EOF
	StatusFD  = C.STATUS_FD  // events out
	ControlFD = C.CONTROL_FD // commands from the supervisor (below)
	// The caller's extra files follow from fd 6; the program gets them
	// from fd 3. A pooled jail (spec.Pooled) has no extra files when it is
	// built; its request socket takes the first extra slot instead (pool.go).
	HelperExtraFD   = C.HELPER_EXTRA_FD
	HelperRequestFD = HelperExtraFD

	specMagic      = C.SPEC_MAGIC
	execStageMagic = C.EXEC_MAGIC // ExecSettings, inside the spec

	// MaxRequestLen caps a pooled jail's request body (pool.go, init.c).
	MaxRequestLen = C.MAX_REQUEST
	// MaxJoinLen caps ControlJoin's list (instance.go's joinLater, helper.c).
	MaxJoinLen = C.MAX_JOIN_LEN
	// MaxEtcCopy is the largest /etc file copied rather than bound
	// (rootfs.go, roottemplate.go, mount.c).
	MaxEtcCopy = C.MAX_COPY
)

// Control commands, one or two bytes each. EOF means the supervisor died,
// and kills the jail like ControlKill.
const (
	ControlKill   = C.CONTROL_KILL   // kill the whole jail
	ControlSignal = C.CONTROL_SIGNAL // followed by a signal number: send it to the program's process group
	// ControlJoin is followed by a u32 length and that many bytes: the
	// cgroup v1 "tasks" files of a JoinLater jail (strs). Sent once, before
	// any other command but ControlKill.
	ControlJoin = C.CONTROL_JOIN
)

// Values of stage.h that package jail spells as literals too, so that go
// doc shows them; package jail holds its own to these (through
// internal/supervisor's).
const (
	MaxExtra    = C.MAX_EXTRA
	JailUID     = C.JAIL_UID
	JailGID     = C.JAIL_GID
	DefaultPath = C.DEFAULT_PATH
	// EgressPort is the egress proxy's port on a jail's lo (proxy.c).
	EgressPort = C.EGRESS_PORT
	// HandbackProxy is the byte of the handback socket's message that
	// carries the egress listener (proxy.c); the pty's master comes with 0.
	HandbackProxy = C.HANDBACK_PROXY
)

// The fds of the helper and the spawner are laid out by the order of their
// ExtraFiles, which start at fd 3 (internal/supervisor's launchHelper and
// startSpawner): this does not compile unless both sides agree (a
// duplicate key false).
func _() {
	_ = map[bool]int{false: 0, SpecFD == 3 && StatusFD == 4 && ControlFD == 5 && HelperExtraFD == 6: 1}
	_ = map[bool]int{false: 0, SpawnerFD == 3: 1}
}

// IDs are the host ids a jail maps to (internal/supervisor's lease).
type IDs struct {
	Init, Jail uint32
	// Privileged: Init and Jail are both mapped (ids from the range);
	// otherwise Jail is the supervisor's own uid and GID is the host gid
	// of the jail's group.
	Privileged bool
	GID        uint32
}

// Spec is everything the jail's stages need, resolved on the host.
type Spec struct {
	Path     string   // program as given (looked up in the jail's PATH)
	Args     []string // argv, Args[0] is the program name
	Env      []string
	Dir      string
	Hostname string
	IDs      IDs
	// Root: brig's own part of a jail's root (rootfs.go's rootOwn), which
	// init applies before the scratch binds and Mounts; empty with
	// Template, which holds it already.
	Root []Mount
	// Mounts in order; sources are absolute host paths with symlinks resolved.
	Mounts []Mount
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
	// Proxy: init makes a listener at 127.0.0.1:EgressPort in the jail's
	// network namespace and hands it up on the handback socket (egress.go,
	// proxy.c); needs NewNet.
	Proxy bool
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
	// files later on the control pipe (ControlJoin), the helper opens them
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

	Exec ExecSettings
}

// Mount is one entry of a jail's root: a bind (Source onto Target),
// a copy, a symlink, a scratch tmpfs directory, or one of brig's own
// entries (Dir, File, Device). Both builders apply the same entries:
// mount.c's apply_mount in a jail's own root, roottemplate.go's apply in a
// template.
type Mount struct {
	Source   string // host path (with Dir and Tmpfs: the tmpfs's options)
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
	// scratch tmpfs (Config.Tmpfs). With Dir: Target gets a tmpfs of its
	// own, mounted with Source's options, nosuid and noexec (devices
	// allowed: /dev), read-only once the root is built.
	Tmpfs bool
	// Dir: Target is made a directory of mode Mode.
	Dir bool
	// File: Target is made a regular file of mode Mode holding Content.
	File    bool
	Content string
	Mode    uint32
	// Device: the host's device node Source is bound onto Target, nosuid
	// and noexec, devices allowed.
	Device bool
}

const (
	specNewNet     = C.SPEC_NEW_NET
	specPooled     = C.SPEC_POOLED
	specPrivileged = C.SPEC_PRIVILEGED
	specPrefork    = C.SPEC_PREFORK
	specJoinLater  = C.SPEC_JOIN_LATER
	specTemplate   = C.SPEC_TEMPLATE
	specTTY        = C.SPEC_TTY   // the handback socket follows the template's fd (tty.go)
	specProxy      = C.SPEC_PROXY // the handback socket carries the egress listener up (egress.go)

	mountWritable = C.MOUNT_WRITABLE
	mountOptional = C.MOUNT_OPTIONAL
	mountCopy     = C.MOUNT_COPY
	mountCheckID  = C.MOUNT_CHECK_ID
	mountIDMap    = C.MOUNT_IDMAP
	mountTmpfs    = C.MOUNT_TMPFS
	mountDir      = C.MOUNT_DIR
	mountFile     = C.MOUNT_FILE
	mountDevice   = C.MOUNT_DEVICE
)

// Encoder lays values out as wire.c's reader takes them: native-endian
// integers, strings as a 32-bit length and the bytes.
type Encoder struct{ bytes.Buffer }

// U32 and U64 append in place (binary.Write would allocate for each).
func (e *Encoder) U32(v uint32) { e.Write(binary.NativeEndian.AppendUint32(e.AvailableBuffer(), v)) }
func (e *Encoder) U64(v uint64) { e.Write(binary.NativeEndian.AppendUint64(e.AvailableBuffer(), v)) }
func (e *Encoder) Str(s string) { e.U32(uint32(len(s))); e.WriteString(s) }
func (e *Encoder) Strs(v []string) {
	e.U32(uint32(len(v)))
	for _, s := range v {
		e.Str(s)
	}
}

// mounts lays a list of root entries out as wire.c's get_mounts reads it.
func (e *Encoder) mounts(ms []Mount) {
	e.U32(uint32(len(ms)))
	for _, m := range ms {
		e.Str(m.Source)
		e.Str(m.Target)
		e.Str(m.Symlink)
		e.Str(m.Content)
		e.U32(boolFlag(m.Writable, mountWritable) | boolFlag(m.Optional, mountOptional) | boolFlag(m.Copy, mountCopy) |
			boolFlag(m.CheckID, mountCheckID) | boolFlag(m.IDMap, mountIDMap) | boolFlag(m.Tmpfs, mountTmpfs) |
			boolFlag(m.Dir, mountDir) | boolFlag(m.File, mountFile) | boolFlag(m.Device, mountDevice))
		e.U32(m.Mode)
		e.U64(m.Dev)
		e.U64(m.Ino)
		e.U32(m.OwnerUID)
		e.U32(m.OwnerGID)
	}
}

func boolFlag(b bool, flag uint32) uint32 {
	if b {
		return flag
	}
	return 0
}

// Encode lays the spec out as wire.c's parse_spec reads it.
func (s *Spec) Encode() []byte {
	var e Encoder
	e.WriteString(specMagic)
	e.U32(boolFlag(s.NewNet, specNewNet) | boolFlag(s.Pooled, specPooled) | boolFlag(s.IDs.Privileged, specPrivileged) | boolFlag(s.Prefork, specPrefork) | boolFlag(s.JoinLater, specJoinLater) | boolFlag(s.Template, specTemplate) |
		boolFlag(s.TTY, specTTY) | boolFlag(s.Proxy, specProxy))
	e.U32(s.IDs.Init)
	e.U32(s.IDs.Jail)
	e.U32(s.IDs.GID)
	e.Str(s.Path)
	e.Strs(s.Args)
	e.Strs(s.Env)
	e.Str(s.Dir)
	e.Str(s.Hostname)
	e.U64(uint64(s.TmpfsSize))
	e.mounts(s.Root)
	e.mounts(s.Mounts)
	e.Str(s.CgroupDir)
	e.Strs(s.ProcsFiles)
	e.Strs(s.JoinTasks)
	e.Strs(s.HomeTasks)
	e.Strs(s.IPCSysctls)
	exec := s.Exec.Encode()
	e.U32(uint32(len(exec)))
	e.Write(exec)
	return e.Bytes()
}

// Event is one status line.
type Event struct {
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

// Cause is the failure an "error" or "warning" event reports: its text,
// and its errno to errors.Is.
func (ev *Event) Cause() error {
	return &stageError{msg: ev.Err, errno: syscall.Errno(ev.Errno)}
}

// stageError is a failure the helper or init reported: its text, which
// already spells the errno where it matters, and the errno itself, so
// that errors.Is(err, syscall.ENOENT) holds through jail.SetupError.
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
