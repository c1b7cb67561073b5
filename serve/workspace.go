package serve

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// Workspaces. Each sandbox's workspace is a tmpfs of its own, mounted at
// STATE_DIR/workspaces/ID with size= and nr_inodes= from the sandbox's
// byte and inode quota: the kernel enforces both (a write past them fails
// with ENOSPC in the jail and in a PUT), and nothing of one workspace can
// fill another's or the host's disk. Jails see it at /workspace through an
// idmapped bind (jail.Bind.IDMap): every jail of the sandbox, whatever its
// own host id, reads and writes as the workspace's owner, a host id of
// WorkspaceIDs given to this sandbox alone. Mounting a tmpfs needs root:
// an unprivileged server refuses to start (see checkPrivilege) rather than
// give workspaces no quota.

// WorkspaceIDs is the range of host ids that own workspaces: below the
// jail library's default host ids (Supervisor.HostIDs), above what distributions hand out.
var WorkspaceIDs = struct{ First, Count uint32 }{First: 1_400_000_000, Count: 65536}

// WorkspaceTarget is where a sandbox's jails see its workspace.
const WorkspaceTarget = "/workspace"

func workspacesDir(stateDir string) string { return filepath.Join(stateDir, "workspaces") }

// mountWorkspace makes the workspace of sandbox id.
func mountWorkspace(stateDir, id string, bytes, inodes int64, owner uint32) (string, error) {
	dir := filepath.Join(workspacesDir(stateDir), id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", fmt.Errorf("workspace: %w", err)
	}
	opts := fmt.Sprintf("size=%d,nr_inodes=%d,mode=0755,uid=%d,gid=%d", bytes, inodes, owner, owner)
	if err := unix.Mount("brig-workspace", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		os.Remove(dir)
		return "", fmt.Errorf("workspace: mount tmpfs on %s: %w", dir, err)
	}
	return dir, nil
}

// removeWorkspace unmounts and removes a workspace. The jails of the
// sandbox have ended (their copies of the mount with them).
func removeWorkspace(dir string) error {
	for {
		err := unix.Unmount(dir, unix.MNT_DETACH)
		if errors.Is(err, unix.EINVAL) {
			break // not a mount point (any longer)
		}
		if err != nil {
			return fmt.Errorf("unmount workspace %s: %w", dir, err)
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove workspace %s: %w", dir, err)
	}
	return nil
}

// removeStaleWorkspaces removes what a server killed with SIGKILL left in
// stateDir: every mount beneath its workspaces directory (deepest first),
// then the directories. It runs under the state directory's lock, so no
// live server owns them.
func removeStaleWorkspaces(stateDir string) (int, error) {
	root := workspacesDir(stateDir)
	mounts, err := mountsBeneath(root)
	if err != nil {
		return 0, err
	}
	for _, m := range mounts {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return 0, fmt.Errorf("unmount stale workspace %s: %w", m, err)
		}
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		// Unmounted above: these are empty mount points, or a directory a
		// crash left before its mount.
		if err := os.RemoveAll(filepath.Join(root, e.Name())); err != nil {
			return 0, fmt.Errorf("remove stale workspace: %w", err)
		}
	}
	return len(entries), nil
}

// mountsBeneath lists the mount points strictly beneath dir, deepest first.
func mountsBeneath(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, sc.Err()
}

// unescapeMountinfo undoes the octal escapes of space, tab, newline and
// backslash in /proc/self/mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
				}
				v = v*8 + byte(c-'0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// lockStateDir takes the state directory for this server: a second server
// on the same directory would remove the first one's workspaces.
func lockStateDir(stateDir string) (*os.File, error) {
	if err := os.MkdirAll(workspacesDir(stateDir), 0o700); err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(stateDir, "lock"), os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("state_dir %s: another brig serve uses it (its lock is held); give this server its own state_dir", stateDir)
	}
	return f, nil
}
