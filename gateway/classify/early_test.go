package classify

import (
	"math"
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

// The units of a change weigh q·unit within a few per cent per unit:
// the early settle's tolerance grows as q^¼.
func TestWholeUnitsSpreadGrowsWithCount(t *testing.T) {
	for _, tc := range []struct {
		units float64 // |Δ| in units
		want  bool
	}{
		{1.05, true}, {1.07, false}, {0.95, true}, {0.5, false}, {0.97, true},
		{3.078, true}, {3.081, false}, {2.922, true}, {2.919, false}, // 0.06·3^¼ ≈ 0.0790
		{5.089, true}, {5.091, false}, // 0.06·5^¼ ≈ 0.0897
	} {
		if got := wholeUnits(-tc.units*250, 250); got != tc.want {
			t.Errorf("wholeUnits(%.2f units) = %v, want %v", tc.units, got, tc.want)
		}
	}
}

// An early window that is not strictly still may still be reported when
// its total moved by less than EarlyMove of the unit and EarlyMoveLightest
// of the plate's lightest unit.
func TestEarlyStill(t *testing.T) {
	for _, tc := range []struct {
		spread, tol, unit, lightest float64
		want                        bool
	}{
		{3, 3.5, 20, 20, true},      // strictly still
		{5, 3.5, 500, 400, true},    // 5 g of a 500 g unit
		{5, 3.5, 80, 80, false},     // 5 g is 6 % of an 80 g unit
		{5, 3.5, 500, 18, false},    // more than ¼ of the plate's 18 g unit
		{5.9, 3.5, 500, 24, true},   // within ¼ of 24 g
		{30, 3.5, 2000, 2000, true}, // the noise test before bounds it in practice
	} {
		if got := earlyStill(tc.spread, tc.tol, tc.unit, tc.lightest); got != tc.want {
			t.Errorf("earlyStill(%v, %v, %v, %v) = %v, want %v", tc.spread, tc.tol, tc.unit, tc.lightest, got, tc.want)
		}
	}
}

// A put reported early while the hand still presses one light unit's
// worth at the lane: when the hand then leaves, the fall is its force, not
// a pick of the light SKU; a real pick of the light SKU 2 s later is
// reported.
func TestEarlySettleFollowsFadingHand(t *testing.T) {
	p := testPlate()
	p.Facings[1].UnitGrams = 20 // a light facing beside the 500 g one
	p.Facings[0].UnitGrams = 500
	d, err := NewPlateDetector(Config{Plates: []Plate{p}, Rate: 10, Primary: Analytic{}})
	if err != nil {
		t.Fatal(err)
	}
	pp := &d.cfg.Plates[0]
	heavy, light := pp.Facings[0], pp.Facings[1]
	s := newScript(pp, 9)
	s.noise = 0.1
	s.add(2000, 300, 200)
	rs := s.samples(20, nil)
	hand := func(g float64) func(int) [4]float64 {
		return func(int) [4]float64 {
			var e [4]float64
			for c := range e {
				e[c] = g * pp.share(c, heavy.XMM, heavy.YMM)
			}
			return e
		}
	}
	rs = append(rs, s.samples(5, func(i int) [4]float64 { return hand(300 * math.Sin(math.Pi*float64(i+1)/6))(i) })...)
	s.add(2*heavy.UnitGrams, heavy.XMM, heavy.YMM)
	rs = append(rs, s.samples(4, hand(light.UnitGrams))...) // still at 2 units + one light unit of hand
	rs = append(rs, s.samples(20, nil)...)
	s.add(-light.UnitGrams, light.XMM, light.YMM)
	rs = append(rs, s.samples(20, nil)...)
	evs := observeAll(d, rs)
	if len(evs) != 2 {
		t.Fatalf("%d events, want the put and the later pick: %+v", len(evs), evs)
	}
	if ev := evs[0]; ev.Kind != gateway.EventPut || ev.SKU != heavy.SKU || ev.Quantity != 2 {
		t.Errorf("first event %+v, want a put of 2 × %s", ev, heavy.SKU)
	}
	if ev := evs[1]; ev.Kind != gateway.EventPick || ev.SKU != light.SKU || ev.Quantity != 1 {
		t.Errorf("second event %+v, want a pick of 1 × %s", ev, light.SKU)
	}
}
