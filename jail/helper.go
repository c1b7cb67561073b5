package jail

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// runHelper is the helper stage. It exists so that the expensive clone with
// a new user namespace (Go cannot vfork then, and copies the parent's page
// tables) happens in a small fresh process, never in the embedding program,
// whatever its size. It starts init in every namespace, places it in its
// cgroups, hands it the spec, kills it when the supervisor says so (or
// vanishes), and reports how much CPU the whole jail used.
func runHelper() {
	status := os.NewFile(statusFD, "status")
	control := os.NewFile(controlFD, "control")
	syscall.CloseOnExec(statusFD)
	syscall.CloseOnExec(controlFD)
	s, err := readSpec(os.NewFile(specFD, "spec"))
	if err != nil {
		reportError(status, "helper", err)
	}

	specR, specW, err := os.Pipe()
	if err != nil {
		reportError(status, "helper: pipe", err)
	}
	flags := uintptr(unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS)
	if s.NewNet {
		flags |= unix.CLONE_NEWNET
	}
	attr := &syscall.SysProcAttr{
		Cloneflags:                 flags,
		GidMappingsEnableSetgroups: false,
		Pdeathsig:                  syscall.SIGKILL,
	}
	setIDMaps(attr, s.IDs)
	// cgroup v2: init is born in the jail's cgroup (clone3 CLONE_INTO_CGROUP).
	var cgroupDir *os.File
	if s.CgroupDir != "" {
		cgroupDir, err = os.Open(s.CgroupDir)
		if err != nil {
			reportError(status, "open cgroup", err)
		}
		attr.UseCgroupFD = true
		attr.CgroupFD = int(cgroupDir.Fd())
	}
	extra := []*os.File{specR, status}
	for i := range s.Exec.Extra {
		extra = append(extra, os.NewFile(uintptr(helperExtraFD+i), "extra"))
	}
	if s.Pooled {
		extra = append(extra, os.NewFile(helperRequestFD, "request"))
	}
	if os.Geteuid() == 0 {
		trees, err := cloneSources(s, 3+len(extra))
		if err != nil {
			reportError(status, "bind", err)
		}
		extra = append(extra, trees...)
	}
	init := &exec.Cmd{
		Path:        "/proc/self/exe",
		Args:        []string{initArg0},
		Env:         []string{},
		Stdin:       os.Stdin,
		Stdout:      os.Stdout,
		Stderr:      os.Stderr,
		ExtraFiles:  extra,
		SysProcAttr: attr,
	}
	if err := init.Start(); err != nil {
		reportError(status, "create namespaces", err)
	}
	// attr holds only the fd's number: the File, whose cleanup closes the
	// fd once it is unreachable (the number then free for another file),
	// must stay alive until the clone has used it.
	if cgroupDir != nil {
		cgroupDir.Close()
	}
	for _, f := range extra[2:] {
		f.Close()
	}
	specR.Close()
	for _, procs := range s.ProcsFiles {
		if err := os.WriteFile(procs, []byte(fmt.Sprint(init.Process.Pid)), 0); err != nil {
			_ = init.Process.Kill()
			_ = init.Wait()
			reportError(status, "join cgroup "+procs, err)
		}
	}
	if err := json.NewEncoder(specW).Encode(s); err != nil {
		_ = init.Process.Kill()
		_ = init.Wait()
		reportError(status, "helper: send spec", err)
	}
	specW.Close()

	report(status, event{Kind: "init", Pid: init.Process.Pid})
	go obey(control, init.Process)
	_ = init.Wait()
	ev := event{Kind: "done"}
	if ru, ok := init.ProcessState.SysUsage().(*syscall.Rusage); ok {
		ev.UserUS = ru.Utime.Sec*1e6 + ru.Utime.Usec
		ev.SysUS = ru.Stime.Sec*1e6 + ru.Stime.Usec
	}
	report(status, ev)
	os.Exit(0)
}

// initCaps are what init needs to build the jail when it cannot be the
// namespace's root (an unprivileged supervisor maps only its own uid).
var initCaps = []uintptr{
	unix.CAP_CHOWN, unix.CAP_DAC_OVERRIDE, unix.CAP_FOWNER, unix.CAP_SETGID, unix.CAP_SETUID,
	unix.CAP_SETPCAP, unix.CAP_NET_ADMIN, unix.CAP_SYS_ADMIN, unix.CAP_SYS_CHROOT,
}

// setIDMaps maps the jail's users. A privileged supervisor maps the jail's
// root to one unprivileged host id and its user 1000 to another; init runs
// as that root, so execve gives it every capability inside the namespace
// and none outside. Host root is never mapped. An unprivileged supervisor
// can map only itself, to 1000; init then keeps the capabilities it needs
// as ambient ones across its execve.
func setIDMaps(attr *syscall.SysProcAttr, ids hostIDLease) {
	if ids.Privileged {
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(ids.Init), Size: 1}, {ContainerID: JailUID, HostID: int(ids.Jail), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(ids.Init), Size: 1}, {ContainerID: JailGID, HostID: int(ids.Jail), Size: 1}}
		attr.Credential = &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true}
		return
	}
	attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: JailUID, HostID: int(ids.Jail), Size: 1}}
	attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: JailGID, HostID: int(ids.GID), Size: 1}}
	attr.Credential = &syscall.Credential{Uid: JailUID, Gid: JailGID, NoSetGroups: true}
	attr.AmbientCaps = initCaps
}

// cloneSources clones every bind source here, on the host, as root, and
// records in the spec which of init's fds (from firstFD on) holds each. The
// jail's own root is an unprivileged host uid that could not even traverse
// a 0700 directory such as /root on the way to a source the caller asked
// for; what the jail may then read inside is still decided by the
// permissions its uid has.
func cloneSources(s *spec, firstFD int) ([]*os.File, error) {
	var files []*os.File
	for i := range s.Mounts {
		m := &s.Mounts[i]
		if m.Symlink != "" {
			continue
		}
		if _, err := os.Lstat(m.Source); err != nil && m.Optional {
			continue
		}
		tree, err := cloneTree(m.Source, m.attr())
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return nil, fmt.Errorf("%s: %w", m.Target, err)
		}
		m.TreeFD = firstFD + len(files)
		files = append(files, os.NewFile(uintptr(tree), m.Source))
	}
	return files, nil
}

// obey carries out the supervisor's control commands until it says kill or
// goes away: EOF is the supervisor dying, and nothing of the jail may
// outlive it.
func obey(control *os.File, init *os.Process) {
	var b [1]byte
	for {
		if _, err := io.ReadFull(control, b[:]); err != nil || b[0] == controlKill {
			_ = init.Signal(syscall.SIGKILL)
			return
		}
		if b[0] != controlSignal {
			continue
		}
		if _, err := io.ReadFull(control, b[:]); err != nil {
			_ = init.Signal(syscall.SIGKILL)
			return
		}
		// init forwards it to the program's process group.
		_ = init.Signal(syscall.Signal(b[0]))
	}
}
