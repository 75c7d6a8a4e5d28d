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
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"eval", "--classifier", "both", "--model", "../../configs/models/plate.sgm", "--duration", "15m", "--json", js,
		"../../configs/scenarios/eval/quiet-shift.yaml"}, nil, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"FIGURE eval_quiet_shift_analytic_event_f1=", "FIGURE eval_quiet_shift_model_sku_accuracy=", "FIGURE eval_quiet_shift_model_latency_p99="} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	var reps []struct {
		Classifier string  `json:"classifier"`
		F1         float64 `json:"f1"`
		Labels     int     `json:"labels"`
	}
	if err := json.Unmarshal(b, &reps); err != nil {
		t.Fatal(err)
	}
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
	} {
		err := dispatch(context.Background(), args, nil, &bytes.Buffer{}, &bytes.Buffer{})
		if !errors.Is(err, errUsage) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}
