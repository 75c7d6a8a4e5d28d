package statuspage

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
)

func readingAt(stream, k int) gateway.Reading {
	return gateway.Reading{Stream: gateway.StreamID(fmt.Sprintf("loadcell/s/%03d", stream)), Time: time.UnixMilli(int64(k) * 10), Value: float64(k)}
}

// Buckets hold mean, min and max; only closed buckets are handed out, once
// per cursor; the rings keep their capacity.
func TestTapBucketsAndRings(t *testing.T) {
	tap := newTap(100*time.Millisecond, 4, 3, 2)
	base := time.UnixMilli(1_000_000)
	for i, v := range []float64{1, 3, 2, math.NaN(), 10} { // 0,40,80 ms in bucket 0; 120 ms NaN; 160 ms in bucket 1
		tap.Observe(gateway.Reading{Stream: "a", Time: base.Add(time.Duration(i) * 40 * time.Millisecond), Value: v})
	}
	cur := map[gateway.StreamID]int{}
	u := tap.streamsSince(cur)["a"]
	if len(u.Points) != 1 || u.Points[0].Mean != 2 || u.Points[0].Min != 1 || u.Points[0].Max != 3 || u.Value != 10 {
		t.Fatalf("first update %+v", u)
	}
	if u := tap.streamsSince(cur)["a"]; len(u.Points) != 0 {
		t.Fatalf("same buckets handed out twice: %+v", u)
	}
	for k := 2; k < 12; k++ {
		tap.Observe(gateway.Reading{Stream: "a", Time: base.Add(time.Duration(k) * 100 * time.Millisecond), Value: float64(k)})
	}
	if u := tap.streamsSince(nil)["a"]; len(u.Points) != 3 { // keep 4, one of them open
		t.Fatalf("ring kept %d closed buckets, want 3", len(u.Points))
	}
	// Stream cap: a third stream is counted, not kept.
	tap.Observe(gateway.Reading{Stream: "b", Time: base})
	tap.Observe(gateway.Reading{Stream: "c", Time: base})
	if len(tap.streamsSince(nil)) != 2 || tap.overflow.Load() != 1 {
		t.Fatalf("streams %d overflow %d", len(tap.streamsSince(nil)), tap.overflow.Load())
	}
	// Event ring keeps the last 3, in order.
	for i := range 5 {
		tap.ObserveEvent(gateway.Event{Kind: gateway.EventPick, Quantity: i})
	}
	evs, last := tap.eventsSince(0)
	if last != 5 || len(evs) != 3 || evs[0].Event.Quantity != 2 || evs[2].Seq != 5 {
		t.Fatalf("events %+v last %d", evs, last)
	}
	if evs, _ := tap.eventsSince(4); len(evs) != 1 || evs[0].Seq != 5 {
		t.Fatalf("since 4: %+v", evs)
	}
	if out := tap.Observe(readingAt(0, 0)); out != nil {
		t.Fatal("the Tap derived an event")
	}
}

func TestPointJSON(t *testing.T) {
	b, _ := Point{T: 5, Mean: 1.234, Min: math.NaN(), Max: -2}.MarshalJSON()
	if string(b) != "[5,1.23,0,-2]" {
		t.Fatal(string(b))
	}
}
