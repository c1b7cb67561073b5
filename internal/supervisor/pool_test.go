package supervisor

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/internal/stage"
)

// The helper's "init" and the jail's "ready" come from two processes in
// either order. A pooled jail whose "init" came after its "ready" was once
// put in the pool with that event unread, and take() read it as the idle
// jail's death (TestPoolNeverReusesAJail: Hits 3 of 4, once, on a fresh
// machine). awaitReady takes both, and nothing more.
func TestPoolAwaitReadyEitherOrder(t *testing.T) {
	for name, order := range map[string][]stage.Event{
		"init first":  {{Kind: "init", Pid: 42}, {Kind: "ready"}},
		"ready first": {{Kind: "ready"}, {Kind: "init", Pid: 42}},
	} {
		t.Run(name, func(t *testing.T) {
			c := &Instance{events: make(chan stage.Event, 4)}
			for _, ev := range order {
				c.events <- ev
			}
			c.events <- stage.Event{Kind: "exit"} // what comes after the request
			require.NoError(t, c.awaitReady())
			assert.Equal(t, 42, c.initPid)
			require.Len(t, c.events, 1, "awaitReady read past the jail's readiness")
			assert.Equal(t, "exit", (<-c.events).Kind)
		})
	}
	c := &Instance{events: make(chan stage.Event, 1)}
	c.events <- stage.Event{Kind: "ready"}
	close(c.events)
	var se *StepError
	require.ErrorAs(t, c.awaitReady(), &se, "a jail that ends before its init pid is not ready")
}
