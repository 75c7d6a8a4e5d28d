package features

import (
	"fmt"
	"math"
)

// Ring keeps the last samples of every cell of one stream (a bin or a
// plate) so that serving cuts the same windows training did: push each
// lockstep sample as it arrives, and once a change's window is complete
// (Ready), Extract gives exactly what Window.Extract gives on the retained
// samples. Neither Push nor Extract allocates. A Ring is not safe for
// concurrent use.
type Ring struct {
	w       Window
	buf     [][]float64 // per cell, circular
	n       int64       // samples pushed so far: the index of the next one
	scratch [][]float64 // per cell, one window's samples
}

// NewRing returns a ring for w that retains the last capacity samples
// (at least w.Samples).
func NewRing(w Window, capacity int) (*Ring, error) {
	if err := w.Validate(); err != nil {
		return nil, err
	}
	if capacity < w.Samples || capacity > 1<<24 {
		return nil, fmt.Errorf("features: ring capacity %d: must be between window samples %d and %d: %w", capacity, w.Samples, 1<<24, ErrWindow)
	}
	r := &Ring{w: w}
	for range w.Cells {
		r.buf = append(r.buf, make([]float64, capacity))
		r.scratch = append(r.scratch, make([]float64, w.Samples))
	}
	return r, nil
}

// Push appends one sample: the load of every cell in grams, in cell order.
func (r *Ring) Push(grams []float64) error {
	if len(grams) != len(r.buf) {
		return fmt.Errorf("features: ring push: %d cells, window has %d: %w", len(grams), len(r.buf), ErrWindow)
	}
	for _, g := range grams {
		if math.IsNaN(g) || math.IsInf(g, 0) {
			return fmt.Errorf("features: ring push: sample %d: load %v is not finite: %w", r.n, g, ErrWindow)
		}
	}
	i := int(r.n % int64(len(r.buf[0])))
	for c, g := range grams {
		r.buf[c][i] = g
	}
	r.n++
	return nil
}

// Count is the number of samples pushed, the stream index of the next one.
func (r *Ring) Count() int64 { return r.n }

// Ready reports whether the window anchored at stream sample anchor has
// all its samples after the anchor: anchor − Pre + Samples ≤ Count.
func (r *Ring) Ready(anchor int64) bool {
	return anchor-int64(r.w.Pre)+int64(r.w.Samples) <= r.n
}

// Extract writes the window anchored at stream sample index anchor into
// dst, as Window.Extract does on the retained samples (the last capacity
// pushed): samples older than those retained, or not yet pushed, are
// padded with the nearest retained one.
func (r *Ring) Extract(dst []float32, anchor int64, scale float64) error {
	if r.n == 0 {
		return fmt.Errorf("features: ring extract: no samples yet: %w", ErrWindow)
	}
	size := int64(len(r.buf[0]))
	oldest, newest := max(0, r.n-size), r.n-1
	first := anchor - int64(r.w.Pre)
	for c, s := range r.scratch {
		for i := range s {
			k := min(max(first+int64(i), oldest), newest)
			s[i] = r.buf[c][k%size]
		}
	}
	return r.w.Extract(dst, r.scratch, r.w.Pre, scale)
}
