package serve

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// durationField is a request's duration: a JSON number of seconds or a Go
// duration string ("1.5s").
type durationField time.Duration

func (d *durationField) UnmarshalJSON(b []byte) error {
	if strings.HasPrefix(string(b), `"`) {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := ParseDuration(s)
		if err != nil {
			return err
		}
		*d = durationField(v)
		return nil
	}
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil || secs <= 0 || secs > 1e9 {
		return fmt.Errorf("duration %s: want positive seconds (a number) or a Go duration like \"10s\"", b)
	}
	*d = durationField(time.Duration(secs * float64(time.Second)))
	return nil
}

// sizeField is a request's byte count: a JSON number or a size string
// ("256M").
type sizeField int64

func (s *sizeField) UnmarshalJSON(b []byte) error {
	if strings.HasPrefix(string(b), `"`) {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		v, err := ParseSize(str)
		if err != nil {
			return err
		}
		*s = sizeField(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil || n < 0 {
		return fmt.Errorf("size %s: want a whole number of bytes or a size like \"256M\"", b)
	}
	*s = sizeField(n)
	return nil
}
