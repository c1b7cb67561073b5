package sandboxd

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/brig-sandbox/brig/internal/testenv"
	"github.com/brig-sandbox/brig/jail"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A root server in a pod's user namespace (65536 ids) refuses the default
// host ids by name and accepts a range inside the namespace.
func TestCheckHostIDsInAPodsUserNamespace(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	podMap := filepath.Join(dir, "map")
	require.NoError(t, os.WriteFile(podMap, []byte("         0     200000      65536\n"), 0o644))
	saved := idMapFiles
	idMapFiles = []string{podMap, podMap}
	defer func() { idMapFiles = saved }()
	err := checkHostIDs(jail.IDRange{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--host-ids 2000:63536")
	assert.Contains(t, err.Error(), "0-65535")
	require.NoError(t, checkHostIDs(jail.IDRange{First: 2000, Count: 63000}))
	require.Error(t, checkHostIDs(jail.IDRange{First: 2000, Count: 64000}), "past the end of the map")
	_, err = New(Options{Workspace: newTestWorkspace(t)})
	require.ErrorContains(t, err, "--host-ids")

	idMapFiles = saved
	require.NoError(t, checkHostIDs(jail.IDRange{}), "this host's own namespace maps every id")
}
