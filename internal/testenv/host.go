package testenv

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// AssertHostClean checks that no process whose uid lies in the host id
// range first+count (a test process's jails) is left on the host, and that
// the host's mount table is as it was (CountMounts).
func AssertHostClean(t testing.TB, mountsBefore int, first, count uint32) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		left := JailProcesses(first, count)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("jail processes left on the host: %v", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
	assert.Equal(t, mountsBefore, CountMounts(), "host mount table changed")
}

// JailProcesses lists host processes whose uid lies in first+count.
func JailProcesses(first, count uint32) []string {
	var left []string
	dirs, _ := filepath.Glob("/proc/[0-9]*/status")
	for _, f := range dirs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
				fields := strings.Fields(rest)
				if len(fields) > 0 {
					uid, _ := strconv.ParseUint(fields[0], 10, 32)
					if uid >= uint64(first) && uid < uint64(first)+uint64(count) {
						left = append(left, f)
					}
				}
			}
		}
	}
	return left
}

// CountMounts counts the host mounts that look like a jail's: the staging
// layout init builds (a tmpfs on /tmp, /newroot, /oldroot, /scratch) or a
// proc, devpts or mqueue mounted anywhere but their usual places. A jail
// builds all of these in its own mount namespace, so any of them on the
// host means a jail's mounts leaked; other processes' mounts elsewhere
// (concurrent test runs on a shared machine) do not count.
func CountMounts() int {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		point := f[4]
		fstype := ""
		for i, x := range f {
			if x == "-" && i+1 < len(f) {
				fstype = f[i+1]
			}
		}
		switch {
		case point == "/tmp" && fstype == "tmpfs",
			strings.HasPrefix(point, "/newroot"), strings.HasPrefix(point, "/oldroot"), strings.HasPrefix(point, "/scratch"),
			strings.HasPrefix(point, "/tmp/newroot"), strings.HasPrefix(point, "/tmp/oldroot"), strings.HasPrefix(point, "/tmp/scratch"),
			fstype == "proc" && point != "/proc",
			fstype == "devpts" && point != "/dev/pts",
			fstype == "mqueue" && point != "/dev/mqueue":
			n++
		}
	}
	return n
}

// HostIDs is the host id range of this test process's jails: its own, so
// that the host-clean checks see only its jails when other test runs share
// the machine. The first call picks it and puts it in BRIG_TEST_ID_BASE,
// so that the test binaries a test starts again (a supervisor to kill)
// inherit it.
func HostIDs() (first, count uint32) {
	base, err := strconv.ParseUint(os.Getenv("BRIG_TEST_ID_BASE"), 10, 32)
	if err != nil {
		base = 1_600_000_000 + uint64(os.Getpid()%32768)*4096
		os.Setenv("BRIG_TEST_ID_BASE", strconv.FormatUint(base, 10))
	}
	return uint32(base), 4096
}
