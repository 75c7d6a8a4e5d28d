package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/onewire"
	"periph.io/x/conn/v3/onewire/onewirereg"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spireg"
	"periph.io/x/host/v3"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/config"
	"github.com/shelfgate/shelfgate/gateway/shelf"
	"github.com/shelfgate/shelfgate/sensors/calibration"
	"github.com/shelfgate/shelfgate/sensors/loadcell"
)

// sensorKind is one row of the wiring table: a kind of sensor the
// configuration file can name in a sensor's type.
type sensorKind struct {
	typ string // the value of the sensor's type key
	// new returns a configuration holding the kind's defaults; the
	// sensor's YAML entry is decoded onto it (strictly: see
	// config.DecodeSensor).
	new func() sensorConfig
}

// sensorConfig is one sensor's typed configuration. Each kind implements it
// in its kind_*.go file, next to its metrics.
type sensorConfig interface {
	// check reports every problem by field path relative to the entry
	// ("pins.clk"); env says what the rest of the file provides.
	check(env sensorEnv, report func(field, format string, args ...any))
	// open builds the sensor named name on b: the host's pins and buses, or
	// the simulators'. It is the only place a kind touches hardware.
	open(name string, b buses, env sensorEnv) (*sensor, error)
}

// sensorEnv is what a sensor's configuration may depend on outside its entry.
type sensorEnv struct {
	calibrationFile string // load cells without inline calibration look here
	// calibrations is calibrationFile parsed, when check-config could read
	// it; nil otherwise (then the file's own problem is reported once, at
	// calibration_file).
	calibrations *calibration.File
	// log receives what a sensor reports while it runs (retries,
	// recoveries), labelled with the sensor; nil discards.
	log *slog.Logger
}

// logger returns env.log labelled with the sensor, or a logger that
// discards.
func (env sensorEnv) logger(name string) *slog.Logger {
	if env.log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return env.log.With("sensor", name)
}

// sensor is what a kind builds from one configured sensor.
type sensor struct {
	name   string
	kind   string
	source gateway.Source
	bins   []shelf.Bin // what the detector watches (load cells)
	// collect sends one snapshot of the sensor's counters, labelled with
	// its sensor name (and bin): see metrics.go.
	collect func(ch chan<- prometheus.Metric)
	// report writes the sensor's state for doctor after the probe; may be nil.
	report func(w io.Writer)
	// probe judges the sensor for doctor after it ran for a while, given
	// what it emitted: nil when it works. nil probe: it works when it
	// emitted something. Kinds that emit only when something happens (a
	// scan, a tag) judge by whether their device opened and answered.
	probe func(readings, events int64) error
}

// sensorKinds is the wiring table. Adding a kind of sensor is one package
// under sensors/ (the driver), one kind_*.go file here (its configuration,
// checks, construction and metrics) and one row below.
func sensorKinds() []sensorKind {
	return []sensorKind{
		{typ: "hx711", new: newHX711Config},     // load cell under a bin (the default type)
		{typ: "scanner", new: newScannerConfig}, // barcode scanner, USB-CDC serial or evdev
		{typ: "mfrc522", new: newMFRC522Config}, // RFID reader on SPI
		{typ: "bme280", new: newBME280Config},   // temperature, pressure, humidity on I2C
		{typ: "ds18b20", new: newDS18B20Config}, // temperature on 1-wire
		{typ: "plate", new: newPlateConfig},     // shelf plate: four HX711s on one shared clock
	}
}

// sensorSpec is a sensor to build: from the configuration file or made up
// by the simulation.
type sensorSpec struct {
	name string
	typ  string
	conf sensorConfig
}

// kindOf finds typ in kinds.
func kindOf(kinds []sensorKind, typ string) (sensorKind, bool) {
	i := slices.IndexFunc(kinds, func(k sensorKind) bool { return k.typ == typ })
	if i < 0 {
		return sensorKind{}, false
	}
	return kinds[i], true
}

// decodeSensors decodes and checks every sensor of cfg through kinds. The
// problems name file, line and field path.
func decodeSensors(cfg *config.Config, kinds []sensorKind) ([]sensorSpec, config.Errors) {
	var es config.Errors
	var specs []sensorSpec
	env := sensorEnv{calibrationFile: cfg.CalibrationFile, calibrations: readCalibrations(cfg.CalibrationFile)}
	for i, s := range cfg.Sensors {
		path := fmt.Sprintf("sensors[%d]", i)
		k, ok := kindOf(kinds, s.Type)
		if !ok {
			var types []string
			for _, k := range kinds {
				types = append(types, k.typ)
			}
			es = append(es, cfg.Errorf(path+".type", "%q is not a sensor type (%s)", s.Type, strings.Join(types, ", ")))
			continue
		}
		conf := k.new()
		var des config.Errors
		if err := cfg.DecodeSensor(i, conf); err != nil && !errors.As(err, &des) {
			es = append(es, cfg.Errorf(path, "%v", err))
			continue
		}
		// What could not be decoded is reported; the rest is still checked,
		// except the fields that failed (their zero values would only add
		// misleading messages).
		es = append(es, des...)
		conf.check(env, func(field, format string, args ...any) {
			p := path + "." + field
			for _, d := range des {
				if config.Within(p, d.Path) {
					return
				}
			}
			es = append(es, cfg.Errorf(p, format, args...))
		})
		if len(des) == 0 {
			specs = append(specs, sensorSpec{name: s.Name, typ: s.Type, conf: conf})
		}
	}
	return specs, es
}

// checkSensors is the config.Check of the sensor kinds.
func checkSensors(cfg *config.Config) config.Errors {
	_, es := decodeSensors(cfg, sensorKinds())
	return es
}

// sensorSet is everything built from the configured sensors.
type sensorSet struct {
	sensors []*sensor
	extra   []gateway.Source // sources that are no sensor (the simulation's feeders)
	window  int              // detector window in samples; 0 = its default
	close   func()           // releases buses and simulators
}

// sources returns every source to run.
func (ss *sensorSet) sources() []gateway.Source {
	var srcs []gateway.Source
	for _, s := range ss.sensors {
		srcs = append(srcs, s.source)
	}
	return append(srcs, ss.extra...)
}

// bins returns what the detector watches.
func (ss *sensorSet) bins() []shelf.Bin {
	var bins []shelf.Bin
	for _, s := range ss.sensors {
		bins = append(bins, s.bins...)
	}
	return bins
}

// buildSensors opens every spec on b: the one build path for hardware and
// simulation. On error what was opened is released.
func buildSensors(specs []sensorSpec, b buses, env sensorEnv) (ss *sensorSet, err error) {
	ss = &sensorSet{close: b.close}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	for _, sp := range specs {
		s, err := sp.conf.open(sp.name, b, env)
		if err != nil {
			return nil, fmt.Errorf("sensor %s (%s): %w", sp.name, sp.typ, err)
		}
		s.name, s.kind = sp.name, sp.typ
		ss.sensors = append(ss.sensors, s)
	}
	return ss, nil
}

// buildSources builds what cfg configures: the simulation (on its
// simulators) or the sensors (on this host's pins and buses); log receives
// the sensors' retries.
func buildSources(cfg *config.Config, log *slog.Logger) (*sensorSet, error) {
	if cfg.Simulation != nil {
		sc, err := decodeSimulation(cfg)
		if err != nil {
			return nil, err
		}
		return buildSimulation(sc)
	}
	specs, es := decodeSensors(cfg, sensorKinds())
	if len(es) > 0 {
		return nil, es
	}
	if len(specs) == 0 {
		return nil, errors.New("no sensors configured")
	}
	b, err := newHostBuses()
	if err != nil {
		return nil, err
	}
	return buildSensors(specs, b, sensorEnv{calibrationFile: cfg.CalibrationFile, log: log})
}

// buses is what opens pins and buses: this host's (periph) or the
// simulators'. Hardware and simulation differ only here.
type buses interface {
	pinOut(name string) (gpio.PinOut, error)
	pinIn(name string) (gpio.PinIn, error)
	spi(name string) (spi.Port, error)
	i2c(name string) (i2c.Bus, error)
	onewire(name string) (onewire.Bus, error)
	// powerDownHold is how long an HX711's PD_SCK is held high to power it
	// down when reboot-sensors resets it.
	powerDownHold() time.Duration
	// close releases every bus opened.
	close()
}

// hostBuses opens the Raspberry Pi's pins and buses through periph's
// registries.
type hostBuses struct {
	closers []func() error
}

var _ buses = (*hostBuses)(nil)

func newHostBuses() (*hostBuses, error) {
	if _, err := host.Init(); err != nil {
		return nil, fmt.Errorf("periph host init: %w", err)
	}
	return &hostBuses{}, nil
}

func (h *hostBuses) pin(name string) (gpio.PinIO, error) {
	p := gpioreg.ByName(name)
	if p == nil {
		return nil, fmt.Errorf("pin %s does not exist on this host (no GPIO driver loaded? run on the Pi as a user in the gpio group)", name)
	}
	return p, nil
}

func (h *hostBuses) pinOut(name string) (gpio.PinOut, error) { return h.pin(name) }
func (h *hostBuses) pinIn(name string) (gpio.PinIn, error)   { return h.pin(name) }

func (h *hostBuses) spi(name string) (spi.Port, error) {
	p, err := spireg.Open(name)
	if err != nil {
		return nil, fmt.Errorf("SPI port %q: %w", name, err)
	}
	h.closers = append(h.closers, p.Close)
	return p, nil
}

func (h *hostBuses) i2c(name string) (i2c.Bus, error) {
	b, err := i2creg.Open(name)
	if err != nil {
		return nil, fmt.Errorf("I2C bus %q: %w", name, err)
	}
	h.closers = append(h.closers, b.Close)
	return b, nil
}

func (h *hostBuses) onewire(name string) (onewire.Bus, error) {
	b, err := onewirereg.Open(name)
	if err != nil {
		return nil, fmt.Errorf("1-wire bus %q: %w", name, err)
	}
	h.closers = append(h.closers, b.Close)
	return b, nil
}

// powerDownHold: a real HX711 powers down after 60 µs.
func (h *hostBuses) powerDownHold() time.Duration { return loadcell.DefaultPowerDownHold }

func (h *hostBuses) close() {
	for _, c := range h.closers {
		c()
	}
	h.closers = nil
}

// pinName checks a Raspberry Pi GPIO name (BCM numbering, GPIO0-GPIO27).
func pinName(s string) error {
	if s == "" {
		return errors.New("is empty")
	}
	var n int
	if _, err := fmt.Sscanf(s, "GPIO%d", &n); err != nil || fmt.Sprintf("GPIO%d", n) != s || n < 0 || n > 27 {
		return fmt.Errorf("%q is not a pin name (GPIO0-GPIO27)", s)
	}
	return nil
}

// checkPins checks named pins and that no two share a GPIO; keys are in
// the order they are reported (e.g. "clk", "data").
func checkPins(report func(field, format string, args ...any), keys []string, vals []string) {
	seen := map[string]string{}
	for i, k := range keys {
		if err := pinName(vals[i]); err != nil {
			report("pins."+k, "%v", err)
		} else if other, dup := seen[vals[i]]; dup {
			report("pins."+k, "%s is already used for %s", vals[i], other)
		} else {
			seen[vals[i]] = k
		}
	}
}
