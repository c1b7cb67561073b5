package main

import "github.com/brig-sandbox/brig/serve"

// The CLI's JSON: `brig run --result` writes a resultJSON, `brig session
// --jsonl` a cellJSON per cell. The server answers with the same shapes,
// so they live in package serve; jsonshapes_test.go holds their keys.
type (
	resultJSON    = serve.ResultJSON
	cellJSON      = serve.CellJSON
	exceptionJSON = serve.ExceptionJSON
)

var (
	newResultJSON = serve.NewResultJSON
	newCellJSON   = serve.NewCellJSON
)
