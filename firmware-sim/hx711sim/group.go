package hx711sim

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
)

// GroupOpts configures a Group. The embedded Opts apply to every chip,
// except that chip i is named Name+".c<i>" and seeds its noise with Seed+i;
// Opts.ChannelB must be nil (each chip's channel B reads its own bridge at
// gain 32).
type GroupOpts struct {
	Opts
	// Phases, when set, has one entry per chip: chip i's conversion k
	// completes Phases[i] later than the group's conversion grid, as
	// independent oscillators do. Each must be in [0, sample period).
	// Nil means all chips convert in phase.
	Phases []time.Duration
}

// Group is N simulated HX711s whose PD_SCK inputs are wired to one host
// GPIO output, each with its own DOUT line: a host reads them in lockstep,
// clocking once and sampling every DOUT per bit. Each chip keeps its own
// conversion timing, data-ready, gain state and faults; the shared clock
// gives them all the same pulses, so they all select the same gain and
// power down together. It is safe for concurrent use.
type Group struct {
	name  string
	chips []*Sim
	clk   *sharedClk
}

// NewGroup returns len(sigs) chips on one clock, chip i fed by sigs[i].
// opts may be nil for DefaultOpts with all chips in phase.
func NewGroup(sigs []Signal, opts *GroupOpts) (*Group, error) {
	var o GroupOpts
	if opts != nil {
		o = *opts
	} else {
		o.Opts = DefaultOpts
	}
	if len(sigs) == 0 {
		return nil, errors.New("hx711sim: group needs at least one Signal")
	}
	if o.ChannelB != nil {
		return nil, errors.New("hx711sim: group: Opts.ChannelB must be nil")
	}
	if o.Phases != nil && len(o.Phases) != len(sigs) {
		return nil, fmt.Errorf("hx711sim: group: %d phases for %d chips", len(o.Phases), len(sigs))
	}
	if o.Name == "" {
		o.Name = DefaultOpts.Name
	}
	g := &Group{name: o.Name, chips: make([]*Sim, len(sigs))}
	start := time.Now()
	for i, sig := range sigs {
		co := o.Opts
		co.Name = fmt.Sprintf("%s.c%d", o.Name, i)
		co.Seed = o.Seed + uint64(i)
		var phase time.Duration
		if o.Phases != nil {
			phase = o.Phases[i]
		}
		s, err := newSim(sig, &co, start.Add(phase))
		if err != nil {
			return nil, fmt.Errorf("hx711sim: group chip %d: %w", i, err)
		}
		if phase < 0 || phase >= s.period {
			return nil, fmt.Errorf("hx711sim: group: phases[%d] = %s must be in [0, %s)", i, phase, s.period)
		}
		g.chips[i] = s
	}
	g.clk = &sharedClk{g: g}
	return g, nil
}

// CLK returns the shared PD_SCK pin, driven by the host. Every level
// written reaches every chip, including chips under FaultPinError (the
// fault breaks the chip's own DOUT line, not the shared one). Do not drive
// the chips' own Chip(i).CLK() pins as well.
func (g *Group) CLK() gpio.PinOut { return g.clk }

// DOUT returns chip i's data pin. It panics if i is out of range.
func (g *Group) DOUT(i int) gpio.PinIn { return g.chips[i].DOUT() }

// DOUTs returns the data pins of all chips, in order.
func (g *Group) DOUTs() []gpio.PinIn {
	out := make([]gpio.PinIn, len(g.chips))
	for i, s := range g.chips {
		out[i] = s.DOUT()
	}
	return out
}

// Len returns the number of chips.
func (g *Group) Len() int { return len(g.chips) }

// Chip returns chip i, to inject faults into it or read its Stats. It
// panics if i is out of range.
func (g *Group) Chip(i int) *Sim { return g.chips[i] }

// SamplePeriod returns the real time between two conversions.
func (g *Group) SamplePeriod() time.Duration { return g.chips[0].period }

type sharedClk struct {
	g  *Group
	mu sync.Mutex // orders writes, so every chip sees the same sequence
}

func (p *sharedClk) String() string   { return p.g.name + ".PD_SCK" }
func (p *sharedClk) Name() string     { return p.String() }
func (p *sharedClk) Number() int      { return -1 }
func (p *sharedClk) Function() string { return "Out" }
func (p *sharedClk) Halt() error      { return nil }

// Out implements gpio.PinOut: one edge, seen by every chip at the same
// instant.
func (p *sharedClk) Out(l gpio.Level) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	for _, s := range p.g.chips {
		s.mu.Lock()
		s.clkEdgeLocked(l, now)
		s.mu.Unlock()
	}
	return nil
}

// PWM implements gpio.PinOut; the HX711 clock cannot be driven by PWM.
func (p *sharedClk) PWM(gpio.Duty, physic.Frequency) error {
	return errors.New("hx711sim: PWM not supported on PD_SCK")
}

var _ gpio.PinOut = (*sharedClk)(nil)

// PlateSource gives the four lockstep codes of a shelf plate at sample k,
// as firmware-sim/warehouse's Warehouse.PlateCodes does.
type PlateSource interface {
	PlateCodes(plate int, k int64) [4]int32
}

// NewPlate returns the four HX711s under plate of src (cells front-left,
// front-right, back-left, back-right) on one shared clock. Like a single
// Sim fed by Bin, each chip converts at opts.Rate accelerated by
// opts.SpeedUp, and conversion k of chip c outputs src.PlateCodes(plate,
// k)[c]; set Rate and SpeedUp to the scenario's SampleRate and Speed so
// sample k falls at the scenario's time k/SampleRate. opts may be nil for
// DefaultOpts.
func NewPlate(src PlateSource, plate int, opts *GroupOpts) (*Group, error) {
	if src == nil {
		return nil, errors.New("hx711sim: nil PlateSource")
	}
	f := &plateFeed{src: src, plate: plate}
	sigs := make([]Signal, 4)
	for c := range sigs {
		sigs[c] = SignalFunc(func(k int64) int32 { return f.code(c, k) })
	}
	return NewGroup(sigs, opts)
}

// plateFeed computes each sample's four codes once for the four chips,
// which ask for the same k at nearly the same time.
type plateFeed struct {
	src   PlateSource
	plate int

	mu    sync.Mutex
	ks    [2]int64
	codes [2][4]int32
	ok    [2]bool
	next  int
}

func (f *plateFeed) code(c int, k int64) int32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.ks {
		if f.ok[i] && f.ks[i] == k {
			return f.codes[i][c]
		}
	}
	i := f.next
	f.next = 1 - f.next
	f.ks[i], f.codes[i], f.ok[i] = k, f.src.PlateCodes(f.plate, k), true
	return f.codes[i][c]
}
