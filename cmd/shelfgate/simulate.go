package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/onewire"
	"periph.io/x/conn/v3/spi"

	"github.com/shelfgate/shelfgate/firmware-sim/envsim"
	"github.com/shelfgate/shelfgate/firmware-sim/hx711sim"
	"github.com/shelfgate/shelfgate/firmware-sim/rfidsim"
	"github.com/shelfgate/shelfgate/firmware-sim/scannersim"
	"github.com/shelfgate/shelfgate/firmware-sim/warehouse"
	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/classify"
	"github.com/shelfgate/shelfgate/gateway/config"
)

// simConfig is the simulation section of the configuration file: it
// replaces the hardware with the simulated warehouse, a load cell under
// every bin, and optionally a barcode scanner (typing the warehouse's scans
// into a pseudo-terminal), an RFID reader at the dock and a cold-room
// BME280, each behind its bus-level simulator and read through the same
// sensor kinds, sensor packages and periph drivers as real hardware.
type simConfig struct {
	Warehouse warehouse.Config `yaml:"warehouse"`
	Scanner   bool             `yaml:"scanner"`
	RFID      bool             `yaml:"rfid"`
	Env       bool             `yaml:"env"`
	// PlateClassifier identifies the changes of the warehouse's plates
	// (warehouse.plates), as a plate sensor's classifier entry would.
	PlateClassifier plateClassifier `yaml:"plate_classifier"`
	// WrongScans is the share of the plate pickers' pick-list lines that
	// are wrong (another facing's SKU, or one unit more or less), so that
	// mis-picks show; used when scanner is on. Default 0.1.
	WrongScans float64 `yaml:"wrong_scans"`
}

// decodeSimulation decodes cfg's simulation section onto the warehouse's
// defaults; nil when there is none.
func decodeSimulation(cfg *config.Config) (*simConfig, error) {
	if cfg.Simulation == nil {
		return nil, nil
	}
	sc := &simConfig{Warehouse: warehouse.DefaultConfig(), PlateClassifier: plateClassifier{Mode: string(classify.ModeAnalytic)}, WrongScans: 0.1}
	if err := cfg.DecodeSimulation(sc); err != nil {
		return nil, err
	}
	return sc, nil
}

// checkSimulation is the config.Check of the simulation section.
func checkSimulation(cfg *config.Config) config.Errors {
	sc, err := decodeSimulation(cfg)
	var es config.Errors
	if errors.As(err, &es) {
		return es
	}
	if err != nil {
		return config.Errors{cfg.Errorf("simulation", "%v", err)}
	}
	if sc != nil {
		if err := sc.Warehouse.Validate(); err != nil {
			return warehouseErrors(cfg, err)
		}
		if _, err := classify.ParseMode(sc.PlateClassifier.Mode); err != nil {
			es = append(es, cfg.Errorf("simulation.plate_classifier.mode", "%v", err))
		} else if sc.PlateClassifier.Mode != string(classify.ModeAnalytic) && sc.PlateClassifier.Model == "" {
			es = append(es, cfg.Errorf("simulation.plate_classifier.model", "is empty; classifier %s needs a model file (configs/models/plate.sgm)", sc.PlateClassifier.Mode))
		}
		if _, err := (&plateConfig{Classifier: sc.PlateClassifier}).trustedKeys(); err != nil {
			es = append(es, cfg.Errorf("simulation.plate_classifier.trusted_keys", "%v", err))
		}
		if !(sc.WrongScans >= 0 && sc.WrongScans <= 1) {
			es = append(es, cfg.Errorf("simulation.wrong_scans", "%v must be between 0 and 1", sc.WrongScans))
		}
	}
	return es
}

// simBuses are the simulators' pins and buses, by name: what the sensor
// kinds open instead of the host's.
type simBuses struct {
	pinsOut map[string]gpio.PinOut
	pinsIn  map[string]gpio.PinIn
	spis    map[string]spi.Port
	i2cs    map[string]i2c.Bus
	closers []func()
	hx711   map[string]*hx711sim.Sim   // by bin, for fault injection in tests
	plates  map[string]*hx711sim.Group // by plate, for the conversions a test's host missed
}

var _ buses = (*simBuses)(nil)

func newSimBuses() *simBuses {
	return &simBuses{pinsOut: map[string]gpio.PinOut{}, pinsIn: map[string]gpio.PinIn{}, spis: map[string]spi.Port{}, i2cs: map[string]i2c.Bus{}, hx711: map[string]*hx711sim.Sim{},
		plates: map[string]*hx711sim.Group{}}
}

func (s *simBuses) pinOut(name string) (gpio.PinOut, error) {
	if p, ok := s.pinsOut[name]; ok {
		return p, nil
	}
	return nil, fmt.Errorf("simulation has no output pin %s", name)
}

func (s *simBuses) pinIn(name string) (gpio.PinIn, error) {
	if p, ok := s.pinsIn[name]; ok {
		return p, nil
	}
	return nil, fmt.Errorf("simulation has no input pin %s", name)
}

func (s *simBuses) spi(name string) (spi.Port, error) {
	if p, ok := s.spis[name]; ok {
		return p, nil
	}
	return nil, fmt.Errorf("simulation has no SPI port %q", name)
}

func (s *simBuses) i2c(name string) (i2c.Bus, error) {
	if b, ok := s.i2cs[name]; ok {
		return b, nil
	}
	return nil, fmt.Errorf("simulation has no I2C bus %q", name)
}

func (s *simBuses) onewire(name string) (onewire.Bus, error) {
	return nil, fmt.Errorf("simulation has no 1-wire bus %q", name)
}

func (s *simBuses) close() {
	for _, c := range s.closers {
		c()
	}
	s.closers = nil
}

// buildSimulation puts a bus-level simulator where each piece of hardware
// would be, describes the sensors on them as the configuration file would,
// and builds them through the same sensor kinds as real hardware
// (buildSensors): an hx711sim under every bin of the simulated warehouse,
// and optionally a scannersim pty typing the warehouse's scans, an rfidsim
// at the dock and an envsim BME280 in a cold room.
func buildSimulation(sc *simConfig) (*sensorSet, error) {
	ss, _, err := buildSimulationBuses(sc)
	return ss, err
}

// buildSimulationBuses is buildSimulation that also returns the simulated
// buses (tests read the simulators' counters through them).
func buildSimulationBuses(sc *simConfig) (*sensorSet, *simBuses, error) {
	b, specs, extra, err := simulators(sc)
	if err != nil {
		b.close()
		return nil, nil, err
	}
	ss, err := buildSensors(specs, b, sensorEnv{})
	if err != nil {
		return nil, nil, err
	}
	ss.extra, ss.window = extra, detectorWindow(sc.Warehouse.SampleRate)
	return ss, b, nil
}

// detectorWindow sizes the detector's settle window to about half a second
// of samples at rate; 0 is the detector's default, right for 10 samples/s.
func detectorWindow(rate float64) int {
	if rate >= 80 {
		return 40
	}
	return 0
}

// simulators creates the simulators on b and returns the sensors on them
// and the feeders that drive them.
func simulators(sc *simConfig) (b *simBuses, specs []sensorSpec, extra []gateway.Source, err error) {
	b = newSimBuses()
	wc := sc.Warehouse
	wh, err := warehouse.New(wc)
	if err != nil {
		return b, nil, nil, fmt.Errorf("simulation.warehouse: %w", err)
	}
	for _, bin := range wh.Bins() {
		opts := hx711sim.DefaultOpts
		opts.Name = "hx711sim-" + bin.ID
		opts.Rate = int(wc.SampleRate)
		opts.SpeedUp = wc.Speed
		sim, err := hx711sim.New(hx711sim.Bin(wh, bin.Index), &opts)
		if err != nil {
			return b, nil, nil, fmt.Errorf("simulated cell %s: %w", bin.ID, err)
		}
		pins := hx711Pins{Clk: opts.Name + ".PD_SCK", Data: opts.Name + ".DOUT"}
		b.pinsOut[pins.Clk], b.pinsIn[pins.Data], b.hx711[bin.ID] = sim.CLK(), sim.DOUT(), sim
		specs = append(specs, sensorSpec{name: "cell-" + bin.ID, typ: "hx711", conf: &hx711Config{
			Bin: bin.ID, SKU: bin.SKU, UnitGrams: bin.UnitGrams, LowStock: max(1, bin.Capacity/10), InitialUnits: bin.InitialUnits,
			Calibration: &hx711Calibration{Offset: bin.OffsetCounts, CountsPerGram: bin.CountsPerGram},
			Mode:        "A128", Pins: pins,
		}})
	}
	if sc.Scanner {
		opts := scannersim.DefaultOpts
		opts.Suffix = scannersim.CR
		sim, err := scannersim.New(&opts)
		if err != nil {
			return b, nil, nil, fmt.Errorf("simulated scanner: %w", err)
		}
		b.closers = append(b.closers, func() { sim.Close() })
		specs = append(specs, sensorSpec{name: "picking-1", typ: "scanner", conf: &scannerConfig{Port: sim.Path(), Baud: 9600, Suffix: "CR"}})
		extra = append(extra, &scanFeeder{wh: wh, sim: sim, speed: wc.Speed})
	}
	for _, p := range wh.Plates() {
		spec, feeder, err := simPlate(b, sc, wh, p)
		if err != nil {
			return b, nil, nil, err
		}
		specs = append(specs, spec...)
		if feeder != nil {
			extra = append(extra, feeder)
		}
	}
	if sc.RFID {
		sim := rfidsim.New(nil)
		b.spis["rfidsim"], b.pinsOut["rfidsim.RST"], b.pinsIn["rfidsim.IRQ"] = sim, sim.Reset(), sim.IRQ()
		specs = append(specs, sensorSpec{name: "dock-1", typ: "mfrc522", conf: &mfrc522Config{SPI: "rfidsim", Pins: mfrc522Pins{Rst: "rfidsim.RST", IRQ: "rfidsim.IRQ"}}})
		extra = append(extra, &toteFeeder{sim: sim, speed: wc.Speed})
	}
	if sc.Env {
		// A cold room at 4 °C breathing ±1.5 °C over an hour of simulated time.
		profile := func(t time.Duration) envsim.Env {
			return envsim.Env{TempC: 4 + 1.5*math.Sin(2*math.Pi*t.Hours()), PressurePa: 101325, HumidityRH: 85}
		}
		bus, err := envsim.New(profile, &envsim.Opts{Addr: 0x76, SpeedUp: wc.Speed, NVM: envsim.DefaultOpts.NVM})
		if err != nil {
			return b, nil, nil, fmt.Errorf("simulated BME280: %w", err)
		}
		b.i2cs["envsim"] = bus
		specs = append(specs, sensorSpec{name: "coldroom-1", typ: "bme280", conf: &bme280Config{I2C: "envsim", Address: 0x76, Interval: 2 * time.Second}})
	}
	return b, specs, extra, nil
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

// simPlate puts a shared-clock group of four hx711sims under plate p and
// describes it as a plate sensor with the simulation's plate classifier;
// with a scanner, the plate's picker gets a scanner of their own typing
// pick-list lines before the plate's picks (scan feeder returned).
func simPlate(b *simBuses, sc *simConfig, wh *warehouse.Warehouse, p warehouse.Plate) ([]sensorSpec, gateway.Source, error) {
	wc := sc.Warehouse
	opts := hx711sim.GroupOpts{Opts: hx711sim.DefaultOpts}
	opts.Name = "hx711sim-" + p.ID
	opts.Rate, opts.SpeedUp, opts.Seed = int(wc.SampleRate), wc.Speed, uint64(1000+4*p.Index)
	start := time.Now() // the group's simulated time 0, which the scans follow
	g, err := hx711sim.NewPlate(wh, p.Index, &opts)
	if err != nil {
		return nil, nil, fmt.Errorf("simulated plate %s: %w", p.ID, err)
	}
	conf := &plateConfig{Plate: p.ID, WidthMM: p.WidthMM, DepthMM: p.DepthMM, SampleRate: wc.SampleRate, Mode: "A128",
		Pins: platePins{Clk: opts.Name + ".PD_SCK"}, Classifier: sc.PlateClassifier}
	b.pinsOut[conf.Pins.Clk], b.plates[p.ID] = g.CLK(), g
	for c := range 4 {
		name := fmt.Sprintf("%s.c%d.DOUT", opts.Name, c)
		b.pinsIn[name] = g.DOUT(c)
		conf.Pins.Data = append(conf.Pins.Data, name)
		conf.Calibration = append(conf.Calibration, hx711Calibration{Offset: p.Cells[c].OffsetCounts, CountsPerGram: p.Cells[c].CountsPerGram})
	}
	for _, f := range p.Facings {
		conf.Facings = append(conf.Facings, plateFacing{SKU: f.SKU, UnitGrams: f.UnitGrams, XMM: f.XMM, YMM: f.YMM})
	}
	specs := []sensorSpec{{name: p.ID, typ: "plate", conf: conf}}
	if !sc.Scanner {
		return specs, nil, nil
	}
	so := scannersim.DefaultOpts
	so.Suffix = scannersim.CR
	sim, err := scannersim.New(&so)
	if err != nil {
		return nil, nil, fmt.Errorf("simulated scanner of %s: %w", p.ID, err)
	}
	b.closers = append(b.closers, func() { sim.Close() })
	conf.Scanner = "picker-" + p.ID
	specs = append(specs, sensorSpec{name: conf.Scanner, typ: "scanner", conf: &scannerConfig{Port: sim.Path(), Baud: 9600, Suffix: "CR"}})
	return specs, &plateScanFeeder{wh: wh, plate: p, sim: sim, start: start, speed: wc.Speed, wrong: sc.WrongScans,
		rng: rand.New(rand.NewPCG(uint64(wc.Seed), uint64(p.Index)))}, nil
}

// plateScanFeeder is a plate's picker: before each pick they scan the
// pick-list line "<sku>*<qty>" (about 2 s of simulated time before the
// hand enters, never before the previous visit settled); a share of the
// lines are wrong (a neighbouring facing's SKU, or one unit more or less),
// which the gateway should flag as mis-picks.
type plateScanFeeder struct {
	wh    *warehouse.Warehouse
	plate warehouse.Plate
	sim   *scannersim.Sim
	start time.Time // the plate simulator's time 0
	speed float64
	wrong float64
	rng   *rand.Rand
}

func (f *plateScanFeeder) Name() string { return "scan-feeder-" + f.plate.ID }

func (f *plateScanFeeder) Run(ctx context.Context, _ gateway.Emitter) error {
	typed := 0
	var prevSettled time.Duration
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		now := time.Duration(float64(time.Since(f.start)) * f.speed)
		// Visits start and settle within a minute's epoch: looking a
		// minute ahead sees every visit about to start.
		labels := f.wh.PlateLabels(f.plate.Index, now+time.Minute)
		for typed < len(labels) {
			l := labels[typed]
			if now < max(l.Start-2*time.Second, prevSettled+300*time.Millisecond) {
				break
			}
			typed++
			prevSettled = l.Settled
			if l.Kind != "pick" || l.Start < now-time.Second {
				continue // a put, or a pick already under way (start-up)
			}
			if err := f.sim.Scan(f.line(l)); err != nil {
				return fmt.Errorf("simulated scanner of %s: %w", f.plate.ID, err)
			}
		}
	}
}

// line is the pick-list line the picker scans for pick l.
func (f *plateScanFeeder) line(l warehouse.PlateLabel) string {
	sku, qty := l.SKU, l.Units
	if f.rng.Float64() < f.wrong {
		if n := len(f.plate.Facings); n > 1 && f.rng.IntN(2) == 0 {
			sku = f.plate.Facings[(l.Facing+1)%n].SKU
		} else if qty > 1 && f.rng.IntN(2) == 0 {
			qty--
		} else {
			qty++
		}
	}
	return fmt.Sprintf("%s*%d", sku, qty)
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
