package main

import (
	"fmt"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"periph.io/x/conn/v3/onewire"
	"periph.io/x/devices/v3/bmxx80"
	"periph.io/x/devices/v3/ds18b20"

	"github.com/shelfgate/shelfgate/sensors/env"
)

// bme280Config is a temperature, pressure and humidity sensor on I2C.
type bme280Config struct {
	I2C      string        `yaml:"i2c"`      // periph I2C bus name, "" = first
	Address  uint64        `yaml:"address"`  // 0x76 (default) or 0x77
	Interval time.Duration `yaml:"interval"` // sampling interval, default 10s
}

func newBME280Config() sensorConfig { return &bme280Config{Address: 0x76, Interval: 10 * time.Second} }

func (c *bme280Config) check(_ sensorEnv, report func(field, format string, args ...any)) {
	if c.Address != 0x76 && c.Address != 0x77 {
		report("address", "%#x is not a BME280 address (0x76 or 0x77)", c.Address)
	}
	checkInterval(c.Interval, report)
}

var _ claimer = (*bme280Config)(nil)

// claims: the I2C bus (and with it its pins) and its device node. Several
// sensors share a bus at different addresses, so the device node is no
// conflict.
func (c *bme280Config) claims() []claim {
	if bus, dev := i2cBus(c.I2C); bus != "" {
		return []claim{{field: "i2c", bus: bus}, {field: "i2c", dev: dev, write: true, shared: bus}}
	}
	return nil
}

func (c *bme280Config) open(name string, b buses, _ sensorEnv) (*sensor, error) {
	bus, err := b.i2c(c.I2C)
	if err != nil {
		return nil, err
	}
	open := func() (env.Sensor, error) {
		dev, err := bmxx80.NewI2C(bus, uint16(c.Address), &bmxx80.DefaultOpts)
		if err != nil {
			return nil, fmt.Errorf("bme280 at %#x on I2C %q: %w", c.Address, c.I2C, err)
		}
		return dev, nil
	}
	dev, err := open()
	if err != nil {
		return nil, err
	}
	// reboot-sensors opens it again: chip id, calibration and settings.
	return envSensor(name, env.Channel{Name: name, Kind: env.BME280, Sensor: env.Reinitable(dev, open)}, c.Interval)
}

// ds18b20Config is a 1-wire temperature sensor.
type ds18b20Config struct {
	OneWire  string        `yaml:"onewire"`  // periph 1-wire bus name, "" = first
	Address  uint64        `yaml:"address"`  // the 64-bit ROM code
	Interval time.Duration `yaml:"interval"` // sampling interval, default 10s
}

func newDS18B20Config() sensorConfig { return &ds18b20Config{Interval: 10 * time.Second} }

func (c *ds18b20Config) check(_ sensorEnv, report func(field, format string, args ...any)) {
	if c.Address == 0 {
		report("address", "is missing: the sensor's 64-bit 1-wire ROM code, e.g. 0x28ff4c6a8016032e")
	} else if c.Address&0xff != 0x28 && c.Address>>56 != 0x28 {
		report("address", "%#x is not a DS18B20 ROM code (family 0x28)", c.Address)
	}
	checkInterval(c.Interval, report)
}

func (c *ds18b20Config) open(name string, b buses, _ sensorEnv) (*sensor, error) {
	bus, err := b.onewire(c.OneWire)
	if err != nil {
		return nil, err
	}
	open := func() (env.Sensor, error) {
		dev, err := ds18b20.New(bus, onewire.Address(c.Address), 10)
		if err != nil {
			return nil, fmt.Errorf("ds18b20 %#x: %w", c.Address, err)
		}
		return dev, nil
	}
	dev, err := open()
	if err != nil {
		return nil, err
	}
	// reboot-sensors opens it again: its resolution is written anew.
	return envSensor(name, env.Channel{Name: name, Kind: env.DS18B20, Sensor: env.Reinitable(dev, open)}, c.Interval)
}

func checkInterval(d time.Duration, report func(field, format string, args ...any)) {
	if d < time.Second || d > time.Hour {
		report("interval", "%s must be between 1s and 1h", d)
	}
}

// envSensor is one environmental sensor sampled every interval.
func envSensor(name string, c env.Channel, interval time.Duration) (*sensor, error) {
	src, err := env.New(name, []env.Channel{c}, env.Options{Interval: interval})
	if err != nil {
		return nil, err
	}
	return &sensor{
		source:  src,
		collect: func(ch chan<- prometheus.Metric) { collectEnv(ch, src, name) },
		report: func(w io.Writer) {
			st := src.Stats()
			fmt.Fprintf(w, "     %s: %d reads, %d failed, %d out of range\n", name, st.Samples, st.Errors, st.OutOfRange)
		},
		probe: func(readings, _ int64) error {
			st := src.Stats()
			switch {
			case readings > 0:
				return nil
			case st.Errors > 0:
				return fmt.Errorf("no readings: all %d reads failed (wiring, power or address?)", st.Errors)
			case st.OutOfRange > 0:
				return fmt.Errorf("no readings: all %d values were out of the sensor's range", st.OutOfRange)
			}
			return fmt.Errorf("no readings in %s", probeTime)
		},
	}, nil
}

// The environmental sensors' metrics, labelled sensor.
var (
	envSamples    = prometheus.NewDesc("shelfgate_env_samples_total", "Successful sensor reads.", []string{"sensor"}, nil)
	envReadings   = prometheus.NewDesc("shelfgate_env_readings_total", "Readings emitted.", []string{"sensor"}, nil)
	envErrors     = prometheus.NewDesc("shelfgate_env_errors_total", "Failed reads (unplugged, NACK, CRC).", []string{"sensor"}, nil)
	envOutOfRange = prometheus.NewDesc("shelfgate_env_out_of_range_total", "Readings outside the sensor's range, dropped.", []string{"sensor"}, nil)
	envGlitches   = prometheus.NewDesc("shelfgate_env_glitches_total", "DS18B20 power-on 85 °C values, dropped.", []string{"sensor"}, nil)
)

func collectEnv(ch chan<- prometheus.Metric, src *env.Source, name string) {
	st := src.Stats()
	for d, v := range map[*prometheus.Desc]int64{envSamples: st.Samples, envReadings: st.Readings, envErrors: st.Errors, envOutOfRange: st.OutOfRange, envGlitches: st.Glitches} {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), name)
	}
}
