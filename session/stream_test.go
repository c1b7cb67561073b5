package session

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// feed writes chunks into a cellStream as the output pipe would.
func feed(c *cellStream, data []byte, chunk int) {
	for len(data) > 0 {
		n := min(chunk, len(data))
		_, _ = c.Write(data[:n])
		data = data[n:]
	}
}

func TestCellStreamSplitsAtNonce(t *testing.T) {
	nonce := newNonce()
	for _, chunk := range []int{1, 3, 7, 64, 1 << 20} {
		c := newCellStream(1 << 20)
		c.begin(nonce, 0, nil, nil)
		feed(c, []byte("hello "+nonce[:5]+" world"+nonce+"late"), chunk)
		out, cut := c.end(make(chan struct{}), nil)
		assert.Equal(t, "hello "+nonce[:5]+" world", out, "chunk %d", chunk)
		assert.False(t, cut)
		next := newNonce()
		c.begin(next, 0, nil, nil)
		feed(c, []byte(" more"+next), chunk)
		out, _ = c.end(make(chan struct{}), nil)
		assert.Equal(t, "late more", out, "output between cells goes to the next cell")
	}
}

func TestCellStreamCapsAndSignals(t *testing.T) {
	nonce := newNonce()
	c := newCellStream(1 << 20)
	called := make(chan struct{}, 1)
	c.begin(nonce, 10, func() { called <- struct{}{} }, nil)
	feed(c, []byte(strings.Repeat("x", 100)+nonce), 9)
	out, cut := c.end(make(chan struct{}), nil)
	assert.Equal(t, strings.Repeat("x", 10), out)
	assert.True(t, cut)
	<-called
}

func FuzzCellStream(f *testing.F) {
	f.Add([]byte("abc"), []byte("def"), uint8(3), uint16(5))
	f.Add([]byte("\x1ebrig-cell-"), []byte("\x1e"), uint8(1), uint16(0))
	f.Fuzz(func(t *testing.T, before, after []byte, chunk uint8, limit uint16) {
		nonce := newNonce()
		if bytes.Contains(before, []byte(nonce)) {
			t.Skip()
		}
		c := newCellStream(1 << 16)
		var streamed bytes.Buffer // what a live caller was shown
		c.begin(nonce, int64(limit), nil, &streamed)
		data := append(append(append([]byte{}, before...), nonce...), after...)
		feed(c, data, int(chunk)+1)
		out, cut := c.end(make(chan struct{}), nil)
		if streamed.String() != out {
			t.Fatalf("streamed %q, result %q", streamed.String(), out)
		}
		want := string(before)
		if limit > 0 && len(want) > int(limit) {
			want = want[:limit]
			if !cut {
				t.Fatal("cut not reported")
			}
		}
		if out != want {
			t.Fatalf("got %q want %q", out, want)
		}
	})
}

// A cell whose end marker never comes (it moved the driver's copy of its
// stdout away) ends when the caller stops waiting; the marker arriving
// late is dropped from the next cell, and does not end it.
func TestCellStreamLateNonce(t *testing.T) {
	for _, chunk := range []int{1, 5, 1 << 20} {
		c := newCellStream(1 << 20)
		first := newNonce()
		c.begin(first, 0, nil, nil)
		feed(c, []byte("one"), chunk)
		stop := make(chan struct{})
		close(stop)
		out, _ := c.end(make(chan struct{}), stop)
		assert.Equal(t, "one", out, "chunk %d", chunk)
		second := newNonce()
		c.begin(second, 0, nil, nil)
		feed(c, []byte("two "+first+"still two"), chunk)
		select {
		case <-c.seen:
			t.Fatalf("chunk %d: the late marker of an earlier cell ended this one", chunk)
		default:
		}
		feed(c, []byte(second+"three"), chunk)
		out, _ = c.end(make(chan struct{}), nil)
		assert.Equal(t, "two still two", out, "chunk %d", chunk)
		third := newNonce()
		c.begin(third, 0, nil, nil)
		feed(c, []byte(third), chunk)
		out, _ = c.end(make(chan struct{}), nil)
		assert.Equal(t, "three", out, "chunk %d", chunk)
	}
}

func FuzzCellStreamLateNonce(f *testing.F) {
	f.Add([]byte("one"), []byte("two"), []byte("three"), uint8(3))
	f.Add([]byte(""), []byte("\x1e"), []byte("brig-cell-"), uint8(0))
	f.Fuzz(func(t *testing.T, first, second, third []byte, chunk uint8) {
		if bytes.Contains(second, []byte("\x1e")) || bytes.Contains(third, []byte("\x1e")) {
			t.Skip() // could rebuild a marker around the dropped one
		}
		c := newCellStream(1 << 16)
		n1, n2 := newNonce(), newNonce()
		c.begin(n1, 0, nil, nil)
		feed(c, first, int(chunk)+1)
		stop := make(chan struct{})
		close(stop)
		if out, _ := c.end(make(chan struct{}), stop); out != string(first) {
			t.Fatalf("first cell: %q, want %q", out, first)
		}
		c.begin(n2, 0, nil, nil)
		feed(c, []byte(string(second)+n1+string(third)+n2+"next"), int(chunk)+1)
		if out, _ := c.end(make(chan struct{}), nil); out != string(second)+string(third) {
			t.Fatalf("second cell: %q, want %q", out, string(second)+string(third))
		}
	})
}
