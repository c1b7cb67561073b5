package seccomp

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPrebuilt checks that the shipped programs are what libseccomp makes
// of today's policies; with -update it writes them anew.
func TestPrebuilt(t *testing.T) {
	dir := "prebuilt"
	if *update {
		old, _ := filepath.Glob(filepath.Join(dir, "*.bpf"))
		for _, f := range old {
			require.NoError(t, os.Remove(f))
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, "LIBSECCOMP"), []byte(libseccompVersion()+"\n"), 0o644))
	}
	recorded, err := os.ReadFile(filepath.Join(dir, "LIBSECCOMP"))
	require.NoError(t, err)
	for _, p := range prebuiltPolicies() {
		data, err := p.canonical()
		require.NoError(t, err)
		key := sha256.Sum256(data)
		var q Policy
		require.NoError(t, json.Unmarshal(data, &q))
		fresh, err := compile(&q)
		require.NoError(t, err)
		name := prebuiltName(key)
		if *update {
			require.NoError(t, os.WriteFile(name, fresh, 0o644))
			continue
		}
		shipped, ok := prebuilt(key)
		require.True(t, ok, "no prebuilt program for a shipped policy (the policy changed): go test ./seccomp -run TestPrebuilt -update")
		if v := strings.TrimSpace(string(recorded)); v != libseccompVersion() {
			t.Skipf("prebuilt programs come from libseccomp %s, this host has %s: bytes not compared", v, libseccompVersion())
		}
		require.True(t, bytes.Equal(shipped, fresh), "%s is stale: go test ./seccomp -run TestPrebuilt -update", name)
		got, err := p.Compile()
		require.NoError(t, err)
		require.Equal(t, shipped, got, "Compile must return the prebuilt program")
	}
}
