package main

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
)

// memStore is a hand-written gateway.Outbox that keeps what it is given.
type memStore struct {
	mu   sync.Mutex
	recs []gateway.Record
}

var _ gateway.Outbox = (*memStore)(nil)

func (m *memStore) Append(_ context.Context, recs []gateway.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs = append(m.recs, recs...)
	return nil
}

func (m *memStore) Backlog() int64 { return 0 }

// kindsSeen is a classifier that counts the event kinds it is shown, per stream.
type kindsSeen struct {
	mu   sync.Mutex
	seen map[gateway.EventKind]map[gateway.StreamID]int
}

func (k *kindsSeen) Observe(gateway.Reading) []gateway.Event { return nil }

func (k *kindsSeen) ObserveEvent(ev gateway.Event) []gateway.Event {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.seen[ev.Kind] == nil {
		k.seen[ev.Kind] = map[gateway.StreamID]int{}
	}
	k.seen[ev.Kind][ev.Stream]++
	return nil
}

func (k *kindsSeen) count(kind gateway.EventKind, stream gateway.StreamID) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.seen[kind][stream]
}

// Scans and tag reads from the real scanner and RFID sources (over their
// simulators) pass the classifier chain like every event: a classifier
// after the detector is shown them.
func TestScansAndTagsPassTheChain(t *testing.T) {
	wc := smallWarehouse()
	wc.Speed, wc.SampleRate = 50, 10
	wc.PicksPerBinPerHour, wc.ScanProbability = 600, 1
	ss, err := buildSimulation(&simConfig{Warehouse: wc, Scanner: true, RFID: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ss.close()
	chain, err := classifierChain(ss)
	if err != nil {
		t.Fatal(err)
	}
	seen := &kindsSeen{seen: map[gateway.EventKind]map[gateway.StreamID]int{}}
	gw := &gateway.Gateway{Sources: ss.sources(), Outbox: &memStore{}, Classifiers: append(chain, seen)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for seen.count(gateway.EventScan, "scanner/picking-1") == 0 || seen.count(gateway.EventTag, "rfid/dock-1") == 0 {
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("the chain saw %v", seen.seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if c := gw.Counters(); c.Events == 0 || c.Accepted == 0 {
		t.Fatalf("counters %+v", c)
	}
}
