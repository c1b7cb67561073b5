package seccomp

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ParseOCI reads a seccomp profile in the OCI runtime-spec format
// (LinuxSeccomp: the "seccomp" object of a config.json), which is also the
// format of Docker and Podman profiles.
//
// Differences from runc, all on the side of refusing more:
//   - Only the native architecture is filtered. "architectures" is ignored:
//     calls through other ABIs get the default action, as they do under
//     Policy.
//   - SCMP_ACT_KILL and SCMP_ACT_KILL_THREAD kill the whole process.
//   - SCMP_ACT_TRACE and SCMP_ACT_NOTIFY need a tracer or a listener that a
//     brig jail does not have; a profile that uses them is an error.
//   - "flags", "listenerPath" and "listenerMetadata" are ignored.
//
// Docker's profiles also carry "includes"/"excludes" on each rule (kernel
// version, architectures, capabilities), which the OCI types lack. A rule
// meant only for processes holding some capability would otherwise be
// applied to everyone, granting mount or bpf to a jail with no capabilities
// at all. ParseOCI therefore reads them and resolves them for a jail: no
// capabilities, the native architecture, the running kernel.
func ParseOCI(data []byte) (*Policy, error) {
	var spec specs.LinuxSeccomp
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("parse OCI seccomp profile: %w", err)
	}
	// The same rules again, for the Docker-only fields.
	var extra struct {
		Syscalls []struct {
			Includes dockerFilter `json:"includes"`
			Excludes dockerFilter `json:"excludes"`
		} `json:"syscalls"`
	}
	if err := json.Unmarshal(data, &extra); err != nil {
		return nil, fmt.Errorf("parse OCI seccomp profile: %w", err)
	}

	p := &Policy{}
	var err error
	if p.DefaultAction, p.DefaultErrno, err = fromOCIAction(spec.DefaultAction, spec.DefaultErrnoRet); err != nil {
		return nil, fmt.Errorf("parse OCI seccomp profile: default action: %w", err)
	}
	for i, sc := range spec.Syscalls {
		if i < len(extra.Syscalls) && !applies(extra.Syscalls[i].Includes, extra.Syscalls[i].Excludes) {
			continue
		}
		r := Rule{Names: slices.Clone(sc.Names)}
		if r.Action, r.Errno, err = fromOCIAction(sc.Action, sc.ErrnoRet); err != nil {
			return nil, fmt.Errorf("parse OCI seccomp profile: syscalls[%d]: %w", i, err)
		}
		for _, a := range sc.Args {
			arg := Arg{Index: a.Index, Value: a.Value}
			switch a.Op {
			case specs.OpEqualTo:
				arg.Op = OpEqual
			case specs.OpNotEqual:
				arg.Op = OpNotEqual
			case specs.OpLessThan:
				arg.Op = OpLess
			case specs.OpLessEqual:
				arg.Op = OpLessEqual
			case specs.OpGreaterThan:
				arg.Op = OpGreater
			case specs.OpGreaterEqual:
				arg.Op = OpGreaterEqual
			case specs.OpMaskedEqual:
				// OCI, like libseccomp, puts the mask first.
				arg.Op, arg.Mask, arg.Value = OpMaskedEqual, a.Value, a.ValueTwo
			default:
				return nil, fmt.Errorf("parse OCI seccomp profile: syscalls[%d]: unknown operator %q", i, a.Op)
			}
			r.Args = append(r.Args, arg)
		}
		p.Rules = append(p.Rules, r)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("parse OCI seccomp profile: %w", err)
	}
	return p, nil
}

// LoadOCIFile reads an OCI/Docker seccomp profile from a file.
func LoadOCIFile(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load OCI seccomp profile: %w", err)
	}
	p, err := ParseOCI(data)
	if err != nil {
		return nil, fmt.Errorf("load OCI seccomp profile %s: %w", path, err)
	}
	return p, nil
}

// OCI converts the policy to the OCI runtime-spec format, which runc,
// crun, Docker (--security-opt seccomp=file.json) and Podman load. The
// result has no "architectures": OCI runtimes then filter only the native
// one, as brig does.
func (p *Policy) OCI() specs.LinuxSeccomp {
	out := specs.LinuxSeccomp{DefaultAction: toOCIAction(p.DefaultAction)}
	if p.DefaultAction == ActErrno {
		e := errnoOrEPERM(p.DefaultErrno)
		out.DefaultErrnoRet = &e
	}
	for _, r := range p.Rules {
		sc := specs.LinuxSyscall{Names: slices.Clone(r.Names), Action: toOCIAction(r.Action)}
		if r.Action == ActErrno {
			e := errnoOrEPERM(r.Errno)
			sc.ErrnoRet = &e
		}
		for _, a := range r.Args {
			arg := specs.LinuxSeccompArg{Index: a.Index, Value: a.Value}
			switch a.Op {
			case OpEqual:
				arg.Op = specs.OpEqualTo
			case OpNotEqual:
				arg.Op = specs.OpNotEqual
			case OpLess:
				arg.Op = specs.OpLessThan
			case OpLessEqual:
				arg.Op = specs.OpLessEqual
			case OpGreater:
				arg.Op = specs.OpGreaterThan
			case OpGreaterEqual:
				arg.Op = specs.OpGreaterEqual
			case OpMaskedEqual:
				arg.Op, arg.Value, arg.ValueTwo = specs.OpMaskedEqual, a.Mask, a.Value
			}
			sc.Args = append(sc.Args, arg)
		}
		out.Syscalls = append(out.Syscalls, sc)
	}
	return out
}

func errnoOrEPERM(e uint) uint {
	if e == 0 {
		return eperm
	}
	return e
}

func fromOCIAction(a specs.LinuxSeccompAction, errnoRet *uint) (Action, uint, error) {
	switch a {
	case specs.ActAllow:
		return ActAllow, 0, nil
	case specs.ActErrno:
		// runc's default for a missing errnoRet is EPERM.
		if errnoRet == nil {
			return ActErrno, eperm, nil
		}
		if *errnoRet == 0 || *errnoRet > 4095 {
			return "", 0, fmt.Errorf("errnoRet %d out of range 1..4095", *errnoRet)
		}
		return ActErrno, *errnoRet, nil
	case specs.ActKill, specs.ActKillThread, specs.ActKillProcess:
		return ActKill, 0, nil
	case specs.ActLog:
		return ActLog, 0, nil
	case specs.ActTrap:
		return ActTrap, 0, nil
	case specs.ActTrace, specs.ActNotify:
		return "", 0, fmt.Errorf("action %s needs a tracer or listener, which a brig jail does not have", a)
	}
	return "", 0, fmt.Errorf("unknown action %q", a)
}

func toOCIAction(a Action) specs.LinuxSeccompAction {
	switch a {
	case ActAllow:
		return specs.ActAllow
	case ActErrno:
		return specs.ActErrno
	case ActKill:
		return specs.ActKillProcess
	case ActLog:
		return specs.ActLog
	case ActTrap:
		return specs.ActTrap
	}
	return specs.LinuxSeccompAction(a)
}

// dockerFilter is the "includes"/"excludes" object of Docker's profiles.
type dockerFilter struct {
	Arches    []string `json:"arches"`
	Caps      []string `json:"caps"`
	MinKernel string   `json:"minKernel"`
}

// applies decides whether a Docker rule applies inside a brig jail, which
// holds no capabilities and runs on the native architecture of this kernel.
func applies(inc, exc dockerFilter) bool {
	if len(inc.Caps) > 0 {
		return false // needs a capability the jail never has
	}
	if len(inc.Arches) > 0 && !slices.Contains(inc.Arches, runtime.GOARCH) {
		return false
	}
	if len(exc.Arches) > 0 && slices.Contains(exc.Arches, runtime.GOARCH) {
		return false
	}
	if inc.MinKernel != "" && !kernelAtLeast(inc.MinKernel) {
		return false
	}
	// exc.Caps: the jail holds none of them, so the rule stays.
	return true
}

// kernelAtLeast compares "major.minor" with the running kernel. An
// unparsable version counts as not satisfied: dropping an allow rule is the
// safe mistake.
func kernelAtLeast(want string) bool {
	wantMaj, wantMin, ok := parseKernelVersion(want)
	if !ok {
		return false
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return false
	}
	maj, minor, ok := parseKernelVersion(unix.ByteSliceToString(uts.Release[:]))
	if !ok {
		return false
	}
	return maj > wantMaj || (maj == wantMaj && minor >= wantMin)
}

func parseKernelVersion(s string) (int, int, bool) {
	majS, rest, ok := strings.Cut(s, ".")
	if !ok {
		return 0, 0, false
	}
	minS := rest
	if i := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minS = rest[:i]
	}
	maj, err1 := strconv.Atoi(majS)
	minor, err2 := strconv.Atoi(minS)
	return maj, minor, err1 == nil && err2 == nil
}
