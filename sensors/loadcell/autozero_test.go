package loadcell

import (
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/hx711sim"
	"github.com/shelfgate/shelfgate/gateway"
)

// TestAutoZeroTracksDriftNotLoad drifts the zero of a cell read through
// periph's driver by 0.05 g per conversion (40 g over the run) and takes a
// 300 g pick half way. With auto-zero tracking the readings stay on the true
// load and the pick comes through whole; without it the drift shows.
//
// The simulated drift and the clock advance per conversion actually read
// (the simulator asks the signal for the code of a conversion when it is
// clocked out), so a descheduled test cannot turn the drift into a jump.
func TestAutoZeroTracksDriftNotLoad(t *testing.T) {
	const off, cpg, stepAt, end = 10_000, 200.0, 400, 800
	for _, tc := range []struct {
		name string
		rate float64 // g/min
		// want reports whether the last reading v, after n conversions,
		// and the zero correction z are right.
		want func(v float64, n int64, z float64) bool
	}{
		{"off", 0, func(v float64, n int64, z float64) bool {
			return math.Abs(v-(200+0.05*float64(n))) < 0.1 && z == 0
		}},
		{"tracking", 600, func(v float64, n int64, z float64) bool {
			// Drift while unsettled (the first readings, the readings
			// right after the pick: 10 × 0.05 g) stays in.
			return math.Abs(v-200) < 1 && math.Abs(z-0.05*float64(n)) < 1
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int64 // conversions read
			_, dev := newCell(t, hx711sim.SignalFunc(func(int64) int32 {
				k := n.Add(1)
				grams := 500 + 0.05*float64(k)
				if k >= stepAt {
					grams -= 300
				}
				return off + int32(cpg*grams) + int32(k%7)
			}))
			// 10 conversions per second: 600 g/min is 1 g per conversion.
			now := func() time.Time {
				return time.Unix(1_800_000_000, 0).Add(time.Duration(n.Load()) * 100 * time.Millisecond)
			}
			src, err := New("cells", []Channel{{Stream: "s", ADC: dev, Offset: off, CountsPerGram: cpg}},
				Options{Now: now, AutoZeroRate: tc.rate, AutoZeroLimit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			r := start(t, src)
			r.waitFor("the end of the drift", func() bool { return n.Load() >= end })
			r.stop()
			rs := r.sink.readings()
			last := rs[len(rs)-1]
			z := src.Health()[0].ZeroGrams
			if k := n.Load(); !tc.want(last.Value, k, z) {
				t.Errorf("last reading %.2f g after %d conversions with zero correction %.2f g", last.Value, k, z)
			}
			// The pick: one drop of 300 g between two readings, not
			// smeared over several and not eaten by the tracking.
			drop := 0.0
			for i := 1; i < len(rs); i++ {
				drop = max(drop, rs[i-1].Value-rs[i].Value)
			}
			if math.Abs(drop-300) > 1 {
				t.Errorf("largest drop between readings %.2f g, want the 300 g pick", drop)
			}
		})
	}
}

// TestAutoZeroRules drives one channel sample by sample with exact times:
// the zero moves only while the readings are settled, never faster than the
// rate, never past the limit, and a load change is never absorbed.
func TestAutoZeroRules(t *testing.T) {
	_, dev := newCell(t, hx711sim.SignalFunc(wobble))
	src, err := New("cells", []Channel{{Stream: "s", ADC: dev, CountsPerGram: 100}},
		Options{AutoZeroRate: 6, AutoZeroBand: 2, AutoZeroLimit: 5}) // 6 g/min = 0.01 g per 100 ms
	if err != nil {
		t.Fatal(err)
	}
	c := src.cells[0]
	out := newReadingQueue(2)
	var got []gateway.Reading
	t0 := time.Unix(0, 0)
	i := 0
	// feed pushes grams (as codes) one per 100 ms and returns the last
	// reading released.
	feed := func(grams ...float64) gateway.Reading {
		t.Helper()
		var last gateway.Reading
		for _, g := range grams {
			i++
			src.process(c, int32(math.Round(g*100))+int32(i%3), t0.Add(time.Duration(i)*100*time.Millisecond), out, nil)
			if got, _ = out.take(got[:0]); len(got) > 0 {
				last = got[len(got)-1]
			}
		}
		return last
	}
	ramp := func(from, to float64, n int) []float64 {
		gs := make([]float64, n)
		for j := range gs {
			gs[j] = from + (to-from)*float64(j+1)/float64(n)
		}
		return gs
	}
	feed(ramp(1000, 1000, 10)...) // settle at 1000 g
	// Drift of +1 g over 100 samples (10 s): the rate allows 1 g in 10 s,
	// so it is tracked to within a few hundredths.
	if r := feed(ramp(1000, 1001, 100)...); math.Abs(r.Value-1000) > 0.05 {
		t.Errorf("after 1 g of drift in 10 s: %.3f g, want 1000", r.Value)
	}
	// Faster drift than the rate: only the rate is taken.
	z0 := c.az.drift
	feed(ramp(1001, 1002.5, 10)...) // 1.5 g in 1 s, within the band
	if dz := c.az.drift - z0; dz > 0.1+1e-9 || dz < 0.05 {
		t.Errorf("zero moved %.3f g in 1 s at 6 g/min", dz)
	}
	// A pick of 50 g is a load change: it comes through whole and the new
	// level is not pulled back.
	before := feed(1002.5)
	after := feed(952.5, 952.5, 952.5, 952.5, 952.5, 952.5, 952.5, 952.5, 952.5, 952.5)
	if d := before.Value - after.Value; math.Abs(d-50) > 0.05 {
		t.Errorf("pick of 50 g read as %.3f g", d)
	}
	// The limit bounds the total correction.
	for range 50 {
		feed(ramp(952.5, 953.5, 20)...)
		feed(ramp(952.5, 952.5, 5)...) // a step back down re-anchors
	}
	if z := c.az.drift; z > 5+1e-9 {
		t.Errorf("zero correction %.3f g beyond the 5 g limit", z)
	}
	if h := src.Health()[0]; h.ZeroGrams != c.az.drift {
		t.Errorf("health ZeroGrams %v, want %v", h.ZeroGrams, c.az.drift)
	}
}
