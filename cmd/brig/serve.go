package main

import (
	"fmt"
	"os"
)

// serveMain is brig serve; the server itself is package serve.
func serveMain(args []string) int {
	fmt.Fprintln(os.Stderr, "brig serve: not built yet")
	return exitBrigFailed
}
