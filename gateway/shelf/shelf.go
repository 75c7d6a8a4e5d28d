// Package shelf turns the weight readings of shelf bins into warehouse
// events. Detector is the first gateway.Classifier: it waits for each bin's
// weight to settle, and when a settled level differs from the previous one
// by at least MinChangeUnits units it emits a pick (weight down) or a put
// (weight up) of round(|Δ|/UnitGrams) units, keeps a stock estimate per bin
// and emits low_stock when the estimate falls to the bin's threshold.
//
// Settling is decided on a count-based window of the last WindowSamples
// good readings (max−min ≤ tolerance), not on wall time, because readings
// may be time-accelerated in simulation. Readings are expected in grams,
// already tared and scaled by the load-cell source; readings with any
// Quality flag break the window and are not used.
//
// With the automatic tolerance (SettleToleranceGrams 0) each bin also
// tracks its noise, as the running median of the step between consecutive
// readings, and widens both the settle tolerance and the least change to
// what that noise needs, so a noisy cell under light units neither stops
// settling nor floods events.
package shelf

import (
	"errors"
	"fmt"
	"math"
	"sync/atomic"

	"github.com/shelfgate/shelfgate/gateway"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultWindowSamples  = 5
	DefaultMinChangeUnits = 0.5
)

// Limits of the settle window.
const (
	minWindowSamples = 2
	maxWindowSamples = 1024
)

// Bin is one bin watched by the detector.
type Bin struct {
	Stream        gateway.StreamID // load-cell stream of the bin, in grams
	ID            string           // e.g. "shelf-01/bin-03"
	SKU           string
	UnitGrams     float64 // weight of one unit, > 0
	LowStockUnits int     // emit low_stock when stock falls to this or below
	InitialUnits  int     // stock when the detector starts
}

// Config configures a Detector.
type Config struct {
	Bins []Bin
	// WindowSamples is the number of consecutive good readings that must
	// agree for a bin to be settled; 0 means DefaultWindowSamples (half a
	// second at the HX711's 10 Hz). Keep it about half a second of
	// samples: 40 at 80 Hz, or a picker's hand is taken for a level.
	WindowSamples int
	// SettleToleranceGrams is the largest max−min spread of a settled
	// window; 0 means AutoTolerance(UnitGrams) per bin, widened to the
	// bin's measured noise.
	SettleToleranceGrams float64
	// MinChangeUnits is the smallest change of settled level, in units,
	// that makes an event; 0 means DefaultMinChangeUnits. With the
	// automatic tolerance it is raised to five standard deviations of the
	// difference of two window means when the noise needs it.
	MinChangeUnits float64
}

// AutoTolerance is the settle tolerance used for a bin when
// Config.SettleToleranceGrams is 0: a fifth of a unit, but at least 3 g
// (several standard deviations of a quiet HX711 cell) and at most 40 g.
func AutoTolerance(unitGrams float64) float64 {
	return min(40, max(3, 0.2*unitGrams))
}

// Noise tracking for the automatic tolerance: the median of the absolute
// difference of consecutive readings is tracked by multiplicative steps of
// medDiffStep; for gaussian noise of std dev σ it is 0.954σ, and the rare
// large steps of a picker's hand barely move a median.
const (
	initialMedDiff = 0.5
	minMedDiff     = 1e-3
	medDiffStep    = 0.02
	medDiffToSigma = 1 / 0.9539
)

// binState is the detector's state for one bin. window is a ring of the
// last len(window) good readings; n counts how many are filled.
type binState struct {
	Bin
	tolerance float64
	autoTol   bool    // widen tolerance to the measured noise
	noiseK    float64 // settled-window spread, in noise std devs, for autoTol
	meanK     float64 // least level change, in noise std devs, for autoTol
	minChange float64 // grams

	prev    float64 // previous good reading
	hasPrev bool
	medDiff float64 // running median of |reading − previous|, grams

	window []float64
	pos, n int

	level    float64 // last settled level, grams
	hasLevel bool
	// rebase asks Observe to take the next settled level as the bin's
	// level without an event (Rebaseline: a tare moved every reading).
	rebase atomic.Bool
	// pending holds thresholds set by TuneBin, taken by Observe (tune.go).
	pending atomic.Pointer[BinTuning]
	stock   int
	low     bool // stock is at or below LowStockUnits
	// shown is stock as Stock reports it to other goroutines (the status
	// page reads it while Observe runs).
	shown atomic.Int64
}

// Detector is a settled-weight-change event detector. Its state is per bin
// and its maps are fixed at New, so it may observe different streams
// concurrently, never one stream concurrently (see gateway.Classifier).
type Detector struct {
	bins     []binState
	byStream map[gateway.StreamID]int
	byID     map[string]int
}

var _ gateway.Classifier = (*Detector)(nil)

// New validates cfg, applies defaults and returns a Detector.
func New(cfg Config) (*Detector, error) {
	if cfg.WindowSamples == 0 {
		cfg.WindowSamples = DefaultWindowSamples
	}
	if cfg.MinChangeUnits == 0 {
		cfg.MinChangeUnits = DefaultMinChangeUnits
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("shelf: "+format, args...))
	}
	finite := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
	if len(cfg.Bins) == 0 {
		bad("bins: none configured")
	}
	if cfg.WindowSamples < minWindowSamples || cfg.WindowSamples > maxWindowSamples {
		bad("window_samples: %d must be between %d and %d", cfg.WindowSamples, minWindowSamples, maxWindowSamples)
	}
	if !finite(cfg.SettleToleranceGrams) || cfg.SettleToleranceGrams < 0 {
		bad("settle_tolerance_grams: %v must be >= 0", cfg.SettleToleranceGrams)
	}
	if !finite(cfg.MinChangeUnits) || cfg.MinChangeUnits < 0 || cfg.MinChangeUnits > 100 {
		bad("min_change_units: %v must be between 0 and 100", cfg.MinChangeUnits)
	}
	d := &Detector{
		bins:     make([]binState, len(cfg.Bins)),
		byStream: make(map[gateway.StreamID]int, len(cfg.Bins)),
		byID:     make(map[string]int, len(cfg.Bins)),
	}
	for i, b := range cfg.Bins {
		if b.Stream == "" {
			bad("bins[%d].stream: empty", i)
		} else if j, dup := d.byStream[b.Stream]; dup {
			bad("bins[%d].stream: %q already used by bins[%d]", i, b.Stream, j)
		}
		if b.ID == "" {
			bad("bins[%d].id: empty", i)
		} else if j, dup := d.byID[b.ID]; dup {
			bad("bins[%d].id: %q already used by bins[%d]", i, b.ID, j)
		}
		if !finite(b.UnitGrams) || b.UnitGrams <= 0 {
			bad("bins[%d].unit_grams: %v must be > 0", i, b.UnitGrams)
		}
		if b.LowStockUnits < 0 {
			bad("bins[%d].low_stock_units: %d must be >= 0", i, b.LowStockUnits)
		}
		if b.InitialUnits < 0 {
			bad("bins[%d].initial_units: %d must be >= 0", i, b.InitialUnits)
		}
		d.byStream[b.Stream] = i
		d.byID[b.ID] = i
		tol := cfg.SettleToleranceGrams
		if tol == 0 {
			tol = AutoTolerance(b.UnitGrams)
		}
		d.bins[i] = binState{
			Bin:       b,
			tolerance: tol,
			autoTol:   cfg.SettleToleranceGrams == 0,
			noiseK:    2*math.Sqrt(2*math.Log(float64(cfg.WindowSamples))) + 1.5,
			meanK:     5 * math.Sqrt(2/float64(cfg.WindowSamples)),
			medDiff:   initialMedDiff,
			minChange: cfg.MinChangeUnits * b.UnitGrams,
			window:    make([]float64, cfg.WindowSamples),
			stock:     b.InitialUnits,
			low:       b.InitialUnits <= b.LowStockUnits,
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for i := range d.bins {
		d.bins[i].shown.Store(int64(d.bins[i].stock))
	}
	return d, nil
}

// settleTolerance is the configured tolerance or, when automatic, the
// unit-based tolerance widened to what the measured noise needs.
func (b *binState) settleTolerance() float64 {
	if !b.autoTol {
		return b.tolerance
	}
	return max(b.tolerance, b.noiseK*b.medDiff*medDiffToSigma)
}

// minChangeGrams is the least change of settled level that makes an
// event: MinChangeUnits units or, with the automatic tolerance, five
// standard deviations of the difference of two window means if the
// measured noise makes that larger.
func (b *binState) minChangeGrams() float64 {
	if !b.autoTol {
		return b.minChange
	}
	return max(b.minChange, b.meanK*b.medDiff*medDiffToSigma)
}

// Stock returns the estimated number of units in the bin with the given ID:
// InitialUnits plus puts minus picks, never below zero. It is safe to call
// concurrently with Observe.
func (d *Detector) Stock(binID string) (units int, ok bool) {
	i, ok := d.byID[binID]
	if !ok {
		return 0, false
	}
	return int(d.bins[i].shown.Load()), true
}

// Rebaseline makes the bin with the given ID forget its settled level: the
// next settled window becomes its level without an event, and its stock
// estimate stays. Call it when a tare or calibration shifted the bin's
// readings, which would otherwise look like a pick or a put. It is safe to
// call concurrently with Observe; it reports false for an unknown bin.
func (d *Detector) Rebaseline(binID string) bool {
	i, ok := d.byID[binID]
	if ok {
		d.bins[i].rebase.Store(true)
	}
	return ok
}

// ObserveEvent implements gateway.Classifier; the detector derives nothing
// from events.
func (d *Detector) ObserveEvent(gateway.Event) []gateway.Event { return nil }

// Observe takes one reading and returns the events it completes, or nil.
// Readings of unknown streams are ignored.
func (d *Detector) Observe(r gateway.Reading) []gateway.Event {
	i, ok := d.byStream[r.Stream]
	if !ok {
		return nil
	}
	b := &d.bins[i]
	if b.rebase.Load() && b.rebase.CompareAndSwap(true, false) {
		b.n, b.pos, b.hasPrev, b.hasLevel = 0, 0, false, false
	}
	if b.pending.Load() != nil {
		b.retune(b.pending.Swap(nil))
	}
	if r.Quality != 0 || math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
		b.n = 0 // the window must refill with good readings
		b.hasPrev = false
		return nil
	}
	if b.hasPrev {
		if math.Abs(r.Value-b.prev) > b.medDiff {
			b.medDiff *= 1 + medDiffStep
		} else {
			b.medDiff = max(minMedDiff, b.medDiff*(1-medDiffStep))
		}
	}
	b.prev, b.hasPrev = r.Value, true
	b.window[b.pos] = r.Value
	b.pos++
	if b.pos == len(b.window) {
		b.pos = 0
	}
	if b.n < len(b.window) {
		b.n++
		if b.n < len(b.window) {
			return nil
		}
	}
	lo, hi, sum := b.window[0], b.window[0], 0.0
	for _, v := range b.window {
		lo, hi, sum = min(lo, v), max(hi, v), sum+v
	}
	if hi-lo > b.settleTolerance() {
		return nil
	}
	mean := sum / float64(len(b.window))
	if !b.hasLevel {
		b.level, b.hasLevel = mean, true
		return nil
	}
	delta := mean - b.level
	if math.Abs(delta) < b.minChangeGrams() {
		// Same level: follow slow drift and the last few grams of a
		// fading disturbance.
		b.level = mean
		return nil
	}
	units := math.Abs(delta) / b.UnitGrams
	qty := int(math.Round(units))
	if qty == 0 {
		return nil // MinChangeUnits < 0.5 and less than half a unit yet
	}
	b.level = mean
	ev := gateway.Event{
		Stream:     r.Stream,
		Bin:        b.ID,
		SKU:        b.SKU,
		Quantity:   qty,
		DeltaGrams: delta,
		Confidence: max(0, 1-2*math.Abs(units-float64(qty))),
		Time:       r.Time,
	}
	if delta < 0 {
		ev.Kind = gateway.EventPick
		b.stock = max(0, b.stock-qty)
	} else {
		ev.Kind = gateway.EventPut
		b.stock += qty
	}
	b.shown.Store(int64(b.stock))
	events := []gateway.Event{ev}
	low := b.stock <= b.LowStockUnits
	if low && !b.low {
		events = append(events, gateway.Event{
			Kind:     gateway.EventLowStock,
			Stream:   r.Stream,
			Bin:      b.ID,
			SKU:      b.SKU,
			Quantity: b.stock,
			Detail:   fmt.Sprintf("stock %d at or below %d", b.stock, b.LowStockUnits),
			Time:     r.Time,
		})
	}
	b.low = low
	return events
}
