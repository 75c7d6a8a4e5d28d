package main

import (
	"context"
	"crypto/ed25519"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/classify"
	"github.com/shelfgate/shelfgate/gateway/modelsync"
	"github.com/shelfgate/shelfgate/gateway/mqtttest"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
	"github.com/shelfgate/shelfgate/model/features"
)

// syntheticSample is a plate window in which a unit left position bin b
// (b < 0: nothing moved): each cell's load drops by its share of the unit
// a third into the window, plus noise.
func syntheticSample(rng *rand.Rand, b int) shelfv1.Sample {
	win := classify.PlateWindow(classify.ModelRate)
	n := win.Len() / 4
	x := make([]float32, win.Len())
	u := (float64(b) + 0.5) / classify.PositionBins
	shares := [4]float64{(1 - u) * 0.6, u * 0.6, (1 - u) * 0.4, u * 0.4}
	label := shelfv1.LabelNone
	if b >= 0 {
		label = classify.BinLabel(b)
	}
	for c := range 4 {
		for s := range n {
			v := rng.NormFloat64() * 0.05
			if b >= 0 && s >= n/3 {
				v -= shares[c]
			}
			x[c*n+s] = float32(v)
		}
	}
	return shelfv1.Sample{Source: shelfv1.SampleScan, Gateway: "g", Event: shelfv1.SampleEvent{Stream: "loadcell/plate-01", T: 1},
		Plate: "plate-01", SKU: "SKU", Quantity: 1, Label: label, Classifier: "model", ModelVersion: 1,
		Rate: classify.ModelRate, Features: x, Time: time.Now()}
}

var accuracyRE = regexp.MustCompile(`int8 accuracy ([0-9.]+)%`)

// TestCollectSamplesAndTrain: samples published on a broker's samples
// topic are kept by collect --samples as CSV datasets per gateway and model
// version; model train --from retrains from them, evaluates on held-out
// samples, quantizes and signs with a key from keys gen; the result loads
// as a plate model with the key trusted; a second round warm-starts from
// the float model the first wrote.
func TestCollectSamplesAndTrain(t *testing.T) {
	url := mqtttest.StartEmbedded(t)
	dir := t.TempDir()
	samples := filepath.Join(dir, "samples")
	gw := publisher(t, url, nil)

	rng := rand.New(rand.NewPCG(7, 8))
	bins := []int{-1, 2, 7, 12}
	const n = 400
	var recs []gateway.Record
	for i := range n {
		s := syntheticSample(rng, bins[i%len(bins)])
		r, err := s.Record()
		if err != nil {
			t.Fatal(err)
		}
		r.ID, r.Seq = int64(i+1), uint64(i+1)
		recs = append(recs, r)
	}
	// One sample without a window: kept in samples.jsonl only.
	bare, _ := shelfv1.Sample{Source: shelfv1.SampleCorrection, Gateway: "g", Plate: "plate-01", Label: "x03", Quantity: 1, Time: time.Now()}.Record()
	bare.ID, bare.Seq = n+1, n+1
	recs = append(recs, bare)

	code, stdout, stderr := collectWith(t, []string{"--broker", url, "--samples", samples, "--expect", strconv.Itoa(n + 1)}, func() {
		topic := shelfv1.Topics{Site: "s", Gateway: "g"}.Samples()
		for lo := 0; lo < len(recs); lo += 50 {
			part := recs[lo:min(lo+50, len(recs))]
			p := shelfv1.AppendBatch(nil, "s", "g", gateway.BatchRef{Class: gateway.ClassSamples}, time.Now(), part)
			if tok := gw.Publish(topic, 1, false, p); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				t.Fatalf("publish: %v", tok.Error())
			}
		}
	})
	if code != 0 || !strings.Contains(stdout, "samples: 400 kept as dataset rows") || !strings.Contains(stdout, "1 without a usable window") {
		t.Fatalf("collect: exit %d\n%s\n%s", code, stdout, stderr)
	}
	csvPath := filepath.Join(samples, "s", "g", "model-v1.csv")
	if fi, err := os.Stat(csvPath); err != nil || fi.Size() == 0 {
		t.Fatalf("dataset file %s: %v", csvPath, err)
	}

	ctx := context.Background()
	key := filepath.Join(dir, "signing")
	if code, out, errs := run(ctx, "keys", "gen", "-o", key); code != 0 {
		t.Fatalf("keys gen: %d %s %s", code, out, errs)
	}
	pub, err := modelsync.LoadPublicKey(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	model1 := filepath.Join(dir, "plate-v2.sgm")
	code, out, errs := run(ctx, "model", "train", "--from", samples, "--sign-key", key, "--version", "2", "--epochs", "40", "-o", model1)
	if code != 0 {
		t.Fatalf("model train: exit %d\n%s\n%s", code, out, errs)
	}
	acc := heldOutAccuracy(t, out)
	if acc < 90 {
		t.Fatalf("held-out int8 accuracy %.2f%% on separable samples:\n%s", acc, out)
	}
	if testing.Verbose() {
		t.Log(out)
	}
	l, err := classify.LoadFile(ctx, model1, []ed25519.PublicKey{pub})
	if err != nil {
		t.Fatalf("the trained model does not load as a plate model with its key trusted: %v", err)
	}
	if l.Version != 2 || !l.M.Signed {
		t.Fatalf("loaded version %d signed %v", l.Version, l.M.Signed)
	}

	// Round two: warm start from the float model, more samples.
	model2 := filepath.Join(dir, "plate-v3.sgm")
	code, out, errs = run(ctx, "model", "train", "--from", samples, "--warm-start", model1+".float.json", "--version", "3", "--epochs", "5", "-o", model2)
	if code != 0 || !strings.Contains(out, "warm-start model accuracy") {
		t.Fatalf("warm-started train: exit %d\n%s\n%s", code, out, errs)
	}
	if acc2 := heldOutAccuracy(t, out); acc2 < 90 {
		t.Fatalf("warm-started held-out accuracy %.2f%%:\n%s", acc2, out)
	}

	// Simulator windows join the training set (never the held-out split).
	sim := &features.Dataset{Names: classify.PlateWindow(classify.ModelRate).Names(), Labels: plateLabels(), Meta: map[string]string{"source": "test"}}
	for i := range 100 {
		s := syntheticSample(rng, bins[i%len(bins)])
		sim.X = append(sim.X, s.Features)
		sim.Y = append(sim.Y, slices.Index(plateLabels(), s.Label))
	}
	simPath := filepath.Join(dir, "sim.sgds")
	f, err := os.Create(simPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sim.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	code, out, errs = run(ctx, "model", "train", "--from", samples, "--sim", simPath, "--version", "4", "--epochs", "5", "-o", filepath.Join(dir, "plate-v4.sgm"))
	if code != 0 || !strings.Contains(out, "simulator: 100 rows") || !strings.Contains(out, "(320 samples, 100 simulator)") {
		t.Fatalf("train with --sim: exit %d\n%s\n%s", code, out, errs)
	}

	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--from", samples, "-o", model2}, "needs --version"},
		{[]string{"--from", samples, "--version", "4"}, "needs -o"},
		{[]string{"--from", filepath.Join(dir, "nothing-here"), "--version", "4", "-o", model2}, "nothing-here"},
		{[]string{"--from", samples, "--version", "4", "--warm-start", model1, "-o", model2}, "give the float model"},
		{[]string{"--from", samples, "--version", "4", "--holdout", "1.5", "-o", model2}, "--holdout 1.5"},
	} {
		code, _, errs := run(ctx, append([]string{"model", "train"}, tc.args...)...)
		if code == 0 || !strings.Contains(errs, tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want an error with %q", tc.args, code, errs, tc.msg)
		}
	}
}

func heldOutAccuracy(t *testing.T, out string) float64 {
	t.Helper()
	m := accuracyRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no held-out accuracy in:\n%s", out)
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}
