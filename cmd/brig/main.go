// Command brig runs programs in a jail. See `brig help`.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
)

const usage = `brig runs untrusted programs in a jail.

Usage:
  brig run [flags] -- COMMAND [ARG...]   run COMMAND in a fresh jail
  brig session python|shell [--jsonl]    a persistent interpreter in a jail
  brig check                             report what this host supports
  brig help                              this text

Run 'brig run -h' for the flags.
`

// exitBrigFailed is brig's own failure, as in env(1) and docker run.
const exitBrigFailed = 125

func main() {
	// A closed stdout (brig run ... | head) must not kill brig before it
	// cleans up; the program in the jail still gets its own SIGPIPE.
	signal.Ignore(syscall.SIGPIPE)
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	switch os.Args[1] {
	case "run":
		oneProcessor()
		os.Exit(runMain(os.Args[2:]))
	case "check":
		os.Exit(checkMain(os.Args[2:]))
	case "session":
		os.Exit(sessionMain(os.Args[2:]))
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "brig: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
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
