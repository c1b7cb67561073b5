package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// parseSize reads a byte count with an optional K, M or G suffix (powers of
// 1024, as in 256M), or an optional trailing B/iB.
func parseSize(s string) (int64, error) {
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

// parseDuration reads a Go duration ("10s", "1.5s", "250ms"), positive.
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("duration %q: want a positive Go duration, like 10s or 1.5s", s)
	}
	return d, nil
}

// sizeFlag, durationFlag and listFlag adapt the parsers to package flag.
type sizeFlag struct{ v *int64 }

// String is "" for an unset value, so that -h prints only the default the
// usage text names, not a second "(default 0)".
func (f sizeFlag) String() string {
	if f.v == nil || *f.v == 0 {
		return ""
	}
	return strconv.FormatInt(*f.v, 10)
}
func (f sizeFlag) Set(s string) (err error) { *f.v, err = parseSize(s); return err }

type durationFlag struct{ v *time.Duration }

func (f durationFlag) String() string {
	if f.v == nil || *f.v == 0 {
		return ""
	}
	return f.v.String()
}
func (f durationFlag) Set(s string) (err error) { *f.v, err = parseDuration(s); return err }

type listFlag struct{ v *[]string }

func (f listFlag) String() string {
	if f.v == nil {
		return ""
	}
	return strings.Join(*f.v, ",")
}
func (f listFlag) Set(s string) error { *f.v = append(*f.v, s); return nil }

// parseFlags parses args as fs, the way brig's commands share: -h and
// --help print the usage line and the flags on stdout (and return
// flag.ErrHelp: the caller exits 0); a bad flag returns an error that
// names it and points to --help, without the whole flag list.
func parseFlags(fs *flag.FlagSet, args []string, usage string) error {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(os.Stdout)
		fmt.Fprintf(os.Stdout, "Usage: %s\n\nFlags:\n", usage)
		fs.PrintDefaults()
		return err
	}
	if err != nil {
		return fmt.Errorf("%w; run '%s --help' for the flags", err, fs.Name())
	}
	return nil
}
