package sandboxd

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/brig-sandbox/brig/jail"
)

// checkHostIDs refuses, before any jail is built, a root server whose
// jails would map host ids its own user namespace does not have. In a pod
// with hostUsers: false, brig is root of a user namespace that maps 65536
// ids, and the default supervisor's lie far above them: every jail would fail to
// write its uid_map. The error names the ids that are there.
func checkHostIDs(r jail.IDRange) error {
	if os.Geteuid() != 0 {
		return nil // an unprivileged supervisor maps only itself
	}
	if r == (jail.IDRange{}) {
		r = jail.DefaultSupervisor.HostIDs()
	}
	for _, file := range idMapFiles {
		extents, err := readIDMap(file)
		if err != nil {
			return fmt.Errorf("sandboxd: %w", err)
		}
		ok := false
		var have []string
		for _, e := range extents {
			if uint64(r.First) >= e[0] && uint64(r.First)+uint64(r.Count) <= e[0]+e[1] {
				ok = true
			}
			have = append(have, fmt.Sprintf("%d-%d", e[0], e[0]+e[1]-1))
		}
		if !ok {
			return fmt.Errorf("sandboxd: the jails' host ids %d-%d are not mapped in this user namespace (%s has %s): give a range inside it, e.g. --host-ids 2000:%d in a pod with hostUsers: false",
				r.First, uint64(r.First)+uint64(r.Count)-1, file, strings.Join(have, ", "), max(0, int64(maxEnd(extents))-2000))
		}
	}
	return nil
}

// idMapFiles are the maps of the server's user namespace (a test points
// them elsewhere).
var idMapFiles = []string{"/proc/self/uid_map", "/proc/self/gid_map"}

// readIDMap reads a uid_map or gid_map as [first id inside, count] pairs.
func readIDMap(file string) ([][2]uint64, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out [][2]uint64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) != 3 {
			continue
		}
		first, err1 := strconv.ParseUint(fl[0], 10, 32)
		count, err2 := strconv.ParseUint(fl[2], 10, 33)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%s: a line %q", file, sc.Text())
		}
		out = append(out, [2]uint64{first, count})
	}
	return out, sc.Err()
}

func maxEnd(extents [][2]uint64) uint64 {
	var m uint64
	for _, e := range extents {
		m = max(m, e[0]+e[1])
	}
	return m
}
