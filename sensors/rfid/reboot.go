package rfid

import (
	"context"
	"errors"
	"fmt"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/devices/v3/mfrc522"
)

// Reboot errors.
var (
	// ErrNotRunning is returned by Reboot when Run is not running: only the
	// polling goroutine talks to the reader.
	ErrNotRunning = errors.New("rfid: not running")
	// ErrNoInit is returned by Reboot when the Reader cannot be
	// re-initialised (it does not implement Initer).
	ErrNoInit = errors.New("rfid: reader cannot be re-initialised")
)

// Initer is a Reader that can be re-initialised. FromDevReset's resets
// the MFRC522 through its NRSTPD pin (low: hard power-down, then high: the
// chip resets and its oscillator starts), then runs periph's
// initialisation (soft reset, timer, modulation and antenna gain settings,
// antenna on: what mfrc522.NewSPI does at start). FromDev's does the
// initialisation alone, which periph's driver also does before every
// poll.
type Initer interface {
	Init() error
}

var _ Initer = devReader{}

// Hard reset timing: NRSTPD low for at least 100 ns (datasheet 8.8.1),
// then time for the crystal oscillator to start before the chip answers.
const (
	hardResetLow     = time.Millisecond
	hardResetStartup = 50 * time.Millisecond
)

// FromDevReset adapts periph's driver to Reader, with the reader's NRSTPD
// pin (the one given to mfrc522.NewSPI) for a hard reset on Reboot.
func FromDevReset(d *mfrc522.Dev, rst gpio.PinOut) Reader { return devReader{d: d, rst: rst} }

// Init implements Initer.
func (r devReader) Init() error {
	if r.rst != nil {
		if err := r.rst.Out(gpio.Low); err != nil {
			return fmt.Errorf("NRSTPD low: %w", err)
		}
		time.Sleep(hardResetLow)
		if err := r.rst.Out(gpio.High); err != nil {
			return fmt.Errorf("NRSTPD high: %w", err)
		}
		time.Sleep(hardResetStartup)
	}
	return r.d.LowLevel.Init()
}

// Reboot re-initialises the reader between two polls (see Initer) and
// returns its outcome once the polling goroutine did it, or when ctx
// ends. A tag still in the field after the reset is the same presentation
// (no second event); the next poll uses the fresh settings.
func (s *Source) Reboot(ctx context.Context) error {
	if _, ok := s.r.(Initer); !ok {
		return fmt.Errorf("rfid: %s: %T: %w", s.name, s.r, ErrNoInit)
	}
	err := s.rb.Ask(ctx, ErrNotRunning, func() {}) // the polling loop looks at every poll
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotRunning):
		return fmt.Errorf("rfid: %s: %w", s.name, err)
	case ctx.Err() != nil:
		return fmt.Errorf("rfid: %s: reboot: %w", s.name, err)
	}
	return fmt.Errorf("rfid: %s: re-initialise: %w", s.name, err)
}

// reinitIfAsked serves the waiting reboots, on the polling goroutine. A
// reboot asked while Init runs waits for the next one.
func (s *Source) reinitIfAsked() {
	s.rb.Serve(func() error {
		err := s.r.(Initer).Init()
		if err == nil {
			s.reboots.Add(1)
		}
		return err
	})
}
