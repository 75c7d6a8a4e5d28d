package main

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/warehouse"
	"github.com/shelfgate/shelfgate/gateway"
)

// allEvents is a chain link recording every event it is shown.
type allEvents struct {
	mu  sync.Mutex
	evs []gateway.Event
}

func (e *allEvents) Observe(gateway.Reading) []gateway.Event { return nil }

func (e *allEvents) ObserveEvent(ev gateway.Event) []gateway.Event {
	e.mu.Lock()
	e.evs = append(e.evs, ev)
	e.mu.Unlock()
	return nil
}

func (e *allEvents) all() []gateway.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]gateway.Event(nil), e.evs...)
}

// The demo's plates: the demo configuration's simulation builds a plate
// sensor per warehouse plate (shared-clock hx711sim group) and a scanner
// per plate picker; run through the gateway with the shipped model, the
// plates' picks carry the model's inference and the pickers' pick-list
// lines arrive before the picks they are for.
func TestDemoPlatesThroughGateway(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the simulated plates for some seconds")
	}
	cfg, err := loadConfig("../../configs/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := decodeSimulation(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if es := checkSimulation(cfg); len(es) != 0 {
		t.Fatalf("demo simulation: %v", es)
	}
	if sc.Warehouse.Plates.Count < 2 || sc.PlateClassifier.Mode != "gated" {
		t.Fatalf("demo plates %d, classifier %+v", sc.Warehouse.Plates.Count, sc.PlateClassifier)
	}
	sc.PlateClassifier.Model = "../../" + sc.PlateClassifier.Model
	sc.Warehouse.Shelves, sc.Warehouse.BinsPerShelf, sc.RFID, sc.Env = 1, 1, false, false
	sc.Warehouse.Speed, sc.Warehouse.Plates.VisitsPerHour = 20, 240
	ss, err := buildSimulation(sc)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.close()
	var kinds []string
	for _, s := range ss.sensors {
		kinds = append(kinds, s.kind+":"+s.name)
	}
	want := "hx711:cell-shelf-01/bin-01 scanner:picking-1 plate:plate-01 scanner:picker-plate-01 plate:plate-02 scanner:picker-plate-02"
	if got := strings.Join(kinds, " "); got != want {
		t.Fatalf("sensors %s, want %s", got, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	links, holder, _, err := plateChain(ctx, ss)
	if err != nil {
		t.Fatal(err)
	}
	if holder == nil || len(links) != 2 { // the plates' detector and MisPick
		t.Fatalf("holder %v, %d links", holder, len(links))
	}
	seen := &allEvents{}
	gw := &gateway.Gateway{Sources: ss.sources(), Outbox: &memStore{}, Classifiers: append(links, seen)}
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	judged := func() (picks, scannedPicks int) {
		scanned := map[gateway.StreamID]bool{}
		for _, ev := range seen.all() {
			switch {
			case ev.Kind == gateway.EventScan && strings.HasPrefix(string(ev.Stream), "scanner/picker-plate-"):
				scanned["loadcell/"+gateway.StreamID(strings.TrimPrefix(string(ev.Stream), "scanner/picker-"))] = true
			case ev.Kind == gateway.EventPick && ev.Inference != nil:
				picks++
				if scanned[ev.Stream] {
					scannedPicks++
				}
			}
		}
		return picks, scannedPicks
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if _, s := judged(); s >= 3 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	picks, scannedPicks := judged()
	if scannedPicks < 3 {
		t.Fatalf("%d plate picks, %d after a scan of their picker, in 60 s", picks, scannedPicks)
	}
	for _, ev := range seen.all() {
		if inf := ev.Inference; inf != nil && ev.Kind == gateway.EventPick {
			if inf.Classifier != "model+analytic" || inf.ModelVersion != 1 || ev.SKU == "" || ev.Quantity < 1 || !(ev.Confidence > 0) {
				t.Errorf("plate pick %+v, inference %+v", ev, inf)
			}
		}
	}
}

// The plate pickers' pick-list lines: right ones name the label's SKU and
// units; wrong ones differ in one of them.
func TestPlateScanLines(t *testing.T) {
	p := warehouse.Plate{ID: "plate-01", Facings: []warehouse.Facing{{SKU: "A"}, {SKU: "B"}, {SKU: "C"}}}
	l := warehouse.PlateLabel{Facing: 1, SKU: "B", Kind: "pick", Units: 2}
	for _, tc := range []struct {
		wrong float64
		same  bool
	}{{0, true}, {1, false}} {
		f := &plateScanFeeder{plate: p, wrong: tc.wrong, rng: rand.New(rand.NewPCG(1, 2))}
		for range 50 {
			got := f.line(l)
			if (got == "B*2") != tc.same {
				t.Fatalf("wrong share %v: line %q", tc.wrong, got)
			}
			if !tc.same && got != "C*2" && got != "B*1" && got != "B*3" {
				t.Fatalf("wrong line %q is neither the next facing's SKU nor one unit off", got)
			}
		}
	}
}
