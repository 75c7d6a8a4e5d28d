package hx711sim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
)

// Signal provides the input of the simulated ADC.
//
// CodeAt returns the channel A, gain 128 code of sample k, before clamping to
// 24 bits. It must be safe for concurrent use and should be deterministic.
type Signal interface {
	CodeAt(k int64) int32
}

// SignalFunc adapts a function to Signal. To feed one bin of a multi-bin
// engine: hx711sim.SignalFunc(func(k int64) int32 { return eng.CodeAt(bin, k) }).
type SignalFunc func(k int64) int32

// CodeAt implements Signal.
func (f SignalFunc) CodeAt(k int64) int32 { return f(k) }

// BinSource is a multi-channel signal source such as the warehouse scenario
// engine: CodeAt(bin, k) is the gain-128 code of load cell bin at sample k.
type BinSource interface {
	CodeAt(bin int, k int64) int32
}

// Bin returns the Signal of one load cell of src.
func Bin(src BinSource, bin int) Signal {
	return SignalFunc(func(k int64) int32 { return src.CodeAt(bin, k) })
}

// Mode is the channel and gain of a conversion, encoded as the number of
// extra clock pulses after the 24 data bits that selects it.
type Mode int

// Modes of the HX711.
const (
	ChannelAGain128 Mode = 1 // 25 pulses
	ChannelBGain32  Mode = 2 // 26 pulses
	ChannelAGain64  Mode = 3 // 27 pulses
)

// String implements fmt.Stringer.
func (m Mode) String() string {
	switch m {
	case ChannelAGain128:
		return "A/128"
	case ChannelBGain32:
		return "B/32"
	case ChannelAGain64:
		return "A/64"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Fault is a failure mode of the simulated chip or its wiring.
type Fault int

// Fault modes.
const (
	// FaultNone is normal operation.
	FaultNone Fault = iota
	// FaultNotReady holds DOUT high: the chip never signals data-ready (no
	// supply, or DOUT shorted high). WaitForEdge times out, Read yields -1.
	FaultNotReady
	// FaultDisconnected leaves DOUT floating: it reads the pull configured by
	// DOUT().In. With the pull-down the periph driver selects, the pin always
	// looks ready and every read yields 0. No edge is ever reported.
	FaultDisconnected
	// FaultPinError makes every CLK.Out and DOUT.In call fail with
	// ErrPinError, as when the GPIO line was taken by another process.
	FaultPinError
	// FaultStuck freezes the output code at the last code delivered (or the
	// current one if nothing was read yet); conversions keep their timing.
	FaultStuck
	// FaultNoise adds uniform noise in [-Opts.NoiseAmplitude,
	// +Opts.NoiseAmplitude] to every conversion (a noise burst).
	FaultNoise
	// FaultSlow stretches each conversion to Opts.SlowFactor sample periods.
	FaultSlow
	// FaultGlitch makes DOUT glitch low once per conversion before the data
	// is ready. A host that trusts the glitch clocks out 0xFFFFFF, i.e. -1.
	FaultGlitch
)

// String implements fmt.Stringer.
func (f Fault) String() string {
	switch f {
	case FaultNone:
		return "none"
	case FaultNotReady:
		return "not-ready"
	case FaultDisconnected:
		return "disconnected"
	case FaultPinError:
		return "pin-error"
	case FaultStuck:
		return "stuck"
	case FaultNoise:
		return "noise"
	case FaultSlow:
		return "slow"
	case FaultGlitch:
		return "glitch"
	}
	return fmt.Sprintf("Fault(%d)", int(f))
}

// ErrPinError is returned by pin operations while FaultPinError is injected.
var ErrPinError = errors.New("hx711sim: pin I/O error (injected fault)")

// DatasheetPowerDown is the PD_SCK high time after which the HX711 enters
// power-down mode, per datasheet.
const DatasheetPowerDown = 60 * time.Microsecond

// Code limits of the 24-bit output.
const (
	MaxCode = 0x7FFFFF
	MinCode = -0x800000
)

// Opts configures a Sim.
type Opts struct {
	// Name prefixes the pin names; "hx711sim" if empty.
	Name string
	// Rate is the output data rate in samples per second: 10 or 80 (the
	// RATE pin of the chip).
	Rate int
	// SpeedUp accelerates the simulated time: 100 makes a 10 samples/s chip
	// convert every millisecond. Must be >= 1; 0 means 1.
	SpeedUp float64
	// ChannelB, when set, feeds channel B with gain-32 codes. When nil,
	// channel B reads the channel A bridge at gain 32 (code >> 2).
	ChannelB Signal
	// Settle is the number of conversion periods after power-up or a gain
	// change before data is ready again. The datasheet gives 4.
	Settle int
	// PowerDownAfter is the PD_SCK high time that powers the chip down. See
	// the package documentation.
	PowerDownAfter time.Duration
	// NoiseAmplitude bounds the noise added by FaultNoise, in codes.
	NoiseAmplitude int32
	// SlowFactor is the number of sample periods per conversion under
	// FaultSlow.
	SlowFactor int
	// Seed seeds the noise generator.
	Seed uint64
}

// DefaultOpts is a 10 samples/s chip in real time.
var DefaultOpts = Opts{
	Name:           "hx711sim",
	Rate:           10,
	SpeedUp:        1,
	Settle:         4,
	PowerDownAfter: 100 * time.Millisecond,
	NoiseAmplitude: 50000,
	SlowFactor:     10,
	Seed:           1,
}

// Sim is a simulated HX711. It is safe for concurrent use.
type Sim struct {
	clk  *clkPin
	dout *doutPin

	// Immutable.
	name       string
	signal     Signal
	chanB      Signal
	period     time.Duration // real time per sample
	settle     int
	powerDown  time.Duration
	noiseAmp   int32
	slowFactor int
	start      time.Time

	mu   sync.Mutex
	rng  *rand.Rand
	wake chan struct{} // closed and replaced on every state change

	fault     Fault
	stuckCode int32
	glitch    bool // FaultGlitch: one glitch armed for the pending conversion

	pull gpio.Pull
	edge gpio.Edge

	clkHigh      bool
	clkHighSince time.Time
	clkLowSince  time.Time
	poweredDown  bool

	mode    Mode
	readyAt time.Time // DOUT goes low at or after readyAt

	inTx    bool  // a transaction (24 data + 1..3 gain pulses) is in progress
	txValid bool  // the transaction shifts a real conversion
	txCode  int32 // latched code
	txIndex int64
	pulses  int

	lastCode   int32
	lastIndex  int64
	firstIndex int64
	reads      int64
	spurious   int64
	aborted    int64
	powerDowns int64
	resets     int64
	resetAt    time.Time
}

// New returns a simulated HX711 fed by sig. opts may be nil for DefaultOpts.
func New(sig Signal, opts *Opts) (*Sim, error) {
	return newSim(sig, opts, time.Now())
}

// newSim builds a chip whose conversion k completes at start + k periods.
func newSim(sig Signal, opts *Opts, start time.Time) (*Sim, error) {
	if sig == nil {
		return nil, errors.New("hx711sim: nil Signal")
	}
	o := DefaultOpts
	if opts != nil {
		o = *opts
	}
	if o.Name == "" {
		o.Name = DefaultOpts.Name
	}
	if o.Rate != 10 && o.Rate != 80 {
		return nil, fmt.Errorf("hx711sim: rate must be 10 or 80 samples/s, got %d", o.Rate)
	}
	if o.SpeedUp == 0 {
		o.SpeedUp = 1
	}
	if o.SpeedUp < 1 {
		return nil, fmt.Errorf("hx711sim: speed-up must be >= 1, got %g", o.SpeedUp)
	}
	if o.Settle < 0 {
		return nil, fmt.Errorf("hx711sim: negative settle %d", o.Settle)
	}
	if o.PowerDownAfter <= 0 {
		return nil, fmt.Errorf("hx711sim: power-down threshold must be > 0, got %s", o.PowerDownAfter)
	}
	if o.SlowFactor < 1 {
		o.SlowFactor = 1
	}
	period := time.Duration(float64(time.Second) / float64(o.Rate) / o.SpeedUp)
	if period <= 0 {
		return nil, fmt.Errorf("hx711sim: speed-up %g too large", o.SpeedUp)
	}
	s := &Sim{
		name:       o.Name,
		signal:     sig,
		chanB:      o.ChannelB,
		period:     period,
		settle:     o.Settle,
		powerDown:  o.PowerDownAfter,
		noiseAmp:   o.NoiseAmplitude,
		slowFactor: o.SlowFactor,
		start:      start,
		rng:        rand.New(rand.NewPCG(o.Seed, 0x68783731)),
		wake:       make(chan struct{}),
		pull:       gpio.PullNoChange,
		edge:       gpio.NoEdge,
		mode:       ChannelAGain128,
		lastIndex:  -1,
		firstIndex: -1,
	}
	s.readyAt = s.gridTime(int64(max(s.settle, 1)))
	s.clk = &clkPin{s: s}
	s.dout = &doutPin{s: s}
	return s, nil
}

// CLK returns the PD_SCK pin, driven by the host.
func (s *Sim) CLK() gpio.PinOut { return s.clk }

// DOUT returns the data pin, read by the host.
func (s *Sim) DOUT() gpio.PinIn { return s.dout }

// SamplePeriod returns the real time between two conversions.
func (s *Sim) SamplePeriod() time.Duration { return s.period }

// InjectFault switches the chip into fault mode f, replacing any previous
// fault.
func (s *Sim) InjectFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	s.settleLocked(now)
	if f == FaultStuck {
		if s.lastIndex >= 0 {
			s.stuckCode = s.lastCode
		} else {
			s.stuckCode = s.codeLocked(s.indexAt(now), s.mode)
		}
	}
	s.fault = f
	s.glitch = f == FaultGlitch
	s.notifyLocked()
}

// StickAt injects FaultStuck with the output frozen at code (clamped to 24
// bits), e.g. MaxCode for a load cell with a broken excitation or signal
// wire, which drives the ADC into saturation.
func (s *Sim) StickAt(code int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = FaultStuck
	s.stuckCode = clamp24(int64(code))
	s.glitch = false
	s.notifyLocked()
}

// ClearFault returns the chip to normal operation.
func (s *Sim) ClearFault() { s.InjectFault(FaultNone) }

// Fault returns the injected fault.
func (s *Sim) Fault() Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fault
}

// Mode returns the channel and gain of the next conversion.
func (s *Sim) Mode() Mode {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settleLocked(time.Now())
	return s.mode
}

// PoweredDown reports whether PD_SCK has been high long enough to power the
// chip down.
func (s *Sim) PoweredDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settleLocked(time.Now())
	return s.poweredDown
}

// Stats is a snapshot of the activity of a Sim.
type Stats struct {
	Reads     int64 // conversions shifted out
	Spurious  int64 // transactions clocked while no conversion was ready
	Aborted   int64 // transactions abandoned with fewer than 25 pulses
	LastIndex int64 // sample index of the last conversion shifted out, -1 if none
	LastCode  int32 // code of that conversion
	// FirstIndex is the sample index of the first conversion shifted out,
	// -1 if none: LastIndex − FirstIndex + 1 − Reads conversions were
	// completed between them and never read (a host that fell behind).
	FirstIndex int64
	// PowerDowns counts entries into power-down (PD_SCK held high longer
	// than Opts.PowerDownAfter); Resets counts the power-ups that followed
	// (PD_SCK low again: channel A gain 128, settling), the last at
	// LastReset.
	PowerDowns int64
	Resets     int64
	LastReset  time.Time
}

// Stats returns counters useful in tests.
func (s *Sim) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settleLocked(time.Now())
	return Stats{Reads: s.reads, Spurious: s.spurious, Aborted: s.aborted, LastIndex: s.lastIndex, LastCode: s.lastCode, FirstIndex: s.firstIndex,
		PowerDowns: s.powerDowns, Resets: s.resets, LastReset: s.resetAt}
}

// Code returns the code the chip outputs for sample k in mode m, without
// faults. Tests use it to compute expected values.
func (s *Sim) Code(k int64, m Mode) int32 {
	a := int64(s.signal.CodeAt(k))
	switch m {
	case ChannelAGain64:
		return clamp24(a >> 1)
	case ChannelBGain32:
		if s.chanB != nil {
			return clamp24(int64(s.chanB.CodeAt(k)))
		}
		return clamp24(a >> 2)
	}
	return clamp24(a)
}

func clamp24(v int64) int32 {
	return int32(min(max(v, MinCode), MaxCode))
}

// --- internals; s.mu held ---

func (s *Sim) notifyLocked() {
	close(s.wake)
	s.wake = make(chan struct{})
}

func (s *Sim) gridTime(k int64) time.Time {
	return s.start.Add(time.Duration(k) * s.period)
}

func (s *Sim) indexAt(t time.Time) int64 {
	return int64(t.Sub(s.start) / s.period)
}

func (s *Sim) codeLocked(k int64, m Mode) int32 {
	switch s.fault {
	case FaultStuck:
		return s.stuckCode
	case FaultNoise:
		c := int64(s.Code(k, m))
		if s.noiseAmp > 0 {
			c += s.rng.Int64N(2*int64(s.noiseAmp)+1) - int64(s.noiseAmp)
		}
		return clamp24(c)
	}
	return s.Code(k, m)
}

// readyLocked reports whether a completed conversion waits to be read.
func (s *Sim) readyLocked(now time.Time) bool {
	return !s.poweredDown && !s.inTx && !now.Before(s.readyAt)
}

// powerDownLocked powers the chip down if PD_SCK has been high too long.
func (s *Sim) powerDownLocked(now time.Time) {
	if s.clkHigh && !s.poweredDown && now.Sub(s.clkHighSince) > s.powerDown {
		s.poweredDown = true
		s.powerDowns++
		s.inTx = false
		s.txValid = false
		s.pulses = 0
		s.notifyLocked()
	}
}

// settleLocked applies the state changes that depend on elapsed time or on
// the end of a transaction: power-down, and committing the gain selection
// once the host stopped pulsing and looks at DOUT (or the chip) again. The
// chip cannot tell 25 pulses from the start of a 26th other than by the
// host's next access to DOUT, so a host that clocks two reads back to back
// without looking at DOUT merges their pulses, as it would on hardware.
func (s *Sim) settleLocked(now time.Time) {
	s.powerDownLocked(now)
	if s.inTx && !s.clkHigh && s.pulses >= 25 {
		s.finishTxLocked(now)
	}
	if s.inTx && !s.clkHigh && s.pulses < 25 && now.Sub(s.clkLowSince) > s.powerDown {
		// Abandoned mid-read: forget it; the gain stays, the latched
		// conversion is lost, the next one signals data-ready as usual.
		s.inTx = false
		s.txValid = false
		s.pulses = 0
		s.aborted++
		s.notifyLocked()
	}
}

// abortAtLocked returns when an incomplete transaction will be abandoned,
// or the zero time.
func (s *Sim) abortAtLocked() time.Time {
	if s.inTx && !s.clkHigh && s.pulses < 25 {
		return s.clkLowSince.Add(s.powerDown + time.Nanosecond)
	}
	return time.Time{}
}

func (s *Sim) finishTxLocked(now time.Time) {
	next := s.mode
	switch s.pulses {
	case 25:
		next = ChannelAGain128
	case 26:
		next = ChannelBGain32
	case 27:
		next = ChannelAGain64
	}
	k := s.indexAt(now)
	if s.txValid {
		k = s.txIndex
		s.reads++
		s.lastIndex = s.txIndex
		if s.firstIndex < 0 {
			s.firstIndex = s.txIndex
		}
		s.lastCode = s.txCode
		if s.fault == FaultGlitch {
			s.glitch = true
		}
	} else {
		s.spurious++
	}
	switch {
	case next != s.mode:
		s.readyAt = laterOf(s.readyAt, s.gridTime(k+int64(max(s.settle, 1))))
	case s.txValid && s.fault == FaultSlow:
		s.readyAt = s.gridTime(k + int64(s.slowFactor))
	case s.txValid:
		s.readyAt = s.gridTime(k + 1)
	}
	s.mode = next
	s.inTx = false
	s.txValid = false
	s.pulses = 0
	s.notifyLocked()
}

// startTxLocked latches the newest conversion, if one is ready, at the first
// rising edge of a transaction.
func (s *Sim) startTxLocked(now time.Time) {
	s.inTx = true
	s.pulses = 0
	s.txValid = s.fault != FaultNotReady && !now.Before(s.readyAt)
	if s.txValid {
		s.txIndex = s.indexAt(now)
		s.txCode = s.codeLocked(s.txIndex, s.mode)
	}
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (s *Sim) clkOut(l gpio.Level) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fault == FaultPinError {
		return ErrPinError
	}
	s.clkEdgeLocked(l, time.Now())
	return nil
}

// clkEdgeLocked applies level l on PD_SCK at now. A shared clock calls it
// for every chip on the line, whatever their faults: FaultPinError breaks
// the chip's own pins, not a line that other chips share.
func (s *Sim) clkEdgeLocked(l gpio.Level, now time.Time) {
	s.powerDownLocked(now)
	if bool(l) == s.clkHigh {
		return
	}
	if l == gpio.High {
		s.clkHigh = true
		s.clkHighSince = now
		if s.poweredDown {
			return
		}
		if s.inTx && s.pulses >= 27 {
			s.finishTxLocked(now)
		}
		if !s.inTx {
			s.startTxLocked(now)
		}
		s.pulses++
		return
	}
	s.clkHigh = false
	s.clkLowSince = now
	if s.poweredDown {
		// Reset: back to channel A gain 128, settle again.
		s.poweredDown = false
		s.resets++
		s.resetAt = now
		s.mode = ChannelAGain128
		s.readyAt = s.gridTime(s.indexAt(now) + int64(max(s.settle, 1)))
		s.notifyLocked()
		return
	}
	if s.inTx && s.pulses >= 27 {
		s.finishTxLocked(now)
	}
}

// level returns the DOUT level and consumes a glitch if it reports one.
func (s *Sim) level(now time.Time) gpio.Level {
	s.settleLocked(now)
	switch s.fault {
	case FaultDisconnected:
		// Floating: the host's pull resistor decides; without one it
		// happens to float high.
		return s.pull != gpio.PullDown
	case FaultNotReady, FaultPinError:
		return gpio.High
	}
	if s.poweredDown {
		return gpio.High
	}
	if s.inTx && s.clkHigh && s.pulses >= 26 {
		// The host samples DOUT while PD_SCK is high, which it does for
		// data bits only: this pulse is the first of a new transaction
		// clocked back to back, and the previous one ended a pulse ago.
		s.pulses--
		s.finishTxLocked(now)
		s.startTxLocked(now)
		s.pulses = 1
	}
	if s.inTx {
		if !s.txValid || s.pulses > 24 {
			return gpio.High
		}
		bit := 24 - s.pulses
		return uint32(s.txCode)>>uint(bit)&1 == 1
	}
	if s.readyLocked(now) {
		return gpio.Low
	}
	if s.glitch {
		s.glitch = false
		return gpio.Low
	}
	return gpio.High
}

func (s *Sim) waitForEdge(timeout time.Duration) bool {
	var deadline time.Time
	if timeout >= 0 {
		deadline = time.Now().Add(timeout)
	}
	s.mu.Lock()
	edge := s.edge
	s.mu.Unlock()
	if edge == gpio.NoEdge || edge == gpio.RisingEdge {
		// Data-ready is a falling edge; nothing else is ever reported.
		if timeout >= 0 {
			time.Sleep(timeout)
		}
		return false
	}
	halts := s.dout.halts()
	for {
		s.mu.Lock()
		now := time.Now()
		if s.dout.halted != halts {
			s.mu.Unlock()
			return false
		}
		s.settleLocked(now)
		var wakeAt time.Time
		switch {
		case s.fault == FaultDisconnected || s.fault == FaultNotReady || s.fault == FaultPinError || s.poweredDown:
			// No falling edge until something changes.
		case s.inTx:
			wakeAt = s.abortAtLocked()
		case s.readyLocked(now):
			s.mu.Unlock()
			return true
		case s.glitch:
			s.glitch = false
			s.mu.Unlock()
			return true
		default:
			wakeAt = s.readyAt
		}
		wake := s.wake
		s.mu.Unlock()

		if !deadline.IsZero() && (wakeAt.IsZero() || wakeAt.After(deadline)) {
			wakeAt = deadline
		}
		var timer <-chan time.Time
		var t *time.Timer
		if !wakeAt.IsZero() {
			t = time.NewTimer(time.Until(wakeAt))
			timer = t.C
		}
		select {
		case <-wake:
			if t != nil {
				t.Stop()
			}
		case <-timer:
			if !deadline.IsZero() && !time.Now().Before(deadline) {
				s.mu.Lock()
				ok := s.readyAfterDeadlineLocked(deadline)
				s.mu.Unlock()
				return ok
			}
		}
	}
}

// readyAfterDeadlineLocked decides a wait whose deadline passed: the edge
// counts only if it was due no later than the deadline, so a late wake-up
// of the waiting goroutine does not turn a timeout into a read.
func (s *Sim) readyAfterDeadlineLocked(deadline time.Time) bool {
	now := time.Now()
	s.settleLocked(now)
	if s.fault == FaultDisconnected || s.fault == FaultNotReady || s.fault == FaultPinError {
		return false
	}
	return s.readyLocked(now) && !s.readyAt.After(deadline)
}

// --- pins ---

type clkPin struct{ s *Sim }

func (p *clkPin) String() string   { return p.s.name + ".PD_SCK" }
func (p *clkPin) Name() string     { return p.String() }
func (p *clkPin) Number() int      { return -1 }
func (p *clkPin) Function() string { return "Out" }
func (p *clkPin) Halt() error      { return nil }

// Out implements gpio.PinOut.
func (p *clkPin) Out(l gpio.Level) error { return p.s.clkOut(l) }

// PWM implements gpio.PinOut; the HX711 clock cannot be driven by PWM.
func (p *clkPin) PWM(gpio.Duty, physic.Frequency) error {
	return errors.New("hx711sim: PWM not supported on PD_SCK")
}

type doutPin struct {
	s      *Sim
	halted int64 // guarded by s.mu
}

func (p *doutPin) halts() int64 {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	return p.halted
}

func (p *doutPin) String() string   { return p.s.name + ".DOUT" }
func (p *doutPin) Name() string     { return p.String() }
func (p *doutPin) Number() int      { return -1 }
func (p *doutPin) Function() string { return "In" }

// Halt implements conn.Resource: it aborts a pending WaitForEdge.
func (p *doutPin) Halt() error {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	p.halted++
	p.s.notifyLocked()
	return nil
}

// In implements gpio.PinIn. Calling it aborts a pending WaitForEdge.
func (p *doutPin) In(pull gpio.Pull, edge gpio.Edge) error {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	if p.s.fault == FaultPinError {
		return ErrPinError
	}
	if pull != gpio.PullNoChange {
		p.s.pull = pull
	}
	p.s.edge = edge
	p.halted++
	p.s.notifyLocked()
	return nil
}

// Read implements gpio.PinIn.
func (p *doutPin) Read() gpio.Level {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	return p.s.level(time.Now())
}

// WaitForEdge implements gpio.PinIn. It reports the data-ready falling edge,
// or true at once if data is ready (an edge happened before the call).
func (p *doutPin) WaitForEdge(timeout time.Duration) bool { return p.s.waitForEdge(timeout) }

// Pull implements gpio.PinIn.
func (p *doutPin) Pull() gpio.Pull {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	return p.s.pull
}

// DefaultPull implements gpio.PinIn.
func (p *doutPin) DefaultPull() gpio.Pull { return gpio.Float }

var (
	_ gpio.PinOut = (*clkPin)(nil)
	_ gpio.PinIn  = (*doutPin)(nil)
)
