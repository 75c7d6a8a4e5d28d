package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// shelfctl eval through Main: FIGURE lines for both classifiers and a JSON
// report holding the same numbers.
func TestEvalCommand(t *testing.T) {
	dir := t.TempDir()
	js := filepath.Join(dir, "r.json")
	var reps []struct {
		Classifier string  `json:"classifier"`
		F1         float64 `json:"f1"`
		Labels     int     `json:"labels"`
	}
	b := runEval(t, []string{"eval", "--classifier", "both", "--model", "../../configs/models/plate.sgm", "--duration", "15m", "--json", js,
		"../../configs/scenarios/eval/quiet-shift.yaml"},
		[]string{"FIGURE eval_quiet_shift_analytic_event_f1=", "FIGURE eval_quiet_shift_model_sku_accuracy=", "FIGURE eval_quiet_shift_model_latency_p99="}, js, &reps)
	if len(reps) != 2 || reps[0].Classifier != "analytic" || reps[1].Classifier != "model" || reps[0].Labels == 0 || reps[1].F1 <= 0 {
		t.Errorf("report %s", b)
	}
}

func TestEvalUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"eval"},
		{"eval", "--classifier", "neural", "../../configs/scenarios/eval/quiet-shift.yaml"},
		{"eval", "--duration", "1s", "../../configs/scenarios/eval/quiet-shift.yaml"},
		{"eval", "--trace", "x.csv", "a.yaml", "b.yaml"},
		{"eval", "--bus", "--trace", "x.csv", "../../configs/scenarios/eval/quiet-shift.yaml"},
		{"eval", "--bus", "--bus-speed", "0.5", "../../configs/scenarios/eval/quiet-shift.yaml"},
		{"eval", "--bus", "--bus-period", "0s", "../../configs/scenarios/eval/quiet-shift.yaml"},
		{"eval", "--chip-filter", "sinc3", "../../configs/scenarios/eval/quiet-shift.yaml"},
		{"eval", "--chip-filter", "sinc4", "--trace", "x.csv", "../../configs/scenarios/eval/quiet-shift.yaml"},
	} {
		err := dispatch(context.Background(), args, nil, &bytes.Buffer{}, &bytes.Buffer{})
		if !errors.Is(err, errUsage) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}

// shelfctl eval --chip-filter sinc4 reaches the simulator: the scenario
// is named for it, and the chip's 400 ms of settling shows in the
// latency (p50 169 -> 387 ms in an hour of quiet shift).
func TestEvalChipFilter(t *testing.T) {
	p50 := func(filter, figure string) float64 {
		js := filepath.Join(t.TempDir(), "r.json")
		var reps []struct {
			Scenario string  `json:"scenario"`
			P50      float64 `json:"latency_p50_ms"`
		}
		runEval(t, []string{"eval", "--chip-filter", filter, "--classifier", "analytic", "--duration", "15m", "--json", js,
			"../../configs/scenarios/eval/quiet-shift.yaml"}, []string{figure}, js, &reps)
		if len(reps) != 1 || reps[0].Scenario != "quiet-shift-"+filter {
			t.Fatalf("--chip-filter %s: report %+v", filter, reps)
		}
		return reps[0].P50
	}
	none := p50("none", "FIGURE eval_quiet_shift_none_analytic_latency_p50=")
	sinc4 := p50("sinc4", "FIGURE eval_quiet_shift_sinc4_analytic_latency_p50=")
	if sinc4 < none+100 {
		t.Errorf("latency p50 %.0f ms through the chip's filter, %.0f ms without: the filter did not reach the simulator", sinc4, none)
	}
}

// shelfctl eval --bus: the bus path's FIGURE lines against the direct
// path's, and a JSON report holding both and the bus's counts.
func TestEvalBusCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the simulated buses")
	}
	js := filepath.Join(t.TempDir(), "bus.json")
	var reps []struct {
		Scenario string `json:"scenario"`
		Direct   []struct {
			Classifier string `json:"classifier"`
			Labels     int    `json:"labels"`
		} `json:"direct"`
		Bus []struct {
			Classifier string `json:"classifier"`
			Labels     int    `json:"labels"`
		} `json:"bus"`
		Stats struct {
			Speed    float64 `json:"speed"`
			Codes    int64   `json:"codes"`
			Glitches int64   `json:"glitches"`
		} `json:"bus_stats"`
	}
	b := runEval(t, []string{"eval", "--bus", "--bus-speed", "20", "--bus-glitch", "--classifier", "analytic", "--duration", "40s", "--json", js,
		"../../configs/scenarios/eval/quiet-shift.yaml"},
		[]string{"# bus quiet-shift: speed 20,", "glitches rejected", "FIGURE eval_bus_quiet_shift_analytic_event_f1=", "FIGURE eval_bus_quiet_shift_analytic_latency_p99="}, js, &reps)
	if len(reps) != 1 || len(reps[0].Direct) != 1 || len(reps[0].Bus) != 1 || reps[0].Bus[0].Classifier != "analytic" ||
		reps[0].Bus[0].Labels != reps[0].Direct[0].Labels || reps[0].Stats.Speed != 20 || reps[0].Stats.Codes == 0 || reps[0].Stats.Glitches == 0 {
		t.Errorf("report %s", b)
	}
}

// runEval runs shelfctl with args, checks that its output holds every
// string of wants, and decodes the JSON report at js into v (returning
// its bytes).
func runEval(t *testing.T, args, wants []string, js string, v any) []byte {
	t.Helper()
	var out, errb bytes.Buffer
	if code := Main(context.Background(), args, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range wants {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
	return b
}
