package main

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/classify/evaluate"
)

// windowGrabber is a classifier link after the plate chain: for each plate
// pick or put it takes the model window the chain's WindowRecorder kept
// for it (what a labelled sample would carry).
type windowGrabber struct {
	src windowSource
	mu  sync.Mutex
	got map[string][]evaluate.Cut
	// missing counts events whose window was not kept.
	missing int
}

func (g *windowGrabber) Observe(gateway.Reading) []gateway.Event { return nil }

func (g *windowGrabber) ObserveEvent(ev gateway.Event) []gateway.Event {
	inf := ev.Inference
	if inf == nil || (ev.Kind != gateway.EventPick && ev.Kind != gateway.EventPut) {
		return nil
	}
	x, _, ok := g.src.Window(inf.Plate, ev.Time)
	g.mu.Lock()
	defer g.mu.Unlock()
	if !ok {
		g.missing++
		return nil
	}
	g.got[inf.Plate] = append(g.got[inf.Plate], evaluate.Cut{Plate: inf.Plate, Time: ev.Time, Delta: ev.DeltaGrams, X: x})
	return nil
}

// Training/serving parity: the windows the daemon's plate chain keeps for
// labelled samples (simulated plates: hx711sim group → plate sensor kind →
// loadcell.Source → PlateDetector with the WindowRecorder, through
// gateway.Gateway) are the windows evaluate.Windows cuts for the same
// changes, which is what plate models are trained and scored on. A reading
// that one cell loses and the others keep (the per-cell spike filter did
// that to a hand's press on one corner) shifts that cell in every later
// window of its plate; so does a conversion the host misses, which is why
// this runs at 5× real time and tolerates a few differing windows.
func TestPlateWindowsMatchEvaluate(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the simulated plates for about 40 s")
	}
	const speed, simulated = 5, 200 * time.Second
	wc := retrainShelf(41, newFacings, newWidth)
	wc.Plates.VisitsPerHour = retrainVisits
	direct, err := evaluate.Cuts(context.Background(), evaluate.Options{Name: "parity", Config: wc, Duration: simulated})
	if err != nil {
		t.Fatal(err)
	}
	sc := &simConfig{Warehouse: wc, PlateClassifier: plateClassifier{Mode: "analytic"}}
	sc.Warehouse.Speed = speed
	ss, b, err := buildSimulationBuses(sc)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	links, _, stats, err := plateChain(ctx, ss)
	if err != nil {
		t.Fatal(err)
	}
	grab := &windowGrabber{src: stats.sampleWindows(), got: map[string][]evaluate.Cut{}}
	gw := &gateway.Gateway{Sources: ss.sources(), Outbox: &memStore{}, Classifiers: append(links, grab)}
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	time.Sleep(simulated / speed)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	grab.mu.Lock()
	defer grab.mu.Unlock()
	nd, ng := 0, 0
	for _, c := range direct {
		nd += len(c)
	}
	for _, c := range grab.got {
		ng += len(c)
	}
	d := evaluate.CompareCuts(direct, grab.got)
	mx, f, mean := d.Worst()
	missed := missedConversions(b)
	t.Logf("%d changes by evaluate, %d by the daemon (%d without a window): %d pairs, %d only evaluate, %d only daemon; %d pairs differ by > %v; feature |diff| max %.3f (feature %d), mean %.5f; the host missed %d lockstep conversions",
		nd, ng, grab.missing, d.Pairs, d.OnlyA, d.OnlyB, d.Differing, evaluate.DifferBy, mx, f, mean, missed)
	if nd < 40 || d.Pairs < nd*93/100 {
		t.Fatalf("matched %d of %d changes", d.Pairs, nd)
	}
	// With the spike filter on the plate's cells: 77 of 89 matched, 25
	// of them differing (one run); without: 87 matched, 3 differing
	// (conversions the loaded host missed). A missed conversion is a
	// sample the daemon lacks and evaluate has: it shifts the rest of the
	// window it falls in (and the detector may anchor that change a
	// sample apart), so each one may cost a differing pair. A test
	// machine loaded by other packages misses more (14 of 83 pairs
	// differed in one full CI run), which is the host's doing, not the
	// chain's.
	if allowed := d.Pairs/10 + int(missed); d.Differing > allowed {
		t.Errorf("the daemon's windows differ from evaluate's: %d of %d pairs by more than %v (allowed %d: a tenth, plus one per missed conversion)",
			d.Differing, d.Pairs, evaluate.DifferBy, allowed)
	}
}

// missedConversions counts the conversions the simulated plates completed
// that the host never read (the lockstep read takes every chip of a group
// at once, so one chip per plate is counted).
func missedConversions(b *simBuses) int64 {
	var n int64
	for _, g := range b.plates {
		if st := g.Chip(0).Stats(); st.Reads > 0 {
			n += max(0, st.LastIndex-st.FirstIndex+1-st.Reads)
		}
	}
	return n
}
