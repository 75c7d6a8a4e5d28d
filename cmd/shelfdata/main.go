// Command shelfdata builds a labelled training dataset of load-cell windows
// from warehouse scenarios with fixed seeds (firmware-sim/dataset, windows
// cut by model/features) and writes it as a dataset file or CSV:
//
//	shelfdata -o windows.sgds [-plates] [-duration 6h] [-idle 0.5] [-idle-seed 1]
//	          [-seed N] [-samples N] [-pre N] [SCENARIO.yaml ...]
//
// -plates cuts 4-cell plate windows labelled by facing ("facing<i>", "none")
// from the scenario's plates (the simulator's default plates when the
// scenario has none) instead of one-cell bin windows.
//
// Without scenario files it uses the simulator's default scenario. Several
// scenarios are merged into one dataset (their windows must agree). -seed
// replaces every scenario's seed, so training and evaluation sets can come
// from the same scenarios with different seeds. An output name ending in
// .csv gets CSV (no metadata); anything else the binary dataset file
// documented in model/features. Exit codes: 0 success, 1 failure, 2 bad
// usage or scenario.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	simdata "github.com/shelfgate/shelfgate/firmware-sim/dataset"
	"github.com/shelfgate/shelfgate/firmware-sim/warehouse"
	"github.com/shelfgate/shelfgate/model/features"
)

var errUsage = errors.New("usage")

const usage = "shelfdata -o OUT(.sgds|.csv) [-plates] [-duration D] [-idle F] [-idle-seed N] [-seed N] [-samples N] [-pre N] [SCENARIO.yaml ...]"

func main() {
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}

// Main runs the command line and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	err := run(args, stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "shelfdata:", err)
		return 2
	default:
		fmt.Fprintln(stderr, "shelfdata:", err)
		return 1
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("shelfdata", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "output file: .csv for CSV, anything else the binary dataset file")
	duration := fs.Duration("duration", 6*time.Hour, "virtual time per bin")
	idle := fs.Float64("idle", 0.5, "idle windows per visit")
	idleSeed := fs.Uint64("idle-seed", 1, "seed for placing idle windows")
	seed := fs.Int64("seed", 0, "replace every scenario's seed (0: keep)")
	samples := fs.Int("samples", 0, "window length in samples (0: 3 s at the scenario's rate)")
	pre := fs.Int("pre", -1, "window samples before the visit (-1: 0.5 s at the scenario's rate)")
	plates := fs.Bool("plates", false, "cut 4-cell plate windows labelled by facing (the scenario's plates: section, or the default plates)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *out == "" {
		return fmt.Errorf("%w: -o is required: %s", errUsage, usage)
	}
	paths := fs.Args()
	if len(paths) == 0 {
		paths = []string{""}
	}
	var parts []*features.Dataset
	for _, p := range paths {
		cfg, name := warehouse.DefaultConfig(), "default"
		if p != "" {
			var err error
			if cfg, err = loadScenario(p); err != nil {
				return err
			}
			name = strings.TrimSuffix(filepath.Base(p), filepath.Ext(p))
		}
		if *seed != 0 {
			cfg.Seed = *seed
		}
		win := features.DefaultWindow(cfg.SampleRate)
		if *plates {
			win.Cells = 4
			if cfg.Plates.Count == 0 {
				cfg.Plates = warehouse.DefaultPlateConfig()
			}
		}
		if *samples != 0 {
			win.Samples = *samples
		}
		if *pre >= 0 {
			win.Pre = *pre
		}
		if err := win.Validate(); err != nil {
			return fmt.Errorf("%w: %s: %v", errUsage, name, err)
		}
		var d *features.Dataset
		var err error
		if *plates {
			d, err = simdata.BuildPlates(simdata.PlateOptions{Name: name, Config: cfg, Duration: *duration, Window: win, Idle: *idle, Seed: *idleSeed})
		} else {
			d, err = simdata.Build(simdata.Options{Name: name, Config: cfg, Duration: *duration, Window: win, Idle: *idle, Seed: *idleSeed})
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		fmt.Fprintf(stderr, "%s: %d windows of %d features, %v\n", name, len(d.X), d.Features(), d.Counts())
		parts = append(parts, d)
	}
	d, err := features.Merge(parts...)
	if err != nil {
		return err
	}
	if len(parts) > 1 {
		// Merge keeps what the parts agree on; keep each scenario's too.
		if d.Meta == nil {
			d.Meta = map[string]string{}
		}
		names := make([]string, len(parts))
		for i, p := range parts {
			names[i] = p.Meta["name"]
			d.Meta["scenario."+names[i]] = "seed=" + p.Meta["seed"] + " " + p.Meta["scenario"]
		}
		d.Meta["name"] = strings.Join(names, ",")
	}
	var b bytes.Buffer
	if strings.HasSuffix(*out, ".csv") {
		err = d.WriteCSV(&b)
	} else {
		_, err = d.WriteTo(&b)
	}
	if err != nil {
		return err
	}
	if err := writeFile(*out, b.Bytes()); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: %d windows, %d features, labels %v\n", *out, len(d.X), d.Features(), d.Labels)
	return nil
}

// loadScenario reads a scenario file (warehouse.LoadScenario: a
// warehouse section, nothing else); a bad file is a usage error.
func loadScenario(path string) (warehouse.Config, error) {
	cfg, err := warehouse.LoadScenario(path)
	if err != nil {
		return warehouse.Config{}, fmt.Errorf("%w: %v", errUsage, err)
	}
	return cfg, nil
}

// writeFile writes data atomically: a temporary file renamed over path.
func writeFile(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
