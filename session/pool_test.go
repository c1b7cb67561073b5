package session

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/internal/testenv"
	"github.com/brig-sandbox/brig/jail"
)

// TestPoolTake: a pool hands out warm sessions that are the taker's alone
// (state set in one is not in the next), refills in the background, starts
// one cold when none is ready, and Close ends the ready ones but not the
// taken ones; nothing is left on the host after.
func TestPoolTake(t *testing.T) {
	testenv.RequireRoot(t)
	requirePython(t)
	before := countMounts()
	ctx := context.Background()
	p, err := NewPoolWith(ctx, testSup, LanguagePython, jail.Config{}, 1)
	require.NoError(t, err)
	defer p.Close()

	a, err := p.Take()
	require.NoError(t, err)
	defer a.Close()
	r := a.Run(ctx, "secret = 'mine'\nsecret", RunOptions{})
	require.Equal(t, CellOK, r.Status, "%+v", r)

	// The pool refills; the next session is another interpreter.
	require.Eventually(t, func() bool { return p.Stats().Ready == 1 }, testenv.Scaled(20*time.Second), 10*time.Millisecond, "the pool did not refill: %+v", p.Stats())
	b, err := p.Take()
	require.NoError(t, err)
	r = b.Run(ctx, "'secret' in globals()", RunOptions{})
	require.Equal(t, CellOK, r.Status, "%+v", r)
	assert.Equal(t, "False", *r.Value, "a pooled session saw another's state")
	// None ready (the refill may not be done): Take starts one, or takes
	// the refill; either way a third, distinct session.
	c, err := p.Take()
	require.NoError(t, err)
	r = c.Run(ctx, "'secret' in globals()", RunOptions{})
	require.Equal(t, CellOK, r.Status, "%+v", r)
	assert.Equal(t, "False", *r.Value)
	st := p.Stats()
	assert.GreaterOrEqual(t, st.Hits, int64(2))
	assert.Equal(t, int64(3), st.Hits+st.Misses)
	b.Close()
	c.Close()

	p.Close()
	p.Close()
	_, err = p.Take()
	require.Error(t, err, "Take after Close")
	r = a.Run(ctx, "secret", RunOptions{})
	require.Equal(t, CellOK, r.Status, "a taken session must outlive the pool's Close: %+v", r)
	assert.Equal(t, "'mine'", *r.Value)
	a.Close()
	assertHostClean(t, before)
}

// TestPoolRefusals: a pool of a config that cannot start fails at NewPool
// naming the cause; a bad size or language is refused; a shell pool works.
func TestPoolRefusals(t *testing.T) {
	testenv.RequireRoot(t)
	before := countMounts()
	ctx := context.Background()
	_, err := NewPoolWith(ctx, testSup, LanguagePython, jail.Config{WorkDir: "relative"}, 1)
	require.ErrorContains(t, err, "workdir")
	_, err = NewPoolWith(ctx, testSup, "ruby", jail.Config{}, 1)
	require.ErrorContains(t, err, "ruby")
	_, err = NewPoolWith(ctx, testSup, LanguageShell, jail.Config{}, 0)
	require.ErrorContains(t, err, "size 0")

	p, err := NewPoolWith(ctx, testSup, LanguageShell, jail.Config{}, 2)
	require.NoError(t, err)
	sh, err := p.Take()
	require.NoError(t, err)
	r := sh.Run(ctx, "echo $((6*7))", RunOptions{})
	require.Equal(t, CellOK, r.Status, "%+v", r)
	assert.Equal(t, "42\n", r.Stdout)
	sh.Close()
	p.Close()
	assertHostClean(t, before)
}
