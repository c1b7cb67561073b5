package seccomp

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"

	libseccomp "github.com/seccomp/libseccomp-golang"
)

// Programs compiled ahead for the policies nearly every jail uses: the
// default, its KillOnRefusal and its LogOnly variants. libseccomp takes
// ~6 ms to compile the default policy, and a process such as `brig run`
// compiles it once per run; the embedded program costs nothing. Each file
// is named by the hash of the policy content it was compiled from, so a
// changed policy simply misses and is compiled as before. TestPrebuilt
// recompiles them and compares (go test ./seccomp -run TestPrebuilt -update
// rewrites them); prebuilt/LIBSECCOMP records the libseccomp they came
// from. On a host with another libseccomp the bytes are still a correct
// program for the same policy: that host's library might know a few more
// system call names, which the prebuilt program then refuses with ENOSYS.
//
//go:embed prebuilt
var prebuiltFS embed.FS

func prebuiltName(key [sha256.Size]byte) string {
	return "prebuilt/" + hex.EncodeToString(key[:]) + ".bpf"
}

// prebuilt returns the program compiled ahead for the policy whose
// canonical content hashes to key.
func prebuilt(key [sha256.Size]byte) ([]byte, bool) {
	b, err := prebuiltFS.ReadFile(prebuiltName(key))
	if err != nil || len(b) == 0 || len(b)%instructionSize != 0 {
		return nil, false
	}
	return b, true
}

// prebuiltPolicies are the policies whose programs ship with brig.
func prebuiltPolicies() []*Policy {
	d := Default()
	return []*Policy{d, d.KillOnRefusal(), d.LogOnly()}
}

func libseccompVersion() string {
	major, minor, micro := libseccomp.GetLibraryVersion()
	return fmt.Sprintf("%d.%d.%d", major, minor, micro)
}
