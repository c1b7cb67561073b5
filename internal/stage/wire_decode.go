package stage

// #include <stdlib.h>
// #include "stage.h"
// #include "wire.h"
import "C"

import (
	"unsafe"

	"github.com/brig-sandbox/brig/cgroup"
)

// decodeSpec reads b as the helper does, with wire.c's parse_spec, and
// gives back the spec the helper would build the jail from. Tests hold it
// to the spec that encoded b (TestSpecRoundTrip): a field moved, added or
// dropped on one side only is a failed test, not a jail built from the
// wrong fields, and the constants stage.h shares cannot catch that. It
// leaks what parse_spec allocates, as the helper may; tests only.
func decodeSpec(b []byte) (*Spec, bool) {
	p := C.CBytes(b)
	defer C.free(p)
	r := C.struct_reader{p: (*C.uint8_t)(p), n: C.size_t(len(b))}
	var cs C.struct_spec
	if C.parse_spec(&r, &cs) < 0 {
		return nil, false
	}
	flags := uint32(cs.flags)
	s := &Spec{
		Path:       C.GoString(cs.path),
		Args:       goStrs(cs.args),
		Env:        goStrs(cs.env),
		Dir:        C.GoString(cs.dir),
		Hostname:   C.GoString(cs.hostname),
		IDs:        IDs{Init: uint32(cs.init_id), Jail: uint32(cs.jail_id), GID: uint32(cs.gid), Privileged: flags&specPrivileged != 0},
		Template:   flags&specTemplate != 0,
		TmpfsSize:  int64(cs.tmpfs_size),
		NewNet:     flags&specNewNet != 0,
		Pooled:     flags&specPooled != 0,
		TTY:        flags&specTTY != 0,
		Proxy:      flags&specProxy != 0,
		Prefork:    flags&specPrefork != 0,
		JoinLater:  flags&specJoinLater != 0,
		CgroupDir:  C.GoString(cs.cgroup_dir),
		ProcsFiles: goStrs(cs.procs_files),
		JoinTasks:  goStrs(cs.join_tasks),
		HomeTasks:  goStrs(cs.home_tasks),
		IPCSysctls: goStrs(cs.ipc_sysctls),
	}
	s.Root = goMounts(cs.root, cs.nroot)
	s.Mounts = goMounts(cs.mounts, cs.nmounts)
	e := cs.exec
	s.Exec = ExecSettings{UID: uint32(e.uid), GID: uint32(e.gid), Extra: int(e.nextra)}
	for _, rl := range unsafe.Slice(e.rlimits, e.nrlimits) {
		s.Exec.Rlimits = append(s.Exec.Rlimits, cgroup.Rlimit{Resource: int(rl.resource), Cur: uint64(rl.cur), Max: uint64(rl.max)})
	}
	if e.filter_len > 0 {
		s.Exec.Seccomp = C.GoBytes(e.filter, C.int(e.filter_len))
	}
	return s, true
}

// goMounts copies n root entries.
func goMounts(ms *C.struct_mount_spec, n C.uint32_t) []Mount {
	var out []Mount
	for _, m := range unsafe.Slice(ms, n) {
		f := uint32(m.flags)
		out = append(out, Mount{
			Source: C.GoString(m.source), Target: C.GoString(m.target), Symlink: C.GoString(m.symlink),
			Writable: f&mountWritable != 0, Optional: f&mountOptional != 0, Copy: f&mountCopy != 0,
			CheckID: f&mountCheckID != 0, Dev: uint64(m.dev), Ino: uint64(m.ino),
			IDMap: f&mountIDMap != 0, OwnerUID: uint32(m.owner_uid), OwnerGID: uint32(m.owner_gid),
			Tmpfs: f&mountTmpfs != 0, Dir: f&mountDir != 0, File: f&mountFile != 0, Device: f&mountDevice != 0,
			Content: C.GoString(m.content), Mode: uint32(m.mode),
		})
	}
	return out
}

// goStrs copies a NULL-terminated array of C strings.
func goStrs(v **C.char) []string {
	var out []string
	for ; v != nil && *v != nil; v = (**C.char)(unsafe.Add(unsafe.Pointer(v), unsafe.Sizeof(*v))) {
		out = append(out, C.GoString(*v))
	}
	return out
}
