// Package stage is brig's C runtime: the spawner, the helper, init and
// the exec stage of every jail (stage.c and the files it names), run from
// a constructor of the binary before the Go runtime starts, so that a
// program that imports jail (and through it this package) needs no line
// in main. Its Go side lays out what the supervisor sends the stages and
// reads what they report (wire.go; wire_doc.go documents every message),
// with every value both sides share read from stage.h through cgo.
package stage
