package uplink

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/collect"
	"github.com/shelfgate/shelfgate/gateway/mqtttest"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
)

// TestSamplesLane: samples travel in their own lane on .../samples, class
// "samples", beside telemetry and events, and leave the outbox once acked.
func TestSamplesLane(t *testing.T) {
	var mu sync.Mutex
	topicsSeen := map[string]int{}
	f := rig{
		collectURL: mqtttest.StartEmbedded(t),
		collect: collect.SubscribeOptions{Persistent: true, Samples: true, OnBatch: func(b *shelfv1.Batch, fresh []shelfv1.WireRecord) {
			mu.Lock()
			topicsSeen[b.Class] += len(fresh)
			mu.Unlock()
			if b.Class == "samples" {
				for _, r := range fresh {
					if _, err := shelfv1.DecodeSample(r.Event); err != nil {
						t.Errorf("sample %d: %v", r.ID, err)
					}
				}
			}
		}},
	}.start(t)
	produce(t, f.ob, 4, 100, 2)
	var recs []gateway.Record
	for i := range 120 {
		rec, err := shelfv1.Sample{Source: shelfv1.SampleScan, Gateway: "gw-1", Plate: "plate-01", SKU: "SKU-1", Quantity: 1, Label: shelfv1.LabelNone, Rate: 10,
			Features: []float32{float32(i), 1}, Time: time.Now()}.Record()
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	if err := f.ob.Append(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "samples, telemetry and events delivered", 20*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return topicsSeen["samples"] == 120 && topicsSeen["telemetry"] == 400 && topicsSeen["event"] == 2 && f.ob.Backlog() == 0
	})
	if a := f.col.Audit(false); !a.OK() {
		t.Fatalf("audit %+v", a)
	}
}
