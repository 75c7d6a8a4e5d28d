package dataset

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/warehouse"
	"github.com/shelfgate/shelfgate/model/features"
)

// NoneLabel labels a plate window in which no item moved.
const NoneLabel = "none"

// PlateOptions controls BuildPlates.
type PlateOptions struct {
	Name     string
	Config   warehouse.Config // with Config.Plates.Count > 0
	Duration time.Duration
	// Window must have 4 cells at the scenario's rate; the zero value is
	// 4 cells of 3 s with 0.5 s before the hand enters.
	Window features.Window
	Idle   float64 // "none" windows per visit (default 0.5)
	Seed   uint64  // placement of "none" windows
}

// BuildPlates cuts one 4-cell window per plate visit that fits (anchored at
// ⌊Start·rate⌋, settled inside the window), labelled "facing<i>" by the
// facing the units moved on, plus round(Idle·visits) windows per plate
// labelled "none" at seeded places clear of every visit on that plate
// (bursts, drift and neighbours' visits may still be in them: that is
// what "no item moved" must survive). Features are each cell's calibrated
// grams relative to the window's first sample (scale 1), cell-major in the
// order of warehouse.Plate.Cells. Labels are sorted.
func BuildPlates(o PlateOptions) (*features.Dataset, error) {
	if o.Idle == 0 {
		o.Idle = 0.5
	}
	rate := o.Config.SampleRate
	if o.Window == (features.Window{}) {
		o.Window = features.DefaultWindow(rate)
		o.Window.Cells = 4
	}
	win := o.Window
	if err := win.Validate(); err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	if win.Cells != 4 || win.Rate != rate {
		return nil, fmt.Errorf("dataset: window %v: plates have 4 cells at %v samples/s: %w", win, rate, features.ErrWindow)
	}
	if math.IsNaN(o.Idle) || o.Idle < 0 || o.Idle > 100 {
		return nil, fmt.Errorf("dataset: idle %v: must be between 0 and 100 windows per visit", o.Idle)
	}
	if o.Config.Plates.Count == 0 {
		return nil, fmt.Errorf("dataset: scenario %q has no plates: %w", o.Name, ErrNoVisits)
	}
	w, err := warehouse.New(o.Config)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	total := sampleIndex(o.Duration, rate)
	n, pre := int64(win.Samples), int64(win.Pre)
	if o.Duration <= 0 || total <= n {
		return nil, fmt.Errorf("dataset: duration %v: must cover more than one window of %d samples", o.Duration, win.Samples)
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x91a7e))
	cells := make([][]float64, 4)
	for c := range cells {
		cells[c] = make([]float64, win.Samples)
	}
	d := &features.Dataset{Names: win.Names()}
	var labels []string
	cut := func(p warehouse.Plate, first int64, label string) error {
		for i := range int64(win.Samples) {
			codes := w.PlateCodes(p.Index, first+i)
			for c := range cells {
				cells[c][i] = float64(codes[c]-p.Cells[c].OffsetCounts) / p.Cells[c].CountsPerGram
			}
		}
		x := make([]float32, win.Len())
		if err := win.Extract(x, cells, win.Pre, 1); err != nil {
			return fmt.Errorf("dataset: %s: %w", p.ID, err)
		}
		d.X = append(d.X, x)
		labels = append(labels, label)
		return nil
	}
	visits := 0
	var facings []string
	for _, p := range w.Plates() {
		ls := w.PlateLabels(p.Index, o.Duration)
		busy := make([][2]int64, 0, len(ls))
		for _, l := range ls {
			first := sampleIndex(l.Start, rate) - pre
			settled := sampleIndex(l.Settled, rate)
			busy = append(busy, [2]int64{first, settled + pre})
			if first < 0 || settled >= first+n {
				continue
			}
			if err := cut(p, first, "facing"+strconv.Itoa(l.Facing)); err != nil {
				return nil, err
			}
			visits++
		}
		idle := int(o.Idle*float64(len(ls)) + 0.5)
		for tries := 0; idle > 0 && tries < 100*len(ls)+100; tries++ {
			first := rng.Int64N(total - n)
			free := true
			for _, bz := range busy {
				if first <= bz[1] && first+n > bz[0] {
					free = false
					break
				}
			}
			if free {
				if err := cut(p, first, NoneLabel); err != nil {
					return nil, err
				}
				idle--
			}
		}
		var fs []string
		for _, f := range p.Facings {
			fs = append(fs, fmt.Sprintf("%d:%s@%g,%g:%gg", f.Index, f.SKU, f.XMM, f.YMM, f.UnitGrams))
		}
		facings = append(facings, p.ID+"="+strings.Join(fs, " "))
	}
	if visits == 0 {
		return nil, fmt.Errorf("dataset: scenario %q, %v: %w", o.Name, o.Duration, ErrNoVisits)
	}
	for i := 0; i < o.Config.Plates.Facings; i++ {
		d.Labels = append(d.Labels, "facing"+strconv.Itoa(i))
	}
	d.Labels = append(d.Labels, NoneLabel) // sorted: "facing…" < "none"
	index := map[string]int{}
	for i, l := range d.Labels {
		index[l] = i
	}
	for _, l := range labels {
		d.Y = append(d.Y, index[l])
	}
	d.Meta = meta(Options{Name: o.Name, Config: o.Config, Duration: o.Duration, Idle: o.Idle, Seed: o.Seed}, win)
	d.Meta["scale"] = "grams"
	d.Meta["source"] = "firmware-sim/warehouse plates"
	d.Meta["plates"] = strings.Join(facings, "; ")
	if fl := o.Config.Plates.Faults; len(fl) > 0 {
		// The windows of a faulty cell are in the dataset as they are:
		// say so, so a model trained on them can be told apart.
		var fs []string
		for _, f := range fl {
			fs = append(fs, fmt.Sprintf("plate%d/cell%d=%s@%v-%v:%gg", f.Plate, f.Cell, f.Kind, f.From, f.Until, f.Grams))
		}
		d.Meta["faults"] = strings.Join(fs, " ")
	}
	return d, nil
}
