package jail

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/cgroup"
	"github.com/brig-sandbox/brig/internal/testenv"
)

// TestConfigCheck: Check refuses what Start would refuse for the Config
// alone, with Start's message, and passes a Config that runs.
func TestConfigCheck(t *testing.T) {
	testenv.RequireRoot(t)
	good := Config{Limits: cgroup.Limits{Memory: 64 << 20}, Tmpfs: []string{"/var/cache"}}
	require.NoError(t, good.Check())
	require.NoError(t, Config{}.Check(), "the zero Config is the safe default")
	_, _, r, err := run(t, good, "/bin/true")
	require.NoError(t, err)
	assert.True(t, r.Success())

	for name, bad := range map[string]Config{
		"tiny memory":        {Limits: cgroup.Limits{Memory: 1024}},
		"few pids":           {Limits: cgroup.Limits{Pids: 1}},
		"rlimit and require": {Limiter: cgroup.RlimitOnly, RequireCgroups: true},
		"relative tmpfs":     {Tmpfs: []string{"cache"}},
		"workdir in /usr":    {WorkDir: "/usr/lib"},
		"network":            {Network: "host"},
	} {
		t.Run(name, func(t *testing.T) {
			checkErr := bad.Check()
			require.Error(t, checkErr)
			startErr := Command(context.Background(), bad, "/bin/true").Run()
			var setup *SetupError
			require.True(t, errors.As(startErr, &setup), "%v", startErr)
			assert.Equal(t, "config", setup.Step)
			assert.Equal(t, checkErr.Error(), setup.Err.Error())
		})
	}
}
