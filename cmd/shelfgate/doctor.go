package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/onewire/onewirereg"
	"periph.io/x/conn/v3/spi/spireg"
	"periph.io/x/host/v3"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/config"
)

// probeTime is how long doctor runs each sensor.
const probeTime = 3 * time.Second

// countingEmitter is a gateway.Emitter that only counts.
type countingEmitter struct{ readings, events atomic.Int64 }

var _ gateway.Emitter = (*countingEmitter)(nil)

func (c *countingEmitter) Emit(_ context.Context, rs []gateway.Reading) error {
	c.readings.Add(int64(len(rs)))
	return nil
}

func (c *countingEmitter) EmitEvents(_ context.Context, evs []gateway.Event) error {
	c.events.Add(int64(len(evs)))
	return nil
}

// doctor reports what periph found on this host and tries every configured
// sensor (or, in simulation, every simulated one) for a few seconds.
func doctor(ctx context.Context, cfg *config.Config, w io.Writer) error {
	state, err := host.Init()
	if err != nil {
		fmt.Fprintf(w, "periph: host init failed: %v\n", err)
	} else {
		var loaded, skipped, failed []string
		for _, d := range state.Loaded {
			loaded = append(loaded, d.String())
		}
		for _, d := range state.Skipped {
			skipped = append(skipped, fmt.Sprintf("%s (%v)", d.D, d.Err))
		}
		for _, d := range state.Failed {
			failed = append(failed, fmt.Sprintf("%s: %v", d.D, d.Err))
		}
		fmt.Fprintf(w, "periph drivers loaded: %s\n", list(loaded))
		fmt.Fprintf(w, "periph drivers skipped: %s\n", list(skipped))
		fmt.Fprintf(w, "periph drivers failed: %s\n", list(failed))
	}
	var pins, i2cs, spis, ows []string
	for _, p := range gpioreg.All() {
		pins = append(pins, p.Name())
	}
	for _, r := range i2creg.All() {
		i2cs = append(i2cs, r.Name)
	}
	for _, r := range spireg.All() {
		spis = append(spis, r.Name)
	}
	for _, r := range onewirereg.All() {
		ows = append(ows, r.Name)
	}
	fmt.Fprintf(w, "GPIO pins: %d %s\n", len(pins), list(pins))
	fmt.Fprintf(w, "I2C buses: %s\nSPI ports: %s\n1-wire buses: %s\n", list(i2cs), list(spis), list(ows))

	probes, err := doctorProbes(cfg)
	if err != nil {
		return err
	}
	bad := 0
	for _, p := range probes {
		bad += p.run(ctx, w)
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d checks failed", bad, len(probes))
	}
	return nil
}

// probe builds a set of sensors (one configured sensor, or the whole
// simulation, whose sources need their feeders) for doctor to try.
type probe struct {
	name  string
	named bool // build's errors name the sensor already
	build func() (*sensorSet, error)
}

// doctorProbes lists what doctor tries: the simulation, and every
// configured sensor on its own, built through the sensor kinds.
func doctorProbes(cfg *config.Config) ([]probe, error) {
	var probes []probe
	if sc, err := decodeSimulation(cfg); err != nil {
		return nil, err
	} else if sc != nil {
		probes = append(probes, probe{name: "simulation", build: func() (*sensorSet, error) { return buildSimulation(sc) }})
	}
	specs, es := decodeSensors(cfg, sensorKinds())
	if len(es) > 0 {
		return nil, es
	}
	env := sensorEnv{calibrationFile: cfg.CalibrationFile}
	for _, sp := range specs {
		// buildSensors' errors start with "sensor NAME (KIND): " already.
		probes = append(probes, probe{name: fmt.Sprintf("sensor %s (%s)", sp.name, sp.typ), named: true, build: func() (*sensorSet, error) {
			b, err := newHostBuses()
			if err != nil {
				return nil, fmt.Errorf("sensor %s (%s): %w", sp.name, sp.typ, err)
			}
			return buildSensors([]sensorSpec{sp}, b, env)
		}})
	}
	return probes, nil
}

// run builds the probe's sensors, runs them together for probeTime, each
// with its own counter, and reports; it returns the number of failures.
func (p probe) run(ctx context.Context, w io.Writer) (bad int) {
	ss, err := p.build()
	if err != nil {
		if p.named {
			fmt.Fprintf(w, "FAIL %v\n", err)
		} else {
			fmt.Fprintf(w, "FAIL %s: %v\n", p.name, err)
		}
		return 1
	}
	defer ss.close()
	srcs := ss.sources()
	counters := make([]*countingEmitter, len(srcs))
	errs := make([]error, len(srcs))
	pctx, cancel := context.WithTimeout(ctx, probeTime)
	var wg sync.WaitGroup
	for i, src := range srcs {
		counters[i] = &countingEmitter{}
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = src.Run(pctx, counters[i]) }()
	}
	wg.Wait()
	cancel()
	for i, src := range srcs[:len(ss.sensors)] { // the feeders emit nothing
		c, runErr := counters[i], errs[i]
		readings, events := c.readings.Load(), c.events.Load()
		if runErr == nil {
			runErr = ss.sensors[i].verdict(readings, events)
		}
		status := "OK  "
		if runErr != nil {
			status = "FAIL"
			bad++
		}
		fmt.Fprintf(w, "%s %s: source %s: %d readings, %d events in %s", status, p.name, src.Name(), readings, events, probeTime)
		if runErr != nil {
			fmt.Fprintf(w, ": %v", runErr)
		}
		fmt.Fprintln(w)
		if r := ss.sensors[i].report; r != nil {
			r(w)
		}
	}
	for i := len(ss.sensors); i < len(srcs); i++ {
		if errs[i] != nil {
			bad++
			fmt.Fprintf(w, "FAIL %s: %s: %v\n", p.name, srcs[i].Name(), errs[i])
		}
	}
	return bad
}

// verdict judges the sensor after doctor ran it: its kind's probe, or by
// default whether it emitted anything.
func (s *sensor) verdict(readings, events int64) error {
	if s.probe != nil {
		return s.probe(readings, events)
	}
	if readings+events == 0 {
		return fmt.Errorf("no readings in %s: check the wiring, power and pins", probeTime)
	}
	return nil
}

func list(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	sort.Strings(s)
	if len(s) > 40 {
		return strings.Join(s[:40], ", ") + fmt.Sprintf(", ... (%d more)", len(s)-40)
	}
	return strings.Join(s, ", ")
}
