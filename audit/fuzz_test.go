package audit

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// chainBytes is a valid log of n records, built as Append builds it.
func chainBytes(tb testing.TB, n int) []byte {
	var out []byte
	prev := genesisPrev
	for i := range n {
		r := sample(i)
		r.Seq, r.Prev = uint64(i+1), prev
		line, err := encodeLine(r)
		if err != nil {
			tb.Fatal(err)
		}
		prev = Digest(line)
		out = append(append(out, line...), '\n')
	}
	return out
}

func memSource(name string, data []byte) source {
	return source{name: name, open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }}
}

// Verify reads any bytes without panicking, and calls a log intact only
// when every line is an intact record chained to the one before.
func FuzzVerify(f *testing.F) {
	good := chainBytes(f, 4)
	f.Add(good)
	f.Add(good[:len(good)-7])
	f.Add(bytes.Replace(good, []byte(`"seq":2`), []byte(`"seq":3`), 1))
	f.Add([]byte("{}\n"))
	f.Add([]byte(""))
	f.Add([]byte("\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := verifySources([]source{memSource("f", data)})
		var p *Problem
		if err != nil {
			if !errors.As(err, &p) {
				t.Fatalf("not a Problem for in-memory bytes: %v", err)
			}
			if p.Line < 1 {
				t.Fatalf("line %d", p.Line)
			}
			return
		}
		whole := data
		if rep.Torn != nil {
			whole = data[:bytes.LastIndexByte(data, '\n')+1]
		}
		lines := strings.SplitAfter(string(whole), "\n")
		if lines[len(lines)-1] == "" {
			lines = lines[:len(lines)-1]
		}
		if len(lines) != rep.Records {
			t.Fatalf("%d records reported intact, %d lines", rep.Records, len(lines))
		}
		prev := ""
		for i, l := range lines {
			facts, err := checkLine([]byte(strings.TrimSuffix(l, "\n")))
			if err != nil {
				t.Fatalf("line %d called intact: %v", i+1, err)
			}
			if i > 0 && facts.prev != prev {
				t.Fatalf("line %d: prev does not chain", i+1)
			}
			prev = facts.hash
		}
	})
}

// The line reader holds no more than its cap of a line and returns every
// line of its input, cut or whole, with whether a newline ended it.
func FuzzAuditLineReader(f *testing.F) {
	for _, s := range []string{"a\nb\n", "", "\n\n", "no newline", "toolongline\nok\n", "\r\n"} {
		f.Add([]byte(s), uint8(4))
	}
	f.Fuzz(func(t *testing.T, data []byte, max uint8) {
		lr := newLineReader(bytes.NewReader(data), int(max))
		want := strings.SplitAfter(string(data), "\n")
		if want[len(want)-1] == "" {
			want = want[:len(want)-1]
		}
		for i, w := range want {
			line, tooLong, ended, err := lr.next()
			if err != nil {
				t.Fatalf("line %d: %v", i, err)
			}
			if ended != strings.HasSuffix(w, "\n") {
				t.Fatalf("line %d %q: ended=%v", i, w, ended)
			}
			w = strings.TrimSuffix(w, "\n")
			if tooLong != (len(w) > int(max)) {
				t.Fatalf("line %d %q: tooLong=%v with max %d", i, w, tooLong, max)
			}
			if !tooLong && string(line) != w {
				t.Fatalf("line %d: %q, want %q", i, line, w)
			}
			if len(line) > int(max) {
				t.Fatalf("line %d: %d bytes over the cap %d", i, len(line), max)
			}
		}
		if _, _, _, err := lr.next(); !errors.Is(err, io.EOF) {
			t.Fatalf("after the last line: %v", err)
		}
	})
}
