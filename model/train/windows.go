package train

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/warehouse"
)

// WindowOptions controls Windows.
type WindowOptions struct {
	Config   warehouse.Config // scenario; Seed fixes samples and labels
	Duration time.Duration    // virtual time to cover per bin
	Samples  int              // window length in samples (default 30: 3 s at 10 Hz)
	Pre      time.Duration    // window start before a visit starts (default 0.5 s)
	Idle     float64          // idle windows per visit (default 0.5)
	Seed     uint64           // placement of idle windows
}

// Windows builds a labelled dataset of load-cell windows from the warehouse
// simulator: for every visit a window starting Pre before the hand enters
// the bin, labelled "pick<n>" or "put<n>" by the units moved, plus windows
// labelled "idle" where no visit happens. Features are the raw HX711 codes,
// noise and drift included, converted to grams as a calibrated source does,
// relative to the window's first sample and divided by the bin's unit
// weight, so one class means the same change of units on every bin.
func Windows(o WindowOptions) (*Dataset, error) {
	if o.Samples == 0 {
		o.Samples = 30
	}
	if o.Pre == 0 {
		o.Pre = 500 * time.Millisecond
	}
	if o.Idle == 0 {
		o.Idle = 0.5
	}
	w, err := warehouse.New(o.Config)
	if err != nil {
		return nil, fmt.Errorf("train: windows: %w", err)
	}
	rate := o.Config.SampleRate
	sampleAt := func(t time.Duration) int64 { return int64(t.Seconds() * rate) }
	span := time.Duration(float64(o.Samples) / rate * float64(time.Second))
	rng := rand.New(rand.NewPCG(o.Seed, 0x1d1e))

	type row struct {
		x     []float32
		label string
	}
	var rows []row
	window := func(bin int, b warehouse.Bin, k0 int64) []float32 {
		x := make([]float32, o.Samples)
		base := float64(w.CodeAt(bin, k0)-b.OffsetCounts) / b.CountsPerGram
		for i := range x {
			g := float64(w.CodeAt(bin, k0+int64(i))-b.OffsetCounts) / b.CountsPerGram
			x[i] = float32((g - base) / b.UnitGrams)
		}
		return x
	}
	for bin, b := range w.Bins() {
		labels := w.Labels(bin, o.Duration)
		busy := make([][2]time.Duration, 0, len(labels))
		for _, l := range labels {
			start := l.Start - o.Pre
			if start < 0 {
				continue
			}
			busy = append(busy, [2]time.Duration{start, l.Settled + o.Pre})
			if l.Settled > start+span {
				continue // the visit outlasts the window
			}
			rows = append(rows, row{window(bin, b, sampleAt(start)), fmt.Sprintf("%s%d", l.Kind, l.Units)})
		}
		idle := int(o.Idle*float64(len(labels)) + 0.5)
		for tries := 0; idle > 0 && tries < 100*len(labels)+100; tries++ {
			start := time.Duration(rng.Int64N(int64(o.Duration - span)))
			free := true
			for _, bz := range busy {
				if start < bz[1] && start+span > bz[0] {
					free = false
					break
				}
			}
			if free {
				rows = append(rows, row{window(bin, b, sampleAt(start)), "idle"})
				idle--
			}
		}
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("train: windows: no visits in %v: %w", o.Duration, ErrData)
	}
	d := &Dataset{}
	seen := map[string]bool{}
	for _, r := range rows {
		if !seen[r.label] {
			seen[r.label] = true
			d.Labels = append(d.Labels, r.label)
		}
	}
	sort.Strings(d.Labels)
	index := map[string]int{}
	for i, l := range d.Labels {
		index[l] = i
	}
	for _, r := range rows {
		d.X = append(d.X, r.x)
		d.Y = append(d.Y, index[r.label])
	}
	for i := 0; i < o.Samples; i++ {
		d.Names = append(d.Names, fmt.Sprintf("s%d", i))
	}
	return d, nil
}
