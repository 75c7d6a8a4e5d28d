package evaluate

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/warehouse"
	"github.com/shelfgate/shelfgate/gateway/classify"
)

// Tolerances of the bus path against the direct path on the same slice:
// the bus may lose a conversion now and then (the host falls behind the
// accelerated clock on a loaded machine), which can delay or split a
// settle, never more. Latency is not compared: missed conversions
// lengthen settles in simulated time, and how many are missed depends on
// the machine's load (BusStats.Missed and MaxGapMs report it).
const (
	busTolF1     = 0.05 // event F1, precision, recall
	busTolID     = 0.05 // SKU accuracy, exact quantity (matched events)
	busTolMisPck = 0.15 // mis-pick recall and precision (few wrong scans per run)
)

// busDiffs lists where bus differs from direct beyond the tolerances;
// event F1, precision and recall get slack for the labels that a stall of
// the host disturbed (BusStats.Disturbed).
func busDiffs(bus, direct *Report, st *BusStats) []string {
	slack := 0.0
	if direct.Labels > 0 {
		slack = float64(st.Disturbed) / float64(direct.Labels)
	}
	var out []string
	cmp := func(name string, b, d, tol float64) {
		if math.Abs(b-d) > tol {
			out = append(out, fmt.Sprintf("%s %.3f vs %.3f direct", name, b, d))
		}
	}
	cmp("f1", bus.F1, direct.F1, busTolF1+slack)
	cmp("precision", bus.Precision, direct.Precision, busTolF1+slack)
	cmp("recall", bus.Recall, direct.Recall, busTolF1+slack)
	cmp("sku", bus.SKUAccuracy, direct.SKUAccuracy, busTolID)
	cmp("quantity", bus.ExactQuantity, direct.ExactQuantity, busTolID)
	cmp("mispick recall", bus.MisPickRecall, direct.MisPickRecall, busTolMisPck)
	cmp("mispick precision", bus.MisPickPrec, direct.MisPickPrec, busTolMisPck)
	return out
}

// busScenario is a short, busy slice: the quiet shift's plates, three of
// them, visited 240 times an hour, a third of the pick-list lines wrong.
func busScenario(t *testing.T) (Options, *Report) {
	t.Helper()
	cfg := scenario(t, "../../../configs/scenarios/eval/quiet-shift.yaml")
	cfg.Plates.Count, cfg.Plates.VisitsPerHour = 3, 240
	o := Options{Name: "quiet-shift-busy", Config: cfg, Duration: 3 * time.Minute, Mode: classify.ModeAnalytic, Seed: 1, MisPickRate: 0.3}
	direct, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if direct.Labels < 25 || direct.F1 < 0.95 || direct.MisPickTruth < 3 {
		t.Fatalf("the direct path on the slice: %+v", direct)
	}
	return o, direct
}

// The bus path (hx711sim → loadcell.Group → loadcell.Source → chain)
// scores what the direct path scores, with every chip glitching; and the
// comparison catches a plate wired in the wrong order and a source that
// does not reject the glitches' all-ones codes.
func TestRunBusMatchesDirect(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the simulated buses for about a minute")
	}
	o, direct := busScenario(t)
	t.Logf("direct: %+v", direct)
	mirrored := [4]int{1, 0, 3, 2} // front-left and front-right swapped, back too
	// Wall clock per conversion: the faithful run at 20 ms (5× real time
	// at 10 samples/s), so that a stall of a loaded test machine costs
	// little simulated time; the faulty ones at 10 ms (any missed
	// conversion only widens their difference).
	for _, tc := range []struct {
		name  string
		b     BusOptions
		match bool
	}{
		{"faithful, glitching chips", BusOptions{Glitches: true, Period: 20 * time.Millisecond}, true},
		{"cells wired mirrored", BusOptions{wiring: &mirrored, Period: 10 * time.Millisecond}, false},
		{"no glitch rejection", BusOptions{Glitches: true, passGlitches: true, Period: 10 * time.Millisecond}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reps, st, err := RunBus(context.Background(), o, nil, tc.b)
			if err != nil {
				t.Fatal(err)
			}
			bus := reps[0]
			t.Logf("bus: %+v", bus)
			t.Logf("bus stats: %+v, missed %d", st, st.Missed())
			// Each source holds at most a spike window of codes back.
			if tc.match && (st.Codes == 0 || st.Readings < st.Codes-int64(4*3*8)) {
				t.Errorf("%d codes reached the sources, %d readings came out", st.Codes, st.Readings)
			}
			if tc.b.Glitches && st.Spurious == 0 {
				t.Errorf("glitching chips clocked no spurious read: %+v", st)
			}
			diffs := busDiffs(bus, direct, st)
			switch {
			case tc.match && len(diffs) > 0:
				t.Errorf("bus path differs from the direct path: %v", diffs)
			case !tc.match && len(diffs) == 0:
				t.Errorf("bus path scored like the direct path; the comparison cannot see this fault")
			}
			if tc.match && st.Glitches == 0 {
				t.Errorf("no glitch reached loadcell.Source's rejection: %+v", st)
			}
		})
	}
}

// Several modes share one bus run: each gets its own report, scored on
// the same readings.
func TestRunBusModes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the simulated buses")
	}
	cfg := scenario(t, "../../../configs/scenarios/eval/quiet-shift.yaml")
	cfg.Plates.Count = 1
	o := Options{Name: "one-plate", Config: cfg, Duration: 30 * time.Second, Seed: 1}
	if _, _, err := RunBus(context.Background(), o, []classify.Mode{classify.ModeAnalytic, classify.ModeShadow}, BusOptions{Speed: 20}); err == nil {
		t.Fatal("mode shadow without a model ran")
	}
	if _, _, err := RunBus(context.Background(), o, []classify.Mode{classify.ModeAnalytic, ModeFloat}, BusOptions{Speed: 20}); err == nil {
		t.Fatal("mode float without a float model ran")
	}
	reps, st, err := RunBus(context.Background(), o, []classify.Mode{classify.ModeAnalytic, classify.ModeAnalytic}, BusOptions{Speed: 20})
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 2 {
		t.Fatalf("%d reports", len(reps))
	}
	a, b := *reps[0], *reps[1]
	a.InferMeanUs, b.InferMeanUs = 0, 0 // wall clock
	if a.Classifier != "analytic" || a != b || a.Labels == 0 || st.Speed != 20 || st.Codes == 0 {
		t.Errorf("reports %+v %+v, stats %+v", reps[0], reps[1], st)
	}
	if _, _, err := RunBus(context.Background(), o, nil, BusOptions{Speed: 0.5}); err == nil {
		t.Error("speed 0.5 accepted")
	}
	noPlates := o
	noPlates.Config = warehouse.DefaultConfig()
	noPlates.Config.Plates.Count = 0
	if _, _, err := RunBus(context.Background(), noPlates, nil, BusOptions{}); err == nil {
		t.Error("a scenario without plates ran")
	}
}
