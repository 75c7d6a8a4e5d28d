package evaluate

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"github.com/shelfgate/shelfgate/firmware-sim/trace"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/warehouse"
	"github.com/shelfgate/shelfgate/gateway/classify"
)

func scenario(t *testing.T, path string) warehouse.Config {
	t.Helper()
	cfg, err := warehouse.LoadScenario(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// The scorer on an easy scenario: the analytic chain finds the visits and
// names them, and the synthetic mis-picks are caught.
func TestRunQuietShift(t *testing.T) {
	cfg := scenario(t, "../../../configs/scenarios/eval/quiet-shift.yaml")
	rep, err := Run(context.Background(), Options{Name: "quiet-shift", Config: cfg, Duration: 30 * time.Minute, Mode: classify.ModeAnalytic, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", rep)
	if rep.Labels < 50 || rep.F1 < 0.95 || rep.SKUAccuracy < 0.95 || rep.ExactQuantity < 0.95 {
		t.Errorf("quiet shift: %+v", rep)
	}
	if rep.MisPickTruth == 0 || rep.MisPickRecall < 0.9 || rep.MisPickPrec < 0.9 {
		t.Errorf("mis-picks: %d true, recall %v precision %v", rep.MisPickTruth, rep.MisPickRecall, rep.MisPickPrec)
	}
	if rep.LatencyP50Ms <= 0 || rep.LatencyP99Ms < rep.LatencyP50Ms || rep.LatencyP99Ms > 1000 {
		t.Errorf("latency p50 %v p99 %v ms", rep.LatencyP50Ms, rep.LatencyP99Ms)
	}
}

// facing0 names facing 0 for every change: the scorer must see it.
type facing0 struct{}

func (facing0) Identify(c *classify.Change) classify.Result {
	return classify.Result{Facing: 0, Quantity: 1, Confidence: 1, Classifier: "facing0"}
}

func TestRunScoresAWrongIdentifierLow(t *testing.T) {
	cfg := scenario(t, "../../../configs/scenarios/eval/quiet-shift.yaml")
	rep, err := Run(context.Background(), Options{Name: "quiet-shift", Config: cfg, Duration: 30 * time.Minute, primary: facing0{}, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if rep.SKUAccuracy > 0.6 || rep.ExactQuantity > 0.7 || rep.MisPickPrec > 0.5 {
		t.Errorf("a constant identifier scored %+v", rep)
	}
}

// Training windows are cut by the serving detector and labelled by the
// position bin of the facing they match.
func TestWindowsLabelledByPosition(t *testing.T) {
	cfg := scenario(t, "../../../configs/scenarios/train/quiet-shift.yaml")
	d, err := Windows(context.Background(), Options{Name: "quiet-shift", Config: cfg, Duration: 20 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	if d.Features() != classify.PlateWindow(classify.ModelRate).Len() {
		t.Fatalf("%d features", d.Features())
	}
	w, _ := warehouse.New(cfg)
	want := map[string]bool{classify.NoneLabel: true}
	labels := 0
	for pi, p := range w.Plates() {
		for _, f := range p.Facings {
			want[classify.BinLabel(classify.BinOf(f.XMM, p.WidthMM))] = true
		}
		labels += len(w.PlateLabels(pi, 20*time.Minute))
	}
	visits := 0
	for l, n := range d.Counts() {
		if !want[l] {
			t.Errorf("label %s (%d windows) is no facing's bin", l, n)
		}
		if l != classify.NoneLabel {
			visits += n
		}
	}
	if visits < labels*9/10 || visits > labels {
		t.Errorf("%d visit windows for %d labels", visits, labels)
	}
}

// A scenario recorded as a trace of raw codes scores as the scenario does:
// the trace path feeds the same chain.
func TestRunTraceMatchesRun(t *testing.T) {
	cfg := scenario(t, "../../../configs/scenarios/eval/quiet-shift.yaml")
	w, err := warehouse.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw, err := trace.NewWriter(&buf, trace.Code, true)
	if err != nil {
		t.Fatal(err)
	}
	dur := 20 * time.Minute
	if _, err := trace.RecordPlates(tw, w, Epoch, dur); err != nil {
		t.Fatal(err)
	}
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	o := Options{Name: "quiet-shift", Config: cfg, Duration: dur, Mode: classify.ModeAnalytic}
	got, err := RunTrace(context.Background(), o, bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	want, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("trace %+v", got)
	if got.Labels < want.Labels || got.Labels > want.Labels+5 || got.Matched < want.Matched || math.Abs(got.SKUAccuracy-want.SKUAccuracy) > 0.02 || got.F1 < 0.95 {
		t.Errorf("trace scored %+v, the scenario %+v", got, want)
	}
	// A plate the scenario does not have.
	bad := strings.Replace(buf.String(), ",plate-01,", ",plate-99,", 1)
	if _, err := RunTrace(context.Background(), o, strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), `plate "plate-99"`) {
		t.Errorf("unknown plate: %v", err)
	}
}

// ModeGated runs the shipped model as the gate and the analytic
// identifier as the namer: events carry both names, and a missing model
// is refused.
func TestRunGated(t *testing.T) {
	pub, err := os.ReadFile("../../../configs/models/test-signing.pub")
	if err != nil {
		t.Fatal(err)
	}
	k, err := hex.DecodeString(strings.TrimSpace(string(pub)))
	if err != nil {
		t.Fatal(err)
	}
	l, err := classify.LoadFile(context.Background(), "../../../configs/models/plate.sgm", []ed25519.PublicKey{k})
	if err != nil {
		t.Fatal(err)
	}
	cfg := scenario(t, "../../../configs/scenarios/eval/quiet-shift.yaml")
	o := Options{Name: "quiet-shift", Config: cfg, Duration: 20 * time.Minute, Mode: ModeGated, Seed: 1}
	if _, err := Run(context.Background(), o); err == nil || !strings.Contains(err.Error(), "needs a model") {
		t.Fatalf("gated without a model: err %v", err)
	}
	o.Holder = classify.NewHolder(l)
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Classifier != "gated" || rep.Labels < 30 || rep.F1 < 0.95 || rep.SKUAccuracy < 0.95 {
		t.Errorf("gated: %+v", rep)
	}
}
