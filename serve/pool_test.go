package serve

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/internal/testenv"
)

// TestContextPool over HTTP: a template with context-pool hands new
// contexts a warm session, which works in a private /workspace (the
// sandbox's files API does not see what it writes, as docs/api.md says)
// and is its context's alone; the pool refills; a template without a pool
// gives contexts the sandbox's workspace, a pooled one never; a pooled context pauses with
// idle_pause; deleting and closing leave nothing (Cleanup).
func TestContextPool(t *testing.T) {
	requireFreezer(t)
	ts := startServer(t, func(s string) string {
		s = strings.Replace(noPool(s), "workspace-size: 1M, pool: 0}", "workspace-size: 1M, pool: 0, context-pool: 1}", 1)
		return strings.Replace(s, "lifecycle: {drain_grace: 1s}", "lifecycle: {drain_grace: 1s, idle_pause: 300ms}", 1)
	})
	pool := ts.srv.contextPools[contextPoolKey("default", "python")]
	require.NotNil(t, pool)
	ready := func() bool { return pool.Stats().Ready == 1 }
	require.Eventually(t, ready, testenv.Scaled(20*time.Second), 10*time.Millisecond)

	sb := ts.newSandbox(t, nil)
	a := ts.as(t, "POST", "/v1/sandboxes/"+sb+"/contexts", map[string]string{"language": "python"})
	require.Equal(t, 201, a.status, "%s", a.body)
	assert.Equal(t, "private", a.json(t)["workspace"])
	cx := a.json(t)["id"].(string)
	a = ts.as(t, "POST", "/v1/sandboxes/"+sb+"/contexts/"+cx+"/execute", map[string]any{"code": "import os\nopen('mine.txt', 'w').write('x')\nsecret = 1\nos.getcwd()"})
	require.Equal(t, 200, a.status, "%s", a.body)
	assert.Equal(t, "'/workspace'", a.json(t)["value"], "%s", a.body)
	assert.Equal(t, 404, ts.as(t, "GET", "/v1/sandboxes/"+sb+"/files/mine.txt", nil).status, "a pooled context's /workspace is its own")
	assert.EqualValues(t, 1, pool.Stats().Hits)
	// At once another: whether the refill is done or not (a miss starts
	// one with the pool's Config), every context of the template is alike.
	a = ts.as(t, "POST", "/v1/sandboxes/"+sb+"/contexts", map[string]string{"language": "python"})
	require.Equal(t, 201, a.status, "%s", a.body)
	assert.Equal(t, "private", a.json(t)["workspace"])
	require.Equal(t, 200, ts.as(t, "DELETE", "/v1/sandboxes/"+sb+"/contexts/"+a.json(t)["id"].(string), nil).status)

	// The pool refills; the next sandbox's pooled context is another
	// interpreter.
	require.Eventually(t, ready, testenv.Scaled(20*time.Second), 10*time.Millisecond, "the context pool did not refill: %+v", pool.Stats())
	other := ts.newSandbox(t, nil)
	a = ts.as(t, "POST", "/v1/sandboxes/"+other+"/contexts", map[string]string{"language": "python"})
	require.Equal(t, 201, a.status, "%s", a.body)
	assert.Equal(t, "private", a.json(t)["workspace"])
	a = ts.as(t, "POST", "/v1/sandboxes/"+other+"/contexts/"+a.json(t)["id"].(string)+"/execute", map[string]any{"code": "'secret' in globals(), os.path.exists('mine.txt') if 'os' in globals() else False"})
	require.Equal(t, 200, a.status, "%s", a.body)
	assert.Equal(t, "(False, False)", a.json(t)["value"], "a pooled context saw another's state: %s", a.body)

	// No pool for the tiny template: its contexts see the sandbox's files.
	tiny := ts.newSandbox(t, map[string]any{"template": "tiny"})
	a = ts.as(t, "POST", "/v1/sandboxes/"+tiny+"/contexts", map[string]string{"language": "shell"})
	require.Equal(t, 201, a.status, "%s", a.body)
	assert.Equal(t, "sandbox", a.json(t)["workspace"])
	a = ts.as(t, "POST", "/v1/sandboxes/"+tiny+"/contexts/"+a.json(t)["id"].(string)+"/execute", map[string]any{"code": "echo hi > shared.txt"})
	require.Equal(t, 200, a.status, "%s", a.body)
	assert.Equal(t, 200, ts.as(t, "GET", "/v1/sandboxes/"+tiny+"/files/shared.txt", nil).status)

	// A pooled context pauses with its idle sandbox.
	require.Eventually(t, func() bool {
		return ts.as(t, "GET", "/v1/sandboxes/"+sb, nil).json(t)["paused"] == true
	}, testenv.Scaled(10*time.Second), 20*time.Millisecond, "the sandbox of a pooled context was not paused")
	a = ts.as(t, "POST", "/v1/sandboxes/"+sb+"/contexts/"+cx+"/execute", map[string]any{"code": "secret"})
	require.Equal(t, 200, a.status, "%s", a.body)
	assert.Equal(t, "1", a.json(t)["value"], "%s", a.body)

	for _, id := range []string{sb, other, tiny} {
		require.Equal(t, 200, ts.as(t, "DELETE", "/v1/sandboxes/"+id, nil).status)
	}
}
