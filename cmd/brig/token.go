package main

import (
	"fmt"
	"os"

	"github.com/brig-sandbox/brig/serve"
)

// tokenMain prints a new bearer token for brig serve and the line its
// config holds instead: the server keeps only the hash.
func tokenMain(args []string) int {
	if len(args) > 0 {
		fmt.Fprintln(os.Stderr, "brig token: takes no arguments; it prints a new token and its token_sha256 for the config")
		return exitBrigFailed
	}
	token, sum := serve.NewToken()
	fmt.Printf("token: %s\ntoken_sha256: %s\n", token, sum)
	return 0
}
