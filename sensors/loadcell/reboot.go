package loadcell

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/devices/v3/hx711"
)

// DefaultPowerDownHold is how long PowerCycle holds PD_SCK high by
// default: the datasheet powers the HX711 down after 60 µs.
const DefaultPowerDownHold = 100 * time.Microsecond

// Reboot errors.
var (
	// ErrNotRunning is returned by Reboot when Run is not running: only the
	// sampling goroutines touch the chips.
	ErrNotRunning = errors.New("loadcell: not running")
	// ErrNoPowerCycle is returned by Reboot when a channel's ADC cannot be
	// power-cycled (it does not implement PowerCycler).
	ErrNoPowerCycle = errors.New("loadcell: ADC cannot be power-cycled")
)

// PowerCycler is an ADC whose chip can be reset: PD_SCK held high for
// hold (more than 60 µs powers an HX711 down), then low (it powers up in
// channel A, gain 128, and settles for about four conversions before it
// signals data-ready). A chip that was already power-cycled at or after
// requested is not cycled again: the chips of a Group share PD_SCK, so the
// first of its channels to ask resets all of them. PowerCycle is called by
// the sampling goroutine between two reads, never during one.
type PowerCycler interface {
	PowerCycle(hold time.Duration, requested time.Time) error
}

// HX711 is periph's single-chip driver together with the chip's clock
// pin, so that the chip can be power-cycled (periph's Dev has no power
// control). Its reads, and SetInputMode, are the Dev's.
type HX711 struct {
	*hx711.Dev
	clk gpio.PinOut
}

var (
	_ PowerCycler     = (*HX711)(nil)
	_ InputModeSetter = (*HX711)(nil)
	_ PowerCycler     = groupChannel{}
)

// NewHX711 opens the chip on clk and data with periph's driver.
func NewHX711(clk gpio.PinOut, data gpio.PinIn) (*HX711, error) {
	d, err := hx711.New(clk, data)
	if err != nil {
		return nil, err
	}
	return &HX711{Dev: d, clk: clk}, nil
}

// PowerCycle implements PowerCycler. It must not run while a read does.
func (h *HX711) PowerCycle(hold time.Duration, _ time.Time) error {
	return powerCycle(h.clk, hold)
}

// powerCycle holds clk high for hold, then low; low is attempted even when
// high failed, so a pin error does not leave the chip powered down.
func powerCycle(clk gpio.PinOut, hold time.Duration) error {
	errHigh := clk.Out(gpio.High)
	if errHigh == nil {
		time.Sleep(hold)
	}
	if err := clk.Out(gpio.Low); err != nil {
		return fmt.Errorf("loadcell: power cycle: PD_SCK low: %w", err)
	}
	if errHigh != nil {
		return fmt.Errorf("loadcell: power cycle: PD_SCK high: %w", errHigh)
	}
	return nil
}

// PowerCycle implements PowerCycler for a channel of a Group: it resets
// every chip on the shared clock, once for all channels asking since
// requested. Codes already read and not yet taken by their channels stay
// valid. The next lockstep read first re-selects the Group's mode when it
// is not A128 (the chips came back in A128).
func (c groupChannel) PowerCycle(hold time.Duration, requested time.Time) error {
	g := c.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.cycledAt.IsZero() && !g.cycledAt.Before(requested) {
		return nil
	}
	if err := powerCycle(g.clk, hold); err != nil {
		return fmt.Errorf("loadcell: hx711 group: %w", err)
	}
	g.cycledAt = time.Now()
	g.cycles++
	g.reselect = g.mode != ModeA128
	return nil
}

// PowerCycles is the number of times the Group's chips were power-cycled.
func (g *Group) PowerCycles() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cycles
}

// selectModeLocked clocks one transaction without waiting for data-ready,
// whose trailing pulses select g.mode for the next conversion; what it
// shifts out (a stale or A128 conversion) is discarded.
func (g *Group) selectModeLocked() error {
	for range 24 + int(g.mode.inputMode()) {
		if err := g.clk.Out(gpio.High); err != nil {
			return fmt.Errorf("loadcell: hx711 group: select mode: %w", err)
		}
		if err := g.clk.Out(gpio.Low); err != nil {
			return fmt.Errorf("loadcell: hx711 group: select mode: %w", err)
		}
	}
	return nil
}

// rebootState says whether Run runs; guarded by mu, as are the cells'
// reboot requests.
type rebootState struct {
	mu      sync.Mutex
	running bool
}

// rebootQueue is one channel's reboot requests: set by Reboot, served by
// the channel's sampling goroutine before its next read.
type rebootQueue struct {
	wanted  atomic.Bool
	waiters []rebootWaiter // guarded by Source.rb.mu
}

type rebootWaiter struct {
	at   time.Time
	done chan error // buffered 1
}

// Reboot power-cycles every channel's chip (see PowerCycler) and returns
// once each sampling goroutine did so between two of its reads, or ctx
// ended. Nothing read is dropped: codes taken before the reset are
// processed as usual, and the channel goes on after it with the same
// calibration, filter and auto-zero. After the reset the channel's mode is
// selected again (the chip comes back in A128) and the fault monitor's
// runs start afresh, its active faults kept: a fault ends with its
// recovered event once the reset chip reads well, as any recovery.
// Reboot needs Run to be running (ErrNotRunning) and every ADC to be a
// PowerCycler (ErrNoPowerCycle).
func (s *Source) Reboot(ctx context.Context) error {
	for _, c := range s.cells {
		if _, ok := c.ch.ADC.(PowerCycler); !ok {
			return fmt.Errorf("loadcell: %s: channel %s (%T): %w", s.name, c.ch.Stream, c.ch.ADC, ErrNoPowerCycle)
		}
	}
	at := time.Now()
	dones := make([]chan error, len(s.cells))
	s.rb.mu.Lock()
	if !s.rb.running {
		s.rb.mu.Unlock()
		return fmt.Errorf("loadcell: %s: %w", s.name, ErrNotRunning)
	}
	for i, c := range s.cells {
		dones[i] = make(chan error, 1)
		c.rq.waiters = append(c.rq.waiters, rebootWaiter{at: at, done: dones[i]})
		c.rq.wanted.Store(true)
	}
	s.rb.mu.Unlock()
	var errs []error
	for i, done := range dones {
		select {
		case err := <-done:
			if err != nil {
				errs = append(errs, fmt.Errorf("channel %s: %w", s.cells[i].ch.Stream, err))
			}
		case <-ctx.Done():
			return fmt.Errorf("loadcell: %s: reboot: %w", s.name, ctx.Err())
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("loadcell: %s: reboot: %w", s.name, err)
	}
	return nil
}

// setRunning marks Run as running or not; when it stops, requests still
// waiting are answered with ErrNotRunning.
func (s *Source) setRunning(on bool) {
	s.rb.mu.Lock()
	defer s.rb.mu.Unlock()
	s.rb.running = on
	if on {
		return
	}
	for _, c := range s.cells {
		for _, w := range c.rq.waiters {
			w.done <- fmt.Errorf("loadcell: %s: %w", s.name, ErrNotRunning)
		}
		c.rq.waiters = nil
		c.rq.wanted.Store(false)
	}
}

// rebootIfAsked serves c's reboot requests, on its sampling goroutine. It
// reports whether the chip was power-cycled (its mode must then be
// selected again).
func (s *Source) rebootIfAsked(c *cell) bool {
	if !c.rq.wanted.Load() {
		return false
	}
	s.rb.mu.Lock()
	ws := c.rq.waiters
	c.rq.waiters = nil
	c.rq.wanted.Store(false)
	s.rb.mu.Unlock()
	if len(ws) == 0 {
		return false
	}
	var latest time.Time
	for _, w := range ws {
		if w.at.After(latest) {
			latest = w.at
		}
	}
	err := c.ch.ADC.(PowerCycler).PowerCycle(s.opts.PowerDownHold, latest)
	if err == nil {
		c.mon.restart()
		s.powerCycles.Add(1)
		c.mu.Lock()
		c.h.PowerCycles++
		c.mu.Unlock()
	}
	for _, w := range ws {
		w.done <- err
	}
	return err == nil
}

// restart forgets the runs of a channel whose chip was reset: the codes
// after the reset are judged on their own. Active faults stay active until
// the usual number of good reads clears them (with their recovered
// events); a reset that did not help re-enters nothing twice.
func (m *monitor) restart() {
	m.timeoutRun, m.errRun, m.okRun = 0, 0, 0
	m.satRun, m.inRangeRun = 0, 0
	m.sameRun, m.changedRun = 0, 0
	m.haveLast = false
}
