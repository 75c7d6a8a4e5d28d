package main

import (
	"context"
	"fmt"
	"math"
	"time"

	"periph.io/x/devices/v3/bmxx80"
	"periph.io/x/devices/v3/hx711"
	"periph.io/x/devices/v3/mfrc522"

	"github.com/shelfgate/shelfgate/firmware-sim/envsim"
	"github.com/shelfgate/shelfgate/firmware-sim/hx711sim"
	"github.com/shelfgate/shelfgate/firmware-sim/rfidsim"
	"github.com/shelfgate/shelfgate/firmware-sim/scannersim"
	"github.com/shelfgate/shelfgate/firmware-sim/warehouse"
	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/config"
	"github.com/shelfgate/shelfgate/gateway/shelf"
	"github.com/shelfgate/shelfgate/sensors/env"
	"github.com/shelfgate/shelfgate/sensors/loadcell"
	"github.com/shelfgate/shelfgate/sensors/rfid"
	"github.com/shelfgate/shelfgate/sensors/scanner"
)

// simulatedSources puts a bus-level simulator where each piece of hardware
// would be and reads it through the same sensor packages and periph drivers:
// an hx711sim under every bin of the simulated warehouse, and optionally a
// scannersim pty typing the warehouse's scans, an rfidsim at the dock and an
// envsim BME280 in a cold room.
func simulatedSources(sc *config.Simulation, ee gateway.EventEmitter) ([]gateway.Source, []shelf.Bin, func(), error) {
	var closers []func()
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	fail := func(err error) ([]gateway.Source, []shelf.Bin, func(), error) {
		closeAll()
		return nil, nil, func() {}, err
	}
	wc := sc.Warehouse
	wh, err := warehouse.New(wc)
	if err != nil {
		return fail(fmt.Errorf("simulation.warehouse: %w", err))
	}
	var chans []loadcell.Channel
	var bins []shelf.Bin
	for _, b := range wh.Bins() {
		opts := hx711sim.DefaultOpts
		opts.Name = "hx711sim-" + b.ID
		opts.Rate = int(wc.SampleRate)
		opts.SpeedUp = wc.Speed
		sim, err := hx711sim.New(hx711sim.Bin(wh, b.Index), &opts)
		if err != nil {
			return fail(fmt.Errorf("simulated cell %s: %w", b.ID, err))
		}
		dev, err := hx711.New(sim.CLK(), sim.DOUT())
		if err != nil {
			return fail(fmt.Errorf("hx711 on simulated cell %s: %w", b.ID, err))
		}
		stream := gateway.StreamID("loadcell/" + b.ID)
		chans = append(chans, loadcell.Channel{Stream: stream, ADC: dev, Offset: b.OffsetCounts, CountsPerGram: b.CountsPerGram})
		bins = append(bins, shelf.Bin{Stream: stream, ID: b.ID, SKU: b.SKU, UnitGrams: b.UnitGrams, LowStockUnits: max(1, b.Capacity/10), InitialUnits: b.InitialUnits})
	}
	cells, err := loadcell.New("simulated-loadcells", chans, loadcell.Options{})
	if err != nil {
		return fail(err)
	}
	srcs := []gateway.Source{cells}

	if sc.Scanner {
		opts := scannersim.DefaultOpts
		opts.Suffix = scannersim.CR
		sim, err := scannersim.New(&opts)
		if err != nil {
			return fail(fmt.Errorf("simulated scanner: %w", err))
		}
		closers = append(closers, func() { sim.Close() })
		src, err := scanner.New("picking-1", scanner.Serial(sim.Path(), 9600), eventSink{ee}, scanner.Options{Suffix: scanner.SuffixCR})
		if err != nil {
			return fail(err)
		}
		srcs = append(srcs, src, &scanFeeder{wh: wh, sim: sim, speed: wc.Speed})
	}
	if sc.RFID {
		sim := rfidsim.New(nil)
		dev, err := mfrc522.NewSPI(sim, sim.Reset(), sim.IRQ())
		if err != nil {
			return fail(fmt.Errorf("mfrc522 on simulated reader: %w", err))
		}
		src, err := rfid.New("dock-1", rfid.FromDev(dev), eventSink{ee}, rfid.Options{})
		if err != nil {
			return fail(err)
		}
		srcs = append(srcs, src, &toteFeeder{sim: sim, speed: wc.Speed})
	}
	if sc.Env {
		// A cold room at 4 °C breathing ±1.5 °C over an hour of simulated time.
		profile := func(t time.Duration) envsim.Env {
			return envsim.Env{TempC: 4 + 1.5*math.Sin(2*math.Pi*t.Hours()), PressurePa: 101325, HumidityRH: 85}
		}
		bus, err := envsim.New(profile, &envsim.Opts{Addr: 0x76, SpeedUp: wc.Speed, NVM: envsim.DefaultOpts.NVM})
		if err != nil {
			return fail(fmt.Errorf("simulated BME280: %w", err))
		}
		dev, err := bmxx80.NewI2C(bus, 0x76, &bmxx80.DefaultOpts)
		if err != nil {
			return fail(fmt.Errorf("bme280 on simulated bus: %w", err))
		}
		src, err := env.New("env", []env.Channel{{Name: "coldroom-1", Kind: env.BME280, Sensor: dev}}, env.Options{Interval: 2 * time.Second})
		if err != nil {
			return fail(err)
		}
		srcs = append(srcs, src)
	}
	return srcs, bins, closeAll, nil
}

// scanFeeder types the warehouse's scans into the simulated scanner as
// their visits happen in simulated time. It emits nothing itself: the
// scanner source reads what it types.
type scanFeeder struct {
	wh    *warehouse.Warehouse
	sim   *scannersim.Sim
	speed float64
}

func (f *scanFeeder) Name() string { return "scan-feeder" }

func (f *scanFeeder) Run(ctx context.Context, _ gateway.Emitter) error {
	start := time.Now()
	typed := make([]int, len(f.wh.Bins()))
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		now := time.Duration(float64(time.Since(start)) * f.speed)
		for bin := range typed {
			labels := f.wh.Labels(bin, now)
			for _, l := range labels[typed[bin]:] {
				if l.Scan != "" {
					if err := f.sim.Scan(l.Scan); err != nil {
						return fmt.Errorf("simulated scanner: %w", err)
					}
				}
			}
			typed[bin] = len(labels)
		}
	}
}

// toteFeeder presents a tote's tag at the dock reader every few simulated
// seconds, for about a second.
type toteFeeder struct {
	sim   *rfidsim.Sim
	speed float64
}

func (f *toteFeeder) Name() string { return "tote-feeder" }

func (f *toteFeeder) Run(ctx context.Context, _ gateway.Emitter) error {
	period := time.Duration(float64(20*time.Second) / f.speed)
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(period):
		}
		uid := []byte{0x04, 0x7A, byte(n >> 8), byte(n)}
		if err := f.sim.Present(uid); err != nil {
			return fmt.Errorf("simulated tag: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(max(time.Second, period/4)):
		}
		f.sim.Remove()
	}
}
