package hostile

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Host is what the host looked like at one moment: the things a jail
// could leave behind. Diff says what appeared between two snapshots.
type Host struct {
	Mounts   map[string]bool // mountinfo lines (mount id and mount point) of the host's mount namespace
	Cgroups  map[string]bool // jail cgroup directories (brig-PID-START-N) anywhere under /sys/fs/cgroup
	SysvIPC  map[string]bool // SysV shm, sem and msg ids of the host's IPC namespace
	Files    map[string]bool // entries of /tmp, /var/tmp, /dev/shm and /dev/mqueue owned by a jail id
	Orphans  map[string]bool // jail processes with no live brig helper above them
	jailUIDs func(uint32) bool
}

// JailIDs says which host uids belong to jails: the privileged range, and
// the unprivileged caller's own uid when the runs are unprivileged.
type JailIDs struct {
	First, Count uint32
	Extra        []uint32 // single uids
	More         []JailIDs
}

func (j JailIDs) has(uid uint32) bool {
	if (uid >= j.First && uint64(uid) < uint64(j.First)+uint64(j.Count)) || slices.Contains(j.Extra, uid) {
		return true
	}
	for _, m := range j.More {
		if m.has(uid) {
			return true
		}
	}
	return false
}

var cgroupNameRE = regexp.MustCompile(`^brig-([0-9]+)-([0-9]+)-([0-9]+)$`)

// Snapshot takes a snapshot of the host.
func Snapshot(ids JailIDs) *Host {
	h := &Host{Mounts: map[string]bool{}, Cgroups: map[string]bool{}, SysvIPC: map[string]bool{},
		Files: map[string]bool{}, Orphans: map[string]bool{}, jailUIDs: ids.has}
	if b, err := os.ReadFile("/proc/1/mountinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			// Outboxes are the bait of runners (this one's or another's
			// running at the same time), mounted and unmounted by them.
			if f := strings.Fields(l); len(f) > 4 && !strings.Contains(f[4], "/brig-outbox-") {
				h.Mounts[f[0]+" "+f[4]] = true
			}
		}
	}
	ents, _ := os.ReadDir("/sys/fs/cgroup")
	for _, e := range ents {
		root := filepath.Join("/sys/fs/cgroup", e.Name())
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if cgroupNameRE.MatchString(d.Name()) {
				h.Cgroups[p] = true
				return filepath.SkipDir
			}
			return nil
		})
	}
	// SysV objects created by a jail uid (the cuid column): a jail's own
	// live in its IPC namespace and never show here.
	for f, cuidCol := range map[string]int{"shm": 9, "sem": 6, "msg": 9} {
		b, _ := os.ReadFile("/proc/sysvipc/" + f)
		for i, l := range strings.Split(string(b), "\n") {
			fl := strings.Fields(l)
			if i == 0 || len(fl) <= cuidCol {
				continue
			}
			if cuid, err := strconv.ParseUint(fl[cuidCol], 10, 32); err == nil && ids.has(uint32(cuid)) {
				h.SysvIPC[f+" key="+fl[0]+" id="+fl[1]] = true
			}
		}
	}
	for _, dir := range []string{"/tmp", "/var/tmp", "/dev/shm", "/dev/mqueue"} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if fi, err := e.Info(); err == nil {
				if st, ok := fi.Sys().(*syscall.Stat_t); ok && ids.has(st.Uid) {
					h.Files[filepath.Join(dir, e.Name())] = true
				}
			}
		}
	}
	for _, p := range orphans(ids) {
		h.Orphans[p] = true
	}
	return h
}

// Children lists the processes whose parent is pid, by their argv[0]
// (empty for a zombie).
func Children(pid int) map[int]string {
	kids := map[int]string{}
	for _, p := range readProcs() {
		if p.ppid == pid {
			kids[p.pid] = p.arg0
		}
	}
	return kids
}

type proc struct {
	pid, ppid int
	uid       uint32
	arg0      string
	state     string
}

func readProcs() map[int]proc {
	procs := map[int]proc{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, _ := strconv.Atoi(filepath.Base(d))
		st, err := os.ReadFile(d + "/status")
		if err != nil {
			continue
		}
		p := proc{pid: pid}
		for _, l := range strings.Split(string(st), "\n") {
			if v, ok := strings.CutPrefix(l, "State:"); ok {
				p.state = strings.TrimSpace(v)
			}
			if v, ok := strings.CutPrefix(l, "PPid:"); ok {
				p.ppid, _ = strconv.Atoi(strings.TrimSpace(v))
			}
			if v, ok := strings.CutPrefix(l, "Uid:"); ok {
				if f := strings.Fields(v); len(f) > 0 {
					u, _ := strconv.ParseUint(f[0], 10, 32)
					p.uid = uint32(u)
				}
			}
		}
		cmd, _ := os.ReadFile(d + "/cmdline")
		p.arg0, _, _ = strings.Cut(string(cmd), "\x00")
		procs[pid] = p
	}
	return procs
}

// orphans lists the jail processes (a jail uid, or a brig stage by its
// argv[0]) that no live brig helper with a live parent stands above: a
// jail that outlived its supervisor. Jails of other supervisors that are
// still running are not orphans, whoever started them.
func orphans(ids JailIDs) []string {
	procs := readProcs()
	var out []string
	for pid, p := range procs {
		if !ids.has(p.uid) && !strings.HasPrefix(p.arg0, "brig:") {
			continue
		}
		owned := false
		for q, seen := p, 0; seen < 64; seen++ {
			if q.arg0 == "brig:helper" || q.arg0 == "brig:spawner" {
				// A helper is owned while its supervisor (or the
				// supervisor's spawner) lives, a spawner while its
				// supervisor does.
				owned = q.ppid > 1
				break
			}
			next, ok := procs[q.ppid]
			if !ok {
				break
			}
			q = next
		}
		if !owned {
			parent := procs[p.ppid]
			out = append(out, fmt.Sprintf("pid %d uid %d %q (%s) parent %d %q", pid, p.uid, p.arg0, p.state, p.ppid, parent.arg0))
		}
	}
	return out
}

// leaks compares a snapshot taken after a run with one taken before and
// lists what the run left behind. supervisors are the pids whose jails
// have all ended: a cgroup of theirs that still exists is a leak too.
func (after *Host) leaks(before *Host, supervisors ...int) []string {
	var bad []string
	for m := range after.Mounts {
		if !before.Mounts[m] {
			bad = append(bad, "new host mount: "+m)
		}
	}
	for m := range before.Mounts {
		if !after.Mounts[m] {
			bad = append(bad, "host mount gone: "+m)
		}
	}
	// Cgroups of other supervisors (other test runs on the machine, some
	// killed on purpose) are theirs to account for.
	for c := range after.Cgroups {
		m := cgroupNameRE.FindStringSubmatch(filepath.Base(c))
		sup, _ := strconv.Atoi(m[1])
		if slices.Contains(supervisors, sup) {
			state := "jail cgroup left"
			if !alive(sup) {
				state = "stale jail cgroup left"
			}
			bad = append(bad, state+": "+c)
		}
	}
	for k := range after.SysvIPC {
		if !before.SysvIPC[k] {
			bad = append(bad, "new SysV IPC object on the host: "+k)
		}
	}
	for f := range after.Files {
		if !before.Files[f] {
			bad = append(bad, "file of a jail uid on the host: "+f)
		}
	}
	for p := range after.Orphans {
		if !before.Orphans[p] {
			bad = append(bad, "jail process outlived its jail: "+p)
		}
	}
	slices.Sort(bad)
	return bad
}

func alive(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil
}

// SettleLeaks takes snapshots until nothing has leaked or the grace period
// is over (a killed jail takes a moment to be reaped), and returns the
// last list of leaks.
func SettleLeaks(before *Host, ids JailIDs, grace time.Duration, supervisors ...int) []string {
	deadline := time.Now().Add(grace)
	for {
		bad := Snapshot(ids).leaks(before, supervisors...)
		if len(bad) == 0 || time.Now().After(deadline) {
			return bad
		}
		time.Sleep(50 * time.Millisecond)
	}
}
