// Package dataset builds labelled training datasets of load-cell windows
// from warehouse scenarios: the simulator side of model training. It cuts
// windows with model/features, the same code the gateway serves with, and
// returns a features.Dataset that model/train fits and features'
// file format stores. Build cuts one-cell bin windows labelled by units
// moved ("pick2", "put1", "idle"); BuildPlates cuts 4-cell plate windows
// labelled by the facing the units moved on ("facing0"…, "none").
//
// Everything is a function of the options: the scenario's seed fixes
// samples and labels, Options.Seed fixes where idle windows fall, so the
// same options give the same dataset bit for bit.
package dataset

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/warehouse"
	"github.com/shelfgate/shelfgate/model/features"
)

// ErrNoVisits reports a scenario that produced no usable visit window.
var ErrNoVisits = errors.New("dataset: no visits")

// Options controls Build.
type Options struct {
	Name     string           // scenario name, recorded in the metadata
	Config   warehouse.Config // scenario; its Seed fixes samples and labels
	Duration time.Duration    // virtual time covered per bin
	// Window is the feature window; the zero value means
	// features.DefaultWindow(Config.SampleRate) (3 s, 0.5 s before the
	// hand enters). It must have one cell and the scenario's rate.
	Window features.Window
	Idle   float64 // idle windows per visit (default 0.5)
	Seed   uint64  // placement of idle windows
}

// Labels of the windows: "idle" where no visit happens, else the visit's
// kind and units, e.g. "pick1", "put3".
const IdleLabel = "idle"

// Build cuts, for every bin of the scenario and every visit that settles
// within Duration, the window anchored at the sample of the hand entering
// (⌊Start·rate⌋), labelled "pick<n>" or "put<n>"; visits whose window
// would start before sample 0 or that settle after the window's last sample
// are left out. Then round(Idle·visits) idle windows per bin at seeded
// random places at least Window.Pre samples clear of every visit. Features
// are the bin's calibrated grams (raw HX711 codes, noise and drift
// included, (code − offset)/counts per gram) divided by the bin's unit
// weight (features.Window.Extract with scale = UnitGrams). Labels are
// sorted; rows are bin by bin, visits then idle windows.
func Build(o Options) (*features.Dataset, error) {
	if o.Idle == 0 {
		o.Idle = 0.5
	}
	rate := o.Config.SampleRate
	if o.Window == (features.Window{}) {
		o.Window = features.DefaultWindow(rate)
	}
	win := o.Window
	if err := win.Validate(); err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	if win.Cells != 1 || win.Rate != rate {
		return nil, fmt.Errorf("dataset: window %v: bins have one cell at %v samples/s: %w", win, rate, features.ErrWindow)
	}
	if math.IsNaN(o.Idle) || o.Idle < 0 || o.Idle > 100 {
		return nil, fmt.Errorf("dataset: idle %v: must be between 0 and 100 windows per visit", o.Idle)
	}
	w, err := warehouse.New(o.Config)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	total := sampleIndex(o.Duration, rate)
	if o.Duration <= 0 || total <= int64(win.Samples) {
		return nil, fmt.Errorf("dataset: duration %v: must cover more than one window of %d samples", o.Duration, win.Samples)
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x1d1e))
	n := int64(win.Samples)
	pre := int64(win.Pre)

	type row struct {
		x     []float32
		label string
	}
	var rows []row
	grams := make([]float64, win.Samples)
	cells := [][]float64{grams}
	cut := func(bin int, b warehouse.Bin, first int64) ([]float32, error) {
		for i := range grams {
			grams[i] = float64(w.CodeAt(bin, first+int64(i))-b.OffsetCounts) / b.CountsPerGram
		}
		x := make([]float32, win.Len())
		if err := win.Extract(x, cells, win.Pre, b.UnitGrams); err != nil {
			return nil, fmt.Errorf("dataset: bin %s: %w", b.ID, err)
		}
		return x, nil
	}
	visits := 0
	for bin, b := range w.Bins() {
		labels := w.Labels(bin, o.Duration)
		busy := make([][2]int64, 0, len(labels))
		for _, l := range labels {
			first := sampleIndex(l.Start, rate) - pre
			if first < 0 {
				continue
			}
			settled := sampleIndex(l.Settled, rate)
			busy = append(busy, [2]int64{first, settled + pre})
			if settled >= first+n {
				continue // the visit outlasts the window
			}
			x, err := cut(bin, b, first)
			if err != nil {
				return nil, err
			}
			rows = append(rows, row{x, l.Kind + strconv.Itoa(l.Units)})
			visits++
		}
		idle := int(o.Idle*float64(len(labels)) + 0.5)
		for tries := 0; idle > 0 && tries < 100*len(labels)+100; tries++ {
			first := rng.Int64N(total - n)
			free := true
			for _, bz := range busy {
				if first <= bz[1] && first+n > bz[0] {
					free = false
					break
				}
			}
			if free {
				x, err := cut(bin, b, first)
				if err != nil {
					return nil, err
				}
				rows = append(rows, row{x, IdleLabel})
				idle--
			}
		}
	}
	if visits == 0 {
		return nil, fmt.Errorf("dataset: scenario %q, %v: %w", o.Name, o.Duration, ErrNoVisits)
	}
	d := &features.Dataset{Names: win.Names(), Meta: meta(o, win)}
	index := map[string]int{}
	for _, r := range rows {
		if _, ok := index[r.label]; !ok {
			index[r.label] = 0
			d.Labels = append(d.Labels, r.label)
		}
	}
	sort.Strings(d.Labels)
	for i, l := range d.Labels {
		index[l] = i
	}
	for _, r := range rows {
		d.X = append(d.X, r.x)
		d.Y = append(d.Y, index[r.label])
	}
	return d, nil
}

// sampleIndex is ⌊t·rate⌋, the last sample taken at or before t, in
// integer arithmetic for the HX711's integral rates.
func sampleIndex(t time.Duration, rate float64) int64 {
	if r := int64(rate); float64(r) == rate {
		return t.Nanoseconds() * r / int64(time.Second)
	}
	return int64(math.Floor(t.Seconds() * rate))
}

func meta(o Options, win features.Window) map[string]string {
	c := o.Config
	m := map[string]string{
		"window":    win.String(),
		"scale":     "unit_grams",
		"source":    "firmware-sim/warehouse",
		"seed":      strconv.FormatInt(c.Seed, 10),
		"duration":  o.Duration.String(),
		"idle":      strconv.FormatFloat(o.Idle, 'g', -1, 64),
		"idle_seed": strconv.FormatUint(o.Seed, 10),
		"scenario": fmt.Sprintf("shelves=%d bins_per_shelf=%d sample_rate=%g noise_grams=%g drift_grams_per_hour=%g picks_per_bin_per_hour=%g max_units_per_pick=%d put_probability=%g skus=%d",
			c.Shelves, c.BinsPerShelf, c.SampleRate, c.NoiseGrams, c.DriftGramsPerHour, c.PicksPerBinPerHour, c.MaxUnitsPerPick, c.PutProbability, len(c.SKUs)),
	}
	if o.Name != "" {
		m["name"] = o.Name
	}
	return m
}
