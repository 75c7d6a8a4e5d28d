package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/warehouse"
	"github.com/shelfgate/shelfgate/gateway/classify"
	"github.com/shelfgate/shelfgate/gateway/classify/evaluate"
	"github.com/shelfgate/shelfgate/model/features"
	"github.com/shelfgate/shelfgate/model/train"
)

const evalUsage = `shelfctl eval [--classifier analytic|model|gated|both|shadow] [--model FILE] [--duration D] [--seed N] [--json FILE] [--chip-filter none|sinc4] scenario.yaml...
shelfctl eval --bus [--bus-period 5ms | --bus-speed X] [--bus-glitch] [...] scenario.yaml...   (through simulated HX711 buses, beside the direct path)
shelfctl eval --trace FILE.csv [--classifier ...] scenario.yaml   (a recorded trace; the scenario names the plates)
shelfctl eval --windows OUT.sgds [--duration D] scenario.yaml...   (training windows for make model)
`

// evalCmd scores the plate classifiers on scenarios: see
// gateway/classify/evaluate and docs/inference.md.
func evalCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	which := fs.String("classifier", "both", "analytic, model, both (analytic and model), float (needs --float), all (analytic, model, float) or shadow")
	floatPath := fs.String("float", "", "float model (JSON from shelfctl model train) the int8 model was quantized from, for --classifier float|all")
	modelPath := fs.String("model", "configs/models/plate.sgm", "plate model file")
	dur := fs.Duration("duration", time.Hour, "simulated time per scenario")
	seed := fs.Uint64("seed", 1, "seed of the synthetic pick-list scans")
	jsonOut := fs.String("json", "", "write the JSON report here")
	settle := fs.Duration("settle", 0, "settle window (0: classify.DefaultSettle)")
	tracePath := fs.String("trace", "", "score a recorded trace (docs/trace-format.md) instead of simulating; one scenario file gives its plates")
	windows := fs.String("windows", "", "write training windows (dataset file) here instead of scoring")
	bus := fs.Bool("bus", false, "also score through the bus-level path (hx711sim groups, loadcell.Group and Source) and print it against the direct path; --duration defaults to 10m")
	busSpeed := fs.Float64("bus-speed", 0, "with --bus: simulated seconds per wall second (0: from --bus-period)")
	busPeriod := fs.Duration("bus-period", evaluate.DefaultBusPeriod, "with --bus: wall-clock time per HX711 conversion when --bus-speed is 0")
	busGlitch := fs.Bool("bus-glitch", false, "with --bus: every chip's DOUT glitches low once after each read (the sources must reject the all-ones codes)")
	chipFilter := fs.String("chip-filter", "", "none or sinc4: set plates.chip_filter of every scenario (the HX711's own filter, configs/scenarios/README.md) and add -<filter> to its name; empty: as each file says")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: eval: no scenario files\n%s", errUsage, evalUsage)
	}
	if *bus {
		durSet := false
		fs.Visit(func(f *flag.Flag) { durSet = durSet || f.Name == "duration" })
		if !durSet {
			*dur = 10 * time.Minute
		}
		if *tracePath != "" || *windows != "" {
			return fmt.Errorf("%w: eval: --bus simulates the scenarios; it does not take --trace or --windows", errUsage)
		}
		if *busSpeed != 0 && !(*busSpeed >= 1) || *busPeriod <= 0 {
			return fmt.Errorf("%w: eval: --bus-speed %v must be at least 1 (or 0) and --bus-period %v above 0", errUsage, *busSpeed, *busPeriod)
		}
	}
	if *dur <= 10*time.Second {
		return fmt.Errorf("%w: eval: --duration %v must be above 10s", errUsage, *dur)
	}
	switch *chipFilter {
	case "", "none", warehouse.ChipFilterSinc4:
	default:
		return fmt.Errorf("%w: eval: --chip-filter %q: want none or %s", errUsage, *chipFilter, warehouse.ChipFilterSinc4)
	}
	if *chipFilter != "" && *tracePath != "" {
		return fmt.Errorf("%w: eval: --chip-filter simulates the chip; a --trace was recorded through one", errUsage)
	}
	if *tracePath != "" && fs.NArg() != 1 {
		return fmt.Errorf("%w: eval: --trace takes one scenario file (the plates' geometry, facings and calibration), got %d", errUsage, fs.NArg())
	}
	type scen struct {
		name string
		cfg  warehouse.Config
	}
	var scens []scen
	for _, p := range fs.Args() {
		cfg, err := warehouse.LoadScenario(p)
		if err != nil {
			return fmt.Errorf("eval: %w", err)
		}
		name := strings.TrimSuffix(filepath.Base(p), ".yaml")
		if *chipFilter != "" {
			cfg.Plates.ChipFilter = *chipFilter
			name += "-" + *chipFilter
		}
		scens = append(scens, scen{name, cfg})
	}
	if *windows != "" {
		var parts []*features.Dataset
		for _, s := range scens {
			d, err := evaluate.Windows(ctx, evaluate.Options{Name: s.name, Config: s.cfg, Duration: *dur})
			if err != nil {
				return fmt.Errorf("eval: windows of %s: %w", s.name, err)
			}
			fmt.Fprintf(stdout, "# %s: %d windows %v\n", s.name, len(d.X), d.Counts())
			parts = append(parts, d)
		}
		d, err := features.Merge(parts...)
		if err != nil {
			return fmt.Errorf("eval: windows: %w", err)
		}
		b, err := d.MarshalBinary()
		if err != nil {
			return fmt.Errorf("eval: windows: %w", err)
		}
		return os.WriteFile(*windows, b, 0o644)
	}
	var modes []classify.Mode
	switch *which {
	case "analytic", "model", "shadow", "gated":
		modes = []classify.Mode{classify.Mode(*which)}
	case "both":
		modes = []classify.Mode{classify.ModeAnalytic, classify.ModeModel}
	case "float":
		modes = []classify.Mode{evaluate.ModeFloat}
	case "all":
		modes = []classify.Mode{classify.ModeAnalytic, classify.ModeModel, classify.ModeGated, evaluate.ModeFloat}
	default:
		return fmt.Errorf("%w: eval: --classifier %q: want analytic, model, gated, both, float, all or shadow", errUsage, *which)
	}
	var fm *train.MLP
	if *which == "float" || *which == "all" {
		if *floatPath == "" {
			return fmt.Errorf("%w: eval: --classifier %s needs --float FILE", errUsage, *which)
		}
		f, err := os.Open(*floatPath)
		if err != nil {
			return fmt.Errorf("eval: %w", err)
		}
		fm, err = train.LoadMLP(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("eval: float model %s: %w", *floatPath, err)
		}
	}
	var holder *classify.Holder
	if *which != "analytic" && *which != "float" {
		l, err := classify.LoadFile(ctx, *modelPath, nil)
		if err != nil {
			return fmt.Errorf("eval: %w", err)
		}
		holder = classify.NewHolder(l)
		fmt.Fprintf(stdout, "# model %s: %q version %d, %d classes, sha256 %x\n", *modelPath, l.M.Name, l.Version, l.M.Classes(), l.M.Digest)
	}
	var reports []*evaluate.Report
	if *tracePath != "" {
		if len(scens) != 1 {
			return fmt.Errorf("%w: eval: --trace takes one scenario file (the plates' geometry, facings and calibration), got %d", errUsage, len(scens))
		}
		for _, m := range modes {
			f, err := os.Open(*tracePath)
			if err != nil {
				return fmt.Errorf("eval: %w", err)
			}
			rep, err := evaluate.RunTrace(ctx, evaluate.Options{Name: filepath.Base(*tracePath), Config: scens[0].cfg, Mode: m, Holder: holder, Float: fm, Settle: *settle}, f)
			f.Close()
			if err != nil {
				return fmt.Errorf("eval: %s (%s): %w", *tracePath, m, err)
			}
			reports = append(reports, rep)
			printFigures(stdout, rep)
		}
		scens = nil
	}
	if *bus {
		var out []busReport
		for _, s := range scens {
			o := evaluate.Options{Name: s.name, Config: s.cfg, Duration: *dur, Holder: holder, Float: fm, Seed: *seed, Settle: *settle}
			br := busReport{Scenario: s.name}
			for _, m := range modes {
				o.Mode = m
				rep, err := evaluate.Run(ctx, o)
				if err != nil {
					return fmt.Errorf("eval: %s (%s): %w", s.name, m, err)
				}
				br.Direct = append(br.Direct, rep)
			}
			var err error
			br.Bus, br.Stats, err = evaluate.RunBus(ctx, o, modes, evaluate.BusOptions{Speed: *busSpeed, Period: *busPeriod, Glitches: *busGlitch})
			if err != nil {
				return fmt.Errorf("eval: %s on the bus: %w", s.name, err)
			}
			printBusFigures(stdout, br)
			out = append(out, br)
		}
		if *jsonOut != "" {
			return writeJSON(*jsonOut, out)
		}
		return nil
	}
	for _, s := range scens {
		for _, m := range modes {
			rep, err := evaluate.Run(ctx, evaluate.Options{Name: s.name, Config: s.cfg, Duration: *dur, Mode: m, Holder: holder, Float: fm, Seed: *seed, Settle: *settle})
			if err != nil {
				return fmt.Errorf("eval: %s (%s): %w", s.name, m, err)
			}
			reports = append(reports, rep)
			printFigures(stdout, rep)
		}
	}
	if *jsonOut != "" {
		return writeJSON(*jsonOut, reports)
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// busReport is one scenario of eval --bus: the direct and the bus path's
// reports, one per mode, in the same order.
type busReport struct {
	Scenario string             `json:"scenario"`
	Direct   []*evaluate.Report `json:"direct"`
	Bus      []*evaluate.Report `json:"bus"`
	Stats    *evaluate.BusStats `json:"bus_stats"`
}

// metric is one figure of a report with the target for it.
type metric struct {
	name   string
	value  float64
	unit   string
	target float64
}

func metrics(r *evaluate.Report) []metric {
	return []metric{
		{"event_f1", r.F1, "ratio", 0.98},
		{"event_precision", r.Precision, "ratio", 0.98},
		{"event_recall", r.Recall, "ratio", 0.98},
		{"sku_accuracy", r.SKUAccuracy, "ratio", 0.97},
		{"exact_quantity", r.ExactQuantity, "ratio", 0.97},
		{"mispick_precision", r.MisPickPrec, "ratio", 0.95},
		{"mispick_recall", r.MisPickRecall, "ratio", 0.99},
		{"latency_p50", r.LatencyP50Ms, "ms", 300},
		{"latency_p99", r.LatencyP99Ms, "ms", 300},
		{"inference_mean", r.InferMeanUs, "us", 1000},
	}
}

// ratio is v/base, 0 when base is 0.
func ratio(v, base float64) float64 {
	if base == 0 {
		return 0
	}
	return v / base
}

// printBusFigures prints the bus path's figures with the direct path's as
// their baselines (ratio = bus/direct).
func printBusFigures(w io.Writer, br busReport) {
	st := br.Stats
	fmt.Fprintf(w, "# bus %s: speed %g, %.1f s wall; %d conversions, %d missed (%.2f %%, longest gap %.0f ms simulated, %d labels within 1 s of a gap ≥ %v), %d lockstep reads, %d spurious chip reads, %d glitches rejected, %d spikes, %d timeouts, %d fault events\n",
		br.Scenario, st.Speed, st.WallSeconds, st.Conversions, st.Missed(), 100*ratio(float64(st.Missed()), float64(st.Conversions)), st.MaxGapMs, st.Disturbed, evaluate.DisturbingGap, st.LockstepReads, st.Spurious, st.Glitches, st.Spikes, st.Timeouts, st.FaultEvents)
	for i, b := range br.Bus {
		d := br.Direct[i]
		name := strings.ReplaceAll(b.Scenario, "-", "_") + "_" + b.Classifier
		fmt.Fprintf(w, "# %s %s: bus %d labels, %d events, %d matched; direct %d events, %d matched\n", b.Scenario, b.Classifier, b.Labels, b.Events, b.Matched, d.Events, d.Matched)
		dm := metrics(d)
		for k, m := range metrics(b) {
			if m.name == "inference_mean" {
				continue // wall clock, and the bus run's cores are busy simulating
			}
			fmt.Fprintf(w, "FIGURE eval_bus_%s_%s=%.4g unit=%s baseline=%.4g ratio=%.3f\n", name, m.name, m.value, m.unit, dm[k].value, ratio(m.value, dm[k].value))
		}
	}
}

// printFigures prints one report as FIGURE lines; the baselines are the
// issue's targets.
func printFigures(w io.Writer, r *evaluate.Report) {
	name := strings.ReplaceAll(r.Scenario, "-", "_") + "_" + r.Classifier
	fmt.Fprintf(w, "# %s %s: %d labels, %d events, %d matched, %d mis-picks true, %d raised\n", r.Scenario, r.Classifier, r.Labels, r.Events, r.Matched, r.MisPickTruth, r.MisPickEvents)
	for _, m := range metrics(r) {
		fmt.Fprintf(w, "FIGURE eval_%s_%s=%.4g unit=%s baseline=%g ratio=%.3f\n", name, m.name, m.value, m.unit, m.target, ratio(m.value, m.target))
	}
}
