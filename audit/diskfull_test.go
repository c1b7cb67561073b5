package audit

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// smallTmpfs mounts a tmpfs of size bytes on a new directory, unmounted
// at the test's end.
func smallTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the test mounts a small tmpfs to fill")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size="+size+",mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fill writes a file until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	block := make([]byte, 4096)
	for {
		if _, err := f.Write(block); err != nil {
			require.ErrorIs(t, err, unix.ENOSPC)
			return
		}
	}
}

// A full disk fails Append and Ready (the caller refuses the work: 503),
// leaves no part of a record in the file, and once space returns the log
// writes again, first a record counting the failures; the chain holds.
func TestDiskFull(t *testing.T) {
	dir := smallTmpfs(t, "1m")
	path := filepath.Join(dir, "audit.log")
	l, err := Open(path, Options{Fsync: FsyncAlways})
	require.NoError(t, err)
	defer l.Close()
	appendN(t, l, 0, 5)
	written := 5

	filler := filepath.Join(dir, "filler")
	fill(t, filler)
	// The log's last page takes a few small records, then none.
	for err == nil && written < 1000 {
		if err = l.Append(Record{Kind: "x"}); err == nil {
			written++
		}
	}
	require.ErrorIs(t, err, unix.ENOSPC)
	assert.Contains(t, err.Error(), path)
	require.ErrorIs(t, l.Ready(), unix.ENOSPC, "still full: not even the record of the failures fits")
	_, verr := Verify(path)
	require.NoError(t, verr)

	// Room for the record of the failures and a part of a large record:
	// the large one fails, and its part is taken off again.
	fi, err := os.Stat(filler)
	require.NoError(t, err)
	require.NoError(t, os.Truncate(filler, fi.Size()-8192))
	big := sample(5)
	big.Input = CodeInput(CodeFull, "python", strings.Repeat("\x01", MaxInputText))
	require.ErrorIs(t, l.Append(big), unix.ENOSPC, "a 200 KiB record in 8 KiB")
	written++ // the audit_write_resumed record went in before it
	_, verr = Verify(path)
	require.NoError(t, verr, "no part of a record left in the log")

	require.NoError(t, os.Remove(filler))
	require.NoError(t, l.Ready())
	require.NoError(t, l.Append(big))
	appendN(t, l, 7, 3)
	written += 1 + 1 + 3
	require.NoError(t, l.Close())

	rep, err := Verify(path)
	require.NoError(t, err)
	assert.Nil(t, rep.Torn)
	assert.Equal(t, written, rep.Records)
	var resumed []Record
	for _, line := range fileLines(t, path) {
		var r Record
		require.NoError(t, json.Unmarshal(line, &r))
		if r.Kind == KindWriteResumed {
			resumed = append(resumed, r)
		}
	}
	require.Len(t, resumed, 2, "each run of failures is on record")
	assert.Contains(t, resumed[0].Detail, "no space left on device")
	assert.Contains(t, resumed[0].Detail, "2 appends failed", "the failed Append and the failed Ready")
}

// A full disk between rotations: once space is back, the log rotates on
// and the chain holds across every file.
func TestDiskFullRotation(t *testing.T) {
	dir := smallTmpfs(t, "2m")
	path := filepath.Join(dir, "audit.log")
	l, err := Open(path, Options{MaxBytes: MaxLineBytes, Fsync: FsyncNever})
	require.NoError(t, err)
	defer l.Close()
	big := func(i int) Record {
		r := sample(i)
		r.Detail = strings.Repeat("d", 1000)
		return r
	}
	appended := 0
	for i := range 400 {
		if l.Append(big(i)) == nil {
			appended++
		}
		if i == 250 {
			fill(t, filepath.Join(dir, "filler"))
		}
	}
	require.Less(t, appended, 400, "the full disk failed appends")
	require.NoError(t, os.Remove(filepath.Join(dir, "filler")))
	for i := range 400 {
		require.NoError(t, l.Append(big(i)))
	}
	require.NoError(t, l.Close())
	files := logFiles(t, path)
	require.GreaterOrEqual(t, len(files), 4)
	rep, err := Verify(files...)
	require.NoError(t, err)
	assert.Equal(t, uint64(1), rep.FirstSeq)
	resumed := 0
	for _, f := range files {
		for _, line := range fileLines(t, f) {
			var r Record
			require.NoError(t, json.Unmarshal(line, &r))
			if r.Kind == KindWriteResumed {
				resumed++
			}
		}
	}
	assert.GreaterOrEqual(t, resumed, 1)
	assert.Equal(t, appended+400+resumed, rep.Records, "every record that Append took, and the log's own")
}

// Far from full, Ready may trust a look at the file system of up to
// statEvery ago; a disk another writer fills meanwhile is refused once
// that look is older, with no Append in between to find it.
func TestReadyLooksAgainFarFromFull(t *testing.T) {
	dir := smallTmpfs(t, "96m")
	path := filepath.Join(dir, "audit.log")
	l, err := Open(path, Options{Fsync: FsyncNever})
	require.NoError(t, err)
	defer l.Close()
	appendN(t, l, 0, 2)
	require.NoError(t, l.Ready())
	require.Greater(t, l.freeSeen, uint64(spaceSlack), "the look found the disk far from full")

	filler := filepath.Join(dir, "filler")
	fill(t, filler)
	time.Sleep(statEvery)
	require.ErrorIs(t, l.Ready(), unix.ENOSPC)

	require.NoError(t, os.Remove(filler))
	require.NoError(t, l.Ready(), "space is back")
	appendN(t, l, 2, 1)
	require.NoError(t, l.Close())
	rep, err := Verify(path)
	require.NoError(t, err)
	assert.Equal(t, 4, rep.Records, "three records and the one of the refusal")
}
