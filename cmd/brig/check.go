package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/brig-sandbox/brig/cgroup"
	"github.com/brig-sandbox/brig/jail"
)

// checkReport is what `brig check` finds; --json prints it as it is.
type checkReport struct {
	UID            int    `json:"uid"`
	UserNamespaces string `json:"user_namespaces"` // max_user_namespaces, or why unknown
	Seccomp        string `json:"seccomp"`         // the kernel's actions, or why unavailable
	Pidfd          bool   `json:"pidfd"`
	Clone3Cgroup   bool   `json:"clone3_into_cgroup"`
	Cgroups        struct {
		Mode    string       `json:"mode"`
		Cgroup2 checkBackend `json:"cgroup2"`
		Cgroup1 checkBackend `json:"cgroup1"`
		Limiter string       `json:"limiter"` // what jails would use; "" when none
		Why     string       `json:"why"`
	} `json:"cgroups"`
	Jail      string `json:"jail"` // "works", or the failure
	JailWorks bool   `json:"jail_works"`
}

// checkBackend is one cgroup implementation's status (cgroup.Backend) in
// the CLI's JSON.
type checkBackend struct {
	Mount       string   `json:"mount"`
	Controllers []string `json:"controllers"`
	Parents     []string `json:"parents"`
	Writable    bool     `json:"writable"`
	Usable      bool     `json:"usable"`
	Problem     string   `json:"problem,omitempty"`
}

func backendOf(b cgroup.Backend) checkBackend {
	return checkBackend{Mount: b.Mount, Controllers: b.Controllers, Parents: b.Dirs, Writable: b.Writable, Usable: b.Usable, Problem: b.Problem}
}

func (b checkBackend) backend() cgroup.Backend {
	return cgroup.Backend{Mount: b.Mount, Controllers: b.Controllers, Dirs: b.Parents, Writable: b.Writable, Usable: b.Usable, Problem: b.Problem}
}

// checkMain implements `brig check`: what this host supports and what brig
// would use. It proves the jail works by running /bin/true in one.
func checkMain(args []string) int {
	fs := flag.NewFlagSet("brig check", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	if err := parseFlags(fs, args, "brig check [--json]"); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		fmt.Fprintf(os.Stderr, "brig: %v\n", err)
		return exitBrigFailed
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "brig: check takes no arguments: %q\n", fs.Args())
		return exitBrigFailed
	}
	r := check()
	if *asJSON {
		b, _ := json.MarshalIndent(r, "", "  ")
		fmt.Println(string(b))
	} else {
		printCheck(r)
	}
	if !r.JailWorks || strings.HasPrefix(r.Seccomp, "unavailable") {
		return 1
	}
	return 0
}

func check() *checkReport {
	r := &checkReport{UID: os.Geteuid()}
	if v, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err == nil {
		r.UserNamespaces = "max " + strings.TrimSpace(string(v))
	} else {
		r.UserNamespaces = "unknown: " + err.Error()
	}
	if v, err := os.ReadFile("/proc/sys/kernel/seccomp/actions_avail"); err == nil {
		r.Seccomp = "actions " + strings.TrimSpace(string(v))
	} else {
		r.Seccomp = "unavailable: " + err.Error()
	}
	if fd, err := unix.PidfdOpen(os.Getpid(), 0); err == nil {
		unix.Close(fd)
		r.Pidfd = true
	}
	// As the jail package asks for its jails' cgroups: never the v1
	// freezer (a jail's PID namespace ends all of it), so its parent is
	// neither made nor listed.
	cg := cgroup.Detect(cgroup.Options{NoFreezer: true})
	r.Clone3Cgroup = cg.Cgroup2.Usable
	r.Cgroups.Mode, r.Cgroups.Cgroup2, r.Cgroups.Cgroup1 = cg.Mode, backendOf(cg.Cgroup2), backendOf(cg.Cgroup1)
	r.Cgroups.Limiter, r.Cgroups.Why = string(cg.Pick), cg.Why

	cfg := jail.Config{Timeout: 10e9}
	out, err := jail.Command(context.Background(), cfg, "/bin/true").CombinedOutput()
	if err != nil {
		r.Jail = fmt.Sprintf("FAILED: %v %s", err, out)
	} else {
		r.Jail, r.JailWorks = "works (ran /bin/true with every namespace, limits and seccomp)", true
	}
	return r
}

func printCheck(r *checkReport) {
	line := func(name, verdict string) { fmt.Printf("%-22s %s\n", name+":", verdict) }
	line("running as", fmt.Sprintf("uid %d", r.UID))
	line("user namespaces", r.UserNamespaces)
	line("seccomp", r.Seccomp)
	line("pidfd", map[bool]string{true: "yes", false: "no"}[r.Pidfd])
	clone3 := "no (needs cgroup v2)"
	if r.Clone3Cgroup {
		clone3 = "yes (jails are born in their cgroup)"
	}
	line("clone3 into cgroup", clone3)
	rep := cgroup.Report{Mode: r.Cgroups.Mode, Cgroup2: r.Cgroups.Cgroup2.backend(), Cgroup1: r.Cgroups.Cgroup1.backend(),
		Pick: cgroup.Kind(r.Cgroups.Limiter), Why: r.Cgroups.Why}
	fmt.Print(indent(rep.String()))
	line("jail", r.Jail)
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ") + "\n"
}
