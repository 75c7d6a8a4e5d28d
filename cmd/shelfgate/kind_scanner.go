package main

import (
	"fmt"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelfgate/shelfgate/sensors/scanner"
)

// scannerConfig is a barcode scanner: a USB-CDC serial port or an evdev
// keyboard wedge.
type scannerConfig struct {
	Port   string `yaml:"port"`   // /dev/ttyACM0 or /dev/serial/by-id/...
	Baud   int    `yaml:"baud"`   // default 9600
	Suffix string `yaml:"suffix"` // CR (default), LF or CRLF
	Input  string `yaml:"input"`  // /dev/input/by-id/...-event-kbd (instead of port)
	// Layout is the keyboard layout an input (keyboard-wedge) scanner types
	// on: us (default), de or fr.
	Layout string `yaml:"layout"`
}

func newScannerConfig() sensorConfig { return &scannerConfig{Baud: 9600, Suffix: "CR"} }

func (c *scannerConfig) check(_ sensorEnv, report func(field, format string, args ...any)) {
	switch {
	case c.Port == "" && c.Input == "":
		report("port", "is empty: set port (USB-CDC serial, e.g. /dev/ttyACM0) or input (evdev keyboard wedge)")
	case c.Port != "" && c.Input != "":
		report("input", "set either port or input, not both")
	}
	if c.Baud < 300 || c.Baud > 4000000 {
		report("baud", "%d must be between 300 and 4000000", c.Baud)
	}
	if _, err := scanner.ParseSuffix(c.Suffix); err != nil {
		report("suffix", "%q is not CR, LF or CRLF", c.Suffix)
	}
	if _, err := scanner.ParseLayout(c.Layout); err != nil {
		report("layout", "%q is not us, de or fr", c.Layout)
	} else if c.Layout != "" && c.Layout != "us" && c.Input == "" {
		report("layout", "applies to keyboard-wedge scanners (input:) only; a serial scanner sends characters, not keys")
	}
}

var _ claimer = (*scannerConfig)(nil)

// claims: the serial port (and the header UART's pins when it is the
// UART) or the input device.
func (c *scannerConfig) claims() []claim {
	switch {
	case c.Port != "":
		return []claim{{field: "port", dev: c.Port, write: true, bus: uartBus(c.Port)}}
	case c.Input != "":
		return []claim{{field: "input", dev: c.Input}}
	}
	return nil
}

// open needs no bus: a serial port or input device is opened by path (in
// simulation, the simulator's pseudo-terminal).
func (c *scannerConfig) open(name string, _ buses, env sensorEnv) (*sensor, error) {
	suffix, err := scanner.ParseSuffix(c.Suffix)
	if err != nil {
		return nil, err
	}
	open := scanner.Serial(c.Port, c.Baud)
	if c.Input != "" {
		layout, err := scanner.ParseLayout(c.Layout)
		if err != nil {
			return nil, err
		}
		open = scanner.EvdevLayout(c.Input, 0, true, layout)
	}
	log := env.logger(name)
	device := c.Port + c.Input
	src, err := scanner.New(name, open, scanner.Options{Suffix: suffix,
		// The first failure of a run of retries is a warning; the rest,
		// once a second while the scanner stays unplugged, are debug.
		Retrying: func(err error, attempt int64, wait time.Duration) {
			if attempt == 1 {
				log.Warn("scanner unavailable; retrying until it is back", "device", device, "err", err, "retry_in", wait)
			} else {
				log.Debug("scanner still unavailable", "device", device, "err", err, "attempt", attempt, "retry_in", wait)
			}
		},
		Recovered: func(retries int64) { log.Info("scanner back", "device", device, "retries", retries) },
	})
	if err != nil {
		return nil, err
	}
	return &sensor{
		source:  src,
		collect: func(ch chan<- prometheus.Metric) { collectScanner(ch, src, name) },
		report: func(w io.Writer) {
			st := src.Stats()
			fmt.Fprintf(w, "     %s: %d opens, %d failed opens, %d retries, %d bytes, %d scans, %d frames rejected\n", src.Stream(), st.Opens, st.OpenErrors, st.Retries, st.Bytes, st.Scans, st.RejectedTotal())
		},
		// No scans is normal (nobody scanned); a device that never opened is not.
		probe: func(_, _ int64) error {
			if src.Stats().Opens == 0 {
				if err := src.LastError(); err != nil {
					return fmt.Errorf("device %s cannot be opened: %w", device, err)
				}
				return fmt.Errorf("device %s was not opened", device)
			}
			return nil
		},
	}, nil
}

// The scanners' metrics, labelled sensor.
var (
	scannerScans      = prometheus.NewDesc("shelfgate_scanner_scans_total", "Codes accepted.", []string{"sensor"}, nil)
	scannerBytes      = prometheus.NewDesc("shelfgate_scanner_bytes_total", "Bytes read from the scanner.", []string{"sensor"}, nil)
	scannerOpens      = prometheus.NewDesc("shelfgate_scanner_opens_total", "Successful opens of the device.", []string{"sensor"}, nil)
	scannerOpenErrors = prometheus.NewDesc("shelfgate_scanner_open_errors_total", "Failed opens (scanner unplugged).", []string{"sensor"}, nil)
	scannerReadErrors = prometheus.NewDesc("shelfgate_scanner_read_errors_total", "Reads that failed (scanner unplugged while open).", []string{"sensor"}, nil)
	scannerRetries    = prometheus.NewDesc("shelfgate_scanner_retries_total", "Waits before reopening the device after an open or read error.", []string{"sensor"}, nil)
	scannerRejected   = prometheus.NewDesc("shelfgate_scanner_rejected_total", "Frames rejected, by reason.", []string{"sensor", "reason"}, nil)
)

func collectScanner(ch chan<- prometheus.Metric, src *scanner.Source, name string) {
	st := src.Stats()
	for d, v := range map[*prometheus.Desc]int64{scannerScans: st.Scans, scannerBytes: st.Bytes, scannerOpens: st.Opens, scannerOpenErrors: st.OpenErrors, scannerReadErrors: st.ReadErrors, scannerRetries: st.Retries} {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), name)
	}
	for r, v := range st.Rejected {
		if scanner.Reason(r) == scanner.ReasonOK {
			continue
		}
		ch <- prometheus.MustNewConstMetric(scannerRejected, prometheus.CounterValue, float64(v), name, scanner.Reason(r).String())
	}
}
