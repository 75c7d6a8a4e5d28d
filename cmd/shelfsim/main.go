// Command shelfsim runs a warehouse scenario on its own, without a gateway:
// it plays the simulated shelves for a stretch of simulated time as fast as
// the CPU allows, writes the ground-truth labels, and scores the gateway's
// pick/put detector against them.
//
//	shelfsim run --scenario configs/scenarios/NAME.yaml [--hours H] [--labels FILE.jsonl]
//	shelfsim fleet -n 500 [--broker URL [--restart-cmd CMD]]
//
// fleet runs many simulated gateways (gateway.Gateway, its own SQLite outbox
// and uplink each, a simulated source instead of sensors) in one process
// against one broker, restarts the broker to measure the reconnect storm,
// and audits what a $share group of collectors received.
//
// Exit codes: 0 success, 1 failure, 2 bad usage or scenario.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/warehouse"
	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/shelf"
)

var errUsage = errors.New("usage")

func main() {
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}

// Main runs the command line and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	err := dispatch(args, stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "shelfsim:", err)
		return 2
	default:
		fmt.Fprintln(stderr, "shelfsim:", err)
		return 1
	}
}

func dispatch(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "fleet" {
		return runFleetCmd(args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "run" {
		return fmt.Errorf("%w: shelfsim run --scenario FILE [--hours H] [--labels FILE.jsonl] | %s", errUsage, fleetUsage)
	}
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("scenario", "", "scenario file (YAML with a warehouse: section)")
	hours := fs.Float64("hours", 1, "simulated hours to play")
	labels := fs.String("labels", "", "write the ground-truth labels here as JSON lines")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *path == "" || *hours <= 0 || *hours > 24*14 {
		return fmt.Errorf("%w: shelfsim run --scenario FILE [--hours H (0-336)] [--labels FILE.jsonl]", errUsage)
	}
	cfg, err := loadScenario(*path)
	if err != nil {
		return err
	}
	wh, err := warehouse.New(cfg)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", errUsage, *path, err)
	}
	return play(wh, time.Duration(*hours*float64(time.Hour)), *labels, stdout)
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

// play feeds every sample of the scenario through the detector (as the
// gateway would after calibration) and compares its events with the labels.
func play(wh *warehouse.Warehouse, d time.Duration, labelsPath string, w io.Writer) error {
	cfg := wh.Config()
	n := int64(d.Seconds() * cfg.SampleRate)
	bins := wh.Bins()
	var sbins []shelf.Bin
	for _, b := range bins {
		sbins = append(sbins, shelf.Bin{Stream: gateway.StreamID(b.ID), ID: b.ID, SKU: b.SKU, UnitGrams: b.UnitGrams, InitialUnits: b.InitialUnits, LowStockUnits: max(1, b.Capacity/10)})
	}
	window := 0
	if cfg.SampleRate >= 80 {
		window = 40
	}
	det, err := shelf.New(shelf.Config{Bins: sbins, WindowSamples: window})
	if err != nil {
		return err
	}
	var lw *bufio.Writer
	if labelsPath != "" {
		f, err := os.Create(labelsPath)
		if err != nil {
			return err
		}
		defer f.Close()
		lw = bufio.NewWriter(f)
		defer lw.Flush()
	}
	t0 := time.Unix(0, 0).UTC()
	fmt.Fprintf(w, "scenario: %d bins, %.0f samples/s, %s simulated, seed %d\n", len(bins), cfg.SampleRate, d, cfg.Seed)
	fmt.Fprintf(w, "%-16s %-14s %8s %6s %6s %5s %5s %6s %6s %6s\n", "bin", "sku", "unit_g", "start", "end", "picks", "puts", "found", "missed", "extra")
	var tot struct{ labels, found, missed, extra, qtyOK int }
	for bi, b := range bins {
		var events []gateway.Event
		for k := int64(0); k < n; k++ {
			code := wh.CodeAt(bi, k)
			r := gateway.Reading{Stream: gateway.StreamID(b.ID), Time: t0.Add(wh.SampleTime(k)), Value: float64(code-b.OffsetCounts) / b.CountsPerGram, Unit: "g"}
			for _, ev := range det.Observe(r) {
				if ev.Kind == gateway.EventPick || ev.Kind == gateway.EventPut {
					events = append(events, ev)
				}
			}
		}
		labels := wh.Labels(bi, d)
		var picks, puts, units int
		units = b.InitialUnits
		used := make([]bool, len(events))
		found, qtyOK := 0, 0
		for _, l := range labels {
			if lw != nil {
				json.NewEncoder(lw).Encode(struct {
					Bin string `json:"bin"`
					warehouse.Label
				}{b.ID, l})
			}
			if l.Kind == "pick" {
				picks++
				units -= l.Units
			} else {
				puts++
				units += l.Units
			}
			for i, ev := range events {
				at := ev.Time.Sub(t0)
				if !used[i] && string(ev.Kind) == l.Kind && at >= l.Start && at <= l.Settled+3*time.Second {
					used[i] = true
					found++
					if ev.Quantity == l.Units {
						qtyOK++
					}
					break
				}
			}
		}
		extra := 0
		for _, u := range used {
			if !u {
				extra++
			}
		}
		fmt.Fprintf(w, "%-16s %-14s %8.1f %6d %6d %5d %5d %6d %6d %6d\n", b.ID, b.SKU, b.UnitGrams, b.InitialUnits, units, picks, puts, found, len(labels)-found, extra)
		tot.labels += len(labels)
		tot.found += found
		tot.missed += len(labels) - found
		tot.extra += extra
		tot.qtyOK += qtyOK
	}
	ratio := func(a, b int) float64 {
		if b == 0 {
			return math.NaN()
		}
		return float64(a) / float64(b)
	}
	fmt.Fprintf(w, "detector: visits=%d found=%d missed=%d extra=%d recall=%.4f precision=%.4f quantity_correct=%.4f\n",
		tot.labels, tot.found, tot.missed, tot.extra, ratio(tot.found, tot.labels), ratio(tot.found, tot.found+tot.extra), ratio(tot.qtyOK, tot.found))
	return nil
}
