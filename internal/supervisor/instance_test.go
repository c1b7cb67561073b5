package supervisor

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/internal/stage"
)

// The helper's "init" may come after a quick program has started and
// exited. awaitStart once dropped that "exit", and Wait, finding none,
// reported /bin/true killed by SIGKILL (BenchmarkColdTrueParallel8 on a
// loaded machine, a run in three).
func TestAwaitStartKeepsAnExitBeforeInit(t *testing.T) {
	for name, order := range map[string][]stage.Event{
		"init first":         {{Kind: "init", Pid: 42}, {Kind: "started"}, {Kind: "exit", Code: 3}},
		"exit before init":   {{Kind: "started"}, {Kind: "exit", Code: 3}, {Kind: "init", Pid: 42}},
		"started after init": {{Kind: "started"}, {Kind: "init", Pid: 42}, {Kind: "exit", Code: 3}},
	} {
		t.Run(name, func(t *testing.T) {
			c := &Instance{ctx: context.Background(), events: make(chan stage.Event, 4)}
			for _, ev := range order {
				c.events <- ev
			}
			c.events <- stage.Event{Kind: "done"}
			require.NoError(t, c.awaitStart())
			defer close(c.done) // ends watch's goroutine
			assert.Equal(t, 42, c.initPid)
			exit := c.exitEv // what Wait reads: this, then the rest until "done"
			for ev := range c.events {
				if ev.Kind == "exit" {
					exit = &ev
				}
				if ev.Kind == "done" {
					break
				}
			}
			require.NotNil(t, exit, "the program's exit reaches Wait")
			assert.Equal(t, 3, exit.Code)
		})
	}
}
