package session

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/egress"
	"github.com/brig-sandbox/brig/internal/testenv"
	"github.com/brig-sandbox/brig/internal/testenv/netlab"
	"github.com/brig-sandbox/brig/jail"
)

// TestEgressSessionProxy: a Python session of a proxy-mode Config keeps
// its jail's proxy from cell to cell (an allowed fetch works in the first
// cell and again in a later one); a destination off the list fails in its
// cell, is listed in that cell's result (and in no other cell's) and is
// in the session's Result once it has ended.
func TestEgressSessionProxy(t *testing.T) {
	testenv.RequireRoot(t)
	requirePython(t)
	in := netlab.Start(t)
	pol := &egress.Policy{}
	require.NoError(t, pol.AllowDestination("198.51.100.2"))
	cfg := jail.Config{Network: "proxy", Egress: pol, Binds: []jail.Bind{{Source: in.CAFile, Target: "/etc/brig-ca.pem"}}}
	p, err := NewPythonWith(context.Background(), testSup, cfg)
	require.NoError(t, err)
	defer p.Close()
	fetch := `import ssl, urllib.request
ctx = ssl.create_default_context(cafile="/etc/brig-ca.pem")
def get(u):
    return urllib.request.urlopen(u, timeout=60, context=ctx).read().decode().strip()
get("https://198.51.100.2/")`
	r := p.Run(context.Background(), fetch, RunOptions{Timeout: testenv.Scaled(120 * time.Second)})
	require.Equal(t, CellOK, r.Status, "%+v", r)
	require.NotNil(t, r.Value)
	assert.Contains(t, *r.Value, "hello from the test internet")
	assert.Empty(t, r.EgressRefused, "an allowed fetch is no refusal")

	r = p.Run(context.Background(), `get("https://other.example.net/")`, RunOptions{Timeout: testenv.Scaled(120 * time.Second)})
	require.Equal(t, CellError, r.Status, "%+v", r)
	assert.Contains(t, r.Error.Message, "403")
	require.Len(t, r.EgressRefused, 1, "the cell's result lists its refusal")
	assert.Equal(t, "other.example.net", r.EgressRefused[0].Host)
	assert.Equal(t, 443, r.EgressRefused[0].Port)

	r = p.Run(context.Background(), `get("https://198.51.100.2/")`, RunOptions{Timeout: testenv.Scaled(120 * time.Second)})
	require.Equal(t, CellOK, r.Status, "%+v", r)
	assert.Empty(t, r.EgressRefused, "a cell lists the refusals since the previous cell only")

	require.NoError(t, p.Close())
	res := p.Result()
	require.NotNil(t, res)
	var hosts []string
	for _, f := range res.EgressRefused {
		hosts = append(hosts, f.Host)
	}
	assert.Equal(t, []string{"other.example.net"}, hosts)
	assert.False(t, strings.Contains(strings.Join(hosts, ","), "198.51.100.2"))
}
