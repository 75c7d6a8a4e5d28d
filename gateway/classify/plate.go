package classify

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/model/features"
)

// Facing is one SKU lane on a plate, at a known position.
type Facing struct {
	SKU       string
	UnitGrams float64 // > 0
	XMM, YMM  float64 // lane centre: x along the shelf from the left edge, y from the front
}

// Plate is one shelf plate on four load cells read in lockstep. Cells are
// the corners front-left, front-right, back-left, back-right (the order of
// firmware-sim/warehouse.Plate.Cells); their readings come in grams on
// four streams.
type Plate struct {
	ID      string              // e.g. "plate-01"
	Stream  gateway.StreamID    // the plate's event stream, e.g. "loadcell/plate-01"
	Cells   [4]gateway.StreamID // one stream per corner cell
	WidthMM float64
	DepthMM float64
	Facings []Facing
}

// share is the part of a load at (x, y) that cell c carries (bilinear).
func (p *Plate) share(c int, x, y float64) float64 {
	u, v := x/p.WidthMM, y/p.DepthMM
	switch c {
	case 0:
		return (1 - u) * (1 - v)
	case 1:
		return u * (1 - v)
	case 2:
		return (1 - u) * v
	}
	return u * v
}

// Change is a settled change of a plate's load, as the detector hands it
// to an Identifier. Before and After are the settled per-cell loads in
// grams; Anchor is the sample (in the ring's rate) at which the load began
// to move.
type Change struct {
	Plate         *Plate
	Index         int // the plate's index in Config.Plates
	Before, After [4]float64
	Delta         float64 // Σ After − Σ Before
	Ring          *features.Ring
	Anchor        int64
	Time          time.Time
	// Degraded is the cell that was out (flagged or far noisier than the
	// others) while the change happened, −1 when all four were healthy.
	// After[Degraded] is then an estimate from the other three (see
	// estimateCell); Before[Degraded] is the cell's last healthy level.
	Degraded int
	// Shaken is set when the plate was shaking (see shaken.go) and the
	// change was settled on its readings projected away from the
	// vibration: After is then Before plus Δ at the facing's position.
	Shaken bool
	// CentreSigma is the standard deviation of the change's centre of
	// mass (Centre) that the cells' noise alone causes, as a share of the
	// plate's width; 0 when unknown.
	CentreSigma float64
}

// Result is an Identifier's answer: which facing's units moved (−1: none),
// how many, and how sure it is (0..1).
type Result struct {
	Facing       int
	Quantity     int
	Confidence   float64
	Classifier   string
	ModelVersion uint64
}

// Identifier names what moved on a plate. The detector calls it for
// different plates concurrently, never for one plate concurrently; state an
// Identifier keeps per plate (by Change.Index) needs no lock.
type Identifier interface {
	Identify(c *Change) Result
}

// Mode chooses the identifiers of a PlateDetector.
type Mode string

// Modes.
const (
	ModeAnalytic Mode = "analytic" // the analytic baseline alone
	ModeModel    Mode = "model"    // the int8 model; analytic recorded as its shadow
	ModeShadow   Mode = "shadow"   // analytic decides; the model is recorded as its shadow
	// ModeGated: the int8 model says whether anything moved, the analytic
	// identifier what and how many (Gated); the best of the four on the
	// evaluation scenarios (docs/inference.md).
	ModeGated Mode = "gated"
)

// ParseMode checks a configured classifier name.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeAnalytic, ModeModel, ModeShadow, ModeGated:
		return m, nil
	}
	return "", fmt.Errorf("classifier %q: want analytic, model, shadow or gated", s)
}

// Config configures a PlateDetector.
type Config struct {
	Plates []Plate
	Rate   float64 // samples per second per cell (10 or 80)
	// RingRate is the rate the feature ring is fed at: samples are averaged
	// in blocks of Rate/RingRate. 0 means Rate. It must divide Rate.
	RingRate float64
	// Primary decides each event; Shadow, if set, is recorded beside it.
	Primary, Shadow Identifier
	Stats           *Stats // may be nil
	// Settle is how long the total load must stay within the noise
	// tolerance to count as settled (default DefaultSettle): longer
	// rejects more of a resting hand, shorter reports sooner.
	Settle time.Duration
	// EarlySettle is the shorter window after which a change whose Δ is
	// whole units of the facing identified is reported without waiting
	// for Settle (default DefaultEarlySettle; negative: never early).
	EarlySettle time.Duration
	// LowConfidence is the confidence below which an inference counts as
	// low-confidence (default 0.6).
	LowConfidence float64
}

// Queue depth of a cell's readings waiting for the other cells of their
// lockstep sample.
const cellQueue = 64

type queued struct {
	t    time.Time
	v    float64
	good bool
}

// plateState is the detector's state for one plate, guarded by mu: the
// four cell streams of a plate are committed concurrently, so they meet
// here. No lock is shared between plates.
type plateState struct {
	mu    sync.Mutex
	p     *Plate
	idx   int
	q     [4][cellQueue]queued
	head  [4]int
	count [4]int

	ring     *features.Ring
	dec      int // native samples per ring sample
	acc      [4]float64
	accN     int
	n        int64 // native samples seen
	win      [][4]float64
	wpos     int
	wn       int
	prevTot  float64
	hasPrev  bool
	medDiff  float64
	level    [4]float64
	levelTot float64
	hasLevel bool
	anchor   int64 // ring index of the departure from the level, −1 none
	misalign int64
	// Degraded mode: one cell out (flagged, or far noisier than the
	// others) is held at its last healthy level and the plate is read
	// from the other three.
	cellMed [4]float64 // running median of each cell's sample-to-sample step
	calmMed [4]float64 // cellMed when the plate last was not shaken
	prevG   [4]float64
	noisy   int // the cell judged noisy, −1 none
	out     int // the cell held, −1 none
	hold    float64
	shaken  int   // consecutive settled samples whose change no load explains
	shake   shake // the plate's vibration model
	change  Change
	// The last change reported early: its sample and Δ (see
	// EarlyResidual); earlyAt −1 none.
	earlyAt    int64
	earlyDelta float64
}

// PlateDetector is the gateway.Classifier of shelf plates: it assembles
// each plate's lockstep samples from its four cell streams, waits for the
// total load to settle, and for each settled change asks its Identifier
// what moved, emitting a pick or put with an Inference.
type PlateDetector struct {
	cfg          Config
	plates       []*plateState
	byStream     map[gateway.StreamID]struct{ p, c int }
	noiseK       float64
	meanK        float64
	early        int     // early settle window in samples, 0: none
	noiseKEarly  float64 // the early window's noise tolerance (× σ)
	halfPeriod   time.Duration
	shakenWait   int   // samples (see ShakenWait)
	shakenHold   int64 // samples (see ShakenHold)
	graceSamples int64 // samples (see EarlyGrace)
}

var _ gateway.Classifier = (*PlateDetector)(nil)

// DefaultSettle is the default settle window.
const DefaultSettle = 400 * time.Millisecond

// DefaultEarlySettle is the default early settle window (see
// Config.EarlySettle).
const DefaultEarlySettle = 300 * time.Millisecond

// settleSamples is the settle window in samples, at least 3.
func settleSamples(rate float64, d time.Duration) int {
	return max(3, int(math.Round(d.Seconds()*rate)))
}

// NewPlateDetector validates cfg and returns a detector.
func NewPlateDetector(cfg Config) (*PlateDetector, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("classify: "+format, args...)) }
	if !(cfg.Rate > 0) || cfg.Rate > 1e4 {
		bad("rate: %v must be above 0 and at most 10000", cfg.Rate)
	}
	if cfg.RingRate == 0 {
		cfg.RingRate = cfg.Rate
	}
	dec := int(math.Round(cfg.Rate / cfg.RingRate))
	if dec < 1 || math.Abs(float64(dec)*cfg.RingRate-cfg.Rate) > 1e-9 {
		bad("ring_rate: %v must divide rate %v", cfg.RingRate, cfg.Rate)
	}
	if cfg.Primary == nil {
		bad("primary identifier: none")
	}
	if cfg.LowConfidence == 0 {
		cfg.LowConfidence = 0.6
	}
	if len(cfg.Plates) == 0 {
		bad("plates: none configured")
	}
	d := &PlateDetector{cfg: cfg, byStream: map[gateway.StreamID]struct{ p, c int }{}}
	if cfg.Rate > 0 {
		d.halfPeriod = time.Duration(0.5 / cfg.Rate * 1e9)
	}
	if cfg.Settle == 0 {
		cfg.Settle = DefaultSettle
	}
	w := settleSamples(cfg.Rate, cfg.Settle)
	d.noiseK = 2*math.Sqrt(2*math.Log(float64(w))) + 2
	d.meanK = 6 * math.Sqrt(2/float64(w))
	d.shakenWait = settleSamples(cfg.Rate, ShakenWait)
	d.shakenHold = int64(math.Round(ShakenHold * cfg.Rate))
	d.graceSamples = int64(math.Round(EarlyGrace.Seconds() * cfg.Rate))
	if cfg.EarlySettle == 0 {
		cfg.EarlySettle = DefaultEarlySettle
	}
	if e := settleSamples(cfg.Rate, cfg.EarlySettle); cfg.EarlySettle > 0 && e < w {
		d.early = e
		d.noiseKEarly = 2*math.Sqrt(2*math.Log(float64(e))) + 2
	}
	win := PlateWindow(cfg.RingRate)
	for i := range cfg.Plates {
		p := &d.cfg.Plates[i]
		if p.ID == "" {
			bad("plates[%d].id: empty", i)
		}
		if !(p.WidthMM > 0) || !(p.DepthMM > 0) {
			bad("plates[%d]: width_mm %v and depth_mm %v must be above 0", i, p.WidthMM, p.DepthMM)
		}
		if len(p.Facings) == 0 {
			bad("plates[%d].facings: none", i)
		}
		for j, f := range p.Facings {
			if !(f.UnitGrams > 0) {
				bad("plates[%d].facings[%d].unit_grams: %v must be above 0", i, j, f.UnitGrams)
			}
		}
		for c, s := range p.Cells {
			if s == "" {
				bad("plates[%d].cells[%d]: empty stream", i, c)
				continue
			}
			if _, dup := d.byStream[s]; dup {
				bad("plates[%d].cells[%d]: stream %q used twice", i, c, s)
			}
			d.byStream[s] = struct{ p, c int }{i, c}
		}
		ring, err := features.NewRing(win, 4*win.Samples)
		if err != nil {
			return nil, fmt.Errorf("classify: %w", err)
		}
		d.plates = append(d.plates, &plateState{p: p, idx: i, ring: ring, dec: max(dec, 1), win: make([][4]float64, w), medDiff: 0.5, anchor: -1,
			cellMed: [4]float64{0.5, 0.5, 0.5, 0.5}, noisy: -1, out: -1, earlyAt: -1})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return d, nil
}

// PlateWindow is the feature window of plate classifiers at rate: four
// cells, 3 s, 0.5 s before the change began.
func PlateWindow(rate float64) features.Window {
	w := features.DefaultWindow(rate)
	w.Cells = 4
	return w
}

// ObserveEvent implements gateway.Classifier; plates derive nothing from
// events.
func (d *PlateDetector) ObserveEvent(gateway.Event) []gateway.Event { return nil }

// Observe takes one cell reading; it returns the event that the lockstep
// sample it completes settles, if any.
func (d *PlateDetector) Observe(r gateway.Reading) []gateway.Event {
	pc, ok := d.byStream[r.Stream]
	if !ok {
		return nil
	}
	s := d.plates[pc.p]
	s.mu.Lock()
	defer s.mu.Unlock()
	c := pc.c
	if s.count[c] == cellQueue { // the other cells stopped: drop the oldest
		s.head[c] = (s.head[c] + 1) % cellQueue
		s.count[c]--
		s.misalign++
	}
	s.q[c][(s.head[c]+s.count[c])%cellQueue] = queued{t: r.Time, v: r.Value, good: r.Quality == 0 && !math.IsNaN(r.Value) && !math.IsInf(r.Value, 0)}
	s.count[c]++
	var out []gateway.Event
	for s.count[0] > 0 && s.count[1] > 0 && s.count[2] > 0 && s.count[3] > 0 {
		// The latest of the four heads is the sample; heads more than
		// half a sample period older lost their partners and are dropped.
		// (A source stamps each cell when it processes it, so the cells of
		// one lockstep read differ by a little.)
		t := s.q[0][s.head[0]].t
		for k := 1; k < 4; k++ {
			if tk := s.q[k][s.head[k]].t; tk.After(t) {
				t = tk
			}
		}
		var g [4]float64
		var good [4]bool
		aligned := true
		for k := 0; k < 4; k++ {
			e := s.q[k][s.head[k]]
			if t.Sub(e.t) > d.halfPeriod {
				aligned = false
				s.head[k] = (s.head[k] + 1) % cellQueue
				s.count[k]--
				s.misalign++
				continue
			}
			g[k], good[k] = e.v, e.good
		}
		if !aligned {
			continue
		}
		for k := 0; k < 4; k++ {
			s.head[k] = (s.head[k] + 1) % cellQueue
			s.count[k]--
		}
		if ev, ok := d.sample(s, g, good, t); ok {
			out = append(out, ev)
		}
	}
	return out
}

// Noisy-cell hysteresis: a cell whose step median exceeds noisyEnter
// times the next noisiest cell's (and noisyFloor grams) is held as out
// until it falls below noisyLeave times.
const (
	noisyEnter = 8.0
	noisyLeave = 3.0
	noisyFloor = 0.3
)

// outCell decides which cell, if any, plate s reads without: the one
// flagged cell, else the one far noisier than the rest. ok is false when
// two or more cells are flagged (the plate cannot be read).
func (s *plateState) outCell(g [4]float64, good [4]bool) (out int, ok bool) {
	flagged := -1
	for c := range good {
		if !good[c] {
			if flagged >= 0 {
				return -1, false
			}
			flagged = c
			continue
		}
		if s.hasPrev && (s.out != c || s.noisy == c) {
			if math.Abs(g[c]-s.prevG[c]) > s.cellMed[c] {
				s.cellMed[c] *= 1.02
			} else {
				s.cellMed[c] = max(1e-3, s.cellMed[c]*0.98)
			}
		}
	}
	// The noisiest cell against the next noisiest.
	hi, second := 0, -1
	for c := 1; c < 4; c++ {
		if s.cellMed[c] > s.cellMed[hi] {
			hi = c
		}
	}
	for c := range 4 {
		if c != hi && (second < 0 || s.cellMed[c] > s.cellMed[second]) {
			second = c
		}
	}
	ref := max(noisyFloor, s.cellMed[second])
	switch {
	case s.noisy >= 0 && s.noisy != hi, s.noisy >= 0 && s.cellMed[s.noisy] < noisyLeave*ref:
		s.noisy = -1
	case s.noisy < 0 && s.cellMed[hi] > noisyEnter*ref:
		s.noisy = hi
	}
	if flagged >= 0 {
		return flagged, true
	}
	return s.noisy, true
}

// estimateCell estimates the change of cell out from the other three
// changes dc of a rigid plate on four corner supports (bilinear shares):
// with nx the cell beside out along x, ny the one along y and o the
// opposite corner, out's share of the load along y is
// Y = Δnx / (Δnx + Δo) and Δout = Δny · Y / (1 − Y). Y is clipped to
// [0, 0.95]: near out's corner the other cells see little and the
// estimate is bounded rather than amplified without limit.
func estimateCell(dc [4]float64, out int) float64 {
	nx, ny, o := out^1, out^2, out^3
	den := dc[nx] + dc[o]
	tot := dc[nx] + dc[ny] + dc[o]
	var y float64
	switch {
	case tot == 0:
		return 0
	case den/tot <= 0.02:
		y = 0.95
	default:
		y = min(0.95, max(0, dc[nx]/den))
	}
	return dc[ny] * y / (1 - y)
}

// DegradedConfidence scales the confidence of a change identified with a
// cell out: its Δ and centre rest on an estimate.
const DegradedConfidence = 0.8

// sample runs one lockstep sample of plate s through the settle detector.
func (d *PlateDetector) sample(s *plateState, g [4]float64, good [4]bool, t time.Time) (gateway.Event, bool) {
	out, ok := s.outCell(g, good)
	if !ok {
		s.wn, s.hasPrev = 0, false
		return gateway.Event{}, false
	}
	if good == [4]bool{true, true, true, true} {
		if s.hasPrev && out < 0 && s.out < 0 {
			var step [4]float64
			sc := math.Inf(1)
			for c := range step {
				step[c] = g[c] - s.prevG[c]
				sc = min(sc, s.cellMed[c]/0.9539)
			}
			s.shake.observeStep(step, sc, s.n, d.shakenHold)
		}
		s.prevG = g
	} else {
		for c := range g {
			if good[c] {
				s.prevG[c] = g[c]
			}
		}
	}
	if out != s.out {
		switch {
		case s.out >= 0:
			// A cell is back (or another is out): its real level may
			// differ from the one held; settle afresh without an event.
			s.hasLevel = false
		case s.hasLevel:
			// Hold the cell at its last settled level, which the level
			// already has.
		}
		if out >= 0 {
			s.hold = s.prevG[out]
			if s.hasLevel {
				s.hold = s.level[out]
			}
		}
		s.out, s.wn, s.hasPrev, s.anchor = out, 0, false, -1
		// The total's noise is now the healthy cells'.
		var v float64
		for c := range 4 {
			if c != out {
				v += s.cellMed[c] * s.cellMed[c]
			}
		}
		s.medDiff = max(1e-3, math.Sqrt(v))
	}
	if out >= 0 {
		g[out] = s.hold
	}
	// Feature ring at the ring rate: block means.
	for c := range g {
		s.acc[c] += g[c]
	}
	s.accN++
	if s.accN == s.dec {
		var m [4]float64
		for c := range m {
			m[c] = s.acc[c] / float64(s.dec)
		}
		s.ring.Push(m[:]) // finite: checked above
		s.acc, s.accN = [4]float64{}, 0
	}
	s.n++
	tot := g[0] + g[1] + g[2] + g[3]
	if s.hasPrev {
		if math.Abs(tot-s.prevTot) > s.medDiff {
			s.medDiff *= 1.02
		} else {
			s.medDiff = max(1e-3, s.medDiff*0.98)
		}
	}
	s.prevTot, s.hasPrev = tot, true
	sigma := s.medDiff / 0.9539
	if s.hasLevel && s.anchor < 0 && math.Abs(tot-s.levelTot) > max(1.5, 5*sigma) {
		s.anchor = max(0, s.ring.Count()-1)
	}
	s.win[s.wpos] = g
	s.wpos = (s.wpos + 1) % len(s.win)
	if s.wn < len(s.win) {
		s.wn++
	}
	// Settled: the whole window is still; or, early, its last d.early
	// samples are, and the change they show turns out to be whole units
	// of the facing identified (checked below): a hand still resting on
	// the plate adds a force that is rarely a whole number of units, and
	// such a change waits for the whole window.
	if s.n >= s.shake.until {
		s.calmMed = s.cellMed
	}
	if s.shake.rank > 0 && s.n < s.shake.until && s.out < 0 {
		// Shaken: settle on the readings projected away from the
		// vibration. When that finds nothing, the plain test below still
		// runs: once the cells are still, a change the projection could
		// not fit (a light facing's, seen at a fraction of its size) is
		// reported then, not after ShakenHold.
		if ev, ok := d.shakenSettle(s, t); ok {
			return ev, ok
		}
	}
	early := false
	var spread float64 // the early window's range of the total
	mean, mt, _, ok := d.still(s, len(s.win), d.noiseK, sigma)
	if !ok {
		if d.early == 0 || !s.hasLevel {
			return gateway.Event{}, false
		}
		if mean, mt, spread, ok = d.still(s, d.early, d.noiseKEarly, sigma); !ok {
			return gateway.Event{}, false
		}
		early = true
	}
	if !s.hasLevel {
		s.level, s.levelTot, s.hasLevel = mean, mt, true
		return gateway.Event{}, false
	}
	delta := mt - s.levelTot
	minUnit := math.Inf(1)
	for _, f := range s.p.Facings {
		minUnit = min(minUnit, f.UnitGrams)
	}
	if math.Abs(delta) < max(0.5*minUnit, d.meanK*sigma) {
		if !early {
			s.level, s.levelTot = mean, mt // follow drift and fading disturbances
			s.anchor = -1
			s.shaken = 0
		}
		return gateway.Event{}, false
	}
	if d.residual(s, delta) {
		// What a hand still pressing when the last change settled early
		// left in its level: follow it without an event.
		s.level, s.levelTot = mean, mt
		s.anchor, s.shaken, s.earlyAt = -1, 0, -1
		return gateway.Event{}, false
	}
	if !d.sameSign(s, mean, delta) || !d.pointLoad(s, mean, delta) {
		// Not what a load does to a rigid plate: the plate is being
		// shaken (or pressed in two places). Keep the level and wait,
		// unless it stays so for ShakenWait: then follow it silently.
		if !early {
			d.unexplained(s, mean, mt)
		}
		return gateway.Event{}, false
	}
	anchor := s.anchor
	if anchor < 0 { // the departure was within the noise: assume a window ago
		anchor = max(0, s.ring.Count()-int64(len(s.win)/s.dec)-1)
	}
	ch := &s.change
	*ch = Change{Plate: s.p, Index: s.idx, Before: s.level, After: mean, Delta: delta, Ring: s.ring, Anchor: anchor, Time: t, Degraded: s.out,
		CentreSigma: d.centreNoise(s, delta) / 3}
	start := time.Now()
	var res Result
	var shadow *Result
	if s.out >= 0 {
		// One cell out: the model's window is not what it was trained on,
		// so the analytic identifier decides on the estimated change.
		var dc [4]float64
		for c := range dc {
			dc[c] = ch.After[c] - ch.Before[c]
		}
		ch.After[s.out] = ch.Before[s.out] + estimateCell(dc, s.out)
		ch.Delta = 0
		for c := range dc {
			ch.Delta += ch.After[c] - ch.Before[c]
		}
		res = Analytic{}.Identify(ch)
		res.Confidence *= DegradedConfidence
	} else {
		res = d.cfg.Primary.Identify(ch)
	}
	if early && (res.Facing < 0 || !earlyStill(spread, max(1.5, EarlyStill*d.noiseKEarly*sigma), s.p.Facings[res.Facing].UnitGrams, minUnit) ||
		!wholeUnits(ch.Delta, s.p.Facings[res.Facing].UnitGrams) || !onLane(ch, res.Facing)) {
		return gateway.Event{}, false // wait for the whole window
	}
	if !early && s.out < 0 && !onAnyLane(ch, d.centreNoise(s, ch.Delta)) {
		// Units are taken from their lane: a change centred elsewhere is
		// a hand still resting or the plate still shaking. Wait, as for
		// a change no single load explains.
		d.unexplained(s, mean, mt)
		return gateway.Event{}, false
	}
	settledOn := len(s.win)
	if early {
		settledOn = d.early
	}
	if d.vibrationExplains(s, ch, res, settledOn) {
		// The plate's vibration, not a load: wait, as above.
		d.cfg.Stats.observeChange(changeVibration)
		d.unexplained(s, mean, mt)
		return gateway.Event{}, false
	}
	if s.out < 0 && d.cfg.Shadow != nil { // only for a change reported
		sr := d.cfg.Shadow.Identify(ch)
		shadow = &sr
	}
	s.level, s.levelTot, s.anchor, s.shaken = mean, mt, -1, 0
	if st := d.cfg.Stats; st != nil {
		st.observe(res, shadow, time.Since(start), d.cfg.LowConfidence)
	}
	if res.Facing < 0 {
		return gateway.Event{}, false // the identifier says nothing moved
	}
	s.earlyAt = -1
	if early {
		s.earlyAt, s.earlyDelta = s.n, ch.Delta
	}
	if ch.Degraded >= 0 {
		d.cfg.Stats.observeChange(changeDegraded)
	}
	return d.event(s.p, ch, res, shadow), true
}

// residual reports whether a fall of delta grams on plate s is what a
// hand still pressing left in the level of the change last settled early
// (or through vibration): within EarlyGrace of it and under
// EarlyResidual of its size.
func (d *PlateDetector) residual(s *plateState, delta float64) bool {
	return s.earlyAt >= 0 && s.n-s.earlyAt <= d.graceSamples && delta < 0 && -delta < EarlyResidual*math.Abs(s.earlyDelta)
}

// unexplained counts one more settled sample of plate s whose change no
// single load explains; after ShakenWait of them in a row the level
// follows it without an event, counted in Stats.Followed (the change is
// at least half the plate's lightest unit, or it would have been
// followed at once).
func (d *PlateDetector) unexplained(s *plateState, mean [4]float64, mt float64) {
	s.shaken++
	if s.shaken < d.shakenWait {
		return
	}
	d.cfg.Stats.observeChange(changeFollowed)
	s.level, s.levelTot = mean, mt
	s.anchor = -1
	s.shaken = 0
}

// still returns the mean of the last n samples of plate s's window, the
// range of their total, and whether it stays within max(1.5 g, k·sigma).
func (d *PlateDetector) still(s *plateState, n int, k, sigma float64) (mean [4]float64, mt, spread float64, ok bool) {
	if s.wn < n {
		return mean, 0, 0, false
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	var clo, chi [4]float64
	for i := 1; i <= n; i++ {
		w := s.win[(s.wpos-i+len(s.win))%len(s.win)]
		tw := w[0] + w[1] + w[2] + w[3]
		lo, hi = min(lo, tw), max(hi, tw)
		for c := range mean {
			mean[c] += w[c]
			if i == 1 {
				clo[c], chi[c] = w[c], w[c]
			}
			clo[c], chi[c] = min(clo[c], w[c]), max(chi[c], w[c])
		}
	}
	if hi-lo > max(1.5, k*sigma) {
		return mean, 0, 0, false
	}
	// Every cell still too: vibration moves the cells in phases of their
	// own, which can cancel in the total while each cell swings.
	for c := range mean {
		if c != s.out && chi[c]-clo[c] > max(CellFloor, CellK*d.noiseK*s.cellMed[c]/0.9539) {
			return mean, 0, 0, false
		}
	}
	for c := range mean {
		mean[c] /= float64(n)
		mt += mean[c]
	}
	return mean, mt, hi - lo, true
}

// CellFloor is the least range, in grams, a cell may move within a
// settle window (the total's is 1.5 g).
const CellFloor = 1.0

// CellK scales a cell's noise tolerance within a settle window against
// the total's: the test is for swings, not for noise.
const CellK = 1.5

// EarlyFrac is how near a whole number of units an early-settled change
// of one unit must be: |Δ|/unit within EarlyFrac·q^¼ of an integer q ≥ 1.
// Units of one SKU differ by a few per cent each, so the weight of q units
// spreads more than one unit's; it would spread as √q, but the tolerance
// also lets a hand's force pass, and √q cost exact quantity on the
// training scenarios where q^¼ did not.
const EarlyFrac = 0.06

// wholeUnits reports whether |delta| is within EarlyFrac·q^¼ of a whole
// number q ≥ 1 of units.
func wholeUnits(delta, unit float64) bool {
	u := math.Abs(delta) / unit
	q := math.Round(u)
	return q >= 1 && math.Abs(u-q) <= EarlyFrac*math.Sqrt(math.Sqrt(q))
}

// EarlyStill scales the early window's noise tolerance: an early
// settle must be stiller than a full one, unless its total moved by less
// than EarlyMove of the identified facing's unit (see earlyStill).
const EarlyStill = 0.6

// EarlyMove is the share of a unit by which the total may move within an
// early window that is not EarlyStill-still; EarlyMoveLightest the share
// of the plate's lightest unit (what a hand still fading out leaves
// behind must not look like a light unit moved).
const (
	EarlyMove         = 0.05
	EarlyMoveLightest = 0.25
)

// A change reported early may still carry some of a hand's force, which
// fades once the hand has left: a fall of the load that settles within
// EarlyGrace of it and is smaller than EarlyResidual of its |Δ| is that
// force leaving, and is followed without an event (no hand takes units
// again so soon; reported, it was a pick of a light unit nobody made).
const (
	EarlyGrace    = time.Second
	EarlyResidual = 0.5
)

// earlyStill reports whether an early window whose total spans spread
// grams is still enough to report a change of units of unit grams: within
// tol (the EarlyStill tolerance), or by less than EarlyMove of a unit. A
// hand still fading out moves the total; what matters is whether it can
// move it by enough to change the count, so the noise of a heavy plate
// (which makes a 3-sample window fail the strict test one time in twenty
// and waits a sample more) does not hold a change of heavy units.
func earlyStill(spread, tol, unit, lightest float64) bool {
	return spread <= tol || spread <= min(EarlyMove*unit, EarlyMoveLightest*lightest)
}

// onLane reports whether the centre of change ch lies on facing f's lane:
// within EarlyLane of the plate's width of the lane's x, and within the
// depth units are taken from (±depth/4 of the lane's y, plus EarlyLane of
// the depth). A hand still resting on the front edge pulls the centre
// forward.
func onLane(ch *Change, f int) bool {
	p := ch.Plate
	x, y, ok := Centre(p, ch.Before, ch.After)
	fc := p.Facings[f]
	return ok && math.Abs(x-fc.XMM) <= EarlyLane*p.WidthMM && math.Abs(y-fc.YMM) <= (0.25+EarlyLane)*p.DepthMM
}

// onAnyLane reports whether the centre of change ch lies on some facing's
// lane (onLane), whatever the identifier says, with slack more: the
// centre's noise as a share of the plate's size.
func onAnyLane(ch *Change, slack float64) bool {
	p := ch.Plate
	x, y, ok := Centre(p, ch.Before, ch.After)
	if !ok {
		return false
	}
	for _, fc := range p.Facings {
		if math.Abs(x-fc.XMM) <= (EarlyLane+slack)*p.WidthMM && math.Abs(y-fc.YMM) <= (0.25+EarlyLane+slack)*p.DepthMM {
			return true
		}
	}
	return false
}

// centreNoise is 3σ of a change's centre (u or v) on plate s: two cells'
// window-mean noise over |Δ|.
func (d *PlateDetector) centreNoise(s *plateState, delta float64) float64 {
	var v2 float64
	for c := range 4 {
		sg := s.cellMed[c] / 0.9539
		v2 += sg * sg
	}
	return 3 * math.Sqrt(v2/2*2/float64(len(s.win))) / math.Abs(delta)
}

// EarlyLane is the slack of onLane, as a share of the plate's size.
const EarlyLane = 0.05

// sameSign reports whether every healthy cell of plate s moved with the
// total (or within its noise and a few per cent of |Δ|): a load put on or
// taken off a rigid plate loads or unloads every corner (bilinear shares
// are ≥ 0), while a vibration burst sampled at 10 or 80 samples/s
// aliases to a slow wobble with each cell in its own phase, which a
// settle window can mistake for a new level.
func (d *PlateDetector) sameSign(s *plateState, mean [4]float64, delta float64) bool {
	w := float64(len(s.win))
	for c := range mean {
		if c == s.out {
			continue
		}
		sigma := s.cellMed[c] / 0.9539 / math.Sqrt2 // one sample's noise
		tol := 0.5 + SignSlack*math.Abs(delta) + 4*sigma*math.Sqrt(2/w)
		if (mean[c]-s.level[c])*math.Copysign(1, delta) < -tol {
			return false
		}
	}
	return true
}

// pointLoad reports whether the change of plate s from its level to
// mean is what one load at one place does to a rigid plate on four
// corner supports: with bilinear shares, the centre (u, v) (fractions of
// width and depth) fixes the twist Δ0−Δ1−Δ2+Δ3 = Δ(1−2u)(1−2v), and the
// centre lies on the plate. A vibration burst moves the cells with
// phases of their own and leaves a twist no single load makes. The
// slack is the cells' noise plus TwistSlack of |Δ| (real plates are not
// exactly bilinear) and CentreSlack outside the plate. With a cell out
// the change is estimated from three cells and is consistent by
// construction: not tested.
func (d *PlateDetector) pointLoad(s *plateState, mean [4]float64, delta float64) bool {
	if s.out >= 0 {
		return true
	}
	var dc [4]float64
	var v2 float64
	for c := range dc {
		dc[c] = mean[c] - s.level[c]
		sg := s.cellMed[c] / 0.9539 / math.Sqrt2
		v2 += sg * sg
	}
	u := (dc[1] + dc[3]) / delta
	v := (dc[2] + dc[3]) / delta
	if u < -CentreSlack || u > 1+CentreSlack || v < -CentreSlack || v > 1+CentreSlack {
		return false
	}
	twist := dc[0] - dc[1] - dc[2] + dc[3] - delta*(1-2*u)*(1-2*v)
	tol := 0.5 + TwistSlack*math.Abs(delta) + 6*math.Sqrt(v2)*math.Sqrt(2/float64(len(s.win)))
	return math.Abs(twist) <= tol
}

// TwistSlack is the share of |Δ| by which a change's twist may differ from
// a single load's; CentreSlack how far (as a share of the plate's size)
// its centre may lie outside the plate.
const (
	TwistSlack  = 0.1
	CentreSlack = 0.05
)

// ShakenWait is how long a settled level that no single load explains is
// waited on before the detector follows it without an event.
const ShakenWait = 2 * time.Second

// SignSlack is the share of |Δ| a cell may move against the total before
// the change is taken for vibration rather than a load.
const SignSlack = 0.03

// event builds the pick or put of res.
func (d *PlateDetector) event(p *Plate, ch *Change, res Result, shadow *Result) gateway.Event {
	f := p.Facings[res.Facing]
	kind, action := gateway.EventPut, "put"
	if ch.Delta < 0 {
		kind, action = gateway.EventPick, "pick"
	}
	inf := &gateway.Inference{
		Plate: p.ID, Facing: res.Facing, SKU: f.SKU, Action: action, Quantity: res.Quantity,
		Confidence: res.Confidence, Classifier: res.Classifier, ModelVersion: res.ModelVersion,
	}
	if shadow != nil {
		sh := &gateway.Inference{Plate: p.ID, Facing: shadow.Facing, Action: action, Quantity: shadow.Quantity,
			Confidence: shadow.Confidence, Classifier: shadow.Classifier, ModelVersion: shadow.ModelVersion}
		if shadow.Facing >= 0 {
			sh.SKU = p.Facings[shadow.Facing].SKU
		}
		inf.Shadow = sh
	}
	return gateway.Event{
		Kind: kind, Stream: p.Stream, Bin: p.ID, SKU: f.SKU, Quantity: res.Quantity,
		DeltaGrams: ch.Delta, Confidence: res.Confidence, Time: ch.Time, Inference: inf,
	}
}

// quantity is round(|Δ|/unit) and whether it is within 0.2 of an integer.
func quantity(delta, unit float64) (int, bool) {
	u := math.Abs(delta) / unit
	q := math.Round(u)
	return int(q), q >= 1 && math.Abs(u-q) <= 0.2
}
