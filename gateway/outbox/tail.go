package outbox

import (
	"sort"
	"sync"

	"github.com/shelfgate/shelfgate/gateway"
)

// tail keeps the most recently committed records of one class in memory, so
// the uplink reads what was just committed without a query: reading back
// through a second SQLite connection costs a page-cache refill from the WAL
// after every commit, which was half the CPU of the delivery path. The
// database stays the source of truth; a reader that fell behind the tail
// (after an outage, or at start-up) is served by a query.
type tail struct {
	mu    sync.Mutex
	ring  []gateway.Record
	start int // index of the oldest record
	n     int
	// floor: every committed record of the class with id > floor is in the
	// ring. Below it, ask the database.
	floor int64
}

func newTail(size int, floor int64) *tail {
	return &tail{ring: make([]gateway.Record, size), floor: floor}
}

// add appends records of the tail's class, in id order, after their commit.
func (t *tail) add(r *gateway.Record) {
	size := len(t.ring)
	if t.n == size {
		t.floor = t.ring[t.start].ID
		t.ring[t.start] = gateway.Record{}
		t.start = (t.start + 1) % size
		t.n--
	}
	t.ring[(t.start+t.n)%size] = *r
	t.n++
}

// replace overwrites the record with r's id, if the ring holds it (the
// caller holds t.mu).
func (t *tail) replace(r *gateway.Record) {
	size := len(t.ring)
	i := sort.Search(t.n, func(i int) bool { return t.ring[(t.start+i)%size].ID >= r.ID })
	if i < t.n && t.ring[(t.start+i)%size].ID == r.ID {
		t.ring[(t.start+i)%size] = *r
	}
}

// read appends up to limit records with id > after to buf and reports
// whether the tail could answer (after >= floor).
func (t *tail) read(after int64, limit int, buf []gateway.Record) ([]gateway.Record, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if after < t.floor {
		return buf, false
	}
	size := len(t.ring)
	i := sort.Search(t.n, func(i int) bool { return t.ring[(t.start+i)%size].ID > after })
	for ; i < t.n && len(buf) < limit; i++ {
		buf = append(buf, t.ring[(t.start+i)%size])
	}
	return buf, true
}

// forget drops records with id <= hi (deleted after delivery, or shed) by
// raising the floor past them; reads below the floor go to the database,
// which knows exactly what is left.
func (t *tail) forget(hi int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	size := len(t.ring)
	for t.n > 0 && t.ring[t.start].ID <= hi {
		t.ring[t.start] = gateway.Record{}
		t.start = (t.start + 1) % size
		t.n--
	}
	t.floor = max(t.floor, hi)
}
