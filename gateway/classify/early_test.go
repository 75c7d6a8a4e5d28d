package classify

import (
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
)

// A clean pick is reported after the early window (3 samples at 10/s),
// one sample before the full 400 ms window would report it; with
// EarlySettle negative it waits for the whole window.
func TestEarlySettleReportsSooner(t *testing.T) {
	times := map[time.Duration]time.Time{}
	for _, early := range []time.Duration{0, -1} {
		p := testPlate()
		d, err := NewPlateDetector(Config{Plates: []Plate{p}, Rate: 10, Primary: Analytic{}, EarlySettle: early})
		if err != nil {
			t.Fatal(err)
		}
		s := newScript(&d.cfg.Plates[0], 7)
		s.noise = 0.1
		s.add(2000, 300, 200)
		rs := s.samples(20, nil)
		rs = append(rs, s.visit(2, 2)...)
		evs := observeAll(d, rs)
		if len(evs) != 1 || evs[0].Quantity != 2 || evs[0].SKU != p.Facings[2].SKU {
			t.Fatalf("early %v: events %+v", early, evs)
		}
		times[early] = evs[0].Time
	}
	if got := times[-1].Sub(times[0]); got != 100*time.Millisecond {
		t.Errorf("early report %v before the full window's, want 100ms", got)
	}
}

// A hand resting still on the plate after the pick with a force that is
// not whole units does not settle early: the one event, after the hand
// lifts, has the right quantity.
func TestEarlySettleWaitsForRestingHand(t *testing.T) {
	d, pp := newTestDetector(t, Analytic{}, nil, nil)
	p := *pp
	s := newScript(pp, 8)
	s.noise = 0.1
	s.add(2000, 300, 200)
	rs := s.samples(20, nil)
	fc := p.Facings[1]
	s.add(-3*fc.UnitGrams, fc.XMM, fc.YMM)
	rs = append(rs, s.samples(3, func(int) [4]float64 { // a hand at the front edge, 0.3 of a unit, for 300 ms
		var e [4]float64
		for c := range e {
			e[c] = 0.3 * fc.UnitGrams * p.share(c, fc.XMM, 10)
		}
		return e
	})...)
	rs = append(rs, s.samples(20, nil)...)
	evs := observeAll(d, rs)
	var picks []gateway.Event
	for _, ev := range evs {
		if ev.Kind == gateway.EventPick {
			picks = append(picks, ev)
		}
	}
	if len(evs) != 1 || len(picks) != 1 || picks[0].Quantity != 3 || picks[0].SKU != fc.SKU {
		t.Fatalf("events %+v, want one pick of 3 × %s", evs, fc.SKU)
	}
}
