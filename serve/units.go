package serve

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseSize reads a byte count with an optional K, M, G or T suffix
// (powers of 1024, as in 256M), or an optional trailing B/iB. brig's CLI
// flags and the server's config read sizes with it, so that a template
// says memory: 256M as `brig run --memory 256M` does.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(t), "IB"), "B")
	mult := int64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'K':
			mult, t = 1<<10, t[:n-1]
		case 'M':
			mult, t = 1<<20, t[:n-1]
		case 'G':
			mult, t = 1<<30, t[:n-1]
		case 'T':
			mult, t = 1<<40, t[:n-1]
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("size %q: want a whole number with an optional K, M or G suffix, like 256M", s)
	}
	if v > (1<<62)/mult {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return v * mult, nil
}

// ParseDuration reads a Go duration ("10s", "1.5s", "250ms"), positive.
func ParseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("duration %q: want a positive Go duration, like 10s or 1.5s", s)
	}
	return d, nil
}
