package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/brig-sandbox/brig/egress"
	"github.com/brig-sandbox/brig/jail"
)

// The egress flags (--net proxy, docs/egress.md): each fills jf.egress
// and is remembered, so that one given without --net proxy is refused
// rather than ignored.
func (jf *jailFlags) registerEgressFlags(fs *flag.FlagSet) {
	p := &jf.egress
	egressFunc := func(name, usage string, set func(string) error) {
		fs.Func(name, usage, func(s string) error {
			jf.egressFlags = append(jf.egressFlags, "--"+name)
			return set(s)
		})
	}
	egressFunc("allow", "with --net proxy: let the program reach HOST[:PORT] (ports 80 and 443 without one), *.DOMAIN, an IP or CIDR (repeatable)", p.AllowDestination)
	egressFunc("allow-preset", "with --net proxy: allow a named set of hosts: "+presetNames()+" (repeatable)", p.AllowPreset)
	egressFunc("deny", "with --net proxy: refuse HOST[:PORT], *.DOMAIN, an IP or CIDR even when allowed (repeatable)", p.DenyDestination)
	count := func(name string, v *int) func(string) error {
		return func(s string) error {
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 {
				return fmt.Errorf("--%s %q: want a positive whole number", name, s)
			}
			*v = n
			return nil
		}
	}
	egressFunc("egress-concurrent", fmt.Sprintf("with --net proxy: connections open at once (default %d)", egress.DefaultMaxConcurrent), count("egress-concurrent", &p.MaxConcurrent))
	egressFunc("egress-connections", fmt.Sprintf("with --net proxy: connections over the run (default %d)", egress.DefaultMaxConnections), count("egress-connections", &p.MaxConnections))
	egressFunc("egress-bytes-up", "with --net proxy: bytes sent out over the run (e.g. 10M; default no cap)", sizeFlag{&p.MaxBytesUp}.Set)
	egressFunc("egress-bytes-down", "with --net proxy: bytes received over the run (e.g. 1G; default no cap)", sizeFlag{&p.MaxBytesDown}.Set)
	egressFunc("egress-idle", fmt.Sprintf("with --net proxy: cut a connection idle this long (default %s)", egress.DefaultIdleTimeout), durationFlag{&p.IdleTimeout}.Set)
	egressFunc("egress-connect-timeout", fmt.Sprintf("with --net proxy: limit on resolving and dialing a destination (default %s)", egress.DefaultConnectTimeout), durationFlag{&p.ConnectTimeout}.Set)
}

func presetNames() string {
	var names []string
	for n := range egress.Presets() {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// finishNetwork checks --net and the egress flags together.
func (jf *jailFlags) finishNetwork() error {
	switch jf.network {
	case "none":
		if len(jf.egressFlags) > 0 {
			return fmt.Errorf("%s without --net proxy: the jail has no network to allow anything on; add --net proxy", jf.egressFlags[0])
		}
	case "proxy":
		if len(jf.egress.Allow) == 0 {
			return errors.New("--net proxy allows nothing without --allow HOST[:PORT] or --allow-preset NAME; add one")
		}
		pol := jf.egress
		jf.cfg.Network, jf.cfg.Egress = "proxy", &pol
	default:
		return fmt.Errorf("--net %q: want none (lo alone) or proxy (lo and an egress proxy, with --allow)", jf.network)
	}
	return nil
}

// printEgressRefused says on stderr, one line each, what the egress proxy
// refused, so that a failed download explains itself.
func printEgressRefused(r *jail.Result) {
	for _, f := range r.EgressRefused {
		what := f.Host
		if what == "" {
			what = "a connection"
		} else if f.Port != 0 {
			what = net.JoinHostPort(f.Host, strconv.Itoa(f.Port))
		}
		times := ""
		if f.Count > 1 {
			times = fmt.Sprintf(", %d times", f.Count)
		}
		fmt.Fprintf(os.Stderr, "brig: egress refused %s (%s%s)\n", what, f.Reason, times)
	}
}
