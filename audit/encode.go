package audit

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// appendRecord appends r as JSON, the bytes encoding/json makes of it
// with HTML escaping off (FuzzAppendRecord holds the two equal). It is
// written out by hand because reflection made the encoding the largest
// part of an audited request's cost, and a record's shape is fixed.
func appendRecord(b []byte, r *Record) []byte {
	b = append(b, `{"time":`...)
	b = appendTime(b, r.Time)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	b = append(b, `,"kind":`...)
	b = appendString(b, string(r.Kind))
	b = appendOptString(b, `,"tenant":`, r.Tenant)
	b = appendOptString(b, `,"sandbox":`, r.Sandbox)
	b = appendOptString(b, `,"context":`, r.Context)
	b = appendOptString(b, `,"process":`, r.Process)
	b = appendOptString(b, `,"request_id":`, r.RequestID)
	b = appendOptString(b, `,"template":`, r.Template)
	b = appendOptString(b, `,"remote":`, r.Remote)
	if in := r.Input; in != nil {
		b = append(b, `,"input":{`...)
		b = appendOptString(b, `,"language":`, in.Language)
		b = appendOptString(b, `,"code":`, in.Code)
		if len(in.Command) > 0 {
			b = appendField(b, `,"command":`)
			b = appendStrings(b, in.Command)
		}
		b = appendField(b, `,"bytes":`)
		b = strconv.AppendInt(b, in.Bytes, 10)
		b = append(b, `,"sha256":`...)
		b = appendString(b, in.SHA256)
		b = appendOptTrue(b, `,"truncated":true`, in.Truncated)
		b = append(b, '}')
	}
	if f := r.File; f != nil {
		b = append(b, `,"file":{"path":`...)
		b = appendString(b, f.Path)
		b = appendOptInt(b, `,"bytes":`, f.Bytes)
		b = appendOptString(b, `,"sha256":`, f.SHA256)
		b = append(b, '}')
	}
	if v := r.Verdict; v != nil {
		b = append(b, `,"verdict":{"reason":`...)
		b = appendString(b, v.Reason)
		b = append(b, `,"exit_code":`...)
		b = strconv.AppendInt(b, int64(v.ExitCode), 10)
		b = appendOptInt(b, `,"signal":`, int64(v.Signal))
		if len(v.LimitsHit) > 0 {
			b = append(b, `,"limits_hit":`...)
			b = appendStrings(b, v.LimitsHit)
		}
		b = appendOptString(b, `,"seccomp_syscall":`, v.SeccompSyscall)
		b = appendOptString(b, `,"quota":`, v.Quota)
		b = appendOptString(b, `,"message":`, v.Message)
		b = append(b, `,"wall_time_ms":`...)
		b = strconv.AppendInt(b, v.WallTimeMS, 10)
		b = append(b, `,"cpu_time_ms":`...)
		b = strconv.AppendInt(b, v.CPUTimeMS, 10)
		b = append(b, `,"peak_memory_bytes":`...)
		b = strconv.AppendInt(b, v.PeakMemoryBytes, 10)
		b = append(b, '}')
	}
	b = appendOutput(b, `,"stdout":`, r.Stdout)
	b = appendOutput(b, `,"stderr":`, r.Stderr)
	if e := r.Egress; e != nil {
		b = append(b, `,"egress":{`...)
		b = appendOptString(b, `,"host":`, e.Host)
		b = appendField(b, `,"port":`)
		b = strconv.AppendInt(b, int64(e.Port), 10)
		b = appendOptString(b, `,"address":`, e.Address)
		b = append(b, `,"allowed":`...)
		b = strconv.AppendBool(b, e.Allowed)
		b = appendOptInt(b, `,"bytes_sent":`, e.BytesSent)
		b = appendOptInt(b, `,"bytes_received":`, e.BytesReceived)
		b = append(b, '}')
	}
	b = appendOptString(b, `,"detail":`, r.Detail)
	b = append(b, `,"prev":`...)
	b = appendString(b, r.Prev)
	b = appendOptString(b, `,"hash":`, r.Hash)
	return append(b, '}')
}

// appendField appends a field's name and colon, without the comma when
// it is the object's first (the previous byte is its brace).
func appendField(b []byte, name string) []byte {
	if b[len(b)-1] == '{' {
		name = name[1:]
	}
	return append(b, name...)
}

func appendOptString(b []byte, name, s string) []byte {
	if s == "" {
		return b
	}
	return appendString(appendField(b, name), s)
}

func appendOptInt(b []byte, name string, n int64) []byte {
	if n == 0 {
		return b
	}
	return strconv.AppendInt(appendField(b, name), n, 10)
}

func appendOptTrue(b []byte, field string, set bool) []byte {
	if !set {
		return b
	}
	return appendField(b, field)
}

func appendOutput(b []byte, name string, o *Output) []byte {
	if o == nil {
		return b
	}
	b = append(b, name...)
	b = append(b, `{"bytes":`...)
	b = strconv.AppendInt(b, o.Bytes, 10)
	b = append(b, `,"sha256":`...)
	b = appendString(b, o.SHA256)
	b = appendOptTrue(b, `,"truncated":true`, o.Truncated)
	return append(b, '}')
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendTime is time.Time's MarshalJSON: RFC 3339 with nanoseconds.
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendString is encoding/json's string encoding without HTML escapes:
// quotes, backslashes and control bytes escaped, invalid UTF-8 replaced
// by U+FFFD, and U+2028 and U+2029 escaped (JavaScript reads them as line
// ends).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
