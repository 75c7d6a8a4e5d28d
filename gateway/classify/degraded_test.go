package classify

import (
	"fmt"
	"math"
	"testing"

	"github.com/shelfgate/shelfgate/gateway"
)

// estimateCell recovers the missing corner's change of a bilinear load
// from the other three, for every corner and positions across the plate.
func TestEstimateCell(t *testing.T) {
	p := testPlate()
	for out := range 4 {
		for _, pos := range [][2]float64{{75, 100}, {300, 200}, {525, 300}, {150, 350}, {450, 50}} {
			t.Run(fmt.Sprintf("c%d_%v", out, pos), func(t *testing.T) {
				var dc [4]float64
				for c := range dc {
					dc[c] = -410 * p.share(c, pos[0], pos[1])
				}
				want := dc[out]
				dc[out] = 0
				if got := estimateCell(dc, out); math.Abs(got-want) > 1e-9 {
					t.Errorf("estimate %v, want %v", got, want)
				}
			})
		}
	}
	// Near the missing corner the estimate is bounded, not amplified.
	dc := [4]float64{0, -1, -1, 1e-9}
	if got := estimateCell(dc, 0); math.Abs(got) > 20 {
		t.Errorf("estimate %v near the corner", got)
	}
}

// With one cell out — flagged stale (a stuck or dead cell) or far noisier
// than the rest (a loose connector) — the plate still reports each pick
// with the right SKU and quantity, at lowered confidence; with two cells
// flagged it reports nothing (TestFlaggedReadingsBreakSettling).
func TestOneCellOutDegrades(t *testing.T) {
	for _, kind := range []string{"stale", "noisy"} {
		for out := range 4 {
			for f := range 4 {
				t.Run(fmt.Sprintf("%s_c%d_facing%d", kind, out, f), func(t *testing.T) {
					var st Stats
					d, p := newTestDetector(t, Analytic{}, nil, &st)
					s := newScript(p, uint64(10*out+f))
					s.add(2000, 300, 200)
					rs := s.samples(200, nil)
					rs = append(rs, s.visit(f, 2)...)
					frozen := rs[out].Value
					for i := range rs {
						if i%4 != out || i < 40 {
							continue
						}
						switch kind {
						case "stale":
							rs[i].Value, rs[i].Quality = frozen, gateway.QualityStale
						case "noisy":
							rs[i].Value += 30 * s.rng.NormFloat64()
						}
					}
					evs := observeAll(d, rs)
					if len(evs) != 1 {
						t.Fatalf("%d events, want 1: %+v", len(evs), evs)
					}
					ev := evs[0]
					if ev.Kind != gateway.EventPick || ev.SKU != p.Facings[f].SKU || ev.Quantity != 2 {
						t.Errorf("event %+v, want a pick of 2 × %s", ev, p.Facings[f].SKU)
					}
					if ev.Confidence > DegradedConfidence || math.Abs(ev.DeltaGrams+2*p.Facings[f].UnitGrams) > 0.1*p.Facings[f].UnitGrams {
						t.Errorf("confidence %v, Δ %v g (want ≤ %v, ≈ %v g)", ev.Confidence, ev.DeltaGrams, DegradedConfidence, -2*p.Facings[f].UnitGrams)
					}
					if n := st.Snapshot().Degraded; n != 1 {
						t.Errorf("Stats.Degraded %d, want 1", n)
					}
				})
			}
		}
	}
}
