package env

import (
	"context"
	"errors"
	"fmt"

	"periph.io/x/conn/v3/physic"
)

// Reboot errors.
var (
	// ErrNotRunning is returned by Reboot when Run is not running: only the
	// sampling goroutine talks to the sensors.
	ErrNotRunning = errors.New("env: not running")
	// ErrNoReinit is returned by Reboot when a channel's Sensor cannot be
	// initialised again (it does not implement Reiniter).
	ErrNoReinit = errors.New("env: sensor cannot be re-initialised")
)

// Reiniter is a Sensor that can be initialised again, as Reinitable's
// are.
type Reiniter interface {
	Reinit() error
}

// Reinitable returns s, built again by open on Reinit: periph's
// bmxx80.NewI2C reads a BME280's chip id and calibration and writes its
// oversampling, filter and mode settings anew; ds18b20.New a DS18B20's
// resolution. A failed Reinit keeps s.
func Reinitable(s Sensor, open func() (Sensor, error)) Sensor {
	return &reinitable{s: s, open: open}
}

type reinitable struct {
	s    Sensor
	open func() (Sensor, error)
}

var _ Reiniter = (*reinitable)(nil)

func (r *reinitable) Sense(e *physic.Env) error { return r.s.Sense(e) }

func (r *reinitable) Reinit() error {
	s, err := r.open()
	if err != nil {
		return err
	}
	if s == nil {
		return errors.New("env: open sensor: returned no sensor")
	}
	r.s = s
	return nil
}

// Reboot initialises every channel's sensor again (see Reiniter) on the
// sampling goroutine, which then samples at once, and returns the outcome,
// or when ctx ends.
func (s *Source) Reboot(ctx context.Context) error {
	for _, c := range s.chans {
		if _, ok := c.Sensor.(Reiniter); !ok {
			return fmt.Errorf("env: %s: channel %s (%T): %w", s.name, c.Name, c.Sensor, ErrNoReinit)
		}
	}
	err := s.rb.Ask(ctx, ErrNotRunning, nil) // kicks the sampling loop
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotRunning):
		return fmt.Errorf("env: %s: %w", s.name, err)
	case ctx.Err() != nil:
		return fmt.Errorf("env: %s: reboot: %w", s.name, err)
	}
	return fmt.Errorf("env: %s: re-initialise: %w", s.name, err)
}

// reinitIfAsked serves the waiting reboots, on the sampling goroutine.
func (s *Source) reinitIfAsked() {
	s.rb.Serve(func() error {
		var errs []error
		for _, c := range s.chans {
			if err := c.Sensor.(Reiniter).Reinit(); err != nil {
				errs = append(errs, fmt.Errorf("channel %s: %w", c.Name, err))
			}
		}
		err := errors.Join(errs...)
		if err == nil {
			s.reboots.Add(1)
		}
		return err
	})
}
