package loadcell

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"periph.io/x/devices/v3/hx711"

	"github.com/shelfgate/shelfgate/gateway"
)

// ADC is one HX711 channel: periph's *hx711.Dev satisfies it.
type ADC interface {
	ReadTimeout(timeout time.Duration) (int32, error)
}

// InputModeSetter is implemented by ADCs whose input channel and gain can
// be selected, as periph's *hx711.Dev does. The mode applies from the next
// conversion on; the chip then settles for about four conversions.
type InputModeSetter interface {
	SetInputMode(mode hx711.InputMode) error
}

// 24-bit two's-complement limits of the HX711 output.
const (
	MaxCode int32 = 0x7FFFFF
	MinCode int32 = -0x800000
)

// Mode is the input channel and gain of an HX711. The zero value is the
// chip's power-up mode, channel A at gain 128.
type Mode uint8

// Input modes.
const (
	ModeA128 Mode = iota // channel A, gain 128 (±20 mV full scale at 5 V)
	ModeA64              // channel A, gain 64 (±40 mV)
	ModeB32              // channel B, gain 32 (±80 mV)
)

// String returns "A128", "A64" or "B32", the suffix used for per-mode
// calibration entries (see Calibrated).
func (m Mode) String() string {
	switch m {
	case ModeA128:
		return "A128"
	case ModeA64:
		return "A64"
	case ModeB32:
		return "B32"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

func (m Mode) inputMode() hx711.InputMode {
	switch m {
	case ModeA64:
		return hx711.CHANNEL_A_GAIN_64
	case ModeB32:
		return hx711.CHANNEL_B_GAIN_32
	}
	return hx711.CHANNEL_A_GAIN_128
}

// Channel is one load cell.
type Channel struct {
	Stream        gateway.StreamID // e.g. loadcell/shelf-01/bin-03
	ADC           ADC
	Offset        int32   // raw code of the empty cell (tare), in Mode
	CountsPerGram float64 // scale in Mode; must not be 0
	// Mode selects the input channel and gain; the calibration above must
	// have been measured in the same mode. A mode other than ModeA128
	// needs an ADC that implements InputModeSetter.
	Mode Mode
	// Bin is the bin id under which Calibrated looks the channel up; empty
	// means Stream without its "loadcell/" prefix.
	Bin string
}

// Options tune a Source. Zero values take defaults.
type Options struct {
	// Timeout is how long to wait for a conversion before counting a
	// timeout; default 1s (an HX711 at 10 samples/s converts every 100 ms).
	Timeout time.Duration
	// Now stamps readings and events; default time.Now.
	Now func() time.Time
	// Buffer is how many readings may wait for the emitter; default 4096.
	// A full buffer blocks sampling rather than dropping readings. Memory
	// is taken only for the readings waiting, not for the whole buffer.
	Buffer int
	// Backoff is the pause after an ADC error, and between reads while a
	// channel is stuck (a floating DOUT reads 0 without ever waiting);
	// default 100ms.
	Backoff time.Duration

	// SpikeGrams is the smallest departure from the median of the last
	// SpikeWindow readings that makes a reading a spike candidate; the
	// threshold used is the larger of SpikeGrams and 8 robust standard
	// deviations (1.4826 × MAD) of that window. Default 250 g; negative
	// disables the spike filter.
	SpikeGrams float64
	// SpikeWindow is the number of recent readings whose median the spike
	// filter compares against, 3..MaxSpikeWindow; default 5.
	SpikeWindow int

	// FaultAfter is how many consecutive timeouts, ADC errors or saturated
	// codes enter the timeout, pin_error or saturated fault; default 3.
	FaultAfter int
	// StuckAfter is how many consecutive identical codes enter the stuck
	// fault; default 12.
	StuckAfter int
	// RecoverAfter is how many consecutive good reads clear a fault;
	// default 3.
	RecoverAfter int

	// AutoZeroRate is the fastest auto-zero tracking may move the zero, in
	// grams per minute; 0 (the default) disables auto-zero tracking.
	AutoZeroRate float64
	// AutoZeroBand is the stability band in grams: tracking runs only while
	// the last SpikeWindow readings lie within it and their median within it
	// of the level at which the channel settled; default 2 g.
	AutoZeroBand float64
	// AutoZeroLimit bounds the total correction in grams; default 50 g.
	AutoZeroLimit float64

	// PowerDownHold is how long Reboot holds PD_SCK high to power the
	// chips down; default DefaultPowerDownHold.
	PowerDownHold time.Duration
}

func (o *Options) defaults() {
	if o.Timeout <= 0 {
		o.Timeout = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Buffer <= 0 {
		o.Buffer = 4096
	}
	if o.Backoff <= 0 {
		o.Backoff = 100 * time.Millisecond
	}
	if o.SpikeGrams == 0 {
		o.SpikeGrams = 250
	}
	if o.SpikeWindow <= 0 {
		o.SpikeWindow = 5
	}
	o.SpikeWindow = min(max(o.SpikeWindow, 3), MaxSpikeWindow)
	if o.FaultAfter <= 0 {
		o.FaultAfter = 3
	}
	if o.StuckAfter <= 0 {
		o.StuckAfter = 12
	}
	o.StuckAfter = max(o.StuckAfter, 2)
	if o.RecoverAfter <= 0 {
		o.RecoverAfter = 3
	}
	if o.AutoZeroBand <= 0 {
		o.AutoZeroBand = 2
	}
	if o.AutoZeroLimit <= 0 {
		o.AutoZeroLimit = 50
	}
	if o.PowerDownHold <= 0 {
		o.PowerDownHold = DefaultPowerDownHold
	}
}

// Stats count what each Source has seen.
type Stats struct {
	Readings   int64
	Timeouts   int64 // no conversion within Timeout
	Errors     int64 // other ADC errors
	Glitches   int64 // spurious all-ones (-1) codes rejected
	Saturated  int64 // codes at the end of the 24-bit range (flagged when emitted)
	Spikes     int64 // single-sample outliers rejected by the spike filter
	Stale      int64 // readings flagged stale (stuck ADC)
	Faults     int64 // fault episodes entered
	Recoveries int64 // fault episodes left
	// PowerCycles counts channels whose chip Reboot reset (a Group's four
	// channels count four, for one reset of the shared clock).
	PowerCycles int64
}

// Source reads a set of load cells.
type Source struct {
	name  string
	cells []*cell
	opts  Options

	readings, timeouts, errs, glitches, saturated atomic.Int64
	spikes, stale, faults, recoveries             atomic.Int64
	powerCycles                                   atomic.Int64

	rb rebootState // reboot.go
}

var _ gateway.Source = (*Source)(nil)

// cell is the state of one channel. Everything but mu and h belongs to the
// channel's sampling goroutine.
type cell struct {
	ch     Channel
	setter InputModeSetter // nil in ModeA128
	mon    monitor
	flt    spikeFilter
	az     autoZero
	rq     rebootQueue // reboot.go

	mu   sync.Mutex
	h    ChannelHealth
	live live // run-time calibration and recent codes (live.go)
}

// New returns a Source named name over chans.
func New(name string, chans []Channel, opts Options) (*Source, error) {
	if len(chans) == 0 {
		return nil, errors.New("loadcell: no channels")
	}
	opts.defaults()
	s := &Source{name: name, opts: opts}
	for i, c := range chans {
		if c.ADC == nil {
			return nil, fmt.Errorf("loadcell: channel %d (%s): no ADC", i, c.Stream)
		}
		if c.CountsPerGram == 0 || math.IsNaN(c.CountsPerGram) || math.IsInf(c.CountsPerGram, 0) {
			return nil, fmt.Errorf("loadcell: channel %d (%s): counts_per_gram is %v", i, c.Stream, c.CountsPerGram)
		}
		if c.Stream == "" {
			return nil, fmt.Errorf("loadcell: channel %d: empty stream id", i)
		}
		if c.Mode > ModeB32 {
			return nil, fmt.Errorf("loadcell: channel %d (%s): %w: %v", i, c.Stream, ErrBadMode, c.Mode)
		}
		cl := &cell{ch: c}
		if gm, ok := c.ADC.(groupModer); ok {
			// A Group selects the mode of all its chips on the shared
			// clock; the channel must only name the same one.
			if m := gm.groupMode(); m != c.Mode {
				return nil, fmt.Errorf("loadcell: channel %d (%s): %w: %v, but its group reads %v", i, c.Stream, ErrBadMode, c.Mode, m)
			}
		} else if c.Mode != ModeA128 {
			setter, ok := c.ADC.(InputModeSetter)
			if !ok {
				return nil, fmt.Errorf("loadcell: channel %d (%s): %w: ADC %T cannot select mode %v", i, c.Stream, ErrBadMode, c.ADC, c.Mode)
			}
			cl.setter = setter
		}
		cl.mon = monitor{faultAfter: opts.FaultAfter, recoverAfter: opts.RecoverAfter, stuckAfter: opts.StuckAfter}
		cl.flt = spikeFilter{k: opts.SpikeWindow, off: opts.SpikeGrams < 0, floor: opts.SpikeGrams * math.Abs(c.CountsPerGram), madMul: 8}
		cl.az = autoZero{rate: opts.AutoZeroRate, band: opts.AutoZeroBand, limit: opts.AutoZeroLimit}
		cl.h = ChannelHealth{Stream: c.Stream, Mode: c.Mode}
		cl.live.applied.Store(&calib{offset: c.Offset, cpg: c.CountsPerGram})
		s.cells = append(s.cells, cl)
	}
	return s, nil
}

// Sentinel errors.
var (
	// ErrBadMode is returned by New for an unknown Mode, or a Mode the ADC
	// cannot select.
	ErrBadMode = errors.New("loadcell: unsupported input mode")
	// ErrNoCalibration is returned by Calibrated for a bin missing from the
	// calibration file.
	ErrNoCalibration = errors.New("loadcell: no calibration")
	// ErrBadCount is returned by Collect for n < 1.
	ErrBadCount = errors.New("loadcell: sample count must be at least 1")
)

// Name implements gateway.Source.
func (s *Source) Name() string { return s.name }

// Stats returns the counters so far.
func (s *Source) Stats() Stats {
	return Stats{
		Readings: s.readings.Load(), Timeouts: s.timeouts.Load(), Errors: s.errs.Load(),
		Glitches: s.glitches.Load(), Saturated: s.saturated.Load(), Spikes: s.spikes.Load(),
		Stale: s.stale.Load(), Faults: s.faults.Load(), Recoveries: s.recoveries.Load(),
		PowerCycles: s.powerCycles.Load(),
	}
}

// Health returns a snapshot of every channel, in the order given to New.
// It is safe to call while Run runs.
func (s *Source) Health() []ChannelHealth {
	hs := make([]ChannelHealth, len(s.cells))
	for i, c := range s.cells {
		c.mu.Lock()
		hs[i] = c.h
		c.mu.Unlock()
	}
	return hs
}

// Run samples every channel until ctx is done or emitting fails, and then
// returns the emit error (nil after ctx ended). Readings already taken when
// ctx ends are still emitted (with a fresh context) so nothing sampled is
// dropped on a clean shutdown; a sample the spike filter still holds is
// dropped. Fault and recovery events go to emit too, after the readings
// sampled before them (see the package documentation).
func (s *Source) Run(ctx context.Context, emit gateway.Emitter) error {
	// Samplers stop when ctx ends or when emitting fails.
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	s.setRunning(true)
	defer s.setRunning(false)
	q := newReadingQueue(s.opts.Buffer)
	evc := make(chan gateway.Event, 64)
	var wg sync.WaitGroup
	for _, c := range s.cells {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.sample(sctx, c, q, evc)
		}()
	}
	go func() {
		wg.Wait()
		q.close()
		close(evc)
	}()

	var batch []gateway.Reading
	evs := make([]gateway.Event, 0, 16)
	var emitErr error
	ectx := func() context.Context {
		if ctx.Err() != nil {
			return context.Background()
		}
		return ctx
	}
	// drainReadings appends what is queued to batch and reports whether
	// more may come.
	drainReadings := func() bool {
		var open bool
		batch, open = q.take(batch)
		return open
	}
	// flush emits batch, at most emitChunk readings per call, and lets a
	// batch a stall made large go.
	flush := func() {
		for i := 0; i < len(batch) && emitErr == nil; i += emitChunk {
			if err := emit.Emit(ectx(), batch[i:min(i+emitChunk, len(batch))]); err != nil {
				emitErr = err
				stop()
			}
		}
		clear(batch)
		batch = batch[:0]
		if cap(batch) > emitChunk {
			batch = nil
		}
	}
	inOut, inEv := q.ready, evc
	for inOut != nil || inEv != nil {
		select {
		case <-inOut:
			if !drainReadings() {
				inOut = nil
			}
			flush()
		case ev, ok := <-inEv:
			if !ok {
				inEv = nil
				continue
			}
			// Readings sampled before the event are already queued: emit
			// them first so the event follows them.
			if inOut != nil && !drainReadings() {
				inOut = nil
			}
			flush()
			evs = append(evs[:0], ev)
		more:
			for len(evs) < cap(evs) {
				select {
				case ev, ok := <-inEv:
					if !ok {
						inEv = nil
						break more
					}
					evs = append(evs, ev)
				default:
					break more
				}
			}
			if emitErr == nil {
				if err := emit.EmitEvents(ectx(), evs); err != nil {
					emitErr = err
					stop()
				}
			}
		}
	}
	if emitErr != nil && ctx.Err() == nil {
		return fmt.Errorf("loadcell: %w", emitErr)
	}
	return nil
}

// spinRead is how fast a read must return to count as not having waited
// for a conversion (an HX711 converts every 12.5 ms at 80 samples/s).
const spinRead = time.Millisecond

// sample runs the read loop of one channel.
func (s *Source) sample(ctx context.Context, c *cell, out *readingQueue, evc chan<- gateway.Event) {
	modeSet := c.setter == nil
	for ctx.Err() == nil {
		if s.rebootIfAsked(c) && c.setter != nil {
			// The chip came back in A128: select the mode again.
			modeSet = false
		}
		if !modeSet {
			if err := c.setter.SetInputMode(c.ch.Mode.inputMode()); err != nil {
				s.readFailed(ctx, c, err, evc)
				continue
			}
			modeSet = true
		}
		began := time.Now()
		code, err := c.ch.ADC.ReadTimeout(s.opts.Timeout)
		if err != nil {
			s.readFailed(ctx, c, err, evc)
			continue
		}
		if code == -1 {
			// periph's driver clocks out all ones when data was not ready
			// yet; a real cell essentially never sits at exactly -1.
			s.glitches.Add(1)
			c.mu.Lock()
			c.h.Glitches++
			c.mu.Unlock()
			continue
		}
		if s.process(c, code, s.opts.Now(), out, evc) && time.Since(began) < spinRead {
			// A floating DOUT reads 0 at once, forever: do not spin. A
			// stuck chip whose reads still wait for a conversion (a frozen
			// ADC, or a cell of a Group, paced by its peers) is read at its
			// own rate: pausing it would hold up the Group's healthy cells.
			pause(ctx, s.opts.Backoff)
		}
	}
}

// process takes one code read from c at now through fault monitoring, the
// spike filter and auto-zero, and queues the readings it releases. It
// reports whether c is in the stuck fault. It does not allocate.
func (s *Source) process(c *cell, code int32, now time.Time, out *readingQueue, evc chan<- gateway.Event) (stuck bool) {
	var rel [2]sample
	s.applyPending(c)
	enter, leave, stale, sat := c.mon.code(code)
	s.transition(c, enter, leave, now, evc)
	if sat {
		s.saturated.Add(1)
	}
	var n, spikes int
	if stale {
		// A frozen code says nothing new: flag it, keep it out of the
		// filter and auto-zero.
		rel[0] = sample{code: code, t: now}
		n = 1
	} else {
		n, spikes = c.flt.push(sample{code: code, t: now}, &rel)
	}
	if spikes > 0 {
		s.spikes.Add(int64(spikes))
	}
	for _, smp := range rel[:n] {
		if !stale {
			c.az.track(&c.flt, c.ch.Offset, c.ch.CountsPerGram, smp.t)
		}
		r := gateway.Reading{
			Stream: c.ch.Stream,
			Time:   smp.t,
			Value:  c.az.grams(smp.code, c.ch.Offset, c.ch.CountsPerGram),
			Unit:   "g",
		}
		if smp.code >= MaxCode || smp.code <= MinCode {
			r.Quality |= gateway.QualitySaturated
		}
		if stale {
			r.Quality |= gateway.QualityStale
		}
		out.push(r)
	}
	s.readings.Add(int64(n))
	if stale {
		s.stale.Add(int64(n))
	}
	c.mu.Lock()
	c.live.recent[c.live.nrecent%RecentCodes] = code
	c.live.nrecent++
	c.h.LastCode = code
	c.h.Readings += int64(n)
	c.h.Spikes += int64(spikes)
	if sat {
		c.h.Saturated++
	}
	if stale {
		c.h.Stale++
	}
	if n > 0 {
		c.h.LastReading = rel[n-1].t
	}
	c.h.ZeroGrams = c.az.drift
	c.h.Faults = c.mon.active
	c.mu.Unlock()
	return c.mon.active&FaultStuck != 0
}

// readFailed accounts a failed read (or mode selection) of c.
func (s *Source) readFailed(ctx context.Context, c *cell, err error, evc chan<- gateway.Event) {
	var enter, leave Fault
	timeout := isTimeout(err)
	if timeout {
		s.timeouts.Add(1)
		enter, leave = c.mon.timeout()
	} else {
		s.errs.Add(1)
		enter, leave = c.mon.readError()
	}
	c.mu.Lock()
	if timeout {
		c.h.Timeouts++
	} else {
		c.h.Errors++
	}
	c.mu.Unlock()
	s.transition(c, enter, leave, s.opts.Now(), evc)
	if !timeout {
		// Back off a little so a broken pin does not spin the CPU.
		pause(ctx, s.opts.Backoff)
	}
}

// transition applies fault changes to c and reports them: recoveries first,
// then new faults, one event each.
func (s *Source) transition(c *cell, enter, leave Fault, now time.Time, evc chan<- gateway.Event) {
	if enter|leave == 0 {
		return
	}
	c.mon.apply(enter, leave, now)
	s.faults.Add(int64(bits.OnesCount8(uint8(enter))))
	s.recoveries.Add(int64(bits.OnesCount8(uint8(leave))))
	c.mu.Lock()
	c.h.Faults = c.mon.active
	c.h.Since = c.mon.since()
	c.h.Episodes = c.mon.episodes
	c.mu.Unlock()
	if evc == nil {
		return
	}
	for i, name := range recoveredNames {
		if leave&(1<<i) != 0 {
			evc <- gateway.Event{Kind: gateway.EventSensorFault, Stream: c.ch.Stream, Detail: name, Time: now}
		}
	}
	for i, name := range faultNames {
		if enter&(1<<i) != 0 {
			evc <- gateway.Event{Kind: gateway.EventSensorFault, Stream: c.ch.Stream, Detail: name, Time: now}
		}
	}
}

func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func isTimeout(err error) bool {
	if errors.Is(err, hx711.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout() || strings.Contains(err.Error(), "timed out")
}
