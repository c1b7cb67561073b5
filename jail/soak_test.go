package jail_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/internal/hostile"
	"github.com/brig-sandbox/brig/internal/hostile/apirun"
	"github.com/brig-sandbox/brig/internal/testenv"
	"github.com/brig-sandbox/brig/jail"
)

// TestSoak runs mixed benign and hostile one-shot payloads from the
// corpus, 8 at a time, through this process as a long-lived supervisor:
// every run must get its verdict, nothing may leak, and the supervisor's
// fds, goroutines and memory must stay flat. CI runs 200; `make soak`
// runs 2000 (BRIG_SOAK_RUNS and BRIG_SOAK_PARALLEL change it here).
func TestSoak(t *testing.T) {
	testenv.RequireRoot(t)
	jail.RequirePython(t)
	runs, parallel := envInt("BRIG_SOAK_RUNS", 200), envInt("BRIG_SOAK_PARALLEL", 8)
	if testing.Short() {
		runs = 40
	}
	mix := hostile.SoakMix(loadCorpus(t))
	require.NotEmpty(t, mix)
	bait, err := hostile.SetBait()
	require.NoError(t, err)
	defer bait.Close()
	limiter := os.Getenv("BRIG_HOSTILE_LIMITER")
	rep := hostile.Soak(context.Background(), apirun.Runner{}, mix, bait,
		hostile.SoakOptions{Runs: runs, Parallel: parallel, Limiter: limiter, IDs: jail.HostileIDs(), Seed: uint64(time.Now().UnixNano())})
	t.Log(rep.Summary(parallel))
	assert.Equal(t, runs, rep.Runs)
	assert.Empty(t, rep.Failures, "wrong verdicts")
	assert.Empty(t, rep.Leaks, "left on the host")
	assert.Empty(t, rep.Flat(), "the supervisor grew")
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
