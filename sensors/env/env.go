// Package env samples environmental sensors — Bosch BME280 (temperature,
// pressure, humidity) on I²C and Maxim DS18B20 (temperature) on 1-wire —
// at a fixed interval and offers them to the gateway as a gateway.Source.
//
// Each sensor is a Sensor, the physic.SenseEnv method both periph drivers
// have: *bmxx80.Dev from periph.io/x/devices/v3/bmxx80 (datasheet:
// https://www.bosch-sensortec.com/media/boschsensortec/downloads/datasheets/bst-bme280-ds002.pdf)
// and *ds18b20.Dev from periph.io/x/devices/v3/ds18b20 (datasheet:
// https://www.analog.com/media/en/technical-documentation/data-sheets/DS18B20.pdf).
// Only the application opens buses; a Source owns nothing.
//
// A channel named <name> yields the streams env/<name>/temperature (°C),
// env/<name>/pressure (hPa) and env/<name>/humidity (%RH), as its Measures
// say. Readings outside a sensor's operating range (BME280: −40..85 °C,
// 300..1100 hPa, 0..100 %RH; DS18B20: −55..125 °C) are counted and dropped,
// as is the DS18B20's power-on value of exactly 85 °C (datasheet, Table 1
// note: the scratchpad holds +85 °C until a conversion completes), which a
// sensor that browned out mid-conversion returns. A failed Sense is counted;
// the next tick tries again, so an unplugged sensor recovers by itself when
// it is plugged back (a BME280 that lost power also needs its oversampling
// registers rewritten: wrap its driver in Reopen to rebuild it after a failure).
//
// In tests the BME280 path runs periph's real bmxx80 driver over
// firmware-sim/envsim. No 1-wire simulator exists, so the DS18B20 path is
// tested with a hand-written fake Sensor.
//
// The package never logs; problems are counted (see Stats).
package env

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"periph.io/x/conn/v3/physic"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/sensors/handoff"
)

// Sensor is one environmental sensor: *bmxx80.Dev and *ds18b20.Dev satisfy it.
type Sensor interface {
	Sense(e *physic.Env) error
}

// Measure is a set of quantities a sensor measures.
type Measure uint8

// Quantities.
const (
	Temperature Measure = 1 << iota
	Pressure
	Humidity
)

// Kind is the sensor model, which fixes its measures and operating range.
type Kind uint8

// Sensor kinds.
const (
	BME280  Kind = iota // temperature, pressure, humidity
	BMP280              // temperature, pressure
	DS18B20             // temperature
)

func (k Kind) String() string {
	switch k {
	case BME280:
		return "BME280"
	case BMP280:
		return "BMP280"
	case DS18B20:
		return "DS18B20"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

func (k Kind) measures() Measure {
	switch k {
	case BME280:
		return Temperature | Pressure | Humidity
	case BMP280:
		return Temperature | Pressure
	}
	return Temperature
}

// Channel is one sensor.
type Channel struct {
	Name   string // e.g. coldroom-1; streams are env/<Name>/<quantity>
	Kind   Kind
	Sensor Sensor
}

// Options tune a Source. Zero values take defaults.
type Options struct {
	// Interval between samples of every channel; default 10s.
	Interval time.Duration
	// Now stamps readings; default time.Now.
	Now func() time.Time
	// Buffer is how many samples (one per channel per tick) may wait for
	// the emitter; default 64. A full buffer delays sampling.
	Buffer int
}

// Stats count what a Source has seen.
type Stats struct {
	Samples    int64 // successful Sense calls
	Readings   int64 // readings handed to the emitter
	Errors     int64 // failed Sense calls (sensor unplugged, NACK, CRC)
	OutOfRange int64 // readings outside the sensor's operating range, dropped
	Glitches   int64 // DS18B20 power-on 85 °C values, dropped
	Reboots    int64 // re-initialisations done by Reboot
}

// Source samples a set of environmental sensors.
type Source struct {
	name  string
	chans []Channel
	opts  Options

	samples, readings, errs, outOfRange, glitches atomic.Int64
	reboots                                       atomic.Int64

	rb handoff.Requests // reboots for the sampling goroutine (reboot.go)
}

var _ gateway.Source = (*Source)(nil)

// New returns a Source named name over chans.
func New(name string, chans []Channel, opts Options) (*Source, error) {
	if len(chans) == 0 {
		return nil, errors.New("env: no channels")
	}
	seen := map[string]bool{}
	for i, c := range chans {
		if c.Name == "" {
			return nil, fmt.Errorf("env: channel %d: empty name", i)
		}
		if seen[c.Name] {
			return nil, fmt.Errorf("env: channel %d: duplicate name %q", i, c.Name)
		}
		seen[c.Name] = true
		if c.Sensor == nil {
			return nil, fmt.Errorf("env: channel %d (%s): no sensor", i, c.Name)
		}
		if c.Kind > DS18B20 {
			return nil, fmt.Errorf("env: channel %d (%s): unknown kind %v", i, c.Name, c.Kind)
		}
	}
	if opts.Interval <= 0 {
		opts.Interval = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 64
	}
	return &Source{name: name, chans: chans, opts: opts}, nil
}

// Name implements gateway.Source.
func (s *Source) Name() string { return s.name }

// Stats returns the counters so far.
func (s *Source) Stats() Stats {
	return Stats{Samples: s.samples.Load(), Readings: s.readings.Load(), Errors: s.errs.Load(), OutOfRange: s.outOfRange.Load(), Glitches: s.glitches.Load(),
		Reboots: s.reboots.Load()}
}

// Run samples every channel at once, then every Interval, until ctx is done
// or emit fails. Channels are sampled one after the other (they usually
// share a bus); readings go to emit from a separate goroutine, so a slow
// commit does not delay sampling. Readings taken before ctx ends are still
// emitted (with a fresh context).
func (s *Source) Run(ctx context.Context, emit gateway.Emitter) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.rb.Start()
	defer s.rb.Stop(ErrNotRunning)
	out := make(chan []gateway.Reading, s.opts.Buffer)
	emitErr := make(chan error, 1)
	go func() {
		var first error
		for rs := range out {
			if first != nil {
				continue
			}
			ectx := ctx
			if ctx.Err() != nil {
				ectx = context.Background()
			}
			if err := emit.Emit(ectx, rs); err != nil {
				first = err
				cancel()
			}
		}
		emitErr <- first
	}()
	s.loop(sctx, out)
	close(out)
	if err := <-emitErr; err != nil && ctx.Err() == nil {
		return fmt.Errorf("env: %s: %w", s.name, err)
	}
	return nil
}

func (s *Source) loop(ctx context.Context, out chan<- []gateway.Reading) {
	t := time.NewTicker(s.opts.Interval)
	defer t.Stop()
	kick := s.rb.Kick()
	for {
		s.reinitIfAsked()
		for i := range s.chans {
			if ctx.Err() != nil {
				return
			}
			rs := s.sample(&s.chans[i])
			if len(rs) == 0 {
				continue
			}
			select {
			case out <- rs:
			case <-ctx.Done():
				out <- rs // sampled before the stop: still emitted
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-kick: // Reboot: re-initialise and sample now
		}
	}
}

// Operating ranges.
const (
	bmeMinC, bmeMaxC     = -40, 85
	bmeMinHPa, bmeMaxHPa = 300, 1100
	dsMinC, dsMaxC       = -55, 125
	dsPowerOnC           = 85
)

func (s *Source) sample(c *Channel) []gateway.Reading {
	var e physic.Env
	if err := c.Sensor.Sense(&e); err != nil {
		s.errs.Add(1)
		return nil
	}
	s.samples.Add(1)
	now := s.opts.Now()
	m := c.Kind.measures()
	rs := make([]gateway.Reading, 0, 3)
	add := func(q string, v float64, unit string, lo, hi float64) {
		if !(v >= lo && v <= hi) {
			s.outOfRange.Add(1)
			return
		}
		rs = append(rs, gateway.Reading{Stream: gateway.StreamID("env/" + c.Name + "/" + q), Time: now, Value: v, Unit: unit})
	}
	tc := Celsius(e.Temperature)
	if c.Kind == DS18B20 {
		if tc == dsPowerOnC {
			s.glitches.Add(1)
			return nil
		}
		add("temperature", tc, "°C", dsMinC, dsMaxC)
	} else if m&Temperature != 0 {
		add("temperature", tc, "°C", bmeMinC, bmeMaxC)
	}
	if m&Pressure != 0 {
		add("pressure", HectoPascal(e.Pressure), "hPa", bmeMinHPa, bmeMaxHPa)
	}
	if m&Humidity != 0 {
		add("humidity", PercentRH(e.Humidity), "%RH", 0, 100)
	}
	s.readings.Add(int64(len(rs)))
	return rs
}

// Celsius converts a periph temperature to °C.
func Celsius(t physic.Temperature) float64 {
	return float64(t-physic.ZeroCelsius) / float64(physic.Celsius)
}

// HectoPascal converts a periph pressure to hPa.
func HectoPascal(p physic.Pressure) float64 {
	return float64(p) / float64(100*physic.Pascal)
}

// PercentRH converts a periph relative humidity to %RH.
func PercentRH(h physic.RelativeHumidity) float64 {
	return float64(h) / float64(physic.PercentRH)
}

// Reopen returns a Sensor built by open, and built again by the first Sense
// after a failed one. A BME280 that lost power comes back in sleep mode
// with humidity oversampling off; periph's bmxx80.NewI2C writes its
// settings again. The returned Sensor is not safe for concurrent use.
func Reopen(open func() (Sensor, error)) Sensor { return &reopener{open: open} }

type reopener struct {
	open func() (Sensor, error)
	s    Sensor // nil until opened, and after a failure
}

func (r *reopener) Sense(e *physic.Env) error {
	if r.s == nil {
		s, err := r.open()
		if err != nil {
			return fmt.Errorf("env: open sensor: %w", err)
		}
		if s == nil {
			return errors.New("env: open sensor: returned no sensor")
		}
		r.s = s
	}
	if err := r.s.Sense(e); err != nil {
		r.s = nil
		return err
	}
	return nil
}
