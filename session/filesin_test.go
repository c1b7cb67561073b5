package session

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/internal/testenv"
)

// plantedDir is a host directory as a jail with a writable bind of it may
// leave it: a symlink out, a symlink to /, a FIFO, a non-empty directory.
func plantedDir(t *testing.T) (dir, outside string) {
	t.Helper()
	dir = t.TempDir()
	outside = filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(outside, []byte("host secret"), 0o644))
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, "link")))
	require.NoError(t, os.Symlink("/", filepath.Join(dir, "root")))
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "d", "x"), 0o755))
	return dir, outside
}

// TestWriteFileIn: writes a file (parents made) as the owner given, up to
// the limit; refuses a path out, a symlink, a FIFO (without waiting), a
// directory and data past the limit (leaving the file empty); the host
// file behind the symlink is untouched.
func TestWriteFileIn(t *testing.T) {
	testenv.RequireRoot(t)
	dir, outside := plantedDir(t)
	owner := &Owner{UID: 1_500_123, GID: 1_500_124}
	// As a jail would leave them: the owner's.
	require.NoError(t, filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(owner.UID), int(owner.GID))
	}))

	n, err := WriteFileIn(dir, "a/b/c.txt", strings.NewReader("hello"), 16, owner)
	require.NoError(t, err)
	assert.EqualValues(t, 5, n)
	b, err := os.ReadFile(filepath.Join(dir, "a/b/c.txt"))
	require.NoError(t, err)
	assert.Equal(t, "hello", string(b))
	for _, p := range []string{"a", "a/b", "a/b/c.txt"} {
		fi, err := os.Stat(filepath.Join(dir, p))
		require.NoError(t, err)
		st := fi.Sys().(*syscall.Stat_t)
		assert.Equal(t, owner.UID, st.Uid, p)
		assert.Equal(t, owner.GID, st.Gid, p)
	}

	_, err = WriteFileIn(dir, "a/b/c.txt", strings.NewReader(strings.Repeat("x", 17)), 16, owner)
	require.ErrorIs(t, err, ErrFileTooLarge)
	b, _ = os.ReadFile(filepath.Join(dir, "a/b/c.txt"))
	assert.Empty(t, b, "a file cut at the limit was left")

	for name, want := range map[string]error{"link": syscall.ELOOP, "root/tmp/x": syscall.ENOTDIR /* the link is no directory to make x in */, "fifo": syscall.ENXIO /* no reader: O_NONBLOCK does not wait */, "d": syscall.EISDIR} {
		_, err := WriteFileIn(dir, name, strings.NewReader("overwritten"), 0, owner)
		require.ErrorIs(t, err, want, name)
	}
	for _, name := range []string{"../x", "/etc/x", ".", ""} {
		_, err := WriteFileIn(dir, name, strings.NewReader("x"), 0, nil)
		require.Error(t, err, name)
	}
	b, err = os.ReadFile(outside)
	require.NoError(t, err)
	assert.Equal(t, "host secret", string(b))
	_, err = os.Stat("/tmp/x")
	assert.True(t, os.IsNotExist(err))
}

// TestStatIn describes files and directories, never following a symlink
// nor opening a FIFO.
func TestStatIn(t *testing.T) {
	dir, _ := plantedDir(t)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "d", "f"), []byte("12345"), 0o640))
	fi, err := StatIn(dir, "d/f")
	require.NoError(t, err)
	assert.Equal(t, FileInfo{Name: "f", Size: 5, Mode: 0o640}, fi)
	fi, err = StatIn(dir, "d")
	require.NoError(t, err)
	assert.True(t, fi.IsDir)
	fi, err = StatIn(dir, "")
	require.NoError(t, err)
	assert.True(t, fi.IsDir, "the directory itself")
	_, err = StatIn(dir, "link")
	require.ErrorIs(t, err, syscall.ELOOP)
	_, err = StatIn(dir, "root/etc/passwd")
	require.ErrorIs(t, err, syscall.ELOOP)
	_, err = StatIn(dir, "fifo")
	require.ErrorIs(t, err, ErrNotRegular)
	_, err = StatIn(dir, "../x")
	require.Error(t, err)
	_, err = StatIn(dir, "missing")
	require.ErrorIs(t, err, os.ErrNotExist)
}

// TestRemoveIn removes a file and an empty directory; a symlink is removed
// itself, its target kept; a non-empty directory, the directory itself and
// a path out are refused.
func TestRemoveIn(t *testing.T) {
	testenv.RequireRoot(t)
	dir, outside := plantedDir(t)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "d", "x", "f"), nil, 0o644))
	require.NoError(t, RemoveIn(dir, "link", nil))
	_, err := os.Lstat(filepath.Join(dir, "link"))
	assert.True(t, os.IsNotExist(err))
	_, err = os.Stat(outside)
	require.NoError(t, err, "the symlink's target was removed")
	require.ErrorIs(t, RemoveIn(dir, "root/tmp", nil), syscall.ENOTDIR, "the link to / is no directory to remove tmp from")
	require.ErrorIs(t, RemoveIn(dir, "d", nil), syscall.ENOTEMPTY)
	require.NoError(t, RemoveIn(dir, "d/x/f", nil))
	require.NoError(t, RemoveIn(dir, "d/x", nil))
	require.NoError(t, RemoveIn(dir, "fifo", nil))
	require.Error(t, RemoveIn(dir, "", nil))
	require.Error(t, RemoveIn(dir, "../"+filepath.Base(dir), nil))
	_, err = os.Stat(dir)
	require.NoError(t, err)
	_, err = os.Stat("/tmp")
	require.NoError(t, err)
}
