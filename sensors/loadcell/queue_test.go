package loadcell

import (
	"sync"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
)

// TestReadingQueue: readings come out once each, in order per pusher;
// push blocks at the limit instead of dropping; take reports the close
// only once everything queued was taken.
func TestReadingQueue(t *testing.T) {
	const pushers, each, limit = 4, 5000, 16
	q := newReadingQueue(limit)
	var wg sync.WaitGroup
	for p := range pushers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				q.push(gateway.Reading{Stream: gateway.StreamID(rune('a' + p)), Value: float64(i)})
			}
		}()
	}
	go func() { wg.Wait(); q.close() }()
	next := map[gateway.StreamID]float64{}
	var batch []gateway.Reading
	for open := true; open; {
		<-q.ready
		batch, open = q.take(batch[:0])
		if len(batch) > limit {
			t.Fatalf("took %d readings, limit %d", len(batch), limit)
		}
		for _, r := range batch {
			if r.Value != next[r.Stream] {
				t.Fatalf("%s: got reading %v, want %v", r.Stream, r.Value, next[r.Stream])
			}
			next[r.Stream]++
		}
	}
	for p := range pushers {
		if s := gateway.StreamID(rune('a' + p)); next[s] != each {
			t.Errorf("%s: %v readings, want %d", s, next[s], each)
		}
	}
}

// TestReadingQueueBlocksWhenFull: a push beyond the limit waits for take.
func TestReadingQueueBlocksWhenFull(t *testing.T) {
	q := newReadingQueue(2)
	q.push(gateway.Reading{Value: 1})
	q.push(gateway.Reading{Value: 2})
	done := make(chan struct{})
	go func() { q.push(gateway.Reading{Value: 3}); close(done) }()
	select {
	case <-done:
		t.Fatal("third push into a queue of 2 did not wait")
	case <-time.After(50 * time.Millisecond):
	}
	got, _ := q.take(nil)
	<-done
	got, _ = q.take(got)
	if len(got) != 3 || got[0].Value != 1 || got[2].Value != 3 {
		t.Fatalf("got %+v, want readings 1, 2, 3", got)
	}
}
