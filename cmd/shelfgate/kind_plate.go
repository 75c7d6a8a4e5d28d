package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"periph.io/x/conn/v3/gpio"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/classify"
	"github.com/shelfgate/shelfgate/gateway/metrics"
	"github.com/shelfgate/shelfgate/sensors/loadcell"
)

// plateConfig is a shelf plate on four HX711 load cells that share one
// clock line (type plate). The shared clock is declared here, as the
// plate's group: pins.clk drives all four chips, pins.data names each
// chip's DOUT (front-left, front-right, back-left, back-right).
type plateConfig struct {
	Plate       string             `yaml:"plate"` // e.g. plate-01
	WidthMM     float64            `yaml:"width_mm"`
	DepthMM     float64            `yaml:"depth_mm"`
	SampleRate  float64            `yaml:"sample_rate"` // the HX711s' rate: 10 (default) or 80
	Mode        string             `yaml:"mode"`        // A128 (default), A64 or B32
	Pins        platePins          `yaml:"pins"`
	Calibration []hx711Calibration `yaml:"calibration"` // one per cell, in pin order
	Facings     []plateFacing      `yaml:"facings"`
	Classifier  plateClassifier    `yaml:"classifier"`
	// Scanner names the scanner sensor of the picker at this plate: its
	// scans are pick-list lines the plate's picks are checked against.
	Scanner string `yaml:"scanner"`
	// Reader names the RFID reader where that picker's tote is presented.
	Reader string `yaml:"reader"`
}

type platePins struct {
	Clk  string   `yaml:"clk"`  // shared by the four chips
	Data []string `yaml:"data"` // four DOUT pins
}

type plateFacing struct {
	SKU       string  `yaml:"sku"`
	UnitGrams float64 `yaml:"unit_grams"`
	XMM       float64 `yaml:"x_mm"`
	YMM       float64 `yaml:"y_mm"`
}

// plateClassifier chooses what identifies the plate's changes. Until
// gateway/config has a gateway-wide classifier section, it lives here.
type plateClassifier struct {
	Mode        string   `yaml:"mode"`         // analytic (default), model or shadow
	Model       string   `yaml:"model"`        // model file, for model and shadow
	TrustedKeys []string `yaml:"trusted_keys"` // hex ed25519 public keys; empty: signature not required
}

func newPlateConfig() sensorConfig {
	return &plateConfig{SampleRate: 10, Mode: "A128", Classifier: plateClassifier{Mode: "analytic"}}
}

var _ claimer = (*plateConfig)(nil)

// claims: the shared clock, the four data pins and the plate (as its bin).
// The clock is shared only among the plate's own four chips, which this one
// entry declares; any other sensor on it is a clash.
func (c *plateConfig) claims() []claim {
	cl := []claim{{field: "plate", bin: c.Plate}}
	if pinName(c.Pins.Clk) == nil {
		cl = append(cl, claim{field: "pins.clk", pin: c.Pins.Clk})
	}
	for i, p := range c.Pins.Data {
		if pinName(p) == nil {
			cl = append(cl, claim{field: fmt.Sprintf("pins.data[%d]", i), pin: p})
		}
	}
	return cl
}

func (c *plateConfig) check(env sensorEnv, report func(field, format string, args ...any)) {
	if c.Plate == "" {
		report("plate", "is empty")
	}
	if len(c.Pins.Data) != 4 {
		report("pins.data", "has %d pins; a plate has 4 cells (front-left, front-right, back-left, back-right)", len(c.Pins.Data))
	}
	keys := []string{"clk"}
	for i := range c.Pins.Data {
		keys = append(keys, fmt.Sprintf("data[%d]", i))
	}
	checkPins(report, keys, append([]string{c.Pins.Clk}, c.Pins.Data...))
	if !(c.WidthMM > 0) || !(c.DepthMM > 0) {
		report("width_mm", "%v × depth_mm %v: both must be above 0", c.WidthMM, c.DepthMM)
	}
	if c.SampleRate != 10 && c.SampleRate != 80 {
		report("sample_rate", "%v is not an HX711 rate (10 or 80)", c.SampleRate)
	}
	if _, ok := hx711Modes[c.Mode]; !ok {
		report("mode", "%q is not A128, A64 or B32", c.Mode)
	}
	if len(c.Calibration) != 4 {
		report("calibration", "has %d entries, want one per cell (4)", len(c.Calibration))
	}
	for i, cal := range c.Calibration {
		if cal.CountsPerGram == 0 {
			report(fmt.Sprintf("calibration[%d].counts_per_gram", i), "must not be 0")
		}
	}
	if len(c.Facings) == 0 || len(c.Facings) > classify.MaxFacings {
		report("facings", "has %d facings, want 1 to %d", len(c.Facings), classify.MaxFacings)
	}
	for i, f := range c.Facings {
		if f.SKU == "" {
			report(fmt.Sprintf("facings[%d].sku", i), "is empty")
		}
		if !(f.UnitGrams > 0) {
			report(fmt.Sprintf("facings[%d].unit_grams", i), "%v must be above 0", f.UnitGrams)
		}
		if f.XMM < 0 || f.XMM > c.WidthMM || f.YMM < 0 || f.YMM > c.DepthMM {
			report(fmt.Sprintf("facings[%d]", i), "position (%v, %v) mm is off the %v × %v mm plate", f.XMM, f.YMM, c.WidthMM, c.DepthMM)
		}
	}
	if _, err := classify.ParseMode(c.Classifier.Mode); err != nil {
		report("classifier.mode", "%v", err)
	} else if c.Classifier.Mode != string(classify.ModeAnalytic) && c.Classifier.Model == "" {
		report("classifier.model", "is empty; classifier %s needs a model file (configs/models/plate.sgm)", c.Classifier.Mode)
	}
	if _, err := c.trustedKeys(); err != nil {
		report("classifier.trusted_keys", "%v", err)
	}
}

func (c *plateConfig) trustedKeys() ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	for i, k := range c.Classifier.TrustedKeys {
		b, err := hex.DecodeString(k)
		if err != nil || len(b) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("[%d] %q is not a hex ed25519 public key (%d bytes)", i, k, ed25519.PublicKeySize)
		}
		keys = append(keys, b)
	}
	return keys, nil
}

// plateSource is a plate's load-cell source together with what the
// classifier chain needs to know of the plate.
type plateSource struct {
	*loadcell.Source
	plate  classify.Plate
	rate   float64
	conf   *plateConfig
	group  *loadcell.Group
	picker *classify.Picker
}

func (c *plateConfig) open(name string, b buses, env sensorEnv) (*sensor, error) {
	clk, err := b.pinOut(c.Pins.Clk)
	if err != nil {
		return nil, err
	}
	var data []gpio.PinIn
	for _, p := range c.Pins.Data {
		d, err := b.pinIn(p)
		if err != nil {
			return nil, err
		}
		data = append(data, d)
	}
	mode := hx711Modes[c.Mode]
	g, err := loadcell.NewGroup(clk, data, mode)
	if err != nil {
		return nil, fmt.Errorf("plate %s on %s/%v: %w", c.Plate, c.Pins.Clk, c.Pins.Data, err)
	}
	p := classify.Plate{ID: c.Plate, Stream: gateway.StreamID("loadcell/" + c.Plate), WidthMM: c.WidthMM, DepthMM: c.DepthMM}
	var chans []loadcell.Channel
	for i := range 4 {
		s := gateway.StreamID(fmt.Sprintf("loadcell/%s/c%d", c.Plate, i))
		p.Cells[i] = s
		chans = append(chans, loadcell.Channel{Stream: s, ADC: g.Channel(i), Mode: mode, Bin: fmt.Sprintf("%s/c%d", c.Plate, i),
			Offset: c.Calibration[i].Offset, CountsPerGram: c.Calibration[i].CountsPerGram})
	}
	for _, f := range c.Facings {
		p.Facings = append(p.Facings, classify.Facing{SKU: f.SKU, UnitGrams: f.UnitGrams, XMM: f.XMM, YMM: f.YMM})
	}
	// The four cells of a lockstep read are one sample of the plate: no
	// cell may lose a reading the others keep. The Source's spike filter
	// drops a cell's reading it judges a spike (a hand's press on one
	// corner often is one, at 250 g in one sample), and the PlateDetector
	// pairs the cells' readings by time: at real time it then drops the
	// other three readings of that sample (the model's window loses a
	// sample), and whenever the readings' stamps are closer than half a
	// sample period (the simulation at 5× and faster) it pairs that cell
	// with the next conversion of the others from then on, shifting the
	// cell in every later window. evaluate.Windows, which cuts the
	// training windows, has no spike filter either: the plate detector
	// judges disturbances on the whole plate (still windows, the rigid
	// load test). See docs/inference.md, "Training/serving parity".
	opts := plateSourceOptions()
	opts.PowerDownHold = b.powerDownHold()
	src, err := loadcell.New(name, chans, opts)
	if err != nil {
		return nil, err
	}
	ps := &plateSource{Source: src, plate: p, rate: c.SampleRate, conf: c, group: g}
	if c.Scanner != "" {
		ps.picker = &classify.Picker{Scanner: gateway.StreamID("scanner/" + c.Scanner), Plates: []string{c.Plate}}
		if c.Reader != "" {
			ps.picker.Reader = gateway.StreamID("rfid/" + c.Reader)
		}
	}
	labels := []string{name, c.Plate}
	return &sensor{
		source:  ps,
		collect: func(ch chan<- prometheus.Metric) { collectLoadcell(ch, src, labels) },
		report: func(w io.Writer) {
			fmt.Fprintf(w, "     plate %s: %d lockstep reads on clock %s\n", c.Plate, g.Reads(), c.Pins.Clk)
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

// plateSourceOptions are the loadcell.Source options of a plate's four
// cells: no spike filter (see open).
func plateSourceOptions() loadcell.Options {
	return loadcell.Options{Timeout: time.Second, SpikeGrams: -1}
}

// plateChain is the part of the classifier chain for the plates in ss: one
// PlateDetector per sample rate, then MisPick when any plate names its
// picker's scanner. It returns the model holder (nil without a model) so
// the status can report its version, and the stats for /metrics.
func plateChain(ctx context.Context, ss *sensorSet) (links []gateway.Classifier, holder *classify.Holder, stats *plateStats, err error) {
	byRate := map[float64][]*plateSource{}
	var rates []float64
	for _, s := range ss.sensors {
		if ps, ok := s.source.(*plateSource); ok {
			if byRate[ps.rate] == nil {
				rates = append(rates, ps.rate)
			}
			byRate[ps.rate] = append(byRate[ps.rate], ps)
		}
	}
	if len(rates) == 0 {
		return nil, nil, nil, nil
	}
	stats = &plateStats{}
	var pickers []classify.Picker
	for _, rate := range rates {
		pss := byRate[rate]
		// One classifier setting per rate group: the first plate's (the
		// configuration check cannot see across sensors; see
		// docs/inference.md for what belongs in gateway/config).
		conf := pss[0].conf.Classifier
		mode, _ := classify.ParseMode(conf.Mode)
		cfg := classify.Config{Rate: rate, RingRate: classify.ModelRate, Stats: &stats.Stats}
		for _, ps := range pss {
			cfg.Plates = append(cfg.Plates, ps.plate)
			if ps.picker != nil {
				pickers = append(pickers, *ps.picker)
			}
		}
		if mode != classify.ModeAnalytic && holder == nil {
			keys, err := pss[0].conf.trustedKeys()
			if err != nil {
				return nil, nil, nil, err
			}
			l, err := classify.LoadFile(ctx, conf.Model, keys)
			if err != nil {
				return nil, nil, nil, err
			}
			holder = classify.NewHolder(l)
		}
		switch mode {
		case classify.ModeAnalytic:
			cfg.Primary = classify.Analytic{}
		case classify.ModeModel:
			cfg.Primary, cfg.Shadow = classify.NewModelID(holder, len(cfg.Plates)), classify.Analytic{}
		case classify.ModeShadow:
			cfg.Primary, cfg.Shadow = classify.Analytic{}, classify.NewModelID(holder, len(cfg.Plates))
		case classify.ModeGated:
			cfg.Primary = classify.Gated{Gate: classify.NewModelID(holder, len(cfg.Plates)), Namer: classify.Analytic{}}
		}
		// Keep the model windows of recent changes, so a pick confirmed
		// by a scan or corrected by an operator becomes a labelled sample
		// with the window it was decided on (commands_samples.go).
		rec := classify.NewWindowRecorder(cfg.Primary, sampleWindowsKept)
		cfg.Primary = rec
		stats.windows = append(stats.windows, rec)
		det, err := classify.NewPlateDetector(cfg)
		if err != nil {
			return nil, nil, nil, err
		}
		links = append(links, det)
	}
	if len(pickers) > 0 {
		mp, err := classify.NewMisPick(classify.MisPickConfig{Pickers: pickers})
		if err != nil {
			return nil, nil, nil, err
		}
		stats.mispick = mp
		links = append(links, mp)
	}
	return links, holder, stats, nil
}

// plateStats are the plates' inference counts, for /metrics, and the
// recorders of their recent model windows, for samples.
type plateStats struct {
	classify.Stats
	mispick *classify.MisPick
	windows windowSet
}

// sampleWindowsKept is how many recent change windows each plate keeps for
// labelling samples.
const sampleWindowsKept = 64

// windowSet finds a change's window in any of the rate groups' recorders.
type windowSet []*classify.WindowRecorder

func (ws windowSet) Window(plate string, at time.Time) ([]float32, float64, bool) {
	for _, w := range ws {
		if x, rate, ok := w.Window(plate, at); ok {
			return x, rate, true
		}
	}
	return nil, 0, false
}

// sampleWindows is where samples find their windows: nil without plates.
func (st *plateStats) sampleWindows() windowSource {
	if st == nil || len(st.windows) == 0 {
		return nil
	}
	return st.windows
}

var (
	inferLatency  = desc("inference_latency_seconds", "Features and identifiers per settled plate change.")
	inferTotal    = desc("inferences_total", "Settled plate changes identified.")
	inferLow      = desc("inference_low_confidence_total", "Identifications below the low-confidence threshold (0.6).")
	inferClass    = desc("inference_class_total", "Identifications by deciding classifier and class (facing index or none).", "classifier", "class")
	inferDisagree = desc("inference_shadow_disagreements_total", "Changes where the shadow classifier named another facing.")
	plateSettle   = desc("plate_settle_total", "Plate changes by the path that settled or held them: degraded (events reported with one cell out), shaken (changes settled through vibration), vibration (settled windows held back as the plate's vibration), followed (changes no single load explained, followed by the level without an event).", "path")
	mispickJudged = desc("mispick_judged_total", "Picks compared with an open pick-list line.")
	mispickTotal  = desc("mispick_total", "Mis-picks raised.")
)

// plateCollector exports st.
func plateCollector(st *plateStats) metrics.Collector {
	return metrics.CollectorFunc(func(ch chan<- prometheus.Metric) error {
		s := st.Snapshot()
		buckets := map[float64]uint64{}
		var cum uint64
		for i, ub := range classify.LatencyBuckets {
			cum += uint64(s.Buckets[i])
			buckets[ub] = cum
		}
		h, err := prometheus.NewConstHistogram(inferLatency, uint64(s.Inferences), s.SumSeconds, buckets)
		if err != nil {
			return err
		}
		ch <- h
		counter(ch, inferTotal, s.Inferences)
		counter(ch, inferLow, s.LowConfidence)
		counter(ch, inferDisagree, s.Disagreements)
		counter(ch, plateSettle, s.Degraded, "degraded")
		counter(ch, plateSettle, s.Shaken, "shaken")
		counter(ch, plateSettle, s.Vibration, "vibration")
		counter(ch, plateSettle, s.Followed, "followed")
		for k, name := range []string{"analytic", "model"} {
			for f, n := range s.Classes[k] {
				if n == 0 {
					continue
				}
				class := fmt.Sprint(f)
				if f == classify.MaxFacings {
					class = "none"
				}
				counter(ch, inferClass, n, name, class)
			}
		}
		if st.mispick != nil {
			ms := st.mispick.Stats()
			counter(ch, mispickJudged, ms.Judged)
			counter(ch, mispickTotal, ms.MisPicks)
		}
		return nil
	})
}

// withModel reports the serving plate model's name and version in the
// status instead of "none".
func withModel(birth func() map[string]any, h *classify.Holder) func() map[string]any {
	if h == nil {
		return birth
	}
	return func() map[string]any {
		b := birth()
		l := h.Load()
		b["model"] = fmt.Sprintf("%s v%d", l.M.Name, l.Version)
		return b
	}
}

// withPlateMetrics registers the plates' inference collector on ms.
func withPlateMetrics(ms *metrics.Server, st *plateStats) *metrics.Server {
	if st != nil {
		ms.Register("inference", plateCollector(st))
	}
	return ms
}
