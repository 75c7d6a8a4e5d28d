package features

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrWindow reports an invalid window definition or input.
var ErrWindow = errors.New("bad window")

// Limits checked by Window.Validate.
const (
	MaxCells    = 64
	MaxSamples  = 4096
	MaxFeatures = 1 << 16
)

// Window is the fixed feature window cut around a change (see the package
// documentation for the exact definition).
type Window struct {
	Cells   int     // load cells read in lockstep: 1 for a bin, 4 for a plate
	Samples int     // samples per cell
	Pre     int     // samples before the anchor sample, 0 ≤ Pre < Samples
	Rate    float64 // samples per second per cell (10 or 80 on an HX711)
}

// DefaultWindow is the window for a bin at rate samples per second: one
// cell, 3 s of samples of which 0.5 s precede the change (30 and 5 at
// 10 Hz, 240 and 40 at 80 Hz).
func DefaultWindow(rate float64) Window {
	return Window{Cells: 1, Samples: int(math.Round(3 * rate)), Pre: int(math.Round(0.5 * rate)), Rate: rate}
}

// Len is the number of features: Cells·Samples.
func (w Window) Len() int { return w.Cells * w.Samples }

// Validate reports the first invalid field, naming it and its value.
func (w Window) Validate() error {
	switch {
	case w.Cells < 1 || w.Cells > MaxCells:
		return fmt.Errorf("features: window cells %d: must be between 1 and %d: %w", w.Cells, MaxCells, ErrWindow)
	case w.Samples < 1 || w.Samples > MaxSamples:
		return fmt.Errorf("features: window samples %d: must be between 1 and %d: %w", w.Samples, MaxSamples, ErrWindow)
	case w.Pre < 0 || w.Pre >= w.Samples:
		return fmt.Errorf("features: window pre %d: must be between 0 and samples−1 = %d: %w", w.Pre, w.Samples-1, ErrWindow)
	case w.Len() > MaxFeatures:
		return fmt.Errorf("features: window of %d cells × %d samples: more than %d features: %w", w.Cells, w.Samples, MaxFeatures, ErrWindow)
	case math.IsNaN(w.Rate) || w.Rate <= 0 || w.Rate > 1e6:
		return fmt.Errorf("features: window rate %v: must be > 0 and at most 1e6 samples/s: %w", w.Rate, ErrWindow)
	}
	return nil
}

// String is the window as "cells=1 samples=30 pre=5 rate=10", the form
// ParseWindow reads and datasets store under the "window" metadata key.
func (w Window) String() string {
	return fmt.Sprintf("cells=%d samples=%d pre=%d rate=%s", w.Cells, w.Samples, w.Pre, strconv.FormatFloat(w.Rate, 'g', -1, 64))
}

// ParseWindow reads the form String writes and validates it.
func ParseWindow(s string) (Window, error) {
	var w Window
	seen := map[string]bool{}
	for _, f := range strings.Fields(s) {
		k, v, ok := strings.Cut(f, "=")
		if !ok || seen[k] {
			return Window{}, fmt.Errorf("features: window %q: field %q: want key=value, each key once: %w", s, f, ErrWindow)
		}
		seen[k] = true
		var err error
		switch k {
		case "cells":
			w.Cells, err = strconv.Atoi(v)
		case "samples":
			w.Samples, err = strconv.Atoi(v)
		case "pre":
			w.Pre, err = strconv.Atoi(v)
		case "rate":
			w.Rate, err = strconv.ParseFloat(v, 64)
		default:
			return Window{}, fmt.Errorf("features: window %q: unknown field %q: %w", s, k, ErrWindow)
		}
		if err != nil {
			return Window{}, fmt.Errorf("features: window %q: %s=%q is not a number: %w", s, k, v, ErrWindow)
		}
	}
	if len(seen) != 4 {
		return Window{}, fmt.Errorf("features: window %q: need cells, samples, pre and rate: %w", s, ErrWindow)
	}
	if err := w.Validate(); err != nil {
		return Window{}, err
	}
	return w, nil
}

// Names returns the feature names: "s<i>" for one cell, "c<c>_s<i>" for
// several, in feature order.
func (w Window) Names() []string {
	names := make([]string, 0, w.Len())
	for c := 0; c < w.Cells; c++ {
		for i := 0; i < w.Samples; i++ {
			if w.Cells == 1 {
				names = append(names, "s"+strconv.Itoa(i))
			} else {
				names = append(names, "c"+strconv.Itoa(c)+"_s"+strconv.Itoa(i))
			}
		}
	}
	return names
}

// Extract writes the window's Len() features into dst. cells[c][k] is the
// load of cell c at sample k in grams; every cell has the same, non-zero
// number of samples. anchor is the index of the change sample in them and
// may lie anywhere: samples outside the sequence are padded with the
// nearest edge sample. scale is grams per feature unit (the unit weight
// for a one-SKU bin, 1 for grams). Extract does not allocate.
func (w Window) Extract(dst []float32, cells [][]float64, anchor int, scale float64) error {
	if len(dst) != w.Len() {
		return fmt.Errorf("features: extract: dst has %d elements, window has %d features: %w", len(dst), w.Len(), ErrWindow)
	}
	if len(cells) != w.Cells {
		return fmt.Errorf("features: extract: %d cells, window has %d: %w", len(cells), w.Cells, ErrWindow)
	}
	if !(scale > 0) || math.IsInf(scale, 0) {
		return fmt.Errorf("features: extract: scale %v: must be positive and finite: %w", scale, ErrWindow)
	}
	n := len(cells[0])
	for c, g := range cells {
		if len(g) == 0 || len(g) != n {
			return fmt.Errorf("features: extract: cell %d has %d samples, cell 0 has %d (need the same, at least 1): %w", c, len(g), n, ErrWindow)
		}
	}
	first := anchor - w.Pre
	at := func(g []float64, k int) float64 { return g[min(max(k, 0), n-1)] }
	for c, g := range cells {
		base := at(g, first)
		row := dst[c*w.Samples : (c+1)*w.Samples]
		for i := range row {
			row[i] = float32((at(g, first+i) - base) / scale)
		}
	}
	return nil
}

// CheckNames reports whether names, typically a model's input feature
// names, are the window's feature names, so a model trained on another
// window is refused before it is served.
func (w Window) CheckNames(names []string) error {
	want := w.Names()
	if len(names) != len(want) {
		return fmt.Errorf("features: model has %d features, window %v has %d: %w", len(names), w, len(want), ErrWindow)
	}
	for i := range want {
		if names[i] != want[i] {
			return fmt.Errorf("features: feature %d is %q, window %v calls it %q: %w", i, names[i], w, want[i], ErrWindow)
		}
	}
	return nil
}
