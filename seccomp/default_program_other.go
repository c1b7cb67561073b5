//go:build !amd64

package seccomp

// No program is prebuilt for this architecture: DefaultProgram compiles.
const prebuiltLibseccomp = ""

var prebuiltDefault [0]string
