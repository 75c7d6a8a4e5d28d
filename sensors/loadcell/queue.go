package loadcell

import (
	"sync"

	"github.com/shelfgate/shelfgate/gateway"
)

// readingQueue carries readings from a Source's samplers to its emitting
// loop. It holds up to limit readings, and push blocks beyond that, as a
// channel of that capacity would; but its slice grows only as far as the
// emitter falls behind, where a channel allocates (and, as it cycles,
// touches) all of its buffer for every source: 4096 readings are 288 KiB
// per source, a few readings are what waits in steady state.
type readingQueue struct {
	mu     sync.Mutex
	space  sync.Cond // broadcast when take makes room
	buf    []gateway.Reading
	limit  int
	closed bool
	ready  chan struct{} // one token: readings or the close are waiting
}

// emitChunk is the most readings one Emit call carries.
const emitChunk = 1024

func newReadingQueue(limit int) *readingQueue {
	q := &readingQueue{limit: max(limit, 1), ready: make(chan struct{}, 1)}
	q.space.L = &q.mu
	return q
}

// push queues r, waiting while the queue is full.
func (q *readingQueue) push(r gateway.Reading) {
	q.mu.Lock()
	for len(q.buf) >= q.limit {
		q.space.Wait()
	}
	q.buf = append(q.buf, r)
	q.mu.Unlock()
	q.signal()
}

func (q *readingQueue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// close tells the consumer that no more readings come; push must not be
// called after it.
func (q *readingQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

// take appends every queued reading to dst, in order, and reports whether
// more may come (false once closed and drained). The queue keeps dst's
// spare slice when it is empty: the two slices swap, so steady state
// allocates nothing.
func (q *readingQueue) take(dst []gateway.Reading) ([]gateway.Reading, bool) {
	q.mu.Lock()
	if len(dst) == 0 && len(q.buf) > 0 {
		dst, q.buf = q.buf, dst[:0]
	} else {
		dst = append(dst, q.buf...)
		clear(q.buf)
		q.buf = q.buf[:0]
	}
	open := !q.closed
	q.mu.Unlock()
	q.space.Broadcast()
	return dst, open
}
