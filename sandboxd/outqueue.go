package sandboxd

import (
	"sync"

	processv1 "sigs.k8s.io/agent-sandbox/packages/sandboxd/spec/process/v1"
)

// outputQueueBytes bounds the output a Start stream holds between the
// jail's pipes and gRPC: what a Write must wait for room under, and the
// most one message carries.
const outputQueueBytes = 256 << 10

// outputQueue carries a Start stream's output from the jail's two copiers
// to one sender, in the order the copiers wrote it, merging adjacent
// chunks of the same stream so that a client that falls behind gets
// fewer, larger messages. It holds at most outputQueueBytes: a Write
// waits for room, so a slow client stops the copier and the jail's pipe
// fills, and nothing grows without bound.
type outputQueue struct {
	mu     sync.Mutex
	cond   sync.Cond
	chunks []outputChunk
	size   int
	closed bool
	err    error // the send that failed; Writes fail with it
}

type outputChunk struct {
	stderr bool
	data   []byte
}

func newOutputQueue() *outputQueue {
	q := &outputQueue{}
	q.cond.L = &q.mu
	return q
}

// put queues a copy of b.
func (q *outputQueue) put(stderr bool, b []byte) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.err == nil && q.size > 0 && q.size+len(b) > outputQueueBytes {
		q.cond.Wait()
	}
	if q.err != nil {
		return q.err
	}
	if n := len(q.chunks); n > 0 && q.chunks[n-1].stderr == stderr {
		q.chunks[n-1].data = append(q.chunks[n-1].data, b...)
	} else {
		q.chunks = append(q.chunks, outputChunk{stderr: stderr, data: append(make([]byte, 0, len(b)), b...)})
	}
	q.size += len(b)
	q.cond.Broadcast()
	return nil
}

// close says no more output comes; send returns once the queue is empty.
func (q *outputQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.cond.Broadcast()
	q.mu.Unlock()
}

// send sends what is queued until close, or until a send fails (then the
// copiers' Writes fail too, and they stop reading the jail's pipes).
func (q *outputQueue) send(send func(*processv1.StartResponse) error) error {
	for {
		q.mu.Lock()
		for len(q.chunks) == 0 && !q.closed {
			q.cond.Wait()
		}
		batch := q.chunks
		q.chunks, q.size = nil, 0
		done := q.closed && len(batch) == 0
		q.cond.Broadcast()
		q.mu.Unlock()
		if done {
			return nil
		}
		for _, c := range batch {
			m := &processv1.StartResponse{Event: &processv1.StartResponse_Stdout{Stdout: c.data}}
			if c.stderr {
				m = &processv1.StartResponse{Event: &processv1.StartResponse_Stderr{Stderr: c.data}}
			}
			if err := send(m); err != nil {
				q.mu.Lock()
				q.err = err
				q.cond.Broadcast()
				q.mu.Unlock()
				return err
			}
		}
	}
}

// queueWriter is one stream's side of an outputQueue, as the jail's Stdout
// or Stderr. A pointer: jail compares Stdout with Stderr.
type queueWriter struct {
	q      *outputQueue
	stderr bool
}

func (w *queueWriter) Write(b []byte) (int, error) {
	if err := w.q.put(w.stderr, b); err != nil {
		return 0, err
	}
	return len(b), nil
}
