// Command brig runs programs in a jail. See `brig help`.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/brig-sandbox/brig/seccomp"
)

const usage = `brig runs untrusted programs in a jail.

Usage:
  brig run [flags] -- COMMAND [ARG...]   run COMMAND in a fresh jail
  brig session python|shell [--jsonl]    a persistent interpreter in a jail
  brig serve --config FILE [--listen ADDR]...  the HTTP service (docs/api.md)
  brig serve --sandboxd [--grpc-listen ADDR] [--rest-listen ADDR] [--workspace DIR]
                                         agent-sandbox's in-pod runtime (docs/kubernetes.md)
  brig token                             a new bearer token and its config line
  brig check [--json]                    report what this host supports
  brig audit verify|tail|grep FILE...    read brig serve's audit log
  brig version                           brig's version, commit, Go and libseccomp
  brig help                              this text

Run 'brig run --help' or 'brig session python --help' for the flags.
`

// exitBrigFailed is brig's own failure, as in env(1) and docker run.
const exitBrigFailed = 125

func main() {
	// A closed stdout (brig run ... | head) must not kill brig before it
	// cleans up; the program in the jail still gets its own SIGPIPE.
	signal.Ignore(syscall.SIGPIPE)
	setLogging(os.Stderr, false)
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(exitBrigFailed)
	}
	switch os.Args[1] {
	case "run":
		oneProcessor()
		os.Exit(runMain(os.Args[2:]))
	case "check":
		os.Exit(checkMain(os.Args[2:]))
	case "audit":
		os.Exit(auditMain(os.Args[2:]))
	case "session":
		os.Exit(sessionMain(os.Args[2:]))
	case "serve":
		os.Exit(serveMain(os.Args[2:]))
	case "token":
		os.Exit(tokenMain(os.Args[2:]))
	case "version", "--version":
		fmt.Print(versionText())
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "brig: unknown command %q; run 'brig help' for the commands\n", os.Args[1])
		os.Exit(exitBrigFailed)
	}
}

// oneProcessor runs brig's Go code on one processor (GOMAXPROCS 1) unless
// the environment sets GOMAXPROCS. A jail is built by brig's C processes
// (spawner, helper, init); what Go does meanwhile is a few system calls
// and waiting, and with a second processor the runtime spins idle threads
// looking for work while those processes need the CPUs.
func oneProcessor() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
}

// builtCommit is the commit `make build` stamps in (-X main.builtCommit),
// for builds where Go's own VCS stamp is off.
var builtCommit string

// versionText says which brig this is: the module version (or "(devel)"
// for a build from a checkout), the commit it was built from, the Go that
// built it and the libseccomp it links.
func versionText() string {
	version, commit := "(devel)", builtCommit
	if commit == "" {
		commit = "unknown"
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if builtCommit == "" {
					commit = s.Value
				}
			case "vcs.modified":
				if s.Value == "true" {
					commit += " (modified)"
				}
			}
		}
	}
	return fmt.Sprintf("brig %s\ncommit: %s\ngo: %s\nlibseccomp: %s\n", version, commit, runtime.Version(), seccomp.LibraryVersion())
}
