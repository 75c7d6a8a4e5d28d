package evaluate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/hx711sim"
	"github.com/shelfgate/shelfgate/firmware-sim/warehouse"
	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/classify"
	"github.com/shelfgate/shelfgate/sensors/loadcell"
)

// DefaultBusPeriod is the wall-clock time per HX711 conversion that
// BusOptions.Speed 0 runs the simulators at: 20× real time at 10
// samples/s, 2.5× at 80. On a loaded machine the host then misses some
// conversions (BusStats.Missed); a longer period misses fewer.
const DefaultBusPeriod = 5 * time.Millisecond

// BusOptions configures RunBus.
type BusOptions struct {
	// Speed is simulated seconds per wall-clock second (hx711sim's
	// SpeedUp). 0 picks the speed at which each chip converts every
	// Period of wall-clock time.
	Speed float64
	// Period is the wall-clock time per conversion when Speed is 0;
	// default DefaultBusPeriod.
	Period time.Duration
	// Glitches arms hx711sim.FaultGlitch on every chip: after each read
	// its DOUT glitches low once before the next conversion is ready, so
	// about every other lockstep read clocks a chip that is not ready and
	// shifts out all ones (−1), which loadcell.Source must reject.
	Glitches bool
	// Timeout is loadcell.Options.Timeout (wall clock); default 1 s.
	Timeout time.Duration

	// Test hooks. wiring[c], when set, is the chip whose DOUT cell stream
	// c reads (a plate wired in the wrong order); passGlitches hands the
	// sources −2 for every −1 code, as if loadcell.Source had no glitch
	// rejection.
	wiring       *[4]int
	passGlitches bool
}

// DisturbingGap is the shortest run of missed conversions, in simulated
// time, that BusStats.Disturbed counts: most of a settle window.
const DisturbingGap = 300 * time.Millisecond

// BusStats is what the bus did in one RunBus.
type BusStats struct {
	Speed       float64 `json:"speed"`        // simulated s per wall s
	WallSeconds float64 `json:"wall_seconds"` // the run, wall clock
	// Conversions is the number of conversions the chips completed from
	// the first to the last one a cell's Source took; Codes of them
	// reached it. The rest were missed: the host fell behind the
	// accelerated clock.
	Conversions int64 `json:"conversions"`
	Codes       int64 `json:"codes"`
	// MaxGapMs is the longest run of conversions one cell missed, in
	// simulated ms: a stall of the host process, times the speed.
	MaxGapMs float64 `json:"max_gap_ms"`
	// Disturbed counts the scored labels that a gap of at least
	// DisturbingGap on one of their plate's cells overlaps (from 1 s
	// before the visit to 1 s after it settled): their events may be late
	// or missed for the host's sake, not the chain's.
	Disturbed int   `json:"disturbed_labels"`
	Spurious  int64 `json:"spurious"` // chip transactions clocked while not ready (−1)
	// LockstepReads counts loadcell.Group reads (each serves four chips).
	LockstepReads int64 `json:"lockstep_reads"`
	Readings      int64 `json:"readings"` // emitted by the sources
	Glitches      int64 `json:"glitches"` // −1 codes rejected by loadcell.Source
	Spikes        int64 `json:"spikes"`
	Timeouts      int64 `json:"timeouts"`
	FaultEvents   int64 `json:"fault_events"` // sensor_fault events (enter and recover)
	// Unstamped counts readings whose conversion could not be found by
	// code among the chip's last 8 (stamped with the chip's last
	// conversion instead).
	Unstamped int64 `json:"unstamped"`
}

// Missed is the number of conversions that reached no Source.
func (b BusStats) Missed() int64 { return b.Conversions - b.Codes }

// RunBus scores o's scenario through the bus-level path: each plate's
// four cells are an hx711sim.Group (one shared PD_SCK, four DOUTs) fed by
// the scenario, read in lockstep by loadcell.Group through periph gpio,
// one loadcell.Source per cell (fault monitor, glitch rejection, spike
// filter), whose readings feed one classifier chain per mode in modes
// (PlateDetector then MisPick, built as Run builds them), all from the
// same bus readings. o.Mode is ignored; modes empty means analytic.
//
// The simulators run in accelerated real time (b.Speed). A reading is
// stamped with the simulated time of the conversion it carries (found by
// its code), as a host that timestamps data-ready would, so that the
// speed-up does not multiply scheduling jitter into the timestamps;
// driver timings in wall clock (the sources' back-off) are divided by the
// speed. Conversions the host missed because it fell behind are counted
// in BusStats, not hidden: they reach the chain as missing samples.
func RunBus(ctx context.Context, o Options, modes []classify.Mode, b BusOptions) ([]*Report, *BusStats, error) {
	w, plates, err := newScenario(o)
	if err != nil {
		return nil, nil, err
	}
	if len(modes) == 0 {
		modes = []classify.Mode{classify.ModeAnalytic}
	}
	rate := o.Config.SampleRate
	speed := b.Speed
	if speed == 0 {
		p := b.Period
		if p <= 0 {
			p = DefaultBusPeriod
		}
		speed = max(1, float64(time.Second)/float64(p)/rate)
	}
	if !(speed >= 1) || math.IsInf(speed, 0) {
		return nil, nil, fmt.Errorf("evaluate: bus speed %v must be at least 1", speed)
	}
	timeout := b.Timeout
	if timeout <= 0 {
		timeout = time.Second
	}
	labels := scoredLabels(w, len(plates), o.Duration)
	em := &busEmitter{end: Epoch.Add(o.Duration), plate: map[gateway.StreamID]int{}, done: make(chan struct{})}
	em.cells = 4 * len(plates)
	em.ended = map[gateway.StreamID]bool{}
	for pi, p := range plates {
		for _, s := range p.Cells {
			em.plate[s] = pi
		}
		em.scanner = append(em.scanner, gateway.StreamID("scanner/"+p.ID))
	}
	// One chain per mode; the scans are drawn once, so every chain is
	// judged on the same pick-list lines.
	scans := makeScans(o, w, labels)
	em.scans = make([][]scan, len(plates))
	for _, s := range scans {
		em.scans[s.plate] = append(em.scans[s.plate], s)
	}
	em.next = make([]int, len(plates))
	for _, m := range modes {
		mo := o
		mo.Mode = m
		c := &busChain{mode: m}
		if c.det, err = detector(mo, w, plates, &c.stats, o.primary); err != nil {
			return nil, nil, err
		}
		if c.mp, err = misPick(plates); err != nil {
			return nil, nil, err
		}
		em.chains = append(em.chains, c)
	}

	bus, err := newPlateBus(w, plates, rate, speed, timeout, b)
	if err != nil {
		return nil, nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	errc := make(chan error, len(bus.sources))
	for _, s := range bus.sources {
		go func() { errc <- s.Run(rctx, em) }()
	}
	// The run ends when every cell's readings reached the end of the
	// slice, or when it takes three times as long as it should.
	wall := time.Duration(float64(o.Duration)/speed)*3 + 10*time.Second
	var runErr error
	select {
	case <-em.done:
	case <-ctx.Done():
		runErr = ctx.Err()
	case <-time.After(wall):
		runErr = fmt.Errorf("evaluate: bus run of %s: not done after %v of wall clock (simulated speed %g)", o.Name, wall, speed)
	}
	cancel()
	for range bus.sources {
		if err := <-errc; err != nil && runErr == nil {
			runErr = err
		}
	}
	if runErr != nil {
		return nil, nil, runErr
	}
	st := bus.stats(em, rate)
	st.Disturbed = bus.disturbed(w, labels)
	st.Speed, st.WallSeconds = speed, time.Since(start).Seconds()

	var reps []*Report
	for _, c := range em.chains {
		mo := o
		mo.Mode = c.mode
		reps = append(reps, finish(score(mo, plates, labels, c.evs, c.mis, scans), c.mode, &c.stats))
	}
	return reps, st, nil
}

// busChain is one mode's classifier chain and what it raised.
type busChain struct {
	mode     classify.Mode
	stats    classify.Stats
	det      *classify.PlateDetector
	mp       *classify.MisPick
	evs, mis []gateway.Event
}

// busEmitter is the gateway.Emitter of the bus's sources: it feeds every
// reading to every chain, one call at a time, after the scans of the
// reading's plate that came before it (in simulated time).
type busEmitter struct {
	end     time.Time
	plate   map[gateway.StreamID]int
	scanner []gateway.StreamID // per plate, as misPick names them

	mu      sync.Mutex
	chains  []*busChain
	scans   [][]scan // per plate, in time order
	next    []int
	ended   map[gateway.StreamID]bool
	cells   int // cells whose readings have not reached end yet
	done    chan struct{}
	faultEv int64
}

var _ gateway.Emitter = (*busEmitter)(nil)

func (e *busEmitter) Emit(_ context.Context, rs []gateway.Reading) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range rs {
		pi, ok := e.plate[r.Stream]
		if !ok {
			return fmt.Errorf("evaluate: bus: reading of unknown stream %s", r.Stream)
		}
		if !r.Time.Before(e.end) {
			if !e.ended[r.Stream] {
				e.ended[r.Stream] = true
				if e.cells--; e.cells == 0 {
					close(e.done)
				}
			}
			continue
		}
		vt := r.Time.Sub(Epoch)
		for ss := e.scans[pi]; e.next[pi] < len(ss) && ss[e.next[pi]].at <= vt; e.next[pi]++ {
			s := ss[e.next[pi]]
			for _, c := range e.chains {
				c.mp.ObserveEvent(gateway.Event{Kind: gateway.EventScan, Stream: e.scanner[pi], Detail: s.code, Time: Epoch.Add(s.at)})
			}
		}
		for _, c := range e.chains {
			for _, ev := range c.det.Observe(r) {
				c.evs = append(c.evs, ev)
				for _, mev := range c.mp.ObserveEvent(ev) {
					if mev.Kind == gateway.EventMisPick {
						c.mis = append(c.mis, mev)
					}
				}
			}
		}
	}
	return nil
}

// EmitEvents counts the sources' sensor_fault events: the plate links
// derive nothing from them (the detector sees the readings' Quality), and
// the direct path has none to compare with.
func (e *busEmitter) EmitEvents(_ context.Context, evs []gateway.Event) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faultEv += int64(len(evs))
	return nil
}

// plateBus is the hardware side of RunBus: per plate, an hx711sim group
// on one clock, a loadcell.Group reading it and a loadcell.Source per
// cell.
type plateBus struct {
	sims    []*hx711sim.Group
	groups  []*loadcell.Group
	sources []*loadcell.Source
	stamps  []*stampADC
}

// newPlateBus wires the plates of w as cmd/shelfgate's simulation does
// (simPlate: hx711sim.NewPlate with the scenario's rate and seed
// 1000+4·plate; kind plate: loadcell.NewGroup on its CLK and DOUTs, mode
// A128, the cells' calibration from the scenario, no spike filter).
func newPlateBus(w *warehouse.Warehouse, plates []classify.Plate, rate, speed float64, timeout time.Duration, b BusOptions) (*plateBus, error) {
	pb := &plateBus{}
	for pi, p := range w.Plates() {
		opts := hx711sim.GroupOpts{Opts: hx711sim.DefaultOpts}
		opts.Name = "hx711sim-" + p.ID
		opts.Rate, opts.SpeedUp, opts.Seed = int(rate), speed, uint64(1000+4*p.Index)
		sim, err := hx711sim.NewPlate(w, p.Index, &opts)
		if err != nil {
			return nil, fmt.Errorf("evaluate: simulated plate %s: %w", p.ID, err)
		}
		if b.Glitches {
			for c := range sim.Len() {
				sim.Chip(c).InjectFault(hx711sim.FaultGlitch)
			}
		}
		g, err := loadcell.NewGroup(sim.CLK(), sim.DOUTs(), loadcell.ModeA128)
		if err != nil {
			return nil, fmt.Errorf("evaluate: plate %s: %w", p.ID, err)
		}
		pb.sims, pb.groups = append(pb.sims, sim), append(pb.groups, g)
		for c := range 4 {
			chip := c
			if b.wiring != nil {
				chip = b.wiring[c]
			}
			st := &stampADC{adc: g.Channel(chip), chip: sim.Chip(chip), w: w, pass: b.passGlitches}
			src, err := loadcell.New(fmt.Sprintf("%s/c%d", p.ID, c), []loadcell.Channel{{
				Stream: plates[pi].Cells[c], ADC: st, Mode: loadcell.ModeA128, Bin: fmt.Sprintf("%s/c%d", p.ID, c),
				Offset: p.Cells[c].OffsetCounts, CountsPerGram: p.Cells[c].CountsPerGram,
			}}, loadcell.Options{Timeout: timeout, Now: st.now, Backoff: time.Duration(float64(100*time.Millisecond) / speed),
				// As the plate sensor kind: no spike filter on a plate's
				// cells (a reading one cell loses shifts it against the
				// others; see cmd/shelfgate/kind_plate.go).
				SpikeGrams: -1})
			if err != nil {
				return nil, fmt.Errorf("evaluate: plate %s cell %d: %w", p.ID, c, err)
			}
			pb.sources, pb.stamps = append(pb.sources, src), append(pb.stamps, st)
		}
	}
	return pb, nil
}

func (pb *plateBus) stats(e *busEmitter, rate float64) *BusStats {
	st := &BusStats{}
	for _, sim := range pb.sims {
		for c := range sim.Len() {
			st.Spurious += sim.Chip(c).Stats().Spurious
		}
	}
	for _, g := range pb.groups {
		st.LockstepReads += g.Reads()
	}
	for _, s := range pb.sources {
		ss := s.Stats()
		st.Readings += ss.Readings
		st.Glitches += ss.Glitches
		st.Spikes += ss.Spikes
		st.Timeouts += ss.Timeouts
	}
	for _, s := range pb.stamps {
		st.Unstamped += s.unstamped
		if s.codes > 0 {
			st.Conversions += s.last - s.first + 1
			st.Codes += s.codes
		}
		st.MaxGapMs = max(st.MaxGapMs, float64(s.maxGap)*1000/rate)
	}
	e.mu.Lock()
	st.FaultEvents = e.faultEv
	e.mu.Unlock()
	return st
}

// disturbed counts the labels a gap overlaps (see BusStats.Disturbed).
// The stamps are in plate order, four per plate.
func (pb *plateBus) disturbed(w *warehouse.Warehouse, labels [][]warehouse.PlateLabel) int {
	n := 0
	for pi, ls := range labels {
		for _, l := range ls {
			from, to := l.Start-time.Second, l.Settled+time.Second
		cells:
			for _, s := range pb.stamps[4*pi : 4*pi+4] {
				for _, g := range s.gaps {
					if w.SampleTime(g[0]) <= to && w.SampleTime(g[1]) >= from {
						n++
						break cells
					}
				}
			}
		}
	}
	return n
}

// stampADC is one cell's channel of a loadcell.Group. It remembers which
// conversion the code it returned came from, and its Source stamps the
// reading with that conversion's simulated time (now, called by the
// Source's sampling goroutine right after ReadTimeout, on the same
// goroutine).
type stampADC struct {
	adc  loadcell.ADC
	chip *hx711sim.Sim
	w    *warehouse.Warehouse
	pass bool

	t time.Time
	// Read by stats after the source stopped.
	first, last      int64 // conversions of the first and last code
	codes, unstamped int64
	maxGap           int64      // conversions
	gaps             [][2]int64 // runs of at least DisturbingGap missed: first and last conversion
}

var errNoCode = errors.New("no conversion with that code")

func (a *stampADC) ReadTimeout(timeout time.Duration) (int32, error) {
	code, err := a.adc.ReadTimeout(timeout)
	if err != nil || code == -1 {
		if a.pass && err == nil {
			code = -2
		}
		return code, err
	}
	k, err := a.index(code)
	if err != nil {
		a.unstamped++
	}
	if a.codes == 0 {
		a.first = k
	} else {
		a.maxGap = max(a.maxGap, k-a.last-1)
		if a.w.SampleTime(k)-a.w.SampleTime(a.last+1) >= DisturbingGap {
			a.gaps = append(a.gaps, [2]int64{a.last + 1, k - 1})
		}
	}
	a.codes++
	a.last = k
	a.t = Epoch.Add(a.w.SampleTime(k))
	return code, nil
}

// index finds the conversion that code came from: the chip's last one
// shifted out, or (when another cell's read came in between) one of the
// few before it.
func (a *stampADC) index(code int32) (int64, error) {
	last := a.chip.Stats().LastIndex
	for k := last; k >= 0 && k > last-8; k-- {
		if a.chip.Code(k, hx711sim.ChannelAGain128) == code {
			return k, nil
		}
	}
	return max(last, 0), errNoCode
}

func (a *stampADC) now() time.Time { return a.t }
