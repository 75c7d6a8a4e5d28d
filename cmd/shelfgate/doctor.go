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

// counter is an Emitter and EventEmitter that only counts.
type counter struct{ readings, events atomic.Int64 }

func (c *counter) Emit(_ context.Context, rs []gateway.Reading) error {
	c.readings.Add(int64(len(rs)))
	return nil
}

func (c *counter) EmitEvents(_ context.Context, evs []gateway.Event) error {
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

	type probe struct {
		name string
		srcs func(sink *counter) ([]gateway.Source, func(), error)
	}
	var probes []probe
	if cfg.Simulation != nil {
		probes = append(probes, probe{"simulation", func(sink *counter) ([]gateway.Source, func(), error) {
			srcs, _, closeAll, err := simulatedSources(cfg.Simulation, sink)
			return srcs, closeAll, err
		}})
	}
	for i, s := range cfg.Sensors {
		probes = append(probes, probe{fmt.Sprintf("sensors[%d] %s (%s)", i, s.Name, s.Type), func(sink *counter) ([]gateway.Source, func(), error) {
			srcs, _, closeAll, err := hardwareSources([]config.Sensor{s}, cfg.CalibrationFile, sink)
			return srcs, closeAll, err
		}})
	}
	bad := 0
	for _, p := range probes {
		sink := &counter{} // scans and tag reads arrive here
		srcs, closeAll, err := p.srcs(sink)
		if err != nil {
			bad++
			fmt.Fprintf(w, "FAIL %s: %v\n", p.name, err)
			continue
		}
		// The sources of one probe run together (a simulated scanner needs
		// its feeder), each with its own counter.
		counters := make([]*counter, len(srcs))
		errs := make([]error, len(srcs))
		pctx, cancel := context.WithTimeout(ctx, probeTime)
		var wg sync.WaitGroup
		for i, src := range srcs {
			counters[i] = &counter{}
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = src.Run(pctx, counters[i]) }()
		}
		wg.Wait()
		cancel()
		for i, src := range srcs {
			c, runErr := counters[i], errs[i]
			status := "OK  "
			if runErr != nil {
				status = "FAIL"
				bad++
			}
			fmt.Fprintf(w, "%s %s: source %s: %d readings, %d events in %s", status, p.name, src.Name(), c.readings.Load(), c.events.Load(), probeTime)
			if runErr != nil {
				fmt.Fprintf(w, ": %v", runErr)
			}
			fmt.Fprintln(w)
		}
		if n := sink.events.Load(); n > 0 {
			fmt.Fprintf(w, "     %s: %d scans and tag reads\n", p.name, n)
		}
		closeAll()
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d checks failed", bad, len(probes))
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
