package loadcell

import (
	"math"
	"time"
)

// autoZero tracks the slow drift of one channel's zero (see the package
// documentation, "Auto-zero tracking"). It is owned by the channel's
// sampling goroutine.
type autoZero struct {
	rate, band, limit float64 // g/min (0: off), g, g

	drift   float64 // grams subtracted from every reading
	ref     float64 // level (after correction) at which the channel settled
	settled bool
	last    time.Time
}

// grams converts code with the calibration and the tracked zero.
func (a *autoZero) grams(code, offset int32, cpg float64) float64 {
	return (float64(code)-float64(offset))/cpg - a.drift
}

// track updates the zero after the filter accepted a sample read at t.
func (a *autoZero) track(f *spikeFilter, offset int32, cpg float64, t time.Time) {
	if a.rate <= 0 {
		return
	}
	spread, full := f.spread()
	if !full || float64(spread)/math.Abs(cpg) > a.band {
		a.settled = false // moving, or not enough history: hands off
		return
	}
	med, _ := f.stats()
	g := a.grams(int32(med), offset, cpg)
	if !a.settled || math.Abs(g-a.ref) > a.band {
		// Newly settled, or settled elsewhere: that level is the reference.
		a.settled, a.ref, a.last = true, g, t
		return
	}
	dt := t.Sub(a.last).Minutes()
	a.last = t
	if dt <= 0 {
		return
	}
	maxStep := a.rate * dt
	step := min(max(g-a.ref, -maxStep), maxStep)
	a.drift = min(max(a.drift+step, -a.limit), a.limit)
}
