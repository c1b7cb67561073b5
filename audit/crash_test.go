package audit

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writerEnv makes the test binary a writer of records (TestMain): the
// process the crash test kills.
const writerEnv = "BRIG_AUDIT_TEST_WRITER"

func TestMain(m *testing.M) {
	if path := os.Getenv(writerEnv); path != "" {
		writeForever(path)
	}
	os.Exit(m.Run())
}

// writeForever appends records, some of them large (a write(2) of many
// pages that SIGKILL can cut short), with rotation, until it is killed.
func writeForever(path string) {
	l, err := Open(path, Options{MaxBytes: 16 * MaxLineBytes})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println("open")
	for i := 0; ; i++ {
		r := sample(i)
		if i%2 == 0 {
			// Control bytes JSON writes as six: lines near the cap.
			r.Input = CodeInput(CodeFull, "python", strings.Repeat("\x01", rand.IntN(MaxInputText)))
		}
		if err := l.Append(r); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		seq, _ := l.Head()
		fmt.Println(seq) // acknowledged: it must survive the kill
	}
}

// logFiles are the log's files: the live one and the rotated ones.
func logFiles(t *testing.T, path string) []string {
	t.Helper()
	files, err := rotatedFiles(path)
	require.NoError(t, err)
	if _, err := os.Stat(path); err == nil {
		files = append(files, path)
	}
	return files
}

// A writer killed with SIGKILL at a random point, many times over (during
// Open, mid-append, mid-rotation): every record whose Append returned is
// on disk, what is there always verifies (a record cut mid-write is
// reported torn, not tampered), and the next Open continues the chain
// from the last intact record.
func TestSIGKILLMidAppend(t *testing.T) {
	rounds := 30
	if testing.Short() {
		rounds = 10
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	var torn, records int
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), writerEnv+"="+path)
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		require.NoError(t, cmd.Start())
		lines := bufio.NewScanner(stdout)
		if round%4 != 0 { // every fourth is killed wherever it is, Open included
			require.True(t, lines.Scan(), "the writer did not open the log: %s", stderr.String())
			require.Equal(t, "open", lines.Text())
		}
		acked := make(chan uint64, 1)
		go func() {
			var last uint64
			for lines.Scan() {
				fmt.Sscan(lines.Text(), &last)
			}
			acked <- last
		}()
		time.Sleep(time.Duration(rand.IntN(20_000)) * time.Microsecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		lastAcked := <-acked
		err = cmd.Wait()
		ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
		require.True(t, ws.Signaled(), "the writer ended before the kill: %v: %s", err, stderr.String())

		files := logFiles(t, path)
		if len(files) == 0 {
			continue // killed before Open made the file
		}
		rep, err := Verify(files...)
		require.NoError(t, err, "round %d: what a crash leaves verifies", round)
		require.GreaterOrEqual(t, rep.LastSeq, lastAcked, "round %d: a record Append returned is on disk", round)

		l, err := Open(path, Options{MaxBytes: 16 * MaxLineBytes})
		require.NoError(t, err, "round %d", round)
		if rep.Torn != nil {
			torn++
			require.NotNil(t, l.Torn(), "round %d: Open moves aside the torn tail Verify saw", round)
		} else {
			assert.Nil(t, l.Torn(), "round %d", round)
		}
		seq, head := l.Head()
		assert.Equal(t, rep.LastSeq, seq-uint64(boolInt(rep.Torn != nil)), "round %d: the chain goes on from the last intact record", round)
		require.NoError(t, l.Append(Record{Kind: "test_restart", Detail: fmt.Sprint(round)}))
		require.NoError(t, l.Close())
		after, err := Verify(logFiles(t, path)...)
		require.NoError(t, err, "round %d", round)
		assert.Nil(t, after.Torn)
		assert.Equal(t, seq+1, after.LastSeq)
		assert.NotEqual(t, head, after.Head)
		records = int(after.LastSeq)
	}
	t.Logf("%d rounds, %d records, %d torn tails", rounds, records, torn)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
