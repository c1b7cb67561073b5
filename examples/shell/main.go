// Command shell runs a shell command line in a jail with a host directory
// bound read-only at /data, and prints its output.
//
//	go run ./examples/shell 'ls -l /data | wc -l' /usr/share/doc
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/brig-sandbox/brig/jail"
)

func main() {
	line, dir := "uname -a; id; ls /data | head", "/usr/share/doc"
	if len(os.Args) > 1 {
		line = os.Args[1]
	}
	if len(os.Args) > 2 {
		dir = os.Args[2]
	}
	cfg := jail.Config{Binds: []jail.Bind{{Source: dir, Target: "/data"}}}
	out, err := jail.Command(context.Background(), cfg, "/bin/sh", "-c", line).CombinedOutput()
	// Nothing of brig outlives the program: its spawner, root templates
	// and the cgroups it kept for its next jails go.
	_ = jail.DefaultSupervisor.Close()
	fmt.Print(string(out))
	if err != nil {
		fmt.Fprintln(os.Stderr, "jail:", err)
		os.Exit(1)
	}
}
