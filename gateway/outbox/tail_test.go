package outbox

import (
	"math/rand/v2"
	"testing"

	"github.com/shelfgate/shelfgate/gateway"
)

// TestTailBoundedByBytes checks the tail against a model of what the
// database holds: after every add, forget and read, the tail holds at most
// its budget, every record above the floor is in it, and a read at or
// above the floor returns exactly the model's records after it.
func TestTailBoundedByBytes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		budget int
		body   func(rng *rand.Rand) int // body size of the next record
		ackLag int                      // forget all but the newest ackLag ids
	}{
		{"telemetry, acks keep up", 4096 * recordSize, func(*rand.Rand) int { return 0 }, 100},
		{"telemetry, uplink behind", 256 * recordSize, func(*rand.Rand) int { return 0 }, 1 << 30},
		{"events with bodies", 64 * recordSize, func(r *rand.Rand) int { return r.IntN(600) }, 50},
		{"bodies beyond the budget", 64 * recordSize, func(r *rand.Rand) int { return r.IntN(3 * 64 * recordSize) }, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			tl := newTail(tc.budget, 0)
			var id, acked int64
			for step := range 20000 {
				id++
				r := gateway.Record{ID: id, Body: make([]byte, tc.body(rng))}
				tl.mu.Lock()
				tl.add(&r)
				tl.mu.Unlock()
				if step%37 == 0 && id-int64(tc.ackLag) > acked {
					acked = id - int64(tc.ackLag)
					tl.forget(acked)
				}
				n, bytes, slots := tl.held()
				if bytes > tl.max || slots*recordSize > max(tl.max, minTailRing*recordSize) {
					t.Fatalf("step %d: %d bytes in %d slots, budget %d", step, bytes, slots, tl.max)
				}
				// Every record above the floor (and above the acks) is held.
				from := max(tl.floor, acked)
				if int64(n) < id-from {
					t.Fatalf("step %d: %d held, but ids %d..%d are above floor %d", step, n, from+1, id, tl.floor)
				}
				after := from + rng.Int64N(id-from+1)
				got, ok := tl.read(after, 1<<30, nil)
				if !ok {
					t.Fatalf("step %d: read after %d >= floor %d refused", step, after, tl.floor)
				}
				if int64(len(got)) != id-after || (len(got) > 0 && (got[0].ID != after+1 || got[len(got)-1].ID != id)) {
					t.Fatalf("step %d: read after %d: %d records, want ids %d..%d", step, after, len(got), after+1, id)
				}
				if tl.floor > 0 {
					if _, ok := tl.read(tl.floor-1, 1, nil); ok {
						t.Fatalf("step %d: read below floor %d answered from memory", step, tl.floor)
					}
				}
			}
		})
	}
}

// TestTailGrowsAndShrinks: the ring takes memory only for what waits for
// its ack, and gives it back when acks catch up.
func TestTailGrowsAndShrinks(t *testing.T) {
	tl := newTail(1<<20, 0)
	add := func(from, to int64) {
		tl.mu.Lock()
		defer tl.mu.Unlock()
		for id := from; id <= to; id++ {
			tl.add(&gateway.Record{ID: id})
		}
	}
	add(1, 10)
	if _, _, slots := tl.held(); slots != minTailRing {
		t.Fatalf("10 records in %d slots, want %d", slots, minTailRing)
	}
	add(11, 5000)
	n, _, slots := tl.held()
	if n != 5000 || slots < 5000 || slots > 2*5000 {
		t.Fatalf("5000 records: held %d in %d slots", n, slots)
	}
	for hi := int64(100); hi <= 5000; hi += 100 {
		tl.forget(hi)
	}
	if n, bytes, slots := tl.held(); n != 0 || bytes != 0 || slots != minTailRing {
		t.Fatalf("after acking all: held %d (%d bytes) in %d slots, want 0 in %d", n, bytes, slots, minTailRing)
	}
	if _, ok := tl.read(5000, 10, nil); !ok {
		t.Fatal("read at the floor refused")
	}
}
