package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
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

// appendRecord makes the bytes encoding/json makes (without HTML
// escapes) of any record: the log's lines read the same whichever wrote
// them, and a change to Record that the hand encoder misses fails here.
func FuzzAppendRecord(f *testing.F) {
	f.Add("alice", "print('<a&b>')\n\t\x00\u2028", "\xff\xfe ok \"q\" \\", int64(7), int64(-1), uint16(0xffff), int64(1764763200123456789))
	f.Add("", "", "", int64(0), int64(0), uint16(0), int64(0))
	f.Add("é", "\x7f\x1f\b\f\r", "\u2029x", int64(1)<<62, int64(-42), uint16(0x5555), int64(-1))
	f.Fuzz(func(t *testing.T, a, b, c string, n, m int64, flags uint16, nanos int64) {
		on := func(bit int) bool { return flags&(1<<bit) != 0 }
		pick := func(bit int, s string) string {
			if on(bit) {
				return s
			}
			return ""
		}
		// Years 0-9999 only: encoding/json refuses the others, and Append
		// writes the present.
		r := Record{Time: time.Unix(0, nanos%(200*365*24*int64(time.Hour))).UTC(), Seq: uint64(n), Kind: Kind(a),
			Tenant: pick(0, a), Sandbox: pick(1, b), Context: pick(2, c), Process: pick(3, a), RequestID: pick(4, b),
			Template: pick(5, c), Remote: pick(6, a), Detail: pick(7, b), Prev: c, Hash: pick(8, a)}
		if on(9) {
			r.Input = &Input{Language: pick(10, a), Code: pick(11, b), Bytes: n, SHA256: c, Truncated: on(12)}
			if on(13) {
				r.Input.Command = []string{a, b, c}[:1+int(uint64(m)%3)]
			}
		}
		if on(10) {
			r.File = &File{Path: a, Bytes: m * int64(flags&1), SHA256: pick(14, b)}
		}
		if on(11) {
			r.Verdict = &Verdict{Reason: a, ExitCode: int(int32(n)), Signal: int(m % 65), SeccompSyscall: pick(12, b),
				Quota: pick(13, c), Message: pick(14, a), WallTimeMS: n, CPUTimeMS: m, PeakMemoryBytes: n ^ m}
			if on(15) {
				r.Verdict.LimitsHit = []string{b, c}
			} else if on(0) {
				r.Verdict.LimitsHit = []string{}
			}
		}
		if on(12) {
			r.Stdout = &Output{Bytes: n, SHA256: b, Truncated: on(13)}
		}
		if on(13) {
			r.Stderr = &Output{Bytes: m, SHA256: c, Truncated: on(14)}
		}
		if on(14) {
			r.Egress = &Egress{Host: pick(15, a), Port: int(m % 65536), Address: pick(1, b), Allowed: on(2),
				BytesSent: n * int64(flags&2), BytesReceived: m * int64(flags&4)}
		}
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(r); err != nil {
			t.Skip(err) // a time encoding/json refuses; never one Append makes
		}
		got := appendRecord([]byte("prefix"), &r)
		if !bytes.Equal(got[len("prefix"):], bytes.TrimSuffix(want.Bytes(), []byte("\n"))) {
			t.Fatalf("appendRecord:\n%s\nencoding/json:\n%s", got[len("prefix"):], want.Bytes())
		}
	})
}
