package warehouse

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"time"
)

// PlateConfig describes the shelf plates of a scenario: rigid plates, each
// on four HX711 load cells at its corners, carrying several SKU facings.
// The zero value (Count 0) means no plates; bins are not affected by
// plates in any way (their samples and labels are the same with or without
// them). Plates share the scenario's SampleRate, NoiseGrams,
// DriftGramsPerHour, MaxUnitsPerPick and PutProbability.
type PlateConfig struct {
	Count               int     `yaml:"count"`                // plates side by side, 0..64
	Facings             int     `yaml:"facings"`              // SKU lanes per plate, 1..16
	WidthMM             float64 `yaml:"width_mm"`             // plate width (x, along the shelf), 100..3000
	DepthMM             float64 `yaml:"depth_mm"`             // plate depth (y, 0 = front edge), 100..2000
	VisitsPerHour       float64 `yaml:"visits_per_hour"`      // picker visits per plate per hour, 0..600
	UnitSpread          float64 `yaml:"unit_spread"`          // each unit weighs nominal·(1 ± up to this), 0..0.2
	LightShare          float64 `yaml:"light_share"`          // share of facings holding 10–30 g items, 0..1
	LeanProbability     float64 `yaml:"lean_probability"`     // chance a visit rests a hand on the front edge
	AdjacentProbability float64 `yaml:"adjacent_probability"` // chance a visit comes with one on the next plate at the same time
	VibrationPerHour    float64 `yaml:"vibration_per_hour"`   // forklift-lane vibration bursts per hour, 0..600
	VibrationGrams      float64 `yaml:"vibration_grams"`      // burst amplitude per cell, 0..1000
	TempDriftGrams      float64 `yaml:"temp_drift_grams"`     // temperature cycle amplitude per cell, 0..1000
	// ChipFilter is what a conversion of a plate's cell measures: "" or
	// "none" (the default) samples the load at the conversion's instant;
	// ChipFilterSinc4 passes it through the HX711's digital filter first
	// (see ChipFilterSinc4).
	ChipFilter string `yaml:"chip_filter"`

	// SKUs, when set, stock the facings instead of the generated
	// products: facing f of plate p holds SKUs[(p·Facings+f) mod len],
	// so a short list of similar unit weights makes a plate that only
	// position tells apart.
	SKUs []SKU `yaml:"skus"`
	// Faults break single cells of plates for a while (see CellFault).
	Faults []CellFault `yaml:"faults"`
}

// ChipFilterSinc4 models the HX711's own filter: a sigma-delta whose
// output settles in 4 conversion periods (400 ms at 10 samples/s, 50 ms at
// 80, the data sheet's "output settling time") and which rejects 50 and
// 60 Hz at 10 samples/s, i.e. a sinc⁴ filter with nulls at multiples of
// the sample rate. Each conversion is the load averaged over the 4
// periods before it with the filter's weights (a cubic B-spline), and a
// vibration burst of f Hz is scaled by sinc⁴(f/rate) and delayed 2
// periods: at 10 samples/s a forklift's 8–15 Hz is all but removed
// (×0.003 at 8 Hz, ×0.0006 at 12 Hz), at 80 it passes (×0.90 at 10
// Hz). Noise, drift and temperature are what the chip outputs, as
// without the filter.
const ChipFilterSinc4 = "sinc4"

// Cell fault kinds.
const (
	FaultStuck     = "stuck"     // the code freezes at the cell's code at From
	FaultSaturated = "saturated" // the code reads MaxCode (broken excitation or signal wire)
	FaultDead      = "dead"      // the code reads 0 (shorted bridge, dead amplifier)
	FaultNoisy     = "noisy"     // extra gaussian noise of Grams std dev (loose connector)
	FaultDrift     = "drift"     // extra zero drift of Grams per hour from From (creep, moisture)
)

// CellFault is a fault of one load cell of a plate between From and Until
// (virtual time; Until 0 means for ever). Faults change the raw codes
// (PlateCodeAt) only: PlateGramsAt and PlateLabels stay the truth, so a
// detector can be scored on how it copes. Bus-level faults of the HX711
// itself (not ready, glitches, pin errors) are firmware-sim/hx711sim's.
type CellFault struct {
	Plate int           `yaml:"plate"` // plate index, 0-based
	Cell  int           `yaml:"cell"`  // 0..3, see Plate.Cells
	Kind  string        `yaml:"kind"`  // one of the Fault constants
	From  time.Duration `yaml:"from"`  // e.g. "20s"
	Until time.Duration `yaml:"until"` // 0: to the end
	Grams float64       `yaml:"grams"` // noisy: std dev; drift: grams per hour; 0..10000
}

func (f CellFault) active(t time.Duration) bool {
	return t >= f.From && (f.Until == 0 || t < f.Until)
}

// DefaultPlateConfig is four 600 × 400 mm plates with four facings, a visit
// per plate every ~40 s, ±3 % unit spread, a quarter light items, some
// leaning, adjacent visits and forklift bursts.
func DefaultPlateConfig() PlateConfig {
	return PlateConfig{
		Count: 4, Facings: 4, WidthMM: 600, DepthMM: 400,
		VisitsPerHour: 90, UnitSpread: 0.03, LightShare: 0.25,
		LeanProbability: 0.15, AdjacentProbability: 0.2,
		VibrationPerHour: 6, VibrationGrams: 15, TempDriftGrams: 3,
	}
}

func (p PlateConfig) validate(bad func(field string, v any, want string)) {
	if p.Count == 0 {
		return
	}
	finite := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
	rng := func(field string, v, lo, hi float64) {
		if !finite(v) || v < lo || v > hi {
			bad("plates."+field, v, fmt.Sprintf("must be between %g and %g", lo, hi))
		}
	}
	if p.Count < 0 || p.Count > 64 {
		bad("plates.count", p.Count, "must be between 0 and 64")
	}
	if p.Facings < 1 || p.Facings > 16 {
		bad("plates.facings", p.Facings, "must be between 1 and 16")
	}
	rng("width_mm", p.WidthMM, 100, 3000)
	rng("depth_mm", p.DepthMM, 100, 2000)
	rng("visits_per_hour", p.VisitsPerHour, 0, 600)
	rng("unit_spread", p.UnitSpread, 0, 0.2)
	rng("light_share", p.LightShare, 0, 1)
	rng("lean_probability", p.LeanProbability, 0, 1)
	rng("adjacent_probability", p.AdjacentProbability, 0, 1)
	rng("vibration_per_hour", p.VibrationPerHour, 0, 600)
	rng("vibration_grams", p.VibrationGrams, 0, 1000)
	rng("temp_drift_grams", p.TempDriftGrams, 0, 1000)
	switch p.ChipFilter {
	case "", "none", ChipFilterSinc4:
	default:
		bad("plates.chip_filter", fmt.Sprintf("%q", p.ChipFilter), `must be "none" or "sinc4"`)
	}
	for i, s := range p.SKUs {
		if err := ValidEAN13(s.Code); err != nil {
			bad(fmt.Sprintf("plates.skus[%d].code", i), fmt.Sprintf("%q", s.Code), err.Error())
		}
		if s.Name == "" {
			bad(fmt.Sprintf("plates.skus[%d].name", i), `""`, "must not be empty")
		}
		if !finite(s.UnitGrams) || s.UnitGrams < minUnitGrams || s.UnitGrams > maxUnitGrams {
			bad(fmt.Sprintf("plates.skus[%d].unit_grams", i), s.UnitGrams, fmt.Sprintf("must be between %d and %d", minUnitGrams, maxUnitGrams))
		}
	}
	for i, f := range p.Faults {
		field := func(name string) string { return fmt.Sprintf("plates.faults[%d].%s", i, name) }
		if f.Plate < 0 || f.Plate >= p.Count {
			bad(field("plate"), f.Plate, fmt.Sprintf("must be between 0 and %d (plates.count - 1)", p.Count-1))
		}
		if f.Cell < 0 || f.Cell > 3 {
			bad(field("cell"), f.Cell, "must be between 0 and 3")
		}
		switch f.Kind {
		case FaultStuck, FaultSaturated, FaultDead:
		case FaultNoisy, FaultDrift:
			if !(f.Grams > 0) {
				bad(field("grams"), f.Grams, "must be > 0 for a "+f.Kind+" fault")
			}
		default:
			bad(field("kind"), fmt.Sprintf("%q", f.Kind), "must be stuck, saturated, dead, noisy or drift")
		}
		if f.From < 0 {
			bad(field("from"), f.From, "must not be negative")
		}
		if f.Until != 0 && f.Until <= f.From {
			bad(field("until"), f.Until, "must be 0 (for ever) or after from")
		}
		rng(fmt.Sprintf("faults[%d].grams", i), f.Grams, 0, 10000)
	}
}

// Plate describes one plate. Positions are in millimetres on the plate:
// x along the shelf from the left edge, y from the front edge.
type Plate struct {
	Index     int    // 0-based, left to right
	ID        string // "plate-01"
	WidthMM   float64
	DepthMM   float64
	TareGrams float64 // the empty plate, centred
	Facings   []Facing
	Cells     [4]PlateCell // corners: front-left, front-right, back-left, back-right
}

// Facing is one SKU lane on a plate.
type Facing struct {
	Index        int
	SKU          string // EAN-13
	SKUName      string
	UnitGrams    float64 // nominal; each unit differs by up to ±UnitSpread
	XMM, YMM     float64 // centre of the lane; units are placed and taken within ±DepthMM/4 of YMM
	InitialUnits int
	Capacity     int
}

// PlateCell is one corner load cell of a plate.
type PlateCell struct {
	XMM, YMM      float64
	CellGrams     float64 // rated load
	OffsetCounts  int32
	CountsPerGram float64
}

// Share returns the part of a load at (x, y) that cell c carries: the
// bilinear weights of a rigid plate on four corner supports.
func (p *Plate) Share(c int, x, y float64) float64 {
	u, v := x/p.WidthMM, y/p.DepthMM
	switch c {
	case 0:
		return (1 - u) * (1 - v)
	case 1:
		return u * (1 - v)
	case 2:
		return (1 - u) * v
	default:
		return u * v
	}
}

// PlateLabel is the ground truth of one visit to a plate.
type PlateLabel struct {
	Plate    int
	Facing   int
	SKU      string
	Kind     string  // "pick" or "put"
	Units    int     // units moved
	Grams    float64 // change of the plate's load: negative for a pick
	XMM, YMM float64 // where the units were taken or placed
	Start    time.Duration
	Settled  time.Duration
	Adjacent bool // another visit on a neighbouring plate overlaps this one
	Lean     bool // a hand rested on the front edge during the visit
}

// Burst is a vibration burst (a forklift passing) felt by every plate.
type Burst struct {
	Start, End time.Duration
	FreqHz     float64
	Grams      float64 // peak amplitude per cell before each plate's attenuation
}

// Plates are generated in epochs of plateEpoch: every visit starts and
// settles, with the quiet gap, inside its epoch, so each epoch depends only
// on the stock at its start, and a checkpoint of the stock every
// plateCkptEvery epochs makes any sample reachable in bounded time.
const (
	plateEpoch     = time.Minute
	plateCkptEvery = 64
	plateCacheSize = 8
)

type plateVisit struct {
	PlateLabel
	before, after [4]float64 // static load per cell
	hand          [4]float64 // peak hand force per cell
	freq, phase   float64
	lean          [4]float64 // lean force per cell
	leanFrom      float64    // fractions of the visit
	leanTo        float64
}

// plateStock is the unit weights on every facing of every plate.
type plateStock [][][]float64

func (s plateStock) clone() plateStock {
	c := make(plateStock, len(s))
	for p := range s {
		c[p] = make([][]float64, len(s[p]))
		for f := range s[p] {
			c[p][f] = append([]float64(nil), s[p][f]...)
		}
	}
	return c
}

type plateEpochData struct {
	static [][4]float64   // per plate, static load per cell at the epoch's start
	visits [][]plateVisit // per plate, in order of Start
	bursts []Burst
}

type plateCell struct {
	noise       uint64
	driftSlope  float64
	sensitivity float64 // share of the plate's temperature cycle this cell sees
}

type plateSim struct {
	cfg    Config
	plates []Plate
	cells  [][4]plateCell
	tempA  []float64 // per plate temperature cycle amplitude, grams
	tempW  []float64
	tempP  []float64
	atten  []float64 // per plate vibration attenuation

	mu        sync.Mutex
	ckpts     []plateStock // ckpts[i]: stock at the start of epoch i·plateCkptEvery
	next      int64        // the epoch after the last one generated
	nextStock plateStock   // stock at the start of epoch next
	cache     map[int64]*plateEpochData
	order     []int64 // cached epochs, oldest first
}

// lightProducts are 10–30 g items, the hard case for a weighing shelf.
var lightProducts = [...]struct {
	name  string
	grams float64
}{
	{"SD card 64 GB retail", 12},
	{"AAA battery single", 11.5},
	{"lip balm 4.8 g", 14},
	{"USB stick 32 GB", 18},
	{"chewing gum pack", 27},
	{"fuse assortment bag", 22},
	{"earplugs pair", 10.5},
	{"spark plug", 30},
}

func newPlateSim(cfg Config) *plateSim {
	pc := cfg.Plates
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x91a7e5))
	s := &plateSim{cfg: cfg, cache: map[int64]*plateEpochData{}}
	stock := make(plateStock, pc.Count)
	for p := 0; p < pc.Count; p++ {
		stock[p] = make([][]float64, pc.Facings)
		pl := Plate{Index: p, ID: fmt.Sprintf("plate-%02d", p+1), WidthMM: pc.WidthMM, DepthMM: pc.DepthMM,
			TareGrams: math.Round(800 + 1200*rng.Float64())}
		most := pl.TareGrams
		for f := 0; f < pc.Facings; f++ {
			var name, code string
			var grams float64
			if len(pc.SKUs) > 0 {
				sku := pc.SKUs[(p*pc.Facings+f)%len(pc.SKUs)]
				name, code, grams = sku.Name, sku.Code, sku.UnitGrams
			} else {
				if rng.Float64() < pc.LightShare {
					lp := lightProducts[rng.IntN(len(lightProducts))]
					name, grams = lp.name, lp.grams*(0.95+0.1*rng.Float64())
				} else {
					pr := products[rng.IntN(len(products))]
					name, grams = pr.name, pr.grams*(0.92+0.16*rng.Float64())
				}
				grams = max(10, float64(int(grams*10+0.5))/10)
				var digits [12]byte
				digits[0], digits[1] = '4', '0'
				for j := 2; j < 12; j++ {
					digits[j] = byte('0' + rng.IntN(10))
				}
				check, _ := EAN13CheckDigit(string(digits[:])) // valid by construction
				code = string(digits[:]) + string(check)
			}
			capacity := max(4, min(40, int(4000/grams)))
			fc := Facing{
				Index: f, SKU: code, SKUName: name, UnitGrams: grams,
				XMM: (float64(f) + 0.5) * pc.WidthMM / float64(pc.Facings), YMM: pc.DepthMM / 2,
				Capacity: capacity, InitialUnits: capacity/3 + rng.IntN(capacity-capacity/3+1),
			}
			units := make([]float64, fc.InitialUnits)
			for i := range units {
				units[i] = s.unitWeight(rng, grams)
			}
			stock[p][f] = units
			pl.Facings = append(pl.Facings, fc)
			most += float64(capacity) * grams * (1 + pc.UnitSpread)
		}
		// The smallest cell rating that keeps the fullest plate, even all
		// on one corner with a hand on top, under 80 % of the rated load.
		rated := 50000.0
		for _, c := range []float64{5000, 10000, 20000, 50000} {
			if most+3000 <= 0.8*c {
				rated = c
				break
			}
		}
		s.cells = append(s.cells, [4]plateCell{})
		for c := 0; c < 4; c++ {
			sens := 0.85 + 0.13*rng.Float64()
			off := int32(8000 + rng.IntN(72000))
			if rng.IntN(2) == 0 {
				off = -off
			}
			pl.Cells[c] = PlateCell{
				XMM: float64(c%2) * pc.WidthMM, YMM: float64(c/2) * pc.DepthMM,
				CellGrams: rated, OffsetCounts: off, CountsPerGram: float64(1<<31) * sens / 1000 / rated,
			}
			slope := cfg.DriftGramsPerHour / 3600 * (0.5 + 0.5*rng.Float64())
			if rng.IntN(2) == 0 {
				slope = -slope
			}
			s.cells[p][c] = plateCell{
				noise:       splitmix(uint64(cfg.Seed)^0x706c617465) ^ uint64(p*4+c+1)*0x9E3779B97F4A7C15,
				driftSlope:  slope,
				sensitivity: 0.8 + 0.4*rng.Float64(),
			}
		}
		s.tempA = append(s.tempA, pc.TempDriftGrams*(0.5+0.5*rng.Float64()))
		s.tempW = append(s.tempW, 2*math.Pi/(1800+1800*rng.Float64())) // 30–60 min cycle
		s.tempP = append(s.tempP, 2*math.Pi*rng.Float64())
		s.atten = append(s.atten, 0.6+0.4*rng.Float64())
		s.plates = append(s.plates, pl)
	}
	s.ckpts = []plateStock{stock}
	s.nextStock = stock.clone()
	return s
}

func (s *plateSim) unitWeight(r *rand.Rand, nominal float64) float64 {
	return nominal * (1 + s.cfg.Plates.UnitSpread*(2*r.Float64()-1))
}

// static returns the load per cell of plate p with the given stock.
func (s *plateSim) static(p int, st plateStock) [4]float64 {
	pl := &s.plates[p]
	var out [4]float64
	for c := range out {
		out[c] = pl.TareGrams / 4
	}
	for f, units := range st[p] {
		var g float64
		for _, u := range units {
			g += u
		}
		for c := range out {
			out[c] += g * pl.Share(c, pl.Facings[f].XMM, pl.Facings[f].YMM)
		}
	}
	return out
}

// epoch returns the visits of epoch e, generating and caching it. It
// continues from the last generated epoch when that is at or before e,
// else from the nearest checkpoint before e.
func (s *plateSim) epoch(e int64) *plateEpochData {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d, ok := s.cache[e]; ok {
		return d
	}
	from := min(e/plateCkptEvery, int64(len(s.ckpts)-1)) * plateCkptEvery
	st := s.ckpts[from/plateCkptEvery]
	if s.next <= e && s.next >= from {
		from, st = s.next, s.nextStock
	}
	st = st.clone()
	var d *plateEpochData
	for x := from; x <= e; x++ {
		if x%plateCkptEvery == 0 && x/plateCkptEvery == int64(len(s.ckpts)) {
			s.ckpts = append(s.ckpts, st.clone())
		}
		d = s.generate(x, st)
	}
	s.next, s.nextStock = e+1, st
	s.cache[e] = d
	s.order = append(s.order, e)
	if len(s.order) > plateCacheSize {
		delete(s.cache, s.order[0])
		s.order = s.order[1:]
	}
	return d
}

// generate draws epoch e from its own seeded stream and advances st to the
// stock at its end.
func (s *plateSim) generate(e int64, st plateStock) *plateEpochData {
	pc := s.cfg.Plates
	r := rand.New(rand.NewPCG(uint64(s.cfg.Seed)^0x91a7e5e90c4, splitmix(uint64(e))))
	t0 := time.Duration(e) * plateEpoch
	end := t0 + plateEpoch
	d := &plateEpochData{visits: make([][]plateVisit, pc.Count)}
	for p := range s.plates {
		d.static = append(d.static, s.static(p, st))
	}
	fits := func(p int, start, settled time.Duration) bool {
		if start < t0 || settled+quietGap > end {
			return false
		}
		for _, v := range d.visits[p] {
			if start < v.Settled+quietGap && v.Start < settled+quietGap {
				return false
			}
		}
		return true
	}
	draw := func(p int, start time.Duration) plateVisit {
		f := r.IntN(pc.Facings)
		fc := &s.plates[p].Facings[f]
		dur := time.Duration((1 + r.Float64()) * float64(time.Second))
		v := plateVisit{PlateLabel: PlateLabel{Plate: p, Facing: f, SKU: fc.SKU, Kind: "pick", Units: 1 + r.IntN(s.cfg.MaxUnitsPerPick),
			XMM: fc.XMM, YMM: fc.YMM, Start: start, Settled: start + dur}}
		// The hand reaches somewhere along the lane.
		hx, hy := fc.XMM, fc.YMM+pc.DepthMM/4*(2*r.Float64()-1)
		if r.Float64() < s.cfg.PutProbability {
			v.Kind = "put"
		}
		hand := min(max(80, 0.3*float64(v.Units)*fc.UnitGrams)*(0.5+r.Float64()), 3000)
		v.freq, v.phase = 2+3*r.Float64(), 2*math.Pi*r.Float64()
		pl := &s.plates[p]
		for c := range v.hand {
			v.hand[c] = hand * pl.Share(c, hx, hy)
		}
		if r.Float64() < pc.LeanProbability {
			v.Lean = true
			lean := 300 + 1200*r.Float64()
			x := min(pc.WidthMM, max(0, fc.XMM+200*(2*r.Float64()-1)))
			for c := range v.lean {
				v.lean[c] = lean * pl.Share(c, x, 0)
			}
			v.leanFrom, v.leanTo = 0.3*r.Float64(), 0.6+0.4*r.Float64()
		}
		return v
	}
	if pc.VisitsPerHour > 0 {
		for p := range s.plates {
			at := t0.Seconds()
			last := t0 - quietGap
			for {
				at += r.ExpFloat64() * 3600 / pc.VisitsPerHour
				start := max(time.Duration(at*float64(time.Second)), last+quietGap)
				if start >= end {
					break
				}
				v := draw(p, start)
				if !fits(p, v.Start, v.Settled) {
					continue
				}
				d.visits[p] = append(d.visits[p], v)
				last = v.Settled
				at = start.Seconds()
			}
		}
		if pc.Count > 1 {
			primaries := make([]int, pc.Count) // companions do not bring companions
			for p := range primaries {
				primaries[p] = len(d.visits[p])
			}
			for p := range s.plates {
				for i := 0; i < primaries[p]; i++ {
					if r.Float64() >= pc.AdjacentProbability {
						continue
					}
					q := p + 1
					if q == pc.Count {
						q = p - 1
					}
					start := d.visits[p][i].Start + time.Duration((0.6*r.Float64()-0.3)*float64(time.Second))
					v := draw(q, start)
					if fits(q, v.Start, v.Settled) {
						v.Adjacent, d.visits[p][i].Adjacent = true, true
						d.visits[q] = append(d.visits[q], v)
					}
				}
			}
		}
	}
	if pc.VibrationPerHour > 0 {
		// A Poisson number of bursts per epoch, each 2–6 s inside it.
		for range poisson(r, pc.VibrationPerHour*plateEpoch.Hours()) {
			dur := time.Duration((2 + 4*r.Float64()) * float64(time.Second))
			start := t0 + time.Duration(r.Float64()*float64(plateEpoch-dur))
			d.bursts = append(d.bursts, Burst{Start: start, End: start + dur, FreqHz: 8 + 7*r.Float64(), Grams: pc.VibrationGrams * (0.5 + r.Float64())})
		}
	}
	for p := range s.plates {
		vs := d.visits[p]
		sort.SliceStable(vs, func(i, j int) bool { return vs[i].Start < vs[j].Start })
		for i := range vs {
			s.settle(r, &vs[i], st)
		}
	}
	return d
}

// settle applies visit v to the stock: a pick from an empty facing becomes
// a put, a put on a full one a pick; the units moved have their own
// weights and are taken from, or placed at, the facing's position.
func (s *plateSim) settle(r *rand.Rand, v *plateVisit, st plateStock) {
	p, f := v.Plate, v.Facing
	fc := &s.plates[p].Facings[f]
	units := st[p][f]
	if v.Kind == "pick" && len(units) == 0 {
		v.Kind = "put"
	}
	if v.Kind == "put" && len(units) == fc.Capacity {
		v.Kind = "pick"
	}
	v.before = s.static(p, st)
	var moved float64
	if v.Kind == "put" {
		v.Units = min(v.Units, fc.Capacity-len(units))
		for range v.Units {
			u := s.unitWeight(r, fc.UnitGrams)
			units = append(units, u)
			moved += u
		}
	} else {
		v.Units = min(v.Units, len(units))
		for _, u := range units[len(units)-v.Units:] {
			moved -= u
		}
		units = units[:len(units)-v.Units]
	}
	st[p][f] = units
	v.Grams = moved
	v.after = s.static(p, st)
}

func poisson(r *rand.Rand, mean float64) int {
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// gramsAt is the true load on cell c during the visit: the units move in
// the middle half of the visit while the hand presses with an oscillating
// force that rises and fades as sin², and a leaning hand adds its force on
// the front edge between leanFrom and leanTo.
func (v *plateVisit) gramsAt(c int, t time.Duration) float64 {
	if t >= v.Settled {
		return v.after[c]
	}
	tau := (t - v.Start).Seconds()
	u := tau / (v.Settled - v.Start).Seconds()
	x := min(1, max(0, (u-0.25)/0.5))
	moved := x * x * (3 - 2*x)
	env := math.Sin(math.Pi * u)
	g := v.before[c] + (v.after[c]-v.before[c])*moved + v.hand[c]*env*env*(1+0.6*math.Sin(2*math.Pi*v.freq*tau+v.phase))
	if v.Lean && u > v.leanFrom && u < v.leanTo {
		g += v.lean[c] * min(1, (u-v.leanFrom)/0.1, (v.leanTo-u)/0.1)
	}
	return max(0, g)
}

func (w *Warehouse) mustPlate(plate, cell int) *plateSim {
	if w.plates == nil || plate < 0 || plate >= len(w.plates.plates) || cell < 0 || cell > 3 {
		panic(fmt.Sprintf("warehouse: plate %d cell %d out of range (%d plates, 4 cells)", plate, cell, len(w.Plates())))
	}
	return w.plates
}

// Plates returns a copy of the plates, left to right; none unless
// Config.Plates.Count > 0.
func (w *Warehouse) Plates() []Plate {
	if w.plates == nil {
		return nil
	}
	out := append([]Plate(nil), w.plates.plates...)
	for i := range out {
		out[i].Facings = append([]Facing(nil), out[i].Facings...)
	}
	return out
}

// PlateGramsAt returns the true load on cell (0–3, see Plate.Cells) of
// plate at sample k: its share of the tare, the stock and any hand on the
// plate, without noise, drift or vibration. It panics if plate or cell is
// out of range.
func (w *Warehouse) PlateGramsAt(plate, cell int, k int64) float64 {
	return w.plateGramsAtTime(plate, cell, w.SampleTime(k))
}

// chipSinc4Taps is how many points per conversion period chipSinc4 takes
// the load at.
const chipSinc4Taps = 4

// chipSinc4 is load (grams at a time) through the HX711's sinc⁴ filter,
// as the conversion completing at t outputs it: the mean of load over the
// 4 periods before t, weighted by the cubic B-spline that is the impulse
// response of four boxcars of one period each (midpoint rule,
// chipSinc4Taps points per period; times before 0 take the load at 0).
func chipSinc4(t, period time.Duration, load func(time.Duration) float64) float64 {
	var sum, wsum float64
	for j := range 4 * chipSinc4Taps {
		x := (float64(j) + 0.5) / chipSinc4Taps // periods before t, in (0, 4)
		var b float64
		switch {
		case x < 1:
			b = x * x * x
		case x < 2:
			b = -3*x*x*x + 12*x*x - 12*x + 4
		case x < 3:
			b = 3*x*x*x - 24*x*x + 60*x - 44
		default:
			b = (4 - x) * (4 - x) * (4 - x)
		}
		sum += b * load(max(0, t-time.Duration(x*float64(period))))
		wsum += b
	}
	return sum / wsum
}

// plateGramsAtTime is PlateGramsAt at any time t.
func (w *Warehouse) plateGramsAtTime(plate, cell int, t time.Duration) float64 {
	s := w.mustPlate(plate, cell)
	d := s.epoch(int64(t / plateEpoch))
	vs := d.visits[plate]
	i := sort.Search(len(vs), func(i int) bool { return vs[i].Start > t }) - 1
	if i < 0 {
		return d.static[plate][cell]
	}
	return vs[i].gramsAt(cell, t)
}

// PlateCodeAt returns the raw HX711 code of cell of plate at sample k:
//
//	OffsetCounts + CountsPerGram·(PlateGramsAt + drift + vibration) + noise
//
// where drift is the cell's share of the plate's temperature cycle plus a
// slow zero drift, and vibration the bursts (Bursts) attenuated per plate.
// With Plates.ChipFilter "sinc4", PlateGramsAt and the vibration pass
// through the chip's filter first (ChipFilterSinc4).
// The four cells of a plate are sampled in lockstep (one clock).
//
// Config.Plates.Faults of this cell that are active at sample k change the
// code as their kind says.
func (w *Warehouse) PlateCodeAt(plate, cell int, k int64) int32 {
	s := w.mustPlate(plate, cell)
	t := w.SampleTime(k)
	var extra float64 // grams added by noisy and drift faults
	for _, f := range w.cfg.Plates.Faults {
		if f.Plate != plate || f.Cell != cell || !f.active(t) {
			continue
		}
		switch f.Kind {
		case FaultStuck:
			return w.plateCode(s, plate, cell, int64(f.From/w.period), 0)
		case FaultSaturated:
			return MaxCode
		case FaultDead:
			return 0
		case FaultNoisy:
			extra += f.Grams * gaussian(splitmix(s.cells[plate][cell].noise^0xfa0175), uint64(k))
		case FaultDrift:
			extra += f.Grams / 3600 * (t - f.From).Seconds()
		}
	}
	return w.plateCode(s, plate, cell, k, extra)
}

// plateCode is PlateCodeAt without faults, plus extra grams.
func (w *Warehouse) plateCode(s *plateSim, plate, cell int, k int64, extra float64) int32 {
	t := w.SampleTime(k)
	pc := &s.plates[plate].Cells[cell]
	cs := &s.cells[plate][cell]
	sec := t.Seconds()
	sinc4 := w.cfg.Plates.ChipFilter == ChipFilterSinc4
	var g float64
	if sinc4 {
		g = chipSinc4(t, w.period, func(t time.Duration) float64 { return w.plateGramsAtTime(plate, cell, t) })
	} else {
		g = w.PlateGramsAt(plate, cell, k)
	}
	g += cs.driftSlope*sec + s.tempA[plate]*cs.sensitivity*(math.Sin(s.tempW[plate]*sec+s.tempP[plate])-math.Sin(s.tempP[plate]))
	for _, b := range s.epoch(int64(t / plateEpoch)).bursts {
		if t >= b.Start && t < b.End {
			tau := (t - b.Start).Seconds()
			gain := 1.0
			if sinc4 {
				x := math.Pi * b.FreqHz * w.period.Seconds()
				gain = math.Pow(math.Sin(x)/x, 4)
				tau = max(0, tau-2*w.period.Seconds())
			}
			env := math.Sin(math.Pi * tau / (b.End - b.Start).Seconds())
			phase := 2 * math.Pi * float64(splitmix(cs.noise)>>11) / (1 << 53)
			g += gain * b.Grams * s.atten[plate] * env * env * math.Sin(2*math.Pi*b.FreqHz*tau+phase)
		}
	}
	g += w.cfg.NoiseGrams*gaussian(cs.noise, uint64(k)) + extra
	return clampCode(float64(pc.OffsetCounts) + pc.CountsPerGram*g)
}

// PlateCodes returns the four cells' codes of plate at sample k, as one
// lockstep read on a shared clock returns them.
func (w *Warehouse) PlateCodes(plate int, k int64) [4]int32 {
	var out [4]int32
	for c := range out {
		out[c] = w.PlateCodeAt(plate, c, k)
	}
	return out
}

// PlateLabels returns the visits to plate that have settled by virtual
// time until, in order of Start.
func (w *Warehouse) PlateLabels(plate int, until time.Duration) []PlateLabel {
	s := w.mustPlate(plate, 0)
	var out []PlateLabel
	for e := int64(0); time.Duration(e)*plateEpoch < until; e++ {
		for _, v := range s.epoch(e).visits[plate] {
			if v.Settled <= until {
				out = append(out, v.PlateLabel)
			}
		}
	}
	return out
}

// Bursts returns the vibration bursts that start before until, in order.
func (w *Warehouse) Bursts(until time.Duration) []Burst {
	if w.plates == nil {
		return nil
	}
	var out []Burst
	for e := int64(0); time.Duration(e)*plateEpoch < until; e++ {
		for _, b := range w.plates.epoch(e).bursts {
			if b.Start < until {
				out = append(out, b)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start < out[j].Start })
	return out
}
