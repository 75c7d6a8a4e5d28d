package collect

import (
	"context"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/mqtttest"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
)

// TestSharedSubscriptionSplitsFleet runs two collectors in one $share group
// on mosquitto: each gets part of the batches, together all of them, and
// their audits merged have no gaps.
func TestSharedSubscriptionSplitsFleet(t *testing.T) {
	m := mqtttest.StartMosquitto(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cols := []*Collector{New(), New()}
	subscribed := make(chan struct{}, 4)
	for i, c := range cols {
		go Subscribe(ctx, c, SubscribeOptions{Broker: m.URL, ClientID: "share-" + string(rune('a'+i)), Share: "cloud", Site: "s",
			OnSubscribed: func() { subscribed <- struct{}{} }})
	}
	<-subscribed
	<-subscribed
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(m.URL).SetClientID("fleet"))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer pub.Disconnect(0)
	const batches, per = 40, 25
	id := int64(0)
	for b := range batches {
		gw := []string{"gw-1", "gw-2"}[b%2]
		recs := make([]gateway.Record, per)
		for i := range recs {
			id++
			recs[i] = gateway.Record{ID: id, Seq: uint64(b/2*per + i + 1), Stream: "loadcell/x", Time: time.Now(), Value: 1}
		}
		topic := shelfv1.Topics{Site: "s", Gateway: gw}.Telemetry()
		if tok := pub.Publish(topic, 1, false, shelfv1.AppendBatch(nil, "s", gw, gateway.BatchRef{Class: gateway.ClassTelemetry}, time.Now(), recs)); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for cols[0].Audit(true).Received+cols[1].Audit(true).Received < batches*per && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	a, b := cols[0].Audit(true), cols[1].Audit(true)
	if a.Received == 0 || b.Received == 0 {
		t.Fatalf("one collector got nothing: %d and %d", a.Received, b.Received)
	}
	if a.Received+b.Received != batches*per || a.Duplicates+b.Duplicates != 0 {
		t.Fatalf("received %d+%d, duplicates %d+%d; want %d in all", a.Received, b.Received, a.Duplicates, b.Duplicates, batches*per)
	}
	// Merged, every stream of every gateway is whole.
	merged := New()
	for _, c := range cols {
		for k, st := range c.streams {
			for _, r := range st.seqs.Ranges() {
				for q := r.Lo; q <= r.Hi; q++ {
					merged.Add(&shelfv1.Batch{Version: 1, Site: "s", Gateway: k.gw[len("s/"):], Class: "telemetry",
						Records: []shelfv1.WireRecord{{ID: int64(q), Stream: k.stream, Seq: q}}})
				}
			}
		}
	}
	if ma := merged.Audit(false); !ma.OK() || ma.Received != batches*per {
		t.Fatalf("merged audit %+v", ma)
	}
}
