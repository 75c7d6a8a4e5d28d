package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/onewire"
	"periph.io/x/conn/v3/onewire/onewirereg"
	"periph.io/x/conn/v3/spi/spireg"
	"periph.io/x/devices/v3/bmxx80"
	"periph.io/x/devices/v3/ds18b20"
	"periph.io/x/devices/v3/hx711"
	"periph.io/x/devices/v3/mfrc522"
	"periph.io/x/host/v3"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/config"
	"github.com/shelfgate/shelfgate/gateway/shelf"
	"github.com/shelfgate/shelfgate/sensors/calibration"
	"github.com/shelfgate/shelfgate/sensors/env"
	"github.com/shelfgate/shelfgate/sensors/loadcell"
	"github.com/shelfgate/shelfgate/sensors/rfid"
	"github.com/shelfgate/shelfgate/sensors/scanner"
)

// eventSink turns scans and tag reads into events committed by the gateway.
type eventSink struct{ ee gateway.EventEmitter }

func (s eventSink) Scan(ctx context.Context, sc scanner.Scan) error {
	return s.ee.EmitEvents(ctx, []gateway.Event{{Kind: gateway.EventScan, Stream: sc.Stream, Detail: sc.Code, Time: sc.Time}})
}

func (s eventSink) Tag(ctx context.Context, t rfid.Tag) error {
	return s.ee.EmitEvents(ctx, []gateway.Event{{Kind: gateway.EventTag, Stream: t.Stream, Detail: t.UID, Time: t.Time}})
}

// buildSources returns every configured source, the detector's bins and a
// function that releases buses and simulators. ee receives scans and tag reads.
func buildSources(cfg *config.Config, ee gateway.EventEmitter) ([]gateway.Source, []shelf.Bin, func(), error) {
	if cfg.Simulation != nil {
		return simulatedSources(cfg.Simulation, ee)
	}
	return hardwareSources(cfg.Sensors, cfg.CalibrationFile, ee)
}

// loadModes maps the config's HX711 mode names to loadcell modes.
var loadModes = map[string]loadcell.Mode{"A128": loadcell.ModeA128, "A64": loadcell.ModeA64, "B32": loadcell.ModeB32}

// calibrateFromFile fills in channels that have no inline calibration
// (CountsPerGram 0) from the calibration file.
func calibrateFromFile(path string, cells []loadcell.Channel) ([]loadcell.Channel, error) {
	var missing []loadcell.Channel
	var idx []int
	for i, c := range cells {
		if c.CountsPerGram == 0 {
			missing, idx = append(missing, c), append(idx, i)
		}
	}
	if len(missing) == 0 {
		return cells, nil
	}
	if path == "" {
		return nil, fmt.Errorf("load cell %s has no calibration and no calibration_file is set", missing[0].Stream)
	}
	r, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("calibration_file: %w", err)
	}
	defer r.Close()
	f, err := calibration.Parse(r)
	if err != nil {
		return nil, fmt.Errorf("calibration_file %s: %w", path, err)
	}
	got, err := loadcell.Calibrated(f, missing)
	if err != nil {
		return nil, fmt.Errorf("calibration_file %s: %w", path, err)
	}
	for j, i := range idx {
		cells[i] = got[j]
	}
	return cells, nil
}

// hardwareSources opens the configured sensors on the Raspberry Pi's buses.
// A missing pin or bus is an error naming the sensor and the pin or bus.
func hardwareSources(sensors []config.Sensor, calFile string, ee gateway.EventEmitter) (srcs []gateway.Source, bins []shelf.Bin, closeAll func(), err error) {
	var closers []func() error
	closeAll = func() {
		for _, c := range closers {
			c()
		}
	}
	defer func() {
		if err != nil {
			closeAll()
		}
	}()
	if _, err := host.Init(); err != nil {
		return nil, nil, closeAll, fmt.Errorf("periph host init: %w", err)
	}
	pin := func(i int, s config.Sensor, name string) (gpio.PinIO, error) {
		p := gpioreg.ByName(name)
		if p == nil {
			return nil, fmt.Errorf("sensors[%d] (%s): pin %s does not exist on this host (no GPIO driver loaded? run on the Pi as a user in the gpio group)", i, s.Name, name)
		}
		return p, nil
	}
	var cells []loadcell.Channel
	var envs []env.Channel
	for i, s := range sensors {
		switch s.Type {
		case config.TypeHX711:
			clk, err := pin(i, s, s.Pins.Clk)
			if err != nil {
				return nil, nil, closeAll, err
			}
			data, err := pin(i, s, s.Pins.Data)
			if err != nil {
				return nil, nil, closeAll, err
			}
			dev, err := hx711.New(clk, data)
			if err != nil {
				return nil, nil, closeAll, fmt.Errorf("sensors[%d] (%s): hx711 on %s/%s: %w", i, s.Name, s.Pins.Clk, s.Pins.Data, err)
			}
			stream := gateway.StreamID("loadcell/" + s.Bin)
			ch := loadcell.Channel{Stream: stream, ADC: dev, Mode: loadModes[s.Mode], Bin: s.Bin}
			if s.Calibration != nil {
				ch.Offset, ch.CountsPerGram = s.Calibration.Offset, s.Calibration.CountsPerGram
			}
			cells = append(cells, ch)
			bins = append(bins, shelf.Bin{Stream: stream, ID: s.Bin, SKU: s.SKU, UnitGrams: s.UnitGrams, LowStockUnits: s.LowStock})
		case config.TypeScanner:
			suffix, err := scanner.ParseSuffix(s.Suffix)
			if err != nil {
				return nil, nil, closeAll, fmt.Errorf("sensors[%d] (%s): %w", i, s.Name, err)
			}
			open := scanner.Serial(s.Port, s.Baud)
			if s.Input != "" {
				open = scanner.Evdev(s.Input, 0, true)
			}
			src, err := scanner.New(s.Name, open, eventSink{ee}, scanner.Options{Suffix: suffix})
			if err != nil {
				return nil, nil, closeAll, fmt.Errorf("sensors[%d] (%s): %w", i, s.Name, err)
			}
			srcs = append(srcs, src)
		case config.TypeMFRC522:
			port, err := spireg.Open(s.SPI)
			if err != nil {
				return nil, nil, closeAll, fmt.Errorf("sensors[%d] (%s): SPI port %q: %w", i, s.Name, s.SPI, err)
			}
			closers = append(closers, port.Close)
			rst, err := pin(i, s, s.Pins.Rst)
			if err != nil {
				return nil, nil, closeAll, err
			}
			irq, err := pin(i, s, s.Pins.IRQ)
			if err != nil {
				return nil, nil, closeAll, err
			}
			dev, err := mfrc522.NewSPI(port, rst, irq)
			if err != nil {
				return nil, nil, closeAll, fmt.Errorf("sensors[%d] (%s): mfrc522 on %s: %w", i, s.Name, s.SPI, err)
			}
			src, err := rfid.New(s.Name, rfid.FromDev(dev), eventSink{ee}, rfid.Options{})
			if err != nil {
				return nil, nil, closeAll, fmt.Errorf("sensors[%d] (%s): %w", i, s.Name, err)
			}
			srcs = append(srcs, src)
		case config.TypeBME280:
			bus, err := i2creg.Open(s.I2C)
			if err != nil {
				return nil, nil, closeAll, fmt.Errorf("sensors[%d] (%s): I2C bus %q: %w", i, s.Name, s.I2C, err)
			}
			closers = append(closers, bus.Close)
			dev, err := bmxx80.NewI2C(bus, uint16(s.Address), &bmxx80.DefaultOpts)
			if err != nil {
				return nil, nil, closeAll, fmt.Errorf("sensors[%d] (%s): bme280 at %#x on I2C %q: %w", i, s.Name, s.Address, s.I2C, err)
			}
			envs = append(envs, env.Channel{Name: s.Name, Kind: env.BME280, Sensor: dev})
		case config.TypeDS18B20:
			bus, err := onewirereg.Open(s.OneWire)
			if err != nil {
				return nil, nil, closeAll, fmt.Errorf("sensors[%d] (%s): 1-wire bus %q: %w", i, s.Name, s.OneWire, err)
			}
			closers = append(closers, bus.Close)
			dev, err := ds18b20.New(bus, onewire.Address(s.Address), 10)
			if err != nil {
				return nil, nil, closeAll, fmt.Errorf("sensors[%d] (%s): ds18b20 %#x: %w", i, s.Name, s.Address, err)
			}
			envs = append(envs, env.Channel{Name: s.Name, Kind: env.DS18B20, Sensor: dev})
		default:
			return nil, nil, closeAll, fmt.Errorf("sensors[%d] (%s): unknown type %q", i, s.Name, s.Type)
		}
	}
	if len(cells) > 0 {
		if cells, err = calibrateFromFile(calFile, cells); err != nil {
			return nil, nil, closeAll, err
		}
		src, err := loadcell.New("loadcells", cells, loadcell.Options{})
		if err != nil {
			return nil, nil, closeAll, err
		}
		srcs = append(srcs, src)
	}
	if len(envs) > 0 {
		interval := 10 * time.Second
		for _, s := range sensors {
			if (s.Type == config.TypeBME280 || s.Type == config.TypeDS18B20) && s.Interval < interval {
				interval = s.Interval
			}
		}
		src, err := env.New("env", envs, env.Options{Interval: interval})
		if err != nil {
			return nil, nil, closeAll, err
		}
		srcs = append(srcs, src)
	}
	if len(srcs) == 0 {
		return nil, nil, closeAll, errors.New("no sensors configured")
	}
	return srcs, bins, closeAll, nil
}
