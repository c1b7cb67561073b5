package jail

import (
	"encoding/json"
	"fmt"
	"os"
)

// The stages of a jail, each a re-exec of the running binary told apart by
// argv[0] (see dispatch.go):
//
//	supervisor ──vfork/exec──▶ helper ──clone(namespaces)──▶ init (PID 1) ──fork/exec──▶ exec stage ──execve──▶ program
//
// The supervisor writes a spec to the helper's fd 3; the helper hands it to
// init the same way once init sits in its cgroups. Helper and init report
// events as JSON lines on a shared status pipe (fd 4); each line is written
// whole and is shorter than PIPE_BUF, so lines never interleave.
const (
	helperArg0 = "brig:helper"
	initArg0   = "brig:init"

	specFD    = 3 // spec in, read to EOF
	statusFD  = 4 // events out
	controlFD = 5 // helper only: commands from the supervisor (below)
	// The caller's extra files follow: the helper's from fd 6, init's from
	// fd 5, the program's from fd 3.
	helperExtraFD = 6
	initExtraFD   = 5
	// A pooled jail (spec.Pooled) has no extra files when it is built; its
	// request socket takes the first extra slot instead (see pool.go).
	helperRequestFD = helperExtraFD
	initRequestFD   = initExtraFD
)

// Control commands, one or two bytes each. EOF means the supervisor died,
// and kills the jail like controlKill.
const (
	controlKill   = 'k' // kill the whole jail
	controlSignal = 's' // followed by a signal number: send it to the program's process group
)

// spec is everything the jail's stages need, resolved on the host.
type spec struct {
	Path     string   // program as given (looked up in the jail's PATH)
	Args     []string // argv, Args[0] is the program name
	Env      []string
	Dir      string
	Hostname string
	IDs      hostIDLease
	// Mounts in order; sources are absolute host paths with symlinks resolved.
	Mounts    []mountSpec
	TmpfsSize int64
	NewNet    bool
	// Pooled: Path, Args and Env are empty; init builds the whole jail,
	// reports "ready" and waits for a request (pool.go) before it starts
	// the exec stage.
	Pooled bool `json:",omitempty"`

	// Cgroup placement of init: Dir for clone3 into a v2 cgroup, ProcsFiles for v1.
	CgroupDir  string
	ProcsFiles []string

	Exec execSettings
}

type mountSpec struct {
	Source   string // host path
	Target   string // jail path
	Writable bool
	Optional bool // skip silently when Source does not exist
	Symlink  string
	// TreeFD, when not 0, is init's fd of the source already cloned (with
	// its attributes set) by a privileged helper on the host; see cloneSources.
	TreeFD int
}

// event is one status line.
type event struct {
	Kind string `json:"k"` // "init", "error", "started", "exit", "done"
	// init: init's pid on the host
	Pid int `json:"pid,omitempty"`
	// error
	Step string `json:"step,omitempty"`
	Err  string `json:"err,omitempty"`
	// exit: the program's status as init saw it
	Code     int   `json:"code,omitempty"`
	Signal   int   `json:"sig,omitempty"`
	MaxRSSKB int64 `json:"rss,omitempty"` // largest program process seen by init
	// done: init's usage as the helper reaped it (every process of the jail)
	UserUS int64 `json:"ut,omitempty"`
	SysUS  int64 `json:"st,omitempty"`
}

const maxEventLen = 3500 // below PIPE_BUF (4096) with room for the JSON around it

// report writes one event line on f, cut to fit one atomic pipe write.
func report(f *os.File, ev event) {
	if len(ev.Err) > maxEventLen {
		ev.Err = ev.Err[:maxEventLen]
	}
	b, _ := json.Marshal(ev)
	_, _ = f.Write(append(b, '\n'))
}

// reportError reports a failed step and exits: the stage cannot go on.
func reportError(f *os.File, step string, err error) {
	report(f, event{Kind: "error", Step: step, Err: err.Error()})
	os.Exit(1)
}

func readSpec(f *os.File) (*spec, error) {
	var s spec
	if err := json.NewDecoder(f).Decode(&s); err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	return &s, nil
}
