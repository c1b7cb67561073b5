package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Kind says what a record is about.
type Kind string

// The kinds brig's service writes, and the log's own.
const (
	KindRun           Kind = "run"     // a one-shot run (POST /v1/runs)
	KindProcess       Kind = "process" // a command in a fresh jail of a sandbox
	KindCell          Kind = "cell"    // code executed in a context
	KindFileWrite     Kind = "file_write"
	KindFileDelete    Kind = "file_delete"
	KindSandboxCreate Kind = "sandbox_create"
	KindSandboxPause  Kind = "sandbox_pause"
	KindSandboxResume Kind = "sandbox_resume"
	KindSandboxDelete Kind = "sandbox_delete"
	KindContextCreate Kind = "context_create"
	KindContextDelete Kind = "context_delete"
	KindQuotaRefused  Kind = "quota_refused"
	KindAuthFailed    Kind = "auth_failed"
	KindEgress        Kind = "egress" // a network decision of the egress proxy
	KindTornTail      Kind = "audit_torn_tail"
	KindWriteResumed  Kind = "audit_write_resumed"
)

const (
	maxKindBytes     = 32
	genesisPrev      = "0000000000000000000000000000000000000000000000000000000000000000"
	hashHexLen       = 64
	hashSuffixPrefix = `,"hash":"`
	hashSuffixLen    = len(hashSuffixPrefix) + hashHexLen + 2 // ,"hash":"<64 hex>"}
)

// The caps that keep a record bounded whatever its inputs. Text past a cap
// is cut (at a UTF-8 boundary) and marked truncated; a hash of the whole
// always stays. Should the line still pass MaxLineBytes (JSON escapes a
// control byte to six), the code or command text is left out and only
// its hash and size kept.
const (
	// MaxLineBytes caps one record's line, its newline excluded. A longer
	// line is never written, and Verify reads no more of a line than this.
	MaxLineBytes = 256 << 10
	// MaxInputText caps the code (or the command's arguments, together)
	// that the `full` setting keeps in a record.
	MaxInputText = 32 << 10
	// MaxCommandArgs caps the number of a command's arguments kept.
	MaxCommandArgs = 1024
	// MaxIDBytes caps tenant, sandbox, context, process, request and
	// template ids, the client's address and the short verdict fields.
	MaxIDBytes = 128
	// MaxPathBytes caps a file path.
	MaxPathBytes = 4096
	// MaxDetailBytes caps the free-text detail and verdict message.
	MaxDetailBytes = 1024
	// MaxLimitsHit caps the entries of Verdict.LimitsHit.
	MaxLimitsHit = 8
)

// Record is one event of the audit log, one JSON line. Append sets Time,
// Seq, Prev and Hash; the caller fills in the rest (nil parts are left out
// of the line).
type Record struct {
	Time time.Time `json:"time"` // UTC, RFC 3339 with nanoseconds
	Seq  uint64    `json:"seq"`  // 1 for the first record of a log, then one more each record, across files
	Kind Kind      `json:"kind"`

	Tenant    string `json:"tenant,omitempty"`
	Sandbox   string `json:"sandbox,omitempty"`
	Context   string `json:"context,omitempty"`
	Process   string `json:"process,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	Template  string `json:"template,omitempty"`
	Remote    string `json:"remote,omitempty"` // the client's address, for auth failures

	Input   *Input   `json:"input,omitempty"`
	File    *File    `json:"file,omitempty"`
	Verdict *Verdict `json:"verdict,omitempty"`
	Stdout  *Output  `json:"stdout,omitempty"`
	Stderr  *Output  `json:"stderr,omitempty"`
	Egress  *Egress  `json:"egress,omitempty"`
	Detail  string   `json:"detail,omitempty"`

	// Prev is the sha256 (hex) of the previous record's line, its exact
	// bytes without the newline; 64 zeros for the first record of a log.
	Prev string `json:"prev"`
	// Hash is the sha256 (hex) of this record's line as it is without its
	// hash field: it lets Verify name the very line that was edited.
	Hash string `json:"hash,omitempty"`
}

// CodeMode is what a record keeps of the code or command it ran: a
// per-template setting of brig serve.
type CodeMode string

const (
	CodeFull   CodeMode = "full"   // the text up to MaxInputText, and its sha256 (the default)
	CodeSHA256 CodeMode = "sha256" // the sha256 and size only
	CodeNone   CodeMode = "none"   // nothing
)

// ParseCodeMode reads a CodeMode; "" is CodeFull.
func ParseCodeMode(s string) (CodeMode, error) {
	switch m := CodeMode(s); m {
	case "":
		return CodeFull, nil
	case CodeFull, CodeSHA256, CodeNone:
		return m, nil
	}
	return "", fmt.Errorf("audit: record_code %q: want full, sha256 or none", s)
}

// Input is the code or command an execution ran, as much as its CodeMode
// keeps.
type Input struct {
	Language  string   `json:"language,omitempty"` // python or shell, for code
	Code      string   `json:"code,omitempty"`
	Command   []string `json:"command,omitempty"`
	Bytes     int64    `json:"bytes"`  // of the whole code, or of the arguments each with a NUL after it
	SHA256    string   `json:"sha256"` // of the same bytes
	Truncated bool     `json:"truncated,omitempty"`
}

// CodeInput is the Input of code under mode; nil under CodeNone.
func CodeInput(mode CodeMode, language, code string) *Input {
	if mode == CodeNone {
		return nil
	}
	in := &Input{Language: clip(language, MaxIDBytes), Bytes: int64(len(code)), SHA256: Digest([]byte(code))}
	if mode == CodeFull {
		in.Code = clipText(code, MaxInputText)
		in.Truncated = in.Code != code
	}
	return in
}

// CommandInput is the Input of a command under mode; nil under CodeNone.
// Its hash covers every argument, each followed by a NUL.
func CommandInput(mode CodeMode, argv []string) *Input {
	if mode == CodeNone {
		return nil
	}
	h := sha256.New()
	var n int64
	for _, a := range argv {
		h.Write([]byte(a))
		h.Write([]byte{0})
		n += int64(len(a)) + 1
	}
	in := &Input{Bytes: n, SHA256: hex.EncodeToString(h.Sum(nil))}
	if mode == CodeFull {
		in.Command, in.Truncated = clipArgs(argv)
	}
	return in
}

// File is a file the API wrote or deleted beneath a sandbox's workspace.
type File struct {
	Path   string `json:"path"`
	Bytes  int64  `json:"bytes,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
}

// Verdict is how an execution ended, or why a request was refused.
type Verdict struct {
	Reason          string   `json:"reason"` // jail.Reason (exited, oom, timeout, ...), or a refusal's
	ExitCode        int      `json:"exit_code"`
	Signal          int      `json:"signal,omitempty"`
	LimitsHit       []string `json:"limits_hit,omitempty"` // e.g. oom_kill, pids, output_limit
	SeccompSyscall  string   `json:"seccomp_syscall,omitempty"`
	Quota           string   `json:"quota,omitempty"` // the quota a refusal names
	Message         string   `json:"message,omitempty"`
	WallTimeMS      int64    `json:"wall_time_ms"`
	CPUTimeMS       int64    `json:"cpu_time_ms"`
	PeakMemoryBytes int64    `json:"peak_memory_bytes"`
}

// Output is what an execution wrote to one stream: its size and hash,
// never its text.
type Output struct {
	Bytes     int64  `json:"bytes"`
	SHA256    string `json:"sha256"`
	Truncated bool   `json:"truncated,omitempty"` // the stream passed its output limit
}

// OutputOf is the Output of data.
func OutputOf(data []byte, truncated bool) *Output {
	return &Output{Bytes: int64(len(data)), SHA256: Digest(data), Truncated: truncated}
}

// Egress is one network decision of the egress proxy.
type Egress struct {
	Host          string `json:"host,omitempty"`
	Port          int    `json:"port"`
	Address       string `json:"address,omitempty"` // the address connected to, or that was refused
	Allowed       bool   `json:"allowed"`
	BytesSent     int64  `json:"bytes_sent,omitempty"`
	BytesReceived int64  `json:"bytes_received,omitempty"`
}

// Digest is the hex sha256 of b, as records carry it.
func Digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// bounded is a copy of r with every field within its cap, so that a
// record's line stays under MaxLineBytes whatever the caller put in it.
// Text is cut, never dropped silently: an Input whose text is not the
// whole code byte for byte is marked truncated (its hash, of the whole,
// computed here when the caller left it out).
func (r Record) bounded() Record {
	for _, s := range []*string{&r.Tenant, &r.Sandbox, &r.Context, &r.Process, &r.RequestID, &r.Template, &r.Remote} {
		*s = clip(*s, MaxIDBytes)
	}
	r.Detail = clip(r.Detail, MaxDetailBytes)
	if in := r.Input; in != nil {
		c := *in
		c.Language = clip(c.Language, MaxIDBytes)
		if c.SHA256 == "" && c.Code != "" {
			c.Bytes, c.SHA256 = int64(len(c.Code)), Digest([]byte(c.Code))
		}
		c.SHA256 = clip(c.SHA256, hashHexLen)
		code := clipText(c.Code, MaxInputText)
		args, cut := clipArgs(c.Command)
		c.Truncated = c.Truncated || code != c.Code || cut
		c.Code, c.Command = code, args
		r.Input = &c
	}
	if f := r.File; f != nil {
		c := *f
		c.Path, c.SHA256 = clip(c.Path, MaxPathBytes), clip(c.SHA256, hashHexLen)
		r.File = &c
	}
	if v := r.Verdict; v != nil {
		c := *v
		c.Reason, c.SeccompSyscall, c.Quota = clip(c.Reason, MaxIDBytes), clip(c.SeccompSyscall, MaxIDBytes), clip(c.Quota, MaxIDBytes)
		c.Message = clip(c.Message, MaxDetailBytes)
		if len(c.LimitsHit) > MaxLimitsHit {
			c.LimitsHit = c.LimitsHit[:MaxLimitsHit]
		}
		c.LimitsHit = append([]string(nil), c.LimitsHit...)
		for i := range c.LimitsHit {
			c.LimitsHit[i] = clip(c.LimitsHit[i], MaxIDBytes)
		}
		r.Verdict = &c
	}
	for _, o := range []**Output{&r.Stdout, &r.Stderr} {
		if *o != nil {
			c := **o
			c.SHA256 = clip(c.SHA256, hashHexLen)
			*o = &c
		}
	}
	if e := r.Egress; e != nil {
		c := *e
		c.Host, c.Address = clip(c.Host, MaxIDBytes*2), clip(c.Address, MaxIDBytes)
		r.Egress = &c
	}
	return r
}

// clip cuts s to at most n bytes, at the start of a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// clipText is clip of s with invalid UTF-8 made U+FFFD first, as JSON
// would, so that the cap holds for the text a reader of the record sees.
func clipText(s string, n int) string {
	return clip(strings.ToValidUTF8(clip(s, n), "\uFFFD"), n)
}

// clipArgs keeps the arguments that fit in MaxInputText together (the
// last one cut) and MaxCommandArgs in number.
func clipArgs(argv []string) (kept []string, cut bool) {
	if argv == nil {
		return nil, false
	}
	budget := MaxInputText
	for i, a := range argv {
		if i == MaxCommandArgs || budget == 0 {
			return kept, true
		}
		c := clipText(a, budget)
		kept = append(kept, c)
		budget -= len(c)
		if c != a {
			return kept, true
		}
	}
	return kept, false
}

// validKind reports whether k is a kind a record may carry: lower-case
// letters and underscores, so that grep and alert rules can match it.
func validKind(k Kind) bool {
	if k == "" || len(k) > maxKindBytes {
		return false
	}
	for _, c := range []byte(k) {
		if (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return true
}
