package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/brig-sandbox/brig/cgroup"
	"github.com/brig-sandbox/brig/jail"
)

// checkMain implements `brig check`: what this host supports and what brig
// would use. It proves the jail works by running /bin/true in one.
func checkMain(args []string) int {
	if len(args) > 0 {
		fmt.Fprintln(os.Stderr, "brig: check takes no arguments")
		return 2
	}
	ok := true
	line := func(name, verdict string) { fmt.Printf("%-22s %s\n", name+":", verdict) }

	fmt.Printf("%-22s uid %d\n", "running as:", os.Geteuid())
	if v, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err == nil {
		line("user namespaces", "max "+strings.TrimSpace(string(v)))
	} else {
		line("user namespaces", "unknown: "+err.Error())
	}
	if v, err := os.ReadFile("/proc/sys/kernel/seccomp/actions_avail"); err == nil {
		line("seccomp", "actions "+strings.TrimSpace(string(v)))
	} else {
		line("seccomp", "unavailable: "+err.Error())
		ok = false
	}
	if fd, err := unix.PidfdOpen(os.Getpid(), 0); err == nil {
		unix.Close(fd)
		line("pidfd", "yes")
	} else {
		line("pidfd", "no: "+err.Error())
	}
	// As the jail package asks for its jails' cgroups: never the v1
	// freezer (a jail's PID namespace ends all of it), so its parent is
	// neither made nor listed.
	report := cgroup.Detect(cgroup.Options{NoFreezer: true})
	clone3 := "no (needs cgroup v2)"
	if report.Cgroup2.Usable {
		clone3 = "yes (jails are born in their cgroup)"
	}
	line("clone3 into cgroup", clone3)
	fmt.Print(indent(report.String()))

	cfg := jail.Config{Timeout: 10e9}
	out, err := jail.Command(context.Background(), cfg, "/bin/true").CombinedOutput()
	if err != nil {
		line("jail", fmt.Sprintf("FAILED: %v %s", err, out))
		ok = false
	} else {
		line("jail", "works (ran /bin/true with every namespace, limits and seccomp)")
	}
	if !ok {
		return 1
	}
	return 0
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ") + "\n"
}
