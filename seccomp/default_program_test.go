package seccomp

import (
	"bytes"
	"fmt"
	"testing"

	libseccomp "github.com/seccomp/libseccomp-golang"
)

// TestPrebuiltDefaultIsCurrent: the programs written at build time are the
// ones Compile makes of the default policies now. A change to the policy or
// the generator without `go generate ./seccomp` fails here.
func TestPrebuiltDefaultIsCurrent(t *testing.T) {
	if len(prebuiltDefault) == 0 {
		t.Skip("no program is prebuilt for this architecture; DefaultProgram compiles")
	}
	major, minor, micro := libseccomp.GetLibraryVersion()
	host := fmt.Sprintf("%d.%d.%d", major, minor, micro)
	for v := DefaultEnforce; v <= DefaultLog; v++ {
		want, err := v.Policy().Compile()
		if err != nil {
			t.Fatal(err)
		}
		got, err := DefaultProgram(v)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(got, want) {
			continue
		}
		if host != prebuiltLibseccomp {
			// Another table may know more or fewer calls by name.
			t.Skipf("%s: prebuilt with libseccomp %s, this host has %s, whose table may name other calls; compare on a host with %s",
				v, prebuiltLibseccomp, host, prebuiltLibseccomp)
		}
		t.Errorf("%s: the prebuilt program (%d instructions) is not what Compile makes (%d): run go generate ./seccomp",
			v, len(got)/instructionSize, len(want)/instructionSize)
	}
}

// TestDefaultProgramIsCallersOwn: changing a returned program changes no
// later one.
func TestDefaultProgramIsCallersOwn(t *testing.T) {
	a, err := DefaultProgram(DefaultEnforce)
	if err != nil {
		t.Fatal(err)
	}
	orig := bytes.Clone(a)
	a[0] ^= 0xff
	b, err := DefaultProgram(DefaultEnforce)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, orig) {
		t.Fatal("a caller's change to the returned program reached the next caller")
	}
	if _, err := DefaultProgram(DefaultLog + 1); err == nil {
		t.Fatal("an unknown variant gave a program")
	}
}
