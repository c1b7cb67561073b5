package supervisor

import (
	"bytes"
	"log/slog"
	"os"
	"sync"
	"syscall"

	"github.com/brig-sandbox/brig/cgroup"
)

// corePatternFile is the kernel's core_pattern, global to the machine.
const corePatternFile = "/proc/sys/kernel/core_pattern"

// coreRlimit is the jail's RLIMIT_CORE: 1 byte, soft and hard. With a
// piped core_pattern (apport, systemd-coredump) the kernel starts the
// host's helper as root for every crash unless the crashed process's limit
// is exactly 1; 0 does not stop it (fs/coredump.c). 1 is below any core
// file, so no file is written either. The filter keeps the jail from
// lowering it (seccomp/coreguard.go).
//
// The exec stage sets it inside the jail's user namespace, where a hard
// limit can only go down: when brig's own hard limit is 0 (a service with
// LimitCORE=0, "* hard core 0" in limits.conf) the jail gets 0 as before,
// and brig says once what that means when core_pattern is a pipe.
var coreRlimit = sync.OnceValue(func() cgroup.Rlimit {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_CORE, &rl); err == nil && rl.Max < 1 {
		if p, err := os.ReadFile(corePatternFile); err == nil && bytes.HasPrefix(p, []byte("|")) {
			slog.Warn("jail: brig's hard RLIMIT_CORE is 0, so a jail's cannot be 1: a crash in a jail runs the host's core helper as root; "+
				"give brig a hard core limit of at least 1 byte (prlimit --core=0:1, systemd LimitCORE=0:1)",
				"core_pattern", string(bytes.TrimSpace(p)))
		}
		return cgroup.Rlimit{Resource: syscall.RLIMIT_CORE, Cur: 0, Max: 0}
	}
	return cgroup.Rlimit{Resource: syscall.RLIMIT_CORE, Cur: 1, Max: 1}
})
