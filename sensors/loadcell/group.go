package loadcell

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/devices/v3/hx711"
)

// ErrGroupTimeout is returned when a chip of a Group is not ready in time.
var ErrGroupTimeout = fmt.Errorf("loadcell: hx711 group: conversion not ready: %w", hx711.ErrTimeout)

// Group is N HX711s sharing one PD_SCK line (a Pi has too few GPIOs for a
// clock per chip), each with its own DOUT, read in lockstep through periph
// gpio: wait until every DOUT is low (data ready), then 24 clock pulses,
// sampling every DOUT on each, then 1–3 more pulses for the next mode
// (which, the clock being shared, every chip takes).
//
// Channel(i) is chip i as an ADC for Source: the read that serves one
// chip serves them all, so the four cells of a plate come from the same
// conversion instant. A new read waits until every channel took its code
// of the last one, so no cell's sample is overwritten by a channel that
// runs ahead. A chip that was not ready returns −1 (all ones), as
// periph's single-chip driver does, and Source rejects it as a glitch.
type Group struct {
	clk  gpio.PinOut
	data []gpio.PinIn
	mode Mode

	mu      sync.Mutex
	codes   []int32
	pending []bool
	reads   int64
	dropped int64
	taken   chan struct{} // closed and replaced when a channel takes its code

	cycledAt time.Time // last power cycle (reboot.go)
	cycles   int64
	reselect bool // the chips were reset: select mode before the next read
}

// NewGroup configures the pins (DOUT as inputs with pull-down and falling
// edge detection, PD_SCK low) for chips read in mode.
func NewGroup(clk gpio.PinOut, data []gpio.PinIn, mode Mode) (*Group, error) {
	if clk == nil || len(data) == 0 {
		return nil, errors.New("loadcell: hx711 group: need a clock pin and at least one data pin")
	}
	for i, d := range data {
		if d == nil {
			return nil, fmt.Errorf("loadcell: hx711 group: data pin %d is nil", i)
		}
		if err := d.In(gpio.PullDown, gpio.FallingEdge); err != nil {
			return nil, fmt.Errorf("loadcell: hx711 group: data pin %s: %w", d, err)
		}
	}
	if err := clk.Out(gpio.Low); err != nil {
		return nil, fmt.Errorf("loadcell: hx711 group: clock pin %s: %w", clk, err)
	}
	// The chips power up in A128: in another mode, the first read selects
	// it and its codes are not used (reselect).
	return &Group{clk: clk, data: data, mode: mode, codes: make([]int32, len(data)), pending: make([]bool, len(data)), taken: make(chan struct{}),
		reselect: mode != ModeA128}, nil
}

// Len is the number of chips.
func (g *Group) Len() int { return len(g.data) }

// Reads is the number of lockstep reads done.
func (g *Group) Reads() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.reads
}

// Dropped is the number of codes a channel never took because it did not
// ask for them within the timeout of another channel's next read (its
// Source stopped or paused).
func (g *Group) Dropped() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.dropped
}

// ReadAll does one lockstep read into dst (one code per chip). A chip not
// ready within timeout fails the read with ErrGroupTimeout.
func (g *Group) ReadAll(timeout time.Duration, dst []int32) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.readLocked(timeout, dst)
}

func (g *Group) readLocked(timeout time.Duration, dst []int32) error {
	if len(dst) != len(g.data) {
		return fmt.Errorf("loadcell: hx711 group: %d codes for %d chips", len(dst), len(g.data))
	}
	if g.reselect {
		if err := g.selectModeLocked(); err != nil {
			return err
		}
		g.reselect = false
	}
	deadline := time.Now().Add(timeout)
	for i, d := range g.data {
		for d.Read() != gpio.Low {
			left := time.Until(deadline)
			if left <= 0 || !d.WaitForEdge(left) {
				if d.Read() == gpio.Low {
					break
				}
				return fmt.Errorf("chip %d (%s): %w", i, d, ErrGroupTimeout)
			}
		}
	}
	var v [64]uint32
	vals := v[:0]
	if len(g.data) > len(v) {
		vals = make([]uint32, 0, len(g.data))
	}
	vals = vals[:len(g.data)]
	clear(vals)
	for range 24 {
		if err := g.clk.Out(gpio.High); err != nil {
			return fmt.Errorf("loadcell: hx711 group: clock: %w", err)
		}
		for i, d := range g.data {
			vals[i] <<= 1
			if d.Read() == gpio.High {
				vals[i] |= 1
			}
		}
		if err := g.clk.Out(gpio.Low); err != nil {
			return fmt.Errorf("loadcell: hx711 group: clock: %w", err)
		}
	}
	for range int(g.mode.inputMode()) {
		if err := g.clk.Out(gpio.High); err != nil {
			return fmt.Errorf("loadcell: hx711 group: clock: %w", err)
		}
		if err := g.clk.Out(gpio.Low); err != nil {
			return fmt.Errorf("loadcell: hx711 group: clock: %w", err)
		}
	}
	for i, x := range vals {
		dst[i] = int32(x<<8) >> 8
	}
	g.reads++
	return nil
}

// Channel returns chip i as an ADC. Its ReadTimeout returns chip i's code
// of the latest lockstep read if it has not returned it yet, and otherwise
// does a new lockstep read (whose other codes wait for their channels)
// once the other channels took their codes of the last one, or timeout
// passed (their codes are then dropped and counted).
func (g *Group) Channel(i int) ADC { return groupChannel{g, i} }

type groupChannel struct {
	g *Group
	i int
}

// groupModer is an ADC whose input mode its Group selects.
type groupModer interface{ groupMode() Mode }

func (c groupChannel) groupMode() Mode { return c.g.mode }

func (c groupChannel) ReadTimeout(timeout time.Duration) (int32, error) {
	g := c.g
	g.mu.Lock()
	defer g.mu.Unlock()
	var timer *time.Timer
	for !g.pending[c.i] {
		if !slices.Contains(g.pending, true) {
			if err := g.readLocked(timeout, g.codes); err != nil {
				return 0, err
			}
			for j := range g.pending {
				g.pending[j] = true
			}
			break
		}
		// Another channel has not taken its code of the last read yet.
		if timer == nil {
			timer = time.NewTimer(timeout)
			defer timer.Stop()
		}
		taken := g.taken
		g.mu.Unlock()
		select {
		case <-taken:
		case <-timer.C:
			g.mu.Lock()
			for j, p := range g.pending {
				if p {
					g.dropped++
					g.pending[j] = false
				}
			}
			continue
		}
		g.mu.Lock()
	}
	g.pending[c.i] = false
	close(g.taken)
	g.taken = make(chan struct{})
	return g.codes[c.i], nil
}
