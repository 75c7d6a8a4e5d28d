package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/shelf"
	"github.com/shelfgate/shelfgate/sensors/calibration"
	"github.com/shelfgate/shelfgate/sensors/loadcell"
)

// hx711Config is a load cell under one bin (type hx711, the default).
type hx711Config struct {
	Bin          string            `yaml:"bin"` // e.g. shelf-01/bin-03
	SKU          string            `yaml:"sku"`
	UnitGrams    float64           `yaml:"unit_grams"`
	LowStock     int               `yaml:"low_stock"`
	InitialUnits int               `yaml:"initial_units"` // stock at start, for the detector's estimate
	Calibration  *hx711Calibration `yaml:"calibration"`
	Mode         string            `yaml:"mode"` // HX711 input and gain: A128 (default), A64 or B32
	Pins         hx711Pins         `yaml:"pins"`
}

// hx711Pins are GPIO names (BCM numbering) or, in simulation, the
// simulator's pin names.
type hx711Pins struct {
	Clk  string `yaml:"clk"`
	Data string `yaml:"data"`
}

// hx711Calibration converts raw codes to grams: grams = (code - Offset) / CountsPerGram.
type hx711Calibration struct {
	Offset        int32   `yaml:"offset"`
	CountsPerGram float64 `yaml:"counts_per_gram"`
}

// hx711Modes maps the config's mode names to loadcell modes.
var hx711Modes = map[string]loadcell.Mode{"A128": loadcell.ModeA128, "A64": loadcell.ModeA64, "B32": loadcell.ModeB32}

func newHX711Config() sensorConfig { return &hx711Config{Mode: "A128"} }

func (c *hx711Config) check(env sensorEnv, report func(field, format string, args ...any)) {
	checkPins(report, []string{"clk", "data"}, []string{c.Pins.Clk, c.Pins.Data})
	if c.UnitGrams <= 0 {
		report("unit_grams", "%v must be above 0", c.UnitGrams)
	}
	if c.Calibration == nil && env.calibrationFile == "" {
		report("calibration", "is missing; run 'shelfctl calibrate' to measure offset and counts_per_gram (or set calibration_file)")
	} else if mode, ok := hx711Modes[c.Mode]; c.Calibration == nil && env.calibrations != nil && ok && c.Bin != "" {
		if key := loadcell.CalibrationKey(c.Bin, mode); !hasCalibration(env.calibrations, key) {
			report("calibration", "is missing and calibration_file %s has no line for bin=%s; run 'shelfctl calibrate --bin %s --mode %s --out %s'", env.calibrationFile, key, c.Bin, c.Mode, env.calibrationFile)
		}
	} else if c.Calibration != nil && c.Calibration.CountsPerGram == 0 {
		report("calibration.counts_per_gram", "must not be 0")
	}
	if c.Bin == "" {
		report("bin", "is empty")
	}
	if _, ok := hx711Modes[c.Mode]; !ok {
		report("mode", "%q is not A128, A64 or B32", c.Mode)
	}
	if c.LowStock < 0 {
		report("low_stock", "%d is negative", c.LowStock)
	}
	if c.InitialUnits < 0 {
		report("initial_units", "%d is negative", c.InitialUnits)
	}
}

func hasCalibration(f *calibration.File, key string) bool {
	_, ok := f.Lookup(key)
	return ok
}

var _ claimer = (*hx711Config)(nil)

// claims: the two pins and the bin.
func (c *hx711Config) claims() []claim {
	cl := []claim{{field: "bin", bin: c.Bin}}
	for _, p := range []struct{ field, pin string }{{"pins.clk", c.Pins.Clk}, {"pins.data", c.Pins.Data}} {
		if pinName(p.pin) == nil {
			cl = append(cl, claim{field: p.field, pin: p.pin})
		}
	}
	return cl
}

func (c *hx711Config) open(name string, b buses, env sensorEnv) (*sensor, error) {
	clk, err := b.pinOut(c.Pins.Clk)
	if err != nil {
		return nil, err
	}
	data, err := b.pinIn(c.Pins.Data)
	if err != nil {
		return nil, err
	}
	// periph's driver, with the clock pin kept so reboot-sensors can
	// power-cycle the chip.
	dev, err := loadcell.NewHX711(clk, data)
	if err != nil {
		return nil, fmt.Errorf("hx711 on %s/%s: %w", c.Pins.Clk, c.Pins.Data, err)
	}
	stream := gateway.StreamID("loadcell/" + c.Bin)
	ch := loadcell.Channel{Stream: stream, ADC: dev, Mode: hx711Modes[c.Mode], Bin: c.Bin}
	if c.Calibration != nil {
		ch.Offset, ch.CountsPerGram = c.Calibration.Offset, c.Calibration.CountsPerGram
	}
	calSource := "inline"
	if c.Calibration == nil {
		calSource = env.calibrationFile
	}
	chans, err := calibrateFromFile(env.calibrationFile, []loadcell.Channel{ch})
	if err != nil {
		return nil, err
	}
	env.logger(name).Debug("load cell opened", "bin", c.Bin, "clk", c.Pins.Clk, "data", c.Pins.Data, "mode", c.Mode,
		"offset", chans[0].Offset, "counts_per_gram", chans[0].CountsPerGram, "calibration", calSource)
	src, err := loadcell.New(name, chans, loadcell.Options{PowerDownHold: b.powerDownHold()})
	if err != nil {
		return nil, err
	}
	labels := []string{name, c.Bin}
	return &sensor{
		source:  src,
		bins:    []shelf.Bin{{Stream: stream, ID: c.Bin, SKU: c.SKU, UnitGrams: c.UnitGrams, LowStockUnits: c.LowStock, InitialUnits: c.InitialUnits}},
		collect: func(ch chan<- prometheus.Metric) { collectLoadcell(ch, src, labels) },
		report: func(w io.Writer) {
			for _, h := range src.Health() {
				state := "healthy"
				if !h.Healthy() {
					state = "fault " + h.Faults.String()
				}
				fmt.Fprintf(w, "     %s: %s, last code %d, %d timeouts, %d glitches\n", h.Stream, state, h.LastCode, h.Timeouts, h.Glitches)
			}
		},
	}, nil
}

// The load cells' metrics, labelled sensor and bin.
var (
	loadcellLabels      = []string{"sensor", "bin"}
	loadcellReadings    = prometheus.NewDesc("shelfgate_loadcell_readings_total", "Readings emitted by the load cell.", loadcellLabels, nil)
	loadcellTimeouts    = prometheus.NewDesc("shelfgate_loadcell_timeouts_total", "HX711 conversions not ready in time.", loadcellLabels, nil)
	loadcellGlitches    = prometheus.NewDesc("shelfgate_loadcell_glitches_total", "Spurious all-ones HX711 codes rejected.", loadcellLabels, nil)
	loadcellErrors      = prometheus.NewDesc("shelfgate_loadcell_errors_total", "HX711 read errors.", loadcellLabels, nil)
	loadcellSaturated   = prometheus.NewDesc("shelfgate_loadcell_saturated_total", "Readings at the end of the HX711 range.", loadcellLabels, nil)
	loadcellSpikes      = prometheus.NewDesc("shelfgate_loadcell_spikes_total", "Single-sample outliers rejected by the spike filter.", loadcellLabels, nil)
	loadcellStale       = prometheus.NewDesc("shelfgate_loadcell_stale_total", "Readings flagged stale (stuck ADC).", loadcellLabels, nil)
	loadcellFaults      = prometheus.NewDesc("shelfgate_loadcell_faults_total", "Load-cell fault episodes entered.", loadcellLabels, nil)
	loadcellFaulty      = prometheus.NewDesc("shelfgate_loadcell_faulty", "1 while the load cell is in a fault state (timeout, stuck, saturated or pin_error).", loadcellLabels, nil)
	loadcellLastReading = prometheus.NewDesc("shelfgate_loadcell_last_reading_timestamp_seconds", "Time of the last reading emitted.", loadcellLabels, nil)
)

// collectLoadcell sends one snapshot of src: one Health per channel. labels
// are the sensor and bin; a source of several channels (a plate's four
// cells) labels each with its channel's bin (plate-01/c0), or the samples
// would collide and /metrics would fail as a whole.
func collectLoadcell(ch chan<- prometheus.Metric, src *loadcell.Source, labels []string) {
	hs := src.Health()
	for _, h := range hs {
		labels := labels
		if len(hs) > 1 {
			labels = []string{labels[0], strings.TrimPrefix(string(h.Stream), "loadcell/")}
		}
		counter := func(d *prometheus.Desc, v int64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
		}
		counter(loadcellReadings, h.Readings)
		counter(loadcellTimeouts, h.Timeouts)
		counter(loadcellGlitches, h.Glitches)
		counter(loadcellErrors, h.Errors)
		counter(loadcellSaturated, h.Saturated)
		counter(loadcellSpikes, h.Spikes)
		counter(loadcellStale, h.Stale)
		counter(loadcellFaults, h.Episodes)
		faulty := 0.0
		if !h.Healthy() {
			faulty = 1
		}
		ch <- prometheus.MustNewConstMetric(loadcellFaulty, prometheus.GaugeValue, faulty, labels...)
		if !h.LastReading.IsZero() {
			ch <- prometheus.MustNewConstMetric(loadcellLastReading, prometheus.GaugeValue, float64(h.LastReading.UnixNano())/1e9, labels...)
		}
	}
}

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
