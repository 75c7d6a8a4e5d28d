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

const evalUsage = `shelfctl eval [--classifier analytic|model|both|shadow] [--model FILE] [--duration D] [--seed N] [--json FILE] scenario.yaml...
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
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: eval: no scenario files\n%s", errUsage, evalUsage)
	}
	if *dur <= 10*time.Second {
		return fmt.Errorf("%w: eval: --duration %v must be above 10s", errUsage, *dur)
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
		scens = append(scens, scen{strings.TrimSuffix(filepath.Base(p), ".yaml"), cfg})
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
	case "analytic", "model", "shadow":
		modes = []classify.Mode{classify.Mode(*which)}
	case "both":
		modes = []classify.Mode{classify.ModeAnalytic, classify.ModeModel}
	case "float":
		modes = []classify.Mode{evaluate.ModeFloat}
	case "all":
		modes = []classify.Mode{classify.ModeAnalytic, classify.ModeModel, evaluate.ModeFloat}
	default:
		return fmt.Errorf("%w: eval: --classifier %q: want analytic, model, both, float, all or shadow", errUsage, *which)
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
		b, err := json.MarshalIndent(reports, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(*jsonOut, append(b, '\n'), 0o644)
	}
	return nil
}

// printFigures prints one report as FIGURE lines; the baselines are the
// issue's targets.
func printFigures(w io.Writer, r *evaluate.Report) {
	name := strings.ReplaceAll(r.Scenario, "-", "_") + "_" + r.Classifier
	fig := func(what string, v float64, unit string, target float64) {
		ratio := 0.0
		if target != 0 {
			ratio = v / target
		}
		fmt.Fprintf(w, "FIGURE eval_%s_%s=%.4g unit=%s baseline=%g ratio=%.3f\n", name, what, v, unit, target, ratio)
	}
	fmt.Fprintf(w, "# %s %s: %d labels, %d events, %d matched, %d mis-picks true, %d raised\n", r.Scenario, r.Classifier, r.Labels, r.Events, r.Matched, r.MisPickTruth, r.MisPickEvents)
	fig("event_f1", r.F1, "ratio", 0.98)
	fig("event_precision", r.Precision, "ratio", 0.98)
	fig("event_recall", r.Recall, "ratio", 0.98)
	fig("sku_accuracy", r.SKUAccuracy, "ratio", 0.97)
	fig("exact_quantity", r.ExactQuantity, "ratio", 0.97)
	fig("mispick_precision", r.MisPickPrec, "ratio", 0.95)
	fig("mispick_recall", r.MisPickRecall, "ratio", 0.99)
	fig("latency_p50", r.LatencyP50Ms, "ms", 300)
	fig("latency_p99", r.LatencyP99Ms, "ms", 300)
	fig("inference_mean", r.InferMeanUs, "us", 1000)
}
