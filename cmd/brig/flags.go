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

	"github.com/brig-sandbox/brig/serve"
)

// parseSize and parseDuration are the readers brig's flags and the
// server's config share (package serve).
var (
	parseSize     = serve.ParseSize
	parseDuration = serve.ParseDuration
)

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
