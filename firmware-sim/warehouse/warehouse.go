package warehouse

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"time"
)

// HX711 channel A, gain 128: 24-bit two's complement.
const (
	MinCode int32 = -0x800000
	MaxCode int32 = 0x7FFFFF
)

// quietGap is the least time between one visit settling and the next one
// starting on the same bin; Poisson arrivals that fall inside it are
// delayed. Pickers do not reach into a bin that still swings.
const quietGap = 2 * time.Second

// Bin describes one bin and the load cell under it.
type Bin struct {
	Index         int     // 0-based, shelf-major
	ID            string  // "shelf-01/bin-03"
	Shelf, Slot   int     // 1-based
	SKU           string  // EAN-13 of the SKU stored in the bin
	SKUName       string  // catalogue name
	UnitGrams     float64 // weight of one unit
	InitialUnits  int     // units at virtual time 0
	Capacity      int     // most units the bin holds
	TareGrams     float64 // the empty bin resting on the cell
	CellGrams     float64 // rated load of the cell (5, 10 or 20 kg)
	OffsetCounts  int32   // raw code with nothing on the cell
	CountsPerGram float64 // scale of the cell at gain 128
}

// Label is the ground truth of one picker visit.
type Label struct {
	Bin     int
	Kind    string // "pick" or "put"
	Units   int
	Start   time.Duration // hand enters the bin
	Settled time.Duration // weight is at its new level from here on
	SKU     string
	Scan    string // barcode scanned with the visit, "" if none
}

// visit is a Label plus what is needed to draw its weight curve.
type visit struct {
	Label
	count         int64   // ordinal of the visit in its bin
	before, after float64 // total grams on the cell
	hand          float64 // peak hand force in grams (negative: lifting)
	freq, phase   float64 // oscillation of the hand
}

// Visit cache bounds: a bin keeps at most 2·keepVisits generated visits
// and a generator checkpoint every checkpointEvery visits, so memory stays
// bounded over long runs while any sample of the past can still be
// regenerated, from the nearest checkpoint, bit for bit.
const (
	keepVisits      = 1024
	checkpointEvery = 1024
)

// genState is everything the visit generator of one bin depends on. It is
// a plain value: copying it forks the generator.
type genState struct {
	pcg         rand.PCG
	arrival     float64 // Poisson clock, seconds
	units       int     // units after the last generated visit
	lastSettled time.Duration
	count       int64 // visits generated so far
}

// checkpoint is the generator state before visit number count, and that
// visit's start.
type checkpoint struct {
	gen   genState
	start time.Duration
}

// binState holds the lazily generated visits of one bin.
type binState struct {
	mu     sync.Mutex
	gen    genState     // state after the last visit in visits
	visits []visit      // a contiguous run of visits, in order
	ckpts  []checkpoint // ckpts[i] precedes visit i·checkpointEvery

	driftSlope  float64 // grams per second
	driftAmp    float64 // grams
	driftOmega  float64 // rad per second
	driftPhase  float64
	noiseStream uint64
}

// Warehouse is a deterministic scenario. Its methods are safe for
// concurrent use.
type Warehouse struct {
	cfg    Config
	period time.Duration
	bins   []Bin
	state  []*binState
	plates *plateSim // nil without plates
}

// New validates cfg and builds the scenario.
func New(cfg Config) (*Warehouse, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := cfg.Shelves * cfg.BinsPerShelf
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5e1f6a7e))
	skus := cfg.SKUs
	if len(skus) == 0 {
		skus = defaultCatalogue(rng, n)
	} else {
		skus = append([]SKU(nil), skus...)
	}
	cfg.SKUs = skus
	cfg.Plates.SKUs = append([]SKU(nil), cfg.Plates.SKUs...)
	cfg.Plates.Faults = append([]CellFault(nil), cfg.Plates.Faults...)
	w := &Warehouse{
		cfg:    cfg,
		period: time.Duration(float64(time.Second) / cfg.SampleRate),
		bins:   make([]Bin, n),
		state:  make([]*binState, n),
	}
	for i := range w.bins {
		w.bins[i] = newBin(rng, i, cfg.BinsPerShelf, skus[i%len(skus)])
		w.state[i] = newBinState(cfg, i, w.bins[i], rng)
	}
	if cfg.Plates.Count > 0 {
		w.plates = newPlateSim(cfg) // its own random streams: bins are unchanged
	}
	return w, nil
}

func newBin(rng *rand.Rand, i, perShelf int, sku SKU) Bin {
	tare := math.Round(150 + 450*rng.Float64())
	cell := 20000.0
	capacity := 0
	for _, c := range []float64{5000, 10000, 20000} {
		capacity = int((0.8*c - tare) / sku.UnitGrams)
		cell = c
		if capacity >= 8 {
			break
		}
	}
	capacity = max(1, min(capacity, 60))
	initial := capacity/3 + rng.IntN(capacity-capacity/3+1)
	sensitivity := 0.85 + 0.13*rng.Float64() // mV/V
	// Full scale ±AVDD/256 maps to ±2^23 counts; the cell gives
	// sensitivity·AVDD at rated load: 2^31·sensitivity/1000 counts.
	cpg := float64(1<<31) * sensitivity / 1000 / cell
	offset := int32(8000 + rng.IntN(72000))
	if rng.IntN(2) == 0 {
		offset = -offset
	}
	shelf, slot := i/perShelf+1, i%perShelf+1
	return Bin{
		Index:         i,
		ID:            fmt.Sprintf("shelf-%02d/bin-%02d", shelf, slot),
		Shelf:         shelf,
		Slot:          slot,
		SKU:           sku.Code,
		SKUName:       sku.Name,
		UnitGrams:     sku.UnitGrams,
		InitialUnits:  initial,
		Capacity:      capacity,
		TareGrams:     tare,
		CellGrams:     cell,
		OffsetCounts:  offset,
		CountsPerGram: cpg,
	}
}

func newBinState(cfg Config, i int, b Bin, rng *rand.Rand) *binState {
	slope := cfg.DriftGramsPerHour / 3600 * (0.5 + 0.5*rng.Float64())
	if rng.IntN(2) == 0 {
		slope = -slope
	}
	return &binState{
		gen: genState{
			pcg:         *rand.NewPCG(uint64(cfg.Seed), 0xb1000000+uint64(i)),
			units:       b.InitialUnits,
			lastSettled: -quietGap,
		},
		driftSlope:  slope,
		driftAmp:    cfg.DriftGramsPerHour * (0.25 + 0.25*rng.Float64()),
		driftOmega:  2 * math.Pi / (2400 + 2400*rng.Float64()), // 40–80 min thermal cycle
		driftPhase:  2 * math.Pi * rng.Float64(),
		noiseStream: splitmix(uint64(cfg.Seed)^0x6e6f697365) ^ uint64(i)*0x9E3779B97F4A7C15,
	}
}

// Config returns the validated configuration, with the generated
// catalogue filled in when none was given.
func (w *Warehouse) Config() Config {
	c := w.cfg
	c.SKUs = append([]SKU(nil), c.SKUs...)
	c.Plates.SKUs = append([]SKU(nil), c.Plates.SKUs...)
	c.Plates.Faults = append([]CellFault(nil), c.Plates.Faults...)
	return c
}

// Bins returns a copy of the bins, shelf-major.
func (w *Warehouse) Bins() []Bin { return append([]Bin(nil), w.bins...) }

// SampleTime is the virtual time of sample k: k / SampleRate.
func (w *Warehouse) SampleTime(k int64) time.Duration { return time.Duration(k) * w.period }

func (w *Warehouse) mustBin(bin int) *binState {
	if bin < 0 || bin >= len(w.state) {
		panic(fmt.Sprintf("warehouse: bin %d out of range [0,%d)", bin, len(w.state)))
	}
	return w.state[bin]
}

// CodeAt returns the raw HX711 code (channel A, gain 128, sign-extended
// 24-bit two's complement, clamped to [MinCode, MaxCode]) of sample k of
// bin. It panics if bin is out of range.
func (w *Warehouse) CodeAt(bin int, k int64) int32 {
	s := w.mustBin(bin)
	b := &w.bins[bin]
	t := w.SampleTime(k).Seconds()
	grams := w.GramsAt(bin, k) + s.drift(t) + w.cfg.NoiseGrams*gaussian(s.noiseStream, uint64(k))
	return clampCode(float64(b.OffsetCounts) + b.CountsPerGram*grams)
}

// GramsAt returns the true load on bin's cell at sample k (TareGrams plus
// units plus any hand force), without noise or drift. It panics if bin is
// out of range.
func (w *Warehouse) GramsAt(bin int, k int64) float64 {
	s := w.mustBin(bin)
	t := w.SampleTime(k)
	s.mu.Lock()
	w.ensure(bin, s, t)
	i := sort.Search(len(s.visits), func(i int) bool { return s.visits[i].Start > t }) - 1
	var v visit
	if i >= 0 {
		v = s.visits[i]
	}
	s.mu.Unlock()
	if i < 0 {
		b := &w.bins[bin]
		return b.TareGrams + float64(b.InitialUnits)*b.UnitGrams
	}
	return v.gramsAt(t)
}

// Labels returns the visits of bin that have settled by virtual time until,
// in order. It regenerates them from the bin's first checkpoint, so it
// costs time in proportion to until but leaves the sample cache alone.
func (w *Warehouse) Labels(bin int, until time.Duration) []Label {
	s := w.mustBin(bin)
	if w.cfg.PicksPerBinPerHour == 0 {
		return nil
	}
	s.mu.Lock()
	if len(s.ckpts) == 0 {
		w.ensure(bin, s, 0)
	}
	g := s.ckpts[0].gen
	s.mu.Unlock()
	var out []Label
	for {
		v := w.nextVisit(bin, &g)
		if v.Settled > until {
			return out
		}
		out = append(out, v.Label)
	}
}

// ensure makes s.visits cover t: every visit starting at or before t back
// to the last one starting at or before t is cached, and the last cached
// visit starts after t. s.mu must be held.
func (w *Warehouse) ensure(bin int, s *binState, t time.Duration) {
	if w.cfg.PicksPerBinPerHour == 0 {
		return
	}
	if len(s.visits) > 0 && t < s.visits[0].Start && s.visits[0].count > 0 {
		// t is older than the cache: restart from the last checkpoint
		// before it.
		i := sort.Search(len(s.ckpts), func(i int) bool { return s.ckpts[i].start > t }) - 1
		s.gen = s.ckpts[max(i, 0)].gen
		s.visits = s.visits[:0]
	}
	for len(s.visits) == 0 || s.visits[len(s.visits)-1].Start <= t {
		if s.gen.count%checkpointEvery == 0 && s.gen.count/checkpointEvery == int64(len(s.ckpts)) {
			g := s.gen
			v := w.nextVisit(bin, &g) // peek at the start of the checkpointed visit
			s.ckpts = append(s.ckpts, checkpoint{gen: s.gen, start: v.Start})
		}
		s.visits = append(s.visits, w.nextVisit(bin, &s.gen))
	}
	if n := len(s.visits); n > 2*keepVisits {
		s.visits = append(s.visits[:0], s.visits[n-keepVisits:]...)
	}
}

// nextVisit generates the visit after g's last one and advances g.
func (w *Warehouse) nextVisit(bin int, g *genState) visit {
	b := &w.bins[bin]
	r := rand.New(&g.pcg)
	g.arrival += r.ExpFloat64() * 3600 / w.cfg.PicksPerBinPerHour
	start := max(time.Duration(g.arrival*float64(time.Second)), g.lastSettled+quietGap)
	dur := time.Duration((1 + r.Float64()) * float64(time.Second)) // hand in the bin 1–2 s
	put := r.Float64() < w.cfg.PutProbability
	units := 1 + r.IntN(w.cfg.MaxUnitsPerPick)
	scan := r.Float64() < w.cfg.ScanProbability
	hand := max(80, 0.3*float64(units)*b.UnitGrams) * (0.5 + r.Float64())
	hand = min(hand, 3000)
	if r.Float64() < 0.2 {
		hand = -hand / 3 // lifting the bin's front edge
	}
	freq := 2 + 3*r.Float64()
	phase := 2 * math.Pi * r.Float64()

	if !put && g.units == 0 {
		put = true // nothing to pick: the picker restocks instead
	}
	if put && g.units == b.Capacity {
		put = false
	}
	kind := "pick"
	if put {
		kind = "put"
		units = min(units, b.Capacity-g.units)
	} else {
		units = min(units, g.units)
	}
	before := g.units
	if put {
		g.units += units
	} else {
		g.units -= units
	}
	v := visit{
		Label: Label{
			Bin:     bin,
			Kind:    kind,
			Units:   units,
			Start:   start,
			Settled: start + dur,
			SKU:     b.SKU,
		},
		count:  g.count,
		before: b.TareGrams + float64(before)*b.UnitGrams,
		after:  b.TareGrams + float64(g.units)*b.UnitGrams,
		hand:   hand,
		freq:   freq,
		phase:  phase,
	}
	if scan {
		v.Scan = b.SKU
	}
	g.lastSettled = v.Settled
	g.count++
	return v
}

// gramsAt draws the visit's curve: the units move in the middle half of
// the visit while the hand presses (or lifts) with an oscillating force
// that rises and fades as sin².
func (v *visit) gramsAt(t time.Duration) float64 {
	if t >= v.Settled {
		return v.after
	}
	tau := (t - v.Start).Seconds()
	u := tau / (v.Settled - v.Start).Seconds()
	x := min(1, max(0, (u-0.25)/0.5))
	moved := x * x * (3 - 2*x)
	env := math.Sin(math.Pi * u)
	force := v.hand * env * env * (1 + 0.6*math.Sin(2*math.Pi*v.freq*tau+v.phase))
	return max(0, v.before+(v.after-v.before)*moved+force)
}

func (s *binState) drift(t float64) float64 {
	return s.driftSlope*t + s.driftAmp*(math.Sin(s.driftOmega*t+s.driftPhase)-math.Sin(s.driftPhase))
}

func clampCode(counts float64) int32 {
	c := math.Round(counts)
	switch {
	case math.IsNaN(c):
		return 0
	case c <= float64(MinCode):
		return MinCode
	case c >= float64(MaxCode):
		return MaxCode
	}
	return int32(c)
}

// splitmix is the SplitMix64 finaliser: a stateless, well-mixed hash.
func splitmix(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
	x = (x ^ (x >> 27)) * 0x94D049BB133111EB
	return x ^ (x >> 31)
}

// gaussian returns a standard normal deviate that depends only on
// (stream, k) (Box–Muller on two hashed uniforms).
func gaussian(stream, k uint64) float64 {
	h1 := splitmix(stream ^ splitmix(k))
	h2 := splitmix(h1)
	u1 := (float64(h1>>11) + 0.5) / (1 << 53) // (0,1)
	u2 := float64(h2>>11) / (1 << 53)
	return math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
}
