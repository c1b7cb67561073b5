package sandboxd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/brig-sandbox/brig/cgroup"
	"github.com/brig-sandbox/brig/internal/hostile"
	"github.com/brig-sandbox/brig/jail"
)

// TestMain leaves the host's cgroups as it found them, as the jail
// package's tests do, and fails the run when a jail of this process left
// a cgroup behind.
func TestMain(m *testing.M) {
	code := m.Run()
	cgroup.RemoveIdle()
	if left := jailCgroupsOf(os.Getpid()); len(left) > 0 && code == 0 {
		fmt.Fprintln(os.Stderr, "cgroups left behind:", left)
		code = 1
	}
	if os.Geteuid() == 0 {
		if err := cgroup.RemoveParent(cgroup.Options{}); err != nil && !errors.Is(err, syscall.EBUSY) {
			fmt.Fprintln(os.Stderr, "remove cgroup parents:", err)
		}
	}
	os.Exit(code)
}

// jailCgroupsOf lists the cgroup directories of supervisor pid's jails.
func jailCgroupsOf(pid int) []string {
	var dirs []string
	for d := range hostile.Snapshot(hostile.JailIDs{First: jail.DefaultSupervisor.HostIDs().First, Count: jail.DefaultSupervisor.HostIDs().Count}).Cgroups {
		if strings.HasPrefix(filepath.Base(d), fmt.Sprintf("brig-%d-", pid)) {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// jailProcesses lists the processes on the host that run as a jail's user
// (DefaultSupervisor.HostIDs()) and descend from this test process.
func jailProcesses() []int {
	self := os.Getpid()
	ents, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	uid := map[int]uint32{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			switch {
			case len(f) >= 2 && f[0] == "PPid:":
				parent[pid], _ = strconv.Atoi(f[1])
			case len(f) >= 2 && f[0] == "Uid:":
				u, _ := strconv.ParseUint(f[1], 10, 32)
				uid[pid] = uint32(u)
			}
		}
	}
	var out []int
	for pid, u := range uid {
		if u < jail.DefaultSupervisor.HostIDs().First || u-jail.DefaultSupervisor.HostIDs().First >= jail.DefaultSupervisor.HostIDs().Count {
			continue
		}
		for p, n := parent[pid], 0; p > 1 && n < 64; p, n = parent[p], n+1 {
			if p == self {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}
