// Command python runs a snippet of Python in a jail and prints what came
// back: the program's output and the Result.
//
//	go run ./examples/python 'print(sum(range(10)))'
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/brig-sandbox/brig/jail"
)

func main() {
	code := `import platform, os; print("hello from", platform.python_version(), "as uid", os.getuid())`
	if len(os.Args) > 1 {
		code = os.Args[1]
	}
	cfg := jail.Config{Timeout: 10 * time.Second}
	cfg.Limits.Memory = 256 << 20
	cmd := jail.Command(context.Background(), cfg, "/usr/bin/python3", "-c", code)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	// Nothing of brig outlives the program: its spawner, root templates
	// and the cgroups it kept for its next jails go.
	_ = jail.DefaultSupervisor.Close()
	var exitErr *jail.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		fmt.Fprintln(os.Stderr, "jail failed:", err)
		os.Exit(1)
	}
	fmt.Printf("stdout: %s", stdout.String())
	if stderr.Len() > 0 {
		fmt.Printf("stderr: %s", stderr.String())
	}
	r := cmd.Result
	fmt.Printf("result: %s, exit code %d, wall %v, cpu %v, peak memory %d KiB, limiter %s\n",
		r.Reason, r.ExitCode, r.WallTime.Round(time.Millisecond), r.CPUTime.Round(time.Millisecond), r.PeakMemory>>10, r.Limiter)
}
