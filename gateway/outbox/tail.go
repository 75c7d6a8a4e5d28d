package outbox

import (
	"sort"
	"sync"
	"unsafe"

	"github.com/shelfgate/shelfgate/gateway"
)

// tail keeps the most recently committed records of one class in memory, so
// the uplink reads what was just committed without a query: reading back
// through a second SQLite connection costs a page-cache refill from the WAL
// after every commit, which was half the CPU of the delivery path. The
// database stays the source of truth; a reader that fell behind the tail
// (after an outage, or at start-up) is served by a query.
//
// The tail is bounded by bytes (the records and their bodies), not rows,
// and its ring grows only as far as the records it holds need: in steady
// state it holds what was committed and not yet acked, a few hundred
// rows, whatever the budget. It shrinks again when acks empty it.
type tail struct {
	mu    sync.Mutex
	ring  []gateway.Record // grows by doubling up to max bytes of slots
	start int              // index of the oldest record
	n     int
	bytes int // recordBytes of the n records held
	max   int
	// floor: every committed record of the class with id > floor is in the
	// ring. Below it, ask the database.
	floor int64
}

// recordSize is the in-memory size of a record without its body.
const recordSize = int(unsafe.Sizeof(gateway.Record{}))

// minTailRing is the smallest ring a tail allocates or shrinks to.
const minTailRing = 64

// recordBytes is what r costs a tail: its slot and its body.
func recordBytes(r *gateway.Record) int { return recordSize + cap(r.Body) }

// newTail returns an empty tail of at most maxBytes; a budget smaller
// than minTailRing records is raised to that.
func newTail(maxBytes int, floor int64) *tail {
	return &tail{max: max(maxBytes, minTailRing*recordSize), floor: floor}
}

// add appends records of the tail's class, in id order, after their commit
// (the caller holds t.mu). The oldest records make room; a record larger
// than the whole budget empties the tail and raises the floor past itself.
func (t *tail) add(r *gateway.Record) {
	b := recordBytes(r)
	if b > t.max {
		for t.n > 0 {
			t.dropOldest()
		}
		t.floor = r.ID
		return
	}
	for t.n > 0 && t.bytes+b > t.max {
		t.dropOldest()
	}
	if t.n == len(t.ring) {
		if slots := min(max(2*len(t.ring), minTailRing), t.max/recordSize); slots > len(t.ring) {
			t.resize(slots)
		} else {
			t.dropOldest()
		}
	}
	t.ring[(t.start+t.n)%len(t.ring)] = *r
	t.n++
	t.bytes += b
}

// dropOldest removes the oldest record and raises the floor to it.
func (t *tail) dropOldest() {
	old := &t.ring[t.start]
	t.floor = max(t.floor, old.ID)
	t.bytes -= recordBytes(old)
	*old = gateway.Record{}
	t.start = (t.start + 1) % len(t.ring)
	t.n--
}

// resize moves the n records, oldest first, into a ring of slots >= n.
func (t *tail) resize(slots int) {
	ring := make([]gateway.Record, slots)
	for i := range t.n {
		ring[i] = t.ring[(t.start+i)%len(t.ring)]
	}
	t.ring, t.start = ring, 0
}

// replace overwrites the record with r's id, if the ring holds it (the
// caller holds t.mu).
func (t *tail) replace(r *gateway.Record) {
	size := len(t.ring)
	i := sort.Search(t.n, func(i int) bool { return t.ring[(t.start+i)%size].ID >= r.ID })
	if i < t.n && t.ring[(t.start+i)%size].ID == r.ID {
		old := &t.ring[(t.start+i)%size]
		t.bytes += recordBytes(r) - recordBytes(old)
		*old = *r
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
// which knows exactly what is left. A ring emptied to a quarter shrinks to
// twice what it holds, so memory taken while the uplink was behind is
// given back.
func (t *tail) forget(hi int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.n > 0 && t.ring[t.start].ID <= hi {
		t.dropOldest()
	}
	t.floor = max(t.floor, hi)
	if len(t.ring) > minTailRing && t.n <= len(t.ring)/4 {
		t.resize(max(2*t.n, minTailRing))
	}
}

// held returns the records and bytes the tail holds and its ring's slots.
func (t *tail) held() (n, bytes, slots int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n, t.bytes, len(t.ring)
}
