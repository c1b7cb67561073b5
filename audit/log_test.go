package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sample is the i-th record of a test's stream: the kinds a service
// writes, with their parts.
func sample(i int) Record {
	switch i % 4 {
	case 0:
		exit := i % 3
		return Record{Kind: KindRun, Tenant: "t1", RequestID: fmt.Sprintf("req-%d", i),
			Input:   CodeInput(CodeFull, "python", fmt.Sprintf("print(%d)", i)),
			Verdict: &Verdict{Reason: "exited", ExitCode: exit, WallTimeMS: 12, CPUTimeMS: 3, PeakMemoryBytes: 5 << 20},
			Stdout:  OutputOf([]byte(fmt.Sprintf("%d\n", i)), false), Stderr: OutputOf(nil, false)}
	case 1:
		return Record{Kind: KindCell, Tenant: "t2", Sandbox: "sb-1", Context: "ctx-1",
			Input:   CodeInput(CodeSHA256, "python", "x = bytearray(1 << 40)"),
			Verdict: &Verdict{Reason: "oom", ExitCode: -1, Signal: 9, LimitsHit: []string{"memory"}}}
	case 2:
		return Record{Kind: KindFileWrite, Tenant: "t1", Sandbox: "sb-2", File: &File{Path: "data/in.csv", Bytes: 10, SHA256: Digest([]byte("0123456789"))}}
	default:
		return Record{Kind: KindEgress, Tenant: "t2", Sandbox: "sb-1", Egress: &Egress{Host: "pypi.org", Port: 443, Address: "127.0.0.1:443", Allowed: i%2 == 0, BytesSent: 100}}
	}
}

func openLog(t *testing.T, path string, opts Options) *Log {
	t.Helper()
	l, err := Open(path, opts)
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	return l
}

func appendN(t *testing.T, l *Log, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		require.NoError(t, l.Append(sample(i)))
	}
}

func fileLines(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := bytes.SplitAfter(b, []byte("\n"))
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	return lines
}

func writeLines(t *testing.T, path string, lines [][]byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, bytes.Join(lines, nil), 0o600))
}

// The chain holds across a Close and an Open: seq goes on, each prev is
// the line before's sha256, the file is 0600, each line a Record whose
// time is UTC.
func TestChainIntact(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, path, Options{})
	appendN(t, l, 0, 30)
	require.NoError(t, l.Close())
	l = openLog(t, path, Options{Fsync: FsyncAlways})
	assert.Nil(t, l.Torn())
	appendN(t, l, 30, 10)
	seq, head := l.Head()
	require.NoError(t, l.Close())

	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	rep, err := Verify(path)
	require.NoError(t, err)
	assert.Equal(t, 40, rep.Records)
	assert.Equal(t, uint64(1), rep.FirstSeq)
	assert.Equal(t, uint64(40), rep.LastSeq)
	assert.Equal(t, seq, rep.LastSeq)
	assert.Equal(t, head, rep.Head)
	assert.Nil(t, rep.Torn)

	prev := genesisPrev
	for i, line := range fileLines(t, path) {
		line = bytes.TrimSuffix(line, []byte("\n"))
		var r Record
		require.NoError(t, json.Unmarshal(line, &r))
		assert.Equal(t, uint64(i+1), r.Seq)
		assert.Equal(t, prev, r.Prev)
		assert.Equal(t, time.UTC, r.Time.Location())
		assert.True(t, bytes.HasPrefix(line, []byte(`{"time":"`)), "time first")
		assert.Equal(t, sample(i).Kind, r.Kind)
		prev = Digest(line)
	}
}

// Each way of tampering with a record is found at the line it was done,
// and named.
func TestTamperFoundAtLine(t *testing.T) {
	dir := t.TempDir()
	orig := filepath.Join(dir, "orig.log")
	l := openLog(t, orig, Options{Fsync: FsyncNever})
	appendN(t, l, 0, 10)
	require.NoError(t, l.Close())
	lines := fileLines(t, orig)

	// forged is line i's record with seq and prev set and its own hash
	// recomputed: what someone who knows the format writes.
	forged := func(i int, seq uint64, prev string, tenant string) []byte {
		var r Record
		require.NoError(t, json.Unmarshal(bytes.TrimSuffix(lines[i], []byte("\n")), &r))
		r.Seq, r.Prev, r.Tenant = seq, prev, tenant
		line, err := encodeLine(r)
		require.NoError(t, err)
		return append(line, '\n')
	}
	hashOf := func(i int) string { return Digest(bytes.TrimSuffix(lines[i], []byte("\n"))) }
	editByte := func(i int, old, new string) [][]byte {
		out := slices.Clone(lines)
		require.True(t, bytes.Contains(out[i], []byte(old)), "%s in %s", old, out[i])
		out[i] = bytes.Replace(out[i], []byte(old), []byte(new), 1)
		return out
	}
	cases := []struct {
		name  string
		lines [][]byte
		line  int
		kind  string
	}{
		{"a byte of a tenant", editByte(4, `"tenant":"t1"`, `"tenant":"t3"`), 5, ProblemEdited},
		{"a byte of a prev", editByte(6, `"prev":"`, `"prev":"f`), 7, ProblemEdited},
		{"a byte of a hash", editByte(2, `"hash":"`, `"hash":"0`), 3, ProblemEdited},
		{"an exit code", editByte(8, `"exit_code":2`, `"exit_code":0`), 9, ProblemEdited},
		{"deleted", slices.Delete(slices.Clone(lines), 4, 5), 5, ProblemDeleted},
		{"two deleted", slices.Delete(slices.Clone(lines), 2, 4), 3, ProblemDeleted},
		{"first deleted", slices.Delete(slices.Clone(lines), 0, 1), 0, ""}, // a chain from seq 2: see below
		{"swapped", func() [][]byte { c := slices.Clone(lines); c[3], c[4] = c[4], c[3]; return c }(), 4, ProblemReordered},
		{"moved down", func() [][]byte {
			c := slices.Clone(lines)
			moved := c[2]
			c = slices.Delete(c, 2, 3)
			return slices.Insert(c, 6, moved)
		}(), 3, ProblemReordered},
		{"a copy inserted", slices.Insert(slices.Clone(lines), 7, lines[2]), 8, ProblemInserted},
		{"a copy of the line before", slices.Insert(slices.Clone(lines), 6, lines[5]), 7, ProblemInserted},
		{"a forged record inserted", slices.Insert(slices.Clone(lines), 5, forged(1, 6, hashOf(4), "t9")), 6, ProblemInserted},
		{"a record rewritten with its hash", func() [][]byte {
			c := slices.Clone(lines)
			c[4] = forged(4, 5, hashOf(3), "t9")
			return c
		}(), 6, ProblemRewritten},
		{"garbage inserted", slices.Insert(slices.Clone(lines), 3, []byte("{}\n")), 4, ProblemEdited},
		{"a newline removed", func() [][]byte {
			c := slices.Clone(lines)
			c[5] = bytes.TrimSuffix(c[5], []byte("\n"))
			return c
		}(), 6, ProblemEdited},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".log")
			writeLines(t, path, tc.lines)
			rep, err := Verify(path)
			if tc.line == 0 {
				// Cutting the log's head leaves a chain that starts late:
				// intact from there, and the report says where it starts.
				require.NoError(t, err)
				assert.Equal(t, uint64(2), rep.FirstSeq)
				return
			}
			var p *Problem
			require.ErrorAs(t, err, &p)
			assert.Equal(t, path, p.File)
			assert.Equal(t, tc.line, p.Line, "%v", p)
			assert.Equal(t, tc.kind, p.Kind, "%v", p)
		})
	}
	rep, err := Verify(orig)
	require.NoError(t, err, "the untouched log")
	assert.Equal(t, 10, rep.Records)
}

// A record stays under its cap whatever it is given: huge code, huge
// command, text JSON escapes six times over, huge ids; the hash of the
// whole stays, the text is cut and marked.
func TestRecordBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, path, Options{Fsync: FsyncNever})
	huge := strings.Repeat("print('x' * 10)\n", 1<<20) // 16 MiB of code
	escapes := strings.Repeat("\x01\"\\<", 1<<18)
	invalid := string(bytes.Repeat([]byte{0xff, 0xfe}, 1<<18))
	longID := strings.Repeat("é", 1<<16)
	args := make([]string, 100000)
	for i := range args {
		args[i] = "arg\x00"
	}
	output := bytes.Repeat([]byte("y\n"), 8<<20)
	records := []Record{
		{Kind: KindRun, Input: CodeInput(CodeFull, "python", huge), Stdout: OutputOf(output, true)},
		{Kind: KindRun, Input: CodeInput(CodeFull, "shell", escapes)},
		{Kind: KindRun, Input: CodeInput(CodeFull, "shell", invalid)},
		{Kind: KindProcess, Input: CommandInput(CodeFull, args)},
		{Kind: KindProcess, Input: CommandInput(CodeFull, []string{huge, huge})},
		{Kind: KindRun, Input: &Input{Code: escapes, Command: []string{escapes, escapes}}}, // filled in by hand, both at once
		{Kind: KindCell, Tenant: longID, Sandbox: longID, Context: longID, Process: longID, RequestID: longID, Template: longID, Remote: longID,
			Detail: escapes, File: &File{Path: escapes, SHA256: longID},
			Verdict: &Verdict{Reason: longID, Message: escapes, SeccompSyscall: longID, Quota: longID, LimitsHit: slices.Repeat([]string{longID}, 100)},
			Egress:  &Egress{Host: escapes, Address: escapes}},
	}
	for _, r := range records {
		require.NoError(t, l.Append(r))
	}
	require.NoError(t, l.Close())
	lines := fileLines(t, path)
	require.Len(t, lines, len(records))
	for i, line := range lines {
		assert.LessOrEqual(t, len(line)-1, MaxLineBytes, "record %d", i)
		var r Record
		require.NoError(t, json.Unmarshal(line, &r), "record %d", i)
		if in := r.Input; in != nil {
			assert.True(t, in.Truncated, "record %d", i)
			assert.LessOrEqual(t, len(in.Code), MaxInputText)
			assert.True(t, utf8.ValidString(in.Code))
		}
	}
	var r Record
	require.NoError(t, json.Unmarshal(lines[0], &r))
	assert.Equal(t, Digest([]byte(huge)), r.Input.SHA256, "the hash is of the whole code")
	assert.Equal(t, int64(len(huge)), r.Input.Bytes)
	assert.True(t, strings.HasPrefix(huge, r.Input.Code))
	assert.Equal(t, Digest(output), r.Stdout.SHA256)
	require.NoError(t, json.Unmarshal(lines[5], &r))
	assert.Equal(t, Digest([]byte(escapes)), r.Input.SHA256, "a hash computed for code given without one")
	require.NoError(t, json.Unmarshal(lines[6], &r))
	assert.LessOrEqual(t, len(r.Tenant), MaxIDBytes)
	assert.Len(t, r.Verdict.LimitsHit, MaxLimitsHit)
	_, err := Verify(path)
	require.NoError(t, err)

	// The settings below full keep less.
	assert.Nil(t, CodeInput(CodeNone, "python", huge))
	in := CodeInput(CodeSHA256, "python", huge)
	assert.Empty(t, in.Code)
	assert.Equal(t, Digest([]byte(huge)), in.SHA256)
}

// A crash cut the last record (bytes with no newline): Verify passes and
// reports it torn; Open moves the bytes aside, says so in a record, and
// the chain goes on from the last whole record.
func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	l := openLog(t, path, Options{})
	appendN(t, l, 0, 5)
	_, head := l.Head()
	require.NoError(t, l.Close())
	next, err := encodeLine(Record{Kind: KindRun, Seq: 6, Prev: head})
	require.NoError(t, err)
	cut := next[:len(next)/2]
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.Write(cut)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	rep, err := Verify(path)
	require.NoError(t, err, "a torn tail is not tampering")
	require.NotNil(t, rep.Torn)
	assert.Equal(t, int64(len(cut)), rep.Torn.Bytes)
	assert.Equal(t, 5, rep.Records)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, fi.Size()-int64(len(cut)), rep.Torn.Offset)

	l = openLog(t, path, Options{})
	torn := l.Torn()
	require.NotNil(t, torn)
	assert.Equal(t, int64(len(cut)), torn.Bytes)
	saved, err := os.ReadFile(torn.Saved)
	require.NoError(t, err)
	assert.Equal(t, cut, saved, "the torn bytes are kept")
	appendN(t, l, 5, 2)
	require.NoError(t, l.Close())
	rep, err = Verify(path)
	require.NoError(t, err)
	assert.Nil(t, rep.Torn)
	assert.Equal(t, 8, rep.Records)
	var r Record
	require.NoError(t, json.Unmarshal(fileLines(t, path)[5], &r))
	assert.Equal(t, KindTornTail, r.Kind)
	assert.Contains(t, r.Detail, filepath.Base(torn.Saved))
	// The saved bytes and the lock are hidden: a glob of the log's files
	// (brig audit verify audit.log*) leaves them out.
	glob, err := filepath.Glob(path + "*")
	require.NoError(t, err)
	assert.Equal(t, []string{path}, glob)
	hidden, err := filepath.Glob(filepath.Join(dir, ".audit.log.*"))
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{torn.Saved, filepath.Join(dir, ".audit.log.lock")}, hidden)

	// A whole file that is one torn line (a crash in the first record).
	lone := filepath.Join(dir, "lone.log")
	require.NoError(t, os.WriteFile(lone, []byte(`{"time":"2026-`), 0o600))
	l = openLog(t, lone, Options{})
	require.NotNil(t, l.Torn())
	require.NoError(t, l.Close())
	rep, err = Verify(lone)
	require.NoError(t, err)
	assert.Equal(t, uint64(1), rep.FirstSeq)
}

// A last line that is whole but not intact is not a crash's doing: Open
// refuses the file rather than chain onto it, and says what to do.
func TestOpenRefusesEditedEnd(t *testing.T) {
	dir := t.TempDir()
	for name, edit := range map[string]func([][]byte) [][]byte{
		"last edited":  func(ls [][]byte) [][]byte { ls[4] = bytes.Replace(ls[4], []byte(`"t1"`), []byte(`"t3"`), 1); return ls },
		"first edited": func(ls [][]byte) [][]byte { ls[0] = bytes.Replace(ls[0], []byte(`"t1"`), []byte(`"t3"`), 1); return ls },
		"not a log":    func([][]byte) [][]byte { return [][]byte{[]byte("hello\n")} },
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
			l := openLog(t, path, Options{})
			appendN(t, l, 0, 5)
			require.NoError(t, l.Close())
			lines := fileLines(t, path)
			orig := bytes.Join(lines, nil)
			writeLines(t, path, edit(lines))
			before, err := os.ReadFile(path)
			require.NoError(t, err)
			require.NotEqual(t, orig, before, "the edit was made")
			_, err = Open(path, Options{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), "brig audit verify")
			after, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, before, after, "the file is left as it was")
		})
	}
}

// Rotation by size keeps the chain across files: Verify takes the files
// in any order, puts each after its predecessor by seq, and finds a
// missing middle file. Keep removes the oldest; the chain then starts
// late. An Open after a rotation continues from the rotated file.
func TestRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	const maxBytes = MaxLineBytes
	l := openLog(t, path, Options{MaxBytes: maxBytes, Fsync: FsyncNever})
	big := func(i int) Record {
		r := sample(i)
		r.Detail = strings.Repeat("d", 900)
		return r
	}
	for i := range 1000 {
		require.NoError(t, l.Append(big(i)))
	}
	require.NoError(t, l.Close())
	rotated, err := rotatedFiles(path)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(rotated), 3)
	for _, f := range append(rotated, path) {
		fi, err := os.Stat(f)
		require.NoError(t, err)
		assert.LessOrEqual(t, fi.Size(), int64(maxBytes), f)
	}
	all := append([]string{path}, rotated...)
	slices.Reverse(all[1:])
	rep, err := Verify(all...)
	require.NoError(t, err)
	assert.Equal(t, 1000, rep.Records)
	assert.Equal(t, uint64(1), rep.FirstSeq)
	assert.Equal(t, path, rep.Files[len(rep.Files)-1])

	// A middle file missing: the first line of the next is found.
	_, err = Verify(slices.Delete(slices.Clone(all), 2, 3)...)
	var p *Problem
	require.ErrorAs(t, err, &p)
	assert.Equal(t, ProblemDeleted, p.Kind)
	assert.Equal(t, 1, p.Line)

	// A rotated file whose first line was edited is named, wherever it
	// would go in the chain.
	saved := fileLines(t, rotated[1])
	edited := fileLines(t, rotated[1])
	edited[0] = bytes.Replace(edited[0], []byte(`"seq":`), []byte(`"seq": `), 1)
	writeLines(t, rotated[1], edited)
	_, err = Verify(all...)
	require.ErrorAs(t, err, &p)
	assert.Equal(t, Problem{File: rotated[1], Line: 1, Kind: ProblemEdited, Detail: p.Detail}, *p)
	writeLines(t, rotated[1], fileLines(t, rotated[1])[1:]) // now the chain lacks its first record
	_, err = Verify(all...)
	require.ErrorAs(t, err, &p)
	assert.Equal(t, ProblemDeleted, p.Kind)
	assert.Equal(t, rotated[1], p.File)
	writeLines(t, rotated[1], saved)
	// A file cut short that is not the log's last: not a crash's doing.
	cut, err := os.ReadFile(rotated[2])
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(rotated[2], cut[:len(cut)-10], 0o600))
	_, err = Verify(all...)
	require.ErrorAs(t, err, &p)
	assert.Equal(t, ProblemTorn, p.Kind)
	assert.Equal(t, rotated[2], p.File)
	require.NoError(t, os.WriteFile(rotated[2], cut, 0o600))
	_, err = Verify(all...)
	require.NoError(t, err)

	// A crash between the rotation's rename and the new file: Open finds
	// the head in the newest rotated file.
	first, _, err := endRecords(path)
	require.NoError(t, err)
	require.NoError(t, os.Rename(path, rotatedName(path, first.seq)))
	l = openLog(t, path, Options{MaxBytes: maxBytes, Keep: 2})
	require.NoError(t, l.Append(big(1000)))
	seq, _ := l.Head()
	assert.Equal(t, uint64(1001), seq)
	for i := 1001; i < 1600; i++ {
		require.NoError(t, l.Append(big(i)))
	}
	require.NoError(t, l.Close())
	rotated, err = rotatedFiles(path)
	require.NoError(t, err)
	assert.Len(t, rotated, 2, "Keep 2")
	rep, err = Verify(append(rotated, path)...)
	require.NoError(t, err)
	assert.Greater(t, rep.FirstSeq, uint64(1))
	assert.Equal(t, uint64(1600), rep.LastSeq)
}

// A file removed or replaced under a live log fails every Append (no
// record goes to a file no one reads) until the log is opened anew,
// which starts a new file and continues the chain. The change is found
// at once, by the inotify watch (what a record's check relies on between
// stats) or, without one, by the stat every record then makes.
func TestFileGoneUnderLog(t *testing.T) {
	hows := []string{"moved away", "replaced", "unlinked", "renamed over", "directory moved"}
	for _, watched := range []bool{true, false} {
		for _, how := range hows {
			name := how
			if !watched {
				name += " without inotify"
			}
			t.Run(name, func(t *testing.T) {
				top := t.TempDir()
				dir := filepath.Join(top, "logs")
				require.NoError(t, os.Mkdir(dir, 0o700))
				path := filepath.Join(dir, "audit.log")
				l := openLog(t, path, Options{})
				appendN(t, l, 0, 3) // the first Append stats: the next rely on the watch
				if !watched {
					l.watch.close()
				}
				moved := filepath.Join(dir, "moved.log")
				switch how {
				case "moved away", "replaced":
					require.NoError(t, os.Rename(path, moved))
					if how == "replaced" {
						require.NoError(t, os.WriteFile(path, nil, 0o600))
					}
				case "unlinked":
					require.NoError(t, os.Link(path, moved))
					require.NoError(t, os.Remove(path))
				case "renamed over":
					require.NoError(t, os.Link(path, moved))
					require.NoError(t, os.WriteFile(path+".new", nil, 0o600))
					require.NoError(t, os.Rename(path+".new", path))
				case "directory moved":
					require.NoError(t, os.Rename(dir, dir+".old"))
					moved = filepath.Join(dir+".old", "audit.log")
				}
				err := l.Append(sample(3))
				require.ErrorIs(t, err, ErrFileGone)
				assert.Contains(t, err.Error(), path)
				require.ErrorIs(t, l.Ready(), ErrFileGone)
				require.ErrorIs(t, l.Append(sample(4)), ErrFileGone, "still")
				if how == "moved away" {
					assert.NoFileExists(t, path, "no new file made behind the caller's back")
				}
				require.NoError(t, l.Close())
				rep, err := Verify(moved)
				require.NoError(t, err)
				assert.Equal(t, 3, rep.Records, "nothing written to the old file after it was found gone")

				// Opened anew (a restart), the log starts a file at its name.
				require.NoError(t, os.MkdirAll(dir, 0o700))
				l = openLog(t, path, Options{})
				appendN(t, l, 0, 1)
				require.NoError(t, l.Close())
				rep, err = Verify(path)
				require.NoError(t, err)
				assert.Equal(t, 1, rep.Records)
			})
		}
	}
}

// What the watch reports but is no change of the file (a chmod, a
// sibling moved, the file touched) costs a stat, not a refusal.
func TestWatchedChangesThatKeepTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	l := openLog(t, path, Options{})
	appendN(t, l, 0, 2)
	require.GreaterOrEqual(t, l.watch.fd, 0, "inotify is available here")
	require.NoError(t, os.Chmod(path, 0o640))
	appendN(t, l, 2, 1)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "other"), nil, 0o600))
	require.NoError(t, os.Rename(filepath.Join(dir, "other"), filepath.Join(dir, "other2")))
	appendN(t, l, 3, 1)
	now := time.Now()
	require.NoError(t, os.Chtimes(path, now, now))
	require.NoError(t, l.Ready())
	appendN(t, l, 4, 1)
	require.NoError(t, l.Close())
	rep, err := Verify(path)
	require.NoError(t, err)
	assert.Equal(t, 5, rep.Records)
}

// Appends from many goroutines make one chain, each record once.
func TestConcurrentAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, path, Options{FsyncInterval: time.Millisecond})
	const workers, each = 8, 100
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r := sample(i)
				r.RequestID = fmt.Sprintf("w%d-%d", w, i)
				if err := l.Append(r); err != nil {
					t.Error(err)
					return
				}
				if i%10 == 0 {
					l.Head()
					_ = l.Ready()
				}
			}
		}()
	}
	wg.Wait()
	require.NoError(t, l.Close())
	require.ErrorIs(t, l.Append(sample(0)), ErrClosed)
	rep, err := Verify(path)
	require.NoError(t, err)
	assert.Equal(t, workers*each, rep.Records)
	seen := map[string]bool{}
	for _, line := range fileLines(t, path) {
		var r Record
		require.NoError(t, json.Unmarshal(line, &r))
		assert.False(t, seen[r.RequestID], r.RequestID)
		seen[r.RequestID] = true
	}
	assert.Len(t, seen, workers*each)
}

// The settings are checked: a bad one is an error naming the choices, a
// bad record kind is refused.
func TestSettings(t *testing.T) {
	_, err := ParseFsync("sometimes")
	assert.ErrorContains(t, err, "always, interval or never")
	f, err := ParseFsync("")
	require.NoError(t, err)
	assert.Equal(t, FsyncInterval, f)
	_, err = ParseCodeMode("all")
	assert.ErrorContains(t, err, "full, sha256 or none")
	m, err := ParseCodeMode("")
	require.NoError(t, err)
	assert.Equal(t, CodeFull, m)
	dir := t.TempDir()
	_, err = Open(filepath.Join(dir, "a.log"), Options{MaxBytes: 1000})
	assert.ErrorContains(t, err, "max_bytes")
	_, err = Open(filepath.Join(dir, "no", "such", "a.log"), Options{})
	assert.ErrorContains(t, err, "directory must exist")
	l := openLog(t, filepath.Join(dir, "b.log"), Options{})
	for _, k := range []Kind{"", "Run", "run\n", Kind(strings.Repeat("a", 33))} {
		assert.Error(t, l.Append(Record{Kind: k}), "%q", k)
	}
	require.NoError(t, l.Append(Record{Kind: "custom_kind"}))
	require.NoError(t, l.Close())
	rep, err := Verify(filepath.Join(dir, "b.log"))
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Records)
	_, err = Verify(filepath.Join(dir, "missing.log"))
	require.Error(t, err)
	assert.False(t, errors.As(err, new(*Problem)), "an unreadable file is not a bad line")
}

// A log has one writer: a second Open, while the first is open, fails and
// names the cause; after Close it works.
func TestOneWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, path, Options{})
	appendN(t, l, 0, 2)
	_, err := Open(path, Options{})
	require.ErrorContains(t, err, "another process")
	appendN(t, l, 2, 2)
	require.NoError(t, l.Close())
	l = openLog(t, path, Options{})
	appendN(t, l, 4, 2)
	require.NoError(t, l.Close())
	rep, err := Verify(path)
	require.NoError(t, err)
	assert.Equal(t, 6, rep.Records)
}
